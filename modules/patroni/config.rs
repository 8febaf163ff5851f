//! Patroni's YAML configuration for one member, and the DCS settings it bootstraps with.

use serde_json::{json, Map, Value};

use super::params::{Patroni, VerifyClient, ENFORCED_PARAMETERS};
use super::platform::Family;
use crate::common::hba;
use crate::common::secret::Secret;
use pgdeploy_core::secrets::{MASK, SECRET_CHANGED};

/// What varies per host and is found on the host or in its facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub name: String,
    pub address: String,
    pub version: u32,
    /// Where this host's PostgreSQL lives.
    pub family: Family,
}

impl Patroni {
    pub(crate) fn data_dir(&self, m: &Member) -> String {
        self.postgresql
            .data_dir
            .clone()
            .unwrap_or_else(|| m.family.data_dir(m.version, &self.scope))
    }
    pub(crate) fn bin_dir(&self, m: &Member) -> String {
        self.postgresql
            .bin_dir
            .clone()
            .unwrap_or_else(|| m.family.bin_dir(m.version))
    }
    pub(crate) fn rest_tls(&self) -> bool {
        self.restapi.certfile.is_some()
    }
    pub(crate) fn etcd_hosts(&self) -> Vec<String> {
        self.etcd
            .hosts
            .0
            .iter()
            .flat_map(|h| h.split(','))
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect()
    }

    /// The cluster-wide settings, as `GET /config` shows them. Only the keys pgdeploy manages
    /// are compared and patched; others (set by `patronictl edit-config`) are left alone.
    pub(crate) fn dcs(&self) -> Value {
        let d = &self.dcs;
        let mut parameters = Map::new();
        for (k, v) in ENFORCED_PARAMETERS {
            parameters.insert(k.to_string(), json!(v));
        }
        for (k, v) in &d.parameters {
            parameters.insert(k.clone(), v.clone());
        }
        let mut postgresql = Map::new();
        postgresql.insert("use_pg_rewind".into(), json!(true));
        postgresql.insert("parameters".into(), Value::Object(parameters));
        if !d.pg_hba.is_empty() {
            postgresql.insert("pg_hba".into(), json!(d.pg_hba));
        }
        if !d.recovery_conf.is_empty() {
            postgresql.insert("recovery_conf".into(), json!(d.recovery_conf));
        }
        json!({
            "ttl": d.ttl,
            "loop_wait": d.loop_wait,
            "retry_timeout": d.retry_timeout,
            "maximum_lag_on_failover": d.maximum_lag_on_failover,
            "synchronous_mode": d.synchronous_mode,
            "postgresql": postgresql,
        })
    }

    /// The configuration file's content. `mask` replaces passwords, for diffs.
    pub(crate) fn render(&self, m: &Member, mask: bool) -> String {
        let text = self.render_text(m);
        if mask {
            mask_passwords(&text)
        } else {
            text
        }
    }

