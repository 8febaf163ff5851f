//! `pglift_instance` (also `dalibo.pglift.instance`, the Ansible collection's name, with its
//! parameter names): a PostgreSQL instance managed by pglift, optionally run by Patroni and
//! backed up by pgBackRest. `plan` reads the instance through pglift's JSON output
//! (`instance get -o json`; `not found` is an instance to create) and diffs it with the parameters;
//! `apply` creates or alters it with `pglift instance apply` (the declarative interface the
//! collection uses; the manifest, passwords included, goes on stdin), starts or stops it, or
//! drops it. Commands run as pglift's system user (`runuser` when the task is root). The
//! intended primary runs first, replicas after it, one at a time.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::common::exec::{self, Required};
use super::common::secret::Secret;
use super::common::shell::quote;
use super::pglift_site::as_user;
use pgdeploy_core::module::{
    Action, Change, HostContext, HostOrdering, ModuleError, OrderingContext, Params, ParseContext,
    Plan, Problem,
};
use pgdeploy_core::transport::ExecRequest;

const DEFAULT_EXECUTABLE: &str = "/opt/pglift/bin/pglift";

/// What the instance should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    #[default]
    Started,
    Stopped,
    /// Exists, running or not.
    Present,
    Absent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pgbackrest {
    pub stanza: String,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Restapi {
    pub connect_address: Option<String>,
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatroniPostgresql {
    pub connect_host: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Patroni {
    pub cluster: String,
    pub node: Option<String>,
    #[serde(default)]
    pub restapi: Restapi,
    #[serde(default)]
    pub postgresql: PatroniPostgresql,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Auth {
    pub local: Option<String>,
    pub host: Option<String>,
    pub hostssl: Option<String>,
}

/// The module's parameters: the collection's names (pglift's instance manifest), plus
/// `executable` and `system_user`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PgliftInstance {
    pub name: String,
    /// PostgreSQL major version (`15`); default: pglift's `default_version`.
    pub version: Option<String>,
    pub port: Option<u16>,
    #[serde(default)]
    pub state: State,
    pub surole_password: Option<Secret>,
    pub replrole_password: Option<Secret>,
    /// postgresql.conf settings.
    #[serde(default, alias = "configuration")]
    pub settings: IndexMap<String, Value>,
    pub locale: Option<String>,
    pub encoding: Option<String>,
    pub data_checksums: Option<bool>,
    pub auth: Option<Auth>,
    pub pgbackrest: Option<Pgbackrest>,
    pub patroni: Option<Patroni>,
    /// pgdeploy: the `pglift` binary; default `/opt/pglift/bin/pglift` (`pglift_site`'s venv).
    pub executable: Option<String>,
    /// pgdeploy: the user pglift runs as; default `postgres`.
    pub system_user: Option<String>,
}

/// Settings Patroni owns when it runs the instance (pglift leaves them out of its output).
const PATRONI_OWNED: &[&str] = &["listen_addresses", "port"];

/// Settings Patroni takes from its cluster-wide (DCS) configuration only, whatever the
/// member's own file says (it passes them on `postgres`' command line): pglift records them
/// in the member's Patroni file, where they have no effect, so the module sets them through
/// Patroni (`patronictl edit-config`, a `PATCH /config`); they take effect at a restart.
const DCS_ONLY: &[&str] = &[
    "max_connections",
    "max_locks_per_transaction",
    "max_worker_processes",
    "max_prepared_transactions",
    "wal_level",
    "track_commit_timestamp",
    "max_wal_senders",
    "max_replication_slots",
    "wal_log_hints",
    "wal_keep_size",
    "hot_standby",
];

impl PgliftInstance {
    fn executable(&self) -> &str {
        self.executable.as_deref().unwrap_or(DEFAULT_EXECUTABLE)
    }
    fn user(&self) -> &str {
        self.system_user.as_deref().unwrap_or("postgres")
    }
    fn pglift(&self, args: &str) -> String {
        as_user(
            self.user(),
            &format!("{} --non-interactive {args}", quote(self.executable())),
        )
    }
    /// `command` (a shell script) run as the system user in the instance's environment
    /// (`pglift instance env`: `PATRONICTL_CONFIG_FILE`, `PGDATA`, …).
    fn pglift_env_command(&self, id: &str, command: &str) -> String {
        let env = format!(
            "{} --non-interactive instance env {}",
            quote(self.executable()),
            quote(id)
        );
        as_user(
            self.user(),
            &format!("set -a && eval \"$({env})\" && set +a && {command}"),
        )
    }

    /// What the plan reads, in one command: `instance get` (one pglift start-up: an instance
    /// that does not exist is its `not found` error, so no `instance list` before it), then,
    /// when Patroni runs the instance, the locator's state.
    fn read_script(&self) -> String {
        let locator = if self.patroni.is_some() {
            locator::read_script()
        } else {
            String::new()
        };
        format!(
            "if [ -x {exe} ]; then {get}; else echo MISSING; fi{locator}",
            exe = quote(self.executable()),
            get = self.pglift(&format!("instance get {} -o json", quote(&self.id(None)))),
        )
    }

    /// The manifest `pglift instance apply` reads (secrets in clear: stdin only).
    fn manifest(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(v) = &self.version {
            m.insert("version".into(), json!(v));
        }
        if let Some(p) = self.port {
            m.insert("port".into(), json!(p));
        }
        let state = match self.state {
            State::Stopped => Some("stopped"),
            State::Started => Some("started"),
            _ => None,
        };
        if let Some(s) = state {
            m.insert("state".into(), json!(s));
        }
        for (k, s) in [
            ("surole_password", &self.surole_password),
            ("replrole_password", &self.replrole_password),
        ] {
            if let Some(s) = s {
                m.insert(k.into(), json!(s.expose()));
            }
        }
        if !self.settings.is_empty() {
            m.insert("settings".into(), json!(self.settings));
        }
        for (k, v) in [("locale", &self.locale), ("encoding", &self.encoding)] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        if let Some(d) = self.data_checksums {
            m.insert("data_checksums".into(), json!(d));
        }
        if let Some(a) = &self.auth {
            let mut o = Map::new();
            for (k, v) in [
                ("local", &a.local),
                ("host", &a.host),
                ("hostssl", &a.hostssl),
            ] {
                if let Some(v) = v {
                    o.insert(k.into(), json!(v));
                }
            }
            m.insert("auth".into(), Value::Object(o));
        }
        if let Some(b) = &self.pgbackrest {
            let mut o = Map::new();
            o.insert("stanza".into(), json!(b.stanza));
            if let Some(p) = &b.password {
                o.insert("password".into(), json!(p.expose()));
            }
            m.insert("pgbackrest".into(), Value::Object(o));
        }
        if let Some(p) = &self.patroni {
            let mut o = Map::new();
            o.insert("cluster".into(), json!(p.cluster));
            if let Some(n) = &p.node {
                o.insert("node".into(), json!(n));
            }
            let mut r = Map::new();
            for (k, v) in [
                ("connect_address", &p.restapi.connect_address),
                ("listen", &p.restapi.listen),
            ] {
                if let Some(v) = v {
                    r.insert(k.into(), json!(v));
                }
            }
            if !r.is_empty() {
                o.insert("restapi".into(), Value::Object(r));
            }
            if let Some(h) = &p.postgresql.connect_host {
                o.insert("postgresql".into(), json!({ "connect_host": h }));
            }
            m.insert("patroni".into(), Value::Object(o));
        }
        Value::Object(m)
    }

    /// What differs between the parameters and the instance pglift describes (`get`):
    /// (shown change, whether it needs `instance apply` rather than a start or stop).
    fn diff(&self, got: &Value) -> Vec<(String, bool)> {
        let mut d = Vec::new();
        if let Some(p) = self.port {
            let cur = got.get("port").and_then(Value::as_u64);
            if cur != Some(u64::from(p)) {
                d.push((
                    format!("set port to `{p}` (was {})", shown(got.get("port"))),
                    true,
                ));
            }
        }
        let cur_settings = got.get("settings").and_then(Value::as_object);
        for (k, v) in &self.settings {
            if self.patroni.is_some()
                && (PATRONI_OWNED.contains(&k.as_str()) || DCS_ONLY.contains(&k.as_str()))
            {
                continue;
            }
            let cur = cur_settings.and_then(|s| s.get(k));
            if !cur.is_some_and(|c| same_setting(c, v)) {
                d.push((
                    format!("set `{k}` to `{}` (was {})", text(v), shown(cur)),
                    true,
                ));
            }
        }
        if let Some(b) = &self.pgbackrest {
            let cur = got.pointer("/pgbackrest/stanza");
            if cur.and_then(Value::as_str) != Some(b.stanza.as_str()) {
                d.push((
                    format!(
                        "set the pgBackRest stanza to `{}` (was {})",
                        b.stanza,
                        shown(cur)
                    ),
                    true,
                ));
            }
        }
        if let Some(p) = &self.patroni {
            let pairs = [
                ("cluster", Some(&p.cluster), "/patroni/cluster"),
                ("node", p.node.as_ref(), "/patroni/node"),
                (
                    "REST API address",
                    p.restapi.connect_address.as_ref(),
                    "/patroni/restapi/connect_address",
                ),
                (
                    "REST API listen address",
                    p.restapi.listen.as_ref(),
                    "/patroni/restapi/listen",
                ),
                (
                    "PostgreSQL connect host",
                    p.postgresql.connect_host.as_ref(),
                    "/patroni/postgresql/connect_host",
                ),
            ];
            for (what, want, ptr) in pairs {
                let Some(want) = want else { continue };
                let cur = got.pointer(ptr);
                if cur.and_then(Value::as_str) != Some(want.as_str()) {
                    d.push((
                        format!("set the Patroni {what} to `{want}` (was {})", shown(cur)),
                        true,
                    ));
                }
            }
        }
        let running = got.get("state").and_then(Value::as_str) == Some("started");
        match self.state {
            State::Started if !running => d.push(("start the instance".into(), false)),
            State::Stopped if running => d.push(("stop the instance".into(), false)),
            _ => {}
        }
        d
    }

    fn id(&self, version: Option<&str>) -> String {
        match version.or(self.version.as_deref()) {
            Some(v) => format!("{v}/{}", self.name),
            None => self.name.clone(),
        }
    }

    fn describe_new(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.port {
            parts.push(format!("port {p}"));
        }
        if let Some(p) = &self.patroni {
            let node = p
                .node
                .as_deref()
                .map(|n| format!(" node `{n}`"))
                .unwrap_or_default();
            parts.push(format!("Patroni cluster `{}`{node}", p.cluster));
        }
        if let Some(b) = &self.pgbackrest {
            parts.push(format!("pgBackRest stanza `{}`", b.stanza));
        }
        if !self.settings.is_empty() {
            parts.push(format!("{} setting(s)", self.settings.len()));
        }
        let state = match self.state {
            State::Stopped => ", stopped",
            _ => ", started",
        };
        if parts.is_empty() {
            state.trim_start_matches(", ").to_string()
        } else {
            format!("({}){state}", parts.join(", "))
        }
    }
}

/// Whether `instance get`'s error says the instance does not exist (pglift 3.3: exit status 2,
/// `instance 'main' not found`), rather than that pglift failed.
fn is_not_found(stderr: &[u8], name: &str) -> bool {
    let text = String::from_utf8_lossy(stderr);
    text.lines()
        .any(|l| l.contains("not found") && l.contains(&format!("{name}'")))
}

/// `8MB` and `8 MB`, `on` and `true`, `100` and 100 are the same setting.
fn same_setting(cur: &Value, want: &Value) -> bool {
    let norm = |v: &Value| -> String {
        let t = text(v).to_ascii_lowercase().replace(' ', "");
        match t.as_str() {
            "on" | "true" | "yes" | "1" if !matches!(v, Value::Number(_)) => "on".into(),
            "off" | "false" | "no" | "0" if !matches!(v, Value::Number(_)) => "off".into(),
            _ => t.trim_matches('\'').to_string(),
        }
    };
    norm(cur) == norm(want)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn shown(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "unset".into(),
        Some(v) => format!("`{}`", text(v)),
    }
}

impl PgliftInstance {
    /// The DCS-only settings asked for that Patroni's cluster configuration (`show-config`'s
    /// `postgresql.parameters`) does not have: `(name, wanted, current)`.
    fn dcs_diff(&self, dcs: &Value) -> Vec<(String, String, Option<String>)> {
        if self.patroni.is_none() {
            return Vec::new();
        }
        let cur = dcs
            .pointer("/postgresql/parameters")
            .and_then(Value::as_object);
        self.settings
            .iter()
            .filter(|(k, _)| DCS_ONLY.contains(&k.as_str()))
            .filter_map(|(k, v)| {
                let c = cur.and_then(|m| m.get(k));
                if c.is_some_and(|c| same_setting(c, v)) {
                    None
                } else {
                    Some((k.clone(), text(v), c.map(text)))
                }
            })
            .collect()
    }

    /// `patronictl` beside `pglift` (the same venv).
    fn patronictl(&self) -> String {
        let exe = self.executable();
        let dir = exe.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        format!("{dir}/patronictl")
    }
}

/// What `apply` does: pglift's work, then the cluster-wide settings through Patroni, then
/// the locator.
#[derive(Debug)]
struct Work {
    main: Option<MainWork>,
    /// `patronictl edit-config` setting the DCS-only parameters.
    dcs: Option<String>,
    locator: LocatorWork,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum LocatorWork {
    #[default]
    Keep,
    /// Written for the instance of this id (`pglift instance env` names the file).
    Write(String),
    /// Removed after the drop if the file it names went with the instance.
    RemoveIfStale,
}

/// The plan line of a locator (re)written.
fn locator_change() -> Change {
    Change::new(format!(
        "write `{}` (where `pgdeploy status` finds this instance's Patroni)",
        pgdeploy_core::locator::PATRONI
    ))
}

#[derive(Debug)]
enum MainWork {
    /// `instance apply` with the manifest on stdin: create, or alter (state included).
    Apply {
        require: Option<Required>,
        manifest: Value,
    },
    Start(String),
    Stop(String),
    Drop(String),
}

#[async_trait::async_trait]
impl Action for PgliftInstance {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let read = exec::run(cx, &self.read_script()).await?;
        let out = String::from_utf8_lossy(&read.stdout).into_owned();
        let (out, locator_part) = locator::split(&out);
        let locator_ok =
            self.patroni.is_none() || locator::is_current(locator_part, &self.patronictl());
        // Written after a creation (the file's path is pglift's to say).
        let new_locator = || {
            if self.patroni.is_some() {
                (vec![locator_change()], LocatorWork::Write(self.id(None)))
            } else {
                (Vec::new(), LocatorWork::Keep)
            }
        };
        let mut notes = Vec::new();
        if out.trim() == "MISSING" {
            let exe = self.executable();
            if self.state == State::Absent {
                return Ok(Plan::unchanged());
            }
            notes.push(format!("`{exe}` is not installed yet"));
            let work = MainWork::Apply {
                require: Some(Required {
                    path: exe.to_string(),
                    error: format!(
                        "`{exe}` is not an executable on `{}`: install pglift first (`pglift_site`), or set `executable`",
                        cx.host
                    ),
                }),
                manifest: self.manifest(),
            };
            let c = Change::new(format!(
                "create instance `{}` {}",
                self.id(None),
                self.describe_new()
            ));
            let (mut more, locator) = new_locator();
            more.insert(0, c);
            let work = Work {
                main: Some(work),
                dcs: None,
                locator,
            };
            return Ok(Plan::changes(more, work).with_notes(notes));
        }
        let shown = format!("pglift instance get {} -o json", self.id(None));
        let found = if read.status == 0 {
            let got: Value = serde_json::from_str(out.trim())
                .map_err(|e| ModuleError::Failed(format!("`{shown}` gave no JSON: {e}")))?;
            Some(got)
        } else if is_not_found(&read.stderr, &self.name) {
            None
        } else {
            return Err(exec::failure(&shown, &read));
        };
        let Some(got) = found else {
            if self.state == State::Absent {
                return Ok(Plan::unchanged());
            }
            let c = Change::new(format!(
                "create instance `{}` {}",
                self.id(None),
                self.describe_new()
            ));
            let (mut more, locator) = new_locator();
            more.insert(0, c);
            let work = Work {
                main: Some(MainWork::Apply {
                    require: None,
                    manifest: self.manifest(),
                }),
                dcs: None,
                locator,
            };
            return Ok(Plan::changes(more, work));
        };
        let id = self.id(got.get("version").and_then(Value::as_str));
        if self.state == State::Absent {
            let c = Change::new(format!("drop instance `{id}`"));
            let work = Work {
                main: Some(MainWork::Drop(id)),
                dcs: None,
                locator: if self.patroni.is_some() {
                    LocatorWork::RemoveIfStale
                } else {
                    LocatorWork::Keep
                },
            };
            return Ok(Plan::changes(vec![c], work));
        }
        if got.get("pending_restart").and_then(Value::as_bool) == Some(true) {
            notes.push(format!(
                "instance `{id}` has settings pending a restart (pglift reports `pending_restart`)"
            ));
        }
        let diff = self.diff(&got);
        let dcs_diff = if self.patroni.is_some()
            && self.settings.keys().any(|k| DCS_ONLY.contains(&k.as_str()))
        {
            let show = self.pglift_env_command(
                &id,
                &format!(
                    "{} -c \"$PATRONICTL_CONFIG_FILE\" show-config",
                    quote(&self.patronictl())
                ),
            );
            let out = exec::check(cx, &show, "patronictl show-config").await?;
            let dcs: Value = serde_yaml_ng::from_slice(&out.stdout).unwrap_or(Value::Null);
            self.dcs_diff(&dcs)
        } else {
            Vec::new()
        };
        let needs_apply = diff.iter().any(|(_, a)| *a);
        let changes: Vec<Change> = diff
            .iter()
            .map(|(s, _)| Change::new(format!("instance `{id}`: {s}")))
            .collect();
        let mut changes: Vec<Change> = changes;
        let main = if diff.is_empty() {
            None
        } else if needs_apply {
            Some(MainWork::Apply {
                require: None,
                manifest: self.manifest(),
            })
        } else if self.state == State::Stopped {
            Some(MainWork::Stop(id.clone()))
        } else {
            Some(MainWork::Start(id.clone()))
        };
        let dcs = if dcs_diff.is_empty() {
            None
        } else {
            let mut args = Vec::new();
            for (k, v, was) in &dcs_diff {
                let was = was
                    .as_deref()
                    .map(|w| format!("`{w}`"))
                    .unwrap_or("unset".into());
                changes.push(Change::new(format!(
                    "cluster `{}`: set `{k}` to `{v}` in Patroni's cluster configuration (was {was}; PATCH /config, takes effect at a restart)",
                    self.patroni.as_ref().map(|p| p.cluster.as_str()).unwrap_or("")
                )));
                args.push(format!("-p {}", quote(&format!("{k}={v}"))));
            }
            Some(self.pglift_env_command(
                &id,
                &format!(
                    "{} -c \"$PATRONICTL_CONFIG_FILE\" edit-config --force --quiet {}",
                    quote(&self.patronictl()),
                    args.join(" ")
                ),
            ))
        };
        let locator = if locator_ok {
            LocatorWork::Keep
        } else {
            changes.push(locator_change());
            LocatorWork::Write(id.clone())
        };
        if changes.is_empty() {
            return Ok(Plan::unchanged().with_notes(notes));
        }
        Ok(Plan::changes(changes, Work { main, dcs, locator }).with_notes(notes))
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<Work>() else {
            return Ok(());
        };
        match &work.main {
            None => {}
            Some(MainWork::Apply { require, manifest }) => {
                if let Some(r) = require {
                    r.check(cx).await?;
                }
                let req = ExecRequest {
                    command: self.pglift("instance apply -f - -o json"),
                    stdin: Some(manifest.to_string().into_bytes()),
                    become_: cx.become_.clone(),
                    timeout: Some(std::time::Duration::from_secs(600)),
                };
                let out = cx.transport.exec(&req).await?;
                if out.status != 0 {
                    return Err(exec::failure("pglift instance apply", &out));
                }
            }
            Some(MainWork::Start(id)) => {
                let c = self.pglift(&format!("instance start {}", quote(id)));
                exec::check(cx, &c, &format!("pglift instance start {id}")).await?;
            }
            Some(MainWork::Stop(id)) => {
                let c = self.pglift(&format!("instance stop {}", quote(id)));
                exec::check(cx, &c, &format!("pglift instance stop {id}")).await?;
            }
            Some(MainWork::Drop(id)) => {
                let c = self.pglift(&format!("instance drop {}", quote(id)));
                exec::check(cx, &c, &format!("pglift instance drop {id}")).await?;
            }
        }
        if let Some(dcs) = &work.dcs {
            exec::check(cx, dcs, "patronictl edit-config").await?;
        }
        match &work.locator {
            LocatorWork::Keep => {}
            LocatorWork::Write(id) => locator::write(cx, self, id).await?,
            LocatorWork::RemoveIfStale => locator::remove_if_stale(cx).await?,
        }
        Ok(())
    }
}

fn check(p: &PgliftInstance) -> Vec<Problem> {
    let mut v = Vec::new();
    if p.name.is_empty() || p.name.contains('/') || p.name.contains(char::is_whitespace) {
        v.push(Problem::field(
            "name",
            format!("`{}` is not an instance name (no `/`, no spaces)", p.name),
        ));
    }
    if let Some(ver) = &p.version {
        if ver.is_empty() || !ver.chars().all(|c| c.is_ascii_digit()) {
            v.push(Problem::field(
                "version",
                format!("`{ver}` is not a PostgreSQL major version (such as `15`)"),
            ));
        }
    }
    if let Some(e) = &p.executable {
        if !e.starts_with('/') {
            v.push(Problem::field(
                "executable",
                format!("`{e}` is not an absolute path"),
            ));
        }
    }
    v
}

/// The intended primary first (`pglift_primary: true`, else the first host of a `primary`
/// group, else the first host), then the others one at a time.
fn ordering(cx: &OrderingContext<'_>) -> HostOrdering {
    let marked = cx.hosts.iter().find(|h| {
        h.vars
            .get("pglift_primary")
            .is_some_and(|v| v.value == Value::Bool(true))
    });
    let in_primary = cx
        .hosts
        .iter()
        .find(|h| h.groups.iter().any(|g| g == "primary"));
    let Some(first) = marked.or(in_primary).or(cx.hosts.first()) else {
        return HostOrdering::Independent;
    };
    HostOrdering::FirstThenRolling {
        first: first.name.clone(),
        then_at_most: 1,
    }
}

impl Params for PgliftInstance {
    const NAME: &'static str = "pglift_instance";
    const SUMMARY: &'static str =
        "a PostgreSQL instance by pglift (Patroni, pgBackRest): created, altered, started/stopped, dropped";
    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        check(self)
    }
    fn ordering(cx: &OrderingContext<'_>) -> HostOrdering {
        ordering(cx)
    }
}

/// The same module under the Ansible collection's name.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub(crate) struct CollectionInstance(pub PgliftInstance);

#[async_trait::async_trait]
impl Action for CollectionInstance {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        self.0.plan(cx).await
    }
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        self.0.apply(cx, plan).await
    }
}

impl Params for CollectionInstance {
    const NAME: &'static str = "dalibo.pglift.instance";
    const SUMMARY: &'static str = "the Ansible collection's name for `pglift_instance`";
    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        check(&self.0)
    }
    fn ordering(cx: &OrderingContext<'_>) -> HostOrdering {
        ordering(cx)
    }
}

mod locator;

#[cfg(test)]
mod tests;