    fn render_text(&self, m: &Member) -> String {
        let password = |p: &Secret| p.expose().to_string();
        let mut etcd = Map::new();
        etcd.insert("hosts".into(), json!(self.etcd_hosts()));
        let protocol = self.etcd.protocol.clone().unwrap_or_else(|| {
            if self.etcd.cacert.is_some() {
                "https".into()
            } else {
                "http".into()
            }
        });
        etcd.insert("protocol".into(), json!(protocol));
        for (k, v) in [
            ("cacert", &self.etcd.cacert),
            ("cert", &self.etcd.cert),
            ("key", &self.etcd.key),
        ] {
            if let Some(v) = v {
                etcd.insert(k.into(), json!(v));
            }
        }

        let r = &self.restapi;
        let mut restapi = Map::new();
        restapi.insert("listen".into(), json!(format!("0.0.0.0:{}", r.port)));
        restapi.insert(
            "connect_address".into(),
            json!(format!("{}:{}", m.address, r.port)),
        );
        for (k, v) in [
            ("certfile", &r.certfile),
            ("keyfile", &r.keyfile),
            ("cafile", &r.cafile),
        ] {
            if let Some(v) = v {
                restapi.insert(k.into(), json!(v));
            }
        }
        if r.verify_client != VerifyClient::None {
            restapi.insert("verify_client".into(), json!(r.verify_client.as_str()));
        }

        let a = &self.authentication;
        let mut postgresql = Map::new();
        postgresql.insert(
            "listen".into(),
            json!(format!("0.0.0.0:{}", self.postgresql.port)),
        );
        postgresql.insert(
            "connect_address".into(),
            json!(format!("{}:{}", m.address, self.postgresql.port)),
        );
        postgresql.insert("data_dir".into(), json!(self.data_dir(m)));
        postgresql.insert("bin_dir".into(), json!(self.bin_dir(m)));
        postgresql.insert(
            "pgpass".into(),
            json!(format!(
                "{}/.pgpass_{}",
                m.family.postgres_home(),
                self.scope
            )),
        );
        postgresql.insert(
            "authentication".into(),
            json!({
                "superuser": {"username": a.superuser_name(), "password": password(&a.superuser.password)},
                "replication": {"username": a.replication_name(), "password": password(&a.replication.password)},
                "rewind": {"username": a.superuser_name(), "password": password(&a.superuser.password)},
            }),
        );
        if !self.postgresql.parameters.is_empty() {
            postgresql.insert("parameters".into(), json!(self.postgresql.parameters));
        }
        if !self.postgresql.create_replica_methods.is_empty() {
            postgresql.insert(
                "create_replica_methods".into(),
                json!(self.postgresql.create_replica_methods),
            );
        }
        if let Some(m) = &self.postgresql.pgbackrest {
            postgresql.insert("pgbackrest".into(), json!(m));
        }

        let mut ctl = Map::new();
        if self.rest_tls() {
            // patronictl talks to the REST API over TLS: verify the server with the CA, and
            // present this host's certificate when the API requires a client certificate.
            if let Some(ca) = &r.cafile {
                ctl.insert("cacert".into(), json!(ca));
            } else {
                ctl.insert("insecure".into(), json!(true));
            }
            if r.verify_client != VerifyClient::None {
                ctl.insert("certfile".into(), json!(r.certfile));
                if let Some(k) = &r.keyfile {
                    ctl.insert("keyfile".into(), json!(k));
                }
            }
        }

        let mut doc = Map::new();
        doc.insert("scope".into(), json!(self.scope));
        doc.insert("namespace".into(), json!(self.namespace));
        doc.insert("name".into(), json!(m.name));
        doc.insert("etcd3".into(), Value::Object(etcd));
        doc.insert("restapi".into(), Value::Object(restapi));
        if !ctl.is_empty() {
            doc.insert("ctl".into(), Value::Object(ctl));
        }
        let mut bootstrap = json!({
            "dcs": self.dcs(),
            "initdb": [{"encoding": "UTF8"}, "data-checksums"],
        });
        if !self.dcs.pg_hba.is_empty() {
            // The same lines as `bootstrap.dcs.postgresql.pg_hba`, which rules once the
            // cluster runs: Patroni 3's `--validate-config` refuses a file without
            // `bootstrap.pg_hba` (checked with Debian 12's 3.0.2); Patroni 4 accepts both.
            bootstrap["pg_hba"] = json!(self.dcs.pg_hba);
        }
        doc.insert("bootstrap".into(), bootstrap);
        doc.insert("postgresql".into(), Value::Object(postgresql));
        if !self.tags.is_empty() {
            doc.insert("tags".into(), json!(self.tags));
        }
        let body = serde_yaml_ng::to_string(&Value::Object(doc)).expect("JSON values serialize");
        format!("# Managed by pgdeploy (module `patroni`): changes here are overwritten.\n{body}")
    }
}

/// The systemd unit running Patroni (`patroni`, the installed binary) as `postgres`. Patroni
/// restarts PostgreSQL itself; the unit only keeps Patroni alive and gives it time to stop
/// PostgreSQL cleanly. In `/etc/systemd/system`, it overrides a packaged `patroni.service`.
pub(super) fn unit(patroni: &str, config_file: &str) -> String {
    format!(
        "# Managed by pgdeploy (module `patroni`)\n\
         [Unit]\n\
         Description=Patroni, high-availability PostgreSQL\n\
         After=network-online.target etcd.service\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         User=postgres\n\
         Group=postgres\n\
         ExecStart={patroni} {config_file}\n\
         ExecReload=/bin/kill -s HUP $MAINPID\n\
         KillMode=process\n\
         TimeoutSec=60\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The locator file `pgdeploy status` sources to find Patroni's config and `patronictl`.
pub(crate) fn locator(config_file: &str, patronictl: &str) -> String {
    pgdeploy_core::locator::render(
        "patroni",
        "Patroni",
        &[("PATRONI_CONFIG", config_file), ("PATRONICTL", patronictl)],
    )
}

/// A setting's place in a `GET /config`-shaped document, one segment per object level.
/// Segments, not a dotted string: PostgreSQL parameters such as `pg_stat_statements.track`
/// hold dots in a single key.
pub(super) type KeyPath = Vec<String>;

/// A key path as shown in plans: segments joined with `.`, a segment holding a dot quoted
/// (`postgresql.parameters."pg_stat_statements.track"`). For display only, never parsed back.
pub(super) fn show_path(path: &[String]) -> String {
    path.iter()
        .map(|s| {
            if s.contains('.') {
                format!("\"{s}\"")
            } else {
                s.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The keys of `wanted` whose value differs in `current` (both `GET /config`-shaped), as
/// `(key path, current, wanted)`; parameters are compared as PostgreSQL shows them (text).
pub(super) fn dcs_diff(current: &Value, wanted: &Value) -> Vec<(KeyPath, Value, Value)> {
    let mut out = Vec::new();
    diff_into(&mut Vec::new(), current, wanted, &mut out);
    out
}

fn diff_into(
    path: &mut KeyPath,
    current: &Value,
    wanted: &Value,
    out: &mut Vec<(KeyPath, Value, Value)>,
) {
    match wanted {
        Value::Object(w) => {
            for (k, wv) in w {
                let cv = current.get(k).cloned().unwrap_or(Value::Null);
                path.push(k.clone());
                diff_into(path, &cv, wv, out);
                path.pop();
            }
        }
        _ if same_setting(current, wanted) => {}
        _ => out.push((path.clone(), current.clone(), wanted.clone())),
    }
}

/// `wanted` (as [`Patroni::dcs`] gives it) with the `pg_hba` lines of `postgresql_pg_hba` tasks
/// found in `current` kept in place, so converging the site's lines never removes them.
/// Without `pg_hba` of its own, `wanted` leaves the list alone.
pub(super) fn keep_managed_hba(mut wanted: Value, current: &Value) -> Value {
    let lines = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|l| l.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let managed = hba::managed(&lines(&current["postgresql"]["pg_hba"]));
    if let Some(slot) = wanted
        .get_mut("postgresql")
        .and_then(|p| p.get_mut("pg_hba"))
    {
        *slot = json!(hba::merge(&lines(slot), &managed));
    }
    wanted
}

/// `on` and `true`, `256MB` and `"256MB"`, `100` and `"100"` are the same setting.
fn same_setting(a: &Value, b: &Value) -> bool {
    fn text(v: &Value) -> Option<String> {
        Some(match v {
            Value::String(s) => s.to_ascii_lowercase(),
            Value::Bool(true) => "on".into(),
            Value::Bool(false) => "off".into(),
            Value::Number(n) => n.to_string(),
            Value::Null => return None,
            other => other.to_string(),
        })
    }
    if a == b {
        return true;
    }
    if a.is_array() || b.is_array() {
        return false;
    }
    let norm = |s: String| match s.as_str() {
        "true" | "on" | "yes" => "on".to_string(),
        "false" | "off" | "no" => "off".to_string(),
        _ => s,
    };
    match (text(a), text(b)) {
        (Some(x), Some(y)) => norm(x) == norm(y),
        _ => false,
    }
}

/// The `PATCH /config` body setting exactly the differing keys. A value in the way of a
/// deeper key (never from `dcs_diff`, whose paths come from one document) becomes an object.
pub(super) fn patch_body(diff: &[(KeyPath, Value, Value)]) -> Value {
    let mut root = Value::Object(Map::new());
    for (path, _, wanted) in diff {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut at = &mut root;
        for p in parents {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            at = at
                .as_object_mut()
                .expect("made an object above")
                .entry(p.clone())
                .or_insert_with(|| Value::Object(Map::new()));
        }
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        at.as_object_mut()
            .expect("made an object above")
            .insert(last.clone(), wanted.clone());
    }
    root
}

/// Replaces password values in a Patroni config text, for diffs.
pub(super) fn mask_passwords(text: &str) -> String {
    let mut out: String = text
        .lines()
        .map(|l| match password_line(l) {
            Some((head, _)) => format!("{head}password: {MASK}"),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// A password line's head (`password:` key and indentation) and value, if it is one.
fn password_line(line: &str) -> Option<(&str, &str)> {
    let (head, value) = line.split_once("password:")?;
    (head.trim().is_empty() || head.trim_end().ends_with('-')).then_some((head, value))
}

/// Both sides of a config file's diff with their passwords masked; a password line whose
/// value changed (a rotation) is marked on its new side, since both sides read the mask.
/// Password lines are paired in order: the file's layout is the module's own.
pub(super) fn mask_password_pair(before: &str, after: &str) -> (String, String) {
    let old: Vec<&str> = before
        .lines()
        .filter_map(password_line)
        .map(|(_, v)| v)
        .collect();
    let mut n = 0;
    let mut out: String = after
        .lines()
        .map(|l| match password_line(l) {
            Some((head, value)) => {
                let changed = old.get(n).is_some_and(|o| *o != value);
                n += 1;
                if changed {
                    format!("{head}password: {MASK} {SECRET_CHANGED}")
                } else {
                    format!("{head}password: {MASK}")
                }
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    if after.ends_with('\n') {
        out.push('\n');
    }
    (mask_passwords(before), out)
}
