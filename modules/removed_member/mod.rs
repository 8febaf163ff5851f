//! `removed_member`: a host that was a member of the cluster (Patroni and etcd, found through
//! the locators their modules wrote) and that the inventory no longer has in the PostgreSQL
//! group. With `--allow-removal` the host leaves: Patroni stopped and disabled (its
//! PostgreSQL stops with it) and waited for until the DCS no longer lists it, then etcd stopped
//! and disabled and its member removed through the members that stay. Without the flag the plan
//! says what would be done, in a note naming the flag, and nothing changes.
//!
//! It runs on the leaving host itself, so that its daemons are stopped before its keys go (a
//! Patroni left running would write its member key again). Refused, with the reason, when the
//! members that stay are no quorum of the etcd cluster as it is, when the host is Patroni's
//! leader, the last member, or the last replica `synchronous_mode` needs
//! ([`decide::decide`]). A host without locators (never a member) has nothing to do.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::common::patroni_state;
use pgdeploy_core::locator;
use pgdeploy_core::module::{
    Action, Change, HostContext, HostOrdering, ModuleError, OrderingContext, Params, ParseContext,
    Plan, Problem,
};

use super::common::exec;
use super::common::shell::quote;
use super::etcd::{parse_member_list, Listed};

pub(crate) mod decide;
use decide::{EtcdView, Found, Leave};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemovedMember {
    /// This host's Patroni member name (the `patroni` module's `name`): its inventory name by
    /// default.
    #[serde(default)]
    pub name: Option<String>,
    /// etcd's unit (the `etcd` module's `service`).
    #[serde(default = "default_etcd_service")]
    pub etcd_service: String,
    /// How long to wait for the DCS to drop the member and for etcd to be healthy, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_etcd_service() -> String {
    "etcd".into()
}
fn default_timeout() -> u64 {
    120
}

/// Patroni's unit, as the `patroni` module writes it.
const PATRONI_SERVICE: &str = "patroni";

/// How etcd runs on this host, from its locator and its environment file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct EtcdHere {
    etcdctl: String,
    name: String,
    peer_url: String,
    /// This host's client URL, then the other members' (their peer URLs' hosts with this
    /// host's client port): where `member list` is asked.
    endpoints: Vec<String>,
    ca: String,
    cert: String,
    key: String,
}

impl EtcdHere {
    fn ctl(&self, endpoints: &[String], args: &str) -> String {
        format!(
            "ETCDCTL_API=3 {} --endpoints={} --cacert={} --cert={} --key={} \
             --dial-timeout=2s --command-timeout=5s {args}",
            quote(&self.etcdctl),
            quote(&endpoints.join(",")),
            quote(&self.ca),
            quote(&self.cert),
            quote(&self.key),
        )
    }
}

/// A `NAME=value` line's value, with the quotes of the locator (`'…'`) or of etcd's file
/// (`"…"`) taken off.
fn value_of<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(name)?.strip_prefix('=')?.trim();
        Some(
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v),
        )
    })
}

/// `url` with its port replaced by `port`.
fn with_port(url: &str, port: &str) -> String {
    match url.rsplit_once(':') {
        Some((base, p)) if p.chars().all(|c| c.is_ascii_digit()) => format!("{base}:{port}"),
        _ => url.to_string(),
    }
}

/// Reads [`read_script`]'s etcd part: the locator's `ETCDCTL`, then the environment file.
fn parse_etcd(text: &str) -> Option<EtcdHere> {
    let etcdctl = value_of(text, "ETCDCTL")?.to_string();
    let name = value_of(text, "ETCD_NAME")?.to_string();
    let peer_url = value_of(text, "ETCD_INITIAL_ADVERTISE_PEER_URLS")?
        .split(',')
        .next()?
        .to_string();
    let mine = value_of(text, "ETCD_ADVERTISE_CLIENT_URLS")?
        .split(',')
        .next()?
        .to_string();
    let client_port = mine.rsplit_once(':')?.1.to_string();
    let mut endpoints = vec![mine];
    for entry in value_of(text, "ETCD_INITIAL_CLUSTER")
        .unwrap_or("")
        .split(',')
    {
        if let Some((member, peer)) = entry.split_once('=') {
            let url = with_port(peer, &client_port);
            if member != name && !endpoints.contains(&url) {
                endpoints.push(url);
            }
        }
    }
    Some(EtcdHere {
        etcdctl,
        name,
        peer_url,
        endpoints,
        ca: value_of(text, "ETCD_TRUSTED_CA_FILE")?.to_string(),
        cert: value_of(text, "ETCD_CERT_FILE")?.to_string(),
        key: value_of(text, "ETCD_KEY_FILE")?.to_string(),
    })
}

/// Marks the start of etcd's files in the probe's output.
const ETCD_MARK: &str = "==etcd";

impl RemovedMember {
    fn name<'a>(&'a self, cx: &'a HostContext<'_>) -> &'a str {
        self.name.as_deref().unwrap_or(cx.host)
    }

    /// Units' states, which locators exist, and etcd's locator and environment file.
    fn read_script(&self) -> String {
        let etcd = quote(&self.etcd_service);
        format!(
            "printf 'patroni_active=%s\\n' \"$(systemctl is-active {PATRONI_SERVICE} 2>/dev/null)\"; \
             printf 'patroni_enabled=%s\\n' \"$(systemctl is-enabled {PATRONI_SERVICE} 2>/dev/null)\"; \
             printf 'etcd_active=%s\\n' \"$(systemctl is-active {etcd} 2>/dev/null)\"; \
             printf 'etcd_enabled=%s\\n' \"$(systemctl is-enabled {etcd} 2>/dev/null)\"; \
             if [ -r {p} ]; then echo has_patroni=yes; fi; \
             if [ -r {e} ]; then echo '{ETCD_MARK}'; cat {e}; \
             ( ETCD_CONFIG=; . {e}; [ -n \"$ETCD_CONFIG\" ] && cat \"$ETCD_CONFIG\" ); fi; true",
            p = locator::PATRONI,
            e = locator::ETCD,
        )
    }

    /// What the host runs and what the cluster says about it.
    async fn find(
        &self,
        cx: &HostContext<'_>,
    ) -> Result<Option<(Found, Option<EtcdHere>)>, ModuleError> {
        let out = exec::check(cx, &self.read_script(), "read the services and locators").await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (units, etcd_text) = match text.split_once(ETCD_MARK) {
            Some((u, e)) => (u.to_string(), Some(e.to_string())),
            None => (text.clone(), None),
        };
        let get = |k: &str| value_of(&units, k).unwrap_or("").to_string();
        let has_patroni = get("has_patroni") == "yes";
        if !has_patroni && etcd_text.is_none() {
            return Ok(None);
        }
        let running = |s: String| matches!(s.as_str(), "active" | "activating" | "reloading");
        let enabled = |s: String| s == "enabled" || s == "enabled-runtime";
        let name = self.name(cx).to_string();
        let here = match &etcd_text {
            Some(t) => Some(parse_etcd(t).ok_or_else(|| {
                ModuleError::Failed(format!(
                    "`{}` or the environment file it names on `{}` lacks a setting this module reads (`ETCDCTL`, `ETCD_NAME`, the advertised URLs, the TLS files)",
                    locator::ETCD,
                    cx.host
                ))
            })?),
            None => None,
        };
        let etcd = match &here {
            Some(h) => Some(self.etcd_view(cx, h).await?),
            None => None,
        };
        let patroni = if has_patroni {
            let out = exec::run(cx, &patroni_state::read_script()).await?;
            let text = String::from_utf8_lossy(&out.stdout);
            match patroni_state::parse(cx.host, &text) {
                Ok(s) => Some(s),
                Err(e) => {
                    return Err(ModuleError::Failed(format!(
                        "cannot read Patroni's members from `{}`: {e}",
                        cx.host
                    )))
                }
            }
        } else {
            None
        };
        let found = Found {
            name,
            patroni_active: running(get("patroni_active")),
            patroni_enabled: enabled(get("patroni_enabled")),
            etcd_active: running(get("etcd_active")),
            etcd_enabled: enabled(get("etcd_enabled")),
            patroni,
            etcd,
        };
        Ok(Some((found, here)))
    }

    /// `member list` through the members, then `endpoint health` of each other member.
    async fn etcd_view(&self, cx: &HostContext<'_>, h: &EtcdHere) -> Result<EtcdView, ModuleError> {
        let listed = self.member_list(cx, h, &h.endpoints).await?;
        let me = listed
            .iter()
            .find(|l| l.name == h.name || l.peer_urls.contains(&h.peer_url));
        let others: Vec<String> = listed
            .iter()
            .filter(|l| Some(l.id) != me.map(|m| m.id))
            .flat_map(|l| l.client_urls.first().cloned())
            .collect();
        let mut script = String::from("true");
        for url in &others {
            script.push_str(&format!(
                "; if {} >/dev/null 2>&1; then echo {}; fi",
                h.ctl(std::slice::from_ref(url), "endpoint health"),
                quote(url)
            ));
        }
        let out = exec::run(cx, &script).await?;
        let healthy: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| others.contains(l))
            .collect();
        Ok(EtcdView {
            my_id: me.map(|m| m.id),
            members: listed.len(),
            healthy_others: healthy,
        })
    }

    async fn member_list(
        &self,
        cx: &HostContext<'_>,
        h: &EtcdHere,
        endpoints: &[String],
    ) -> Result<Vec<Listed>, ModuleError> {
        let out = exec::run(cx, &h.ctl(endpoints, "member list -w json")).await?;
        match (out.status, parse_member_list(&out.stdout)) {
            (0, Some(listed)) => Ok(listed),
            _ => Err(ModuleError::Failed(format!(
                "cannot read etcd's member list through `{}` from `{}`: {}",
                endpoints.join("`, `"),
                cx.host,
                exec::failure("etcdctl member list", &out)
            ))),
        }
    }

    /// Waits until `patronictl list` no longer shows `name`.
    async fn wait_gone_from_dcs(
        &self,
        cx: &HostContext<'_>,
        name: &str,
    ) -> Result<(), ModuleError> {
        let deadline = Instant::now() + Duration::from_secs(self.timeout);
        loop {
            let out = exec::run(cx, &patroni_state::read_script()).await?;
            let text = String::from_utf8_lossy(&out.stdout);
            match patroni_state::parse(cx.host, &text) {
                Ok(s) if s.member(name).is_none() => return Ok(()),
                Ok(s) if Instant::now() >= deadline => {
                    return Err(ModuleError::Failed(format!(
                        "Patroni still lists `{name}` {} s after it stopped: {}",
                        self.timeout,
                        s.summary()
                    )))
                }
                Err(e) if Instant::now() >= deadline => {
                    return Err(ModuleError::Failed(format!(
                        "cannot read Patroni's members from `{}`: {e}",
                        cx.host
                    )))
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    /// The changes of `leave`, as `plan` shows them.
    fn changes(&self, f: &Found, leave: &Leave, through: &[String]) -> Vec<Change> {
        let mut changes = Vec::new();
        if leave.patroni {
            let scope = f
                .patroni
                .as_ref()
                .and_then(|c| c.scope.clone())
                .unwrap_or_else(|| "the cluster".into());
            changes.push(Change::new(format!(
                "remove Patroni member `{}` from `{scope}`: stop and disable `{PATRONI_SERVICE}` (its PostgreSQL stops with it), then wait until the DCS no longer lists it",
                f.name
            )));
        }
        if leave.etcd_stop {
            changes.push(Change::new(format!(
                "stop and disable `{}`",
                self.etcd_service
            )));
        }
        if let Some(id) = leave.etcd_remove {
            changes.push(Change::new(format!(
                "remove etcd member `{}` (`{id:x}`) through `{}`",
                f.name,
                through.join("`, `")
            )));
        }
        changes
    }
}

/// What `apply` does, as planned.
#[derive(Debug)]
struct Work {
    name: String,
    leave: Leave,
    etcd: Option<EtcdHere>,
    /// The healthy members that stay, which commit the removal.
    through: Vec<String>,
}

#[async_trait::async_trait]
impl Action for RemovedMember {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let Some((found, here)) = self.find(cx).await? else {
            return Ok(Plan::unchanged());
        };
        let leave = match decide::decide(&found) {
            Ok(leave) => leave,
            Err(reason) if cx.allow_removal => {
                return Err(ModuleError::Failed(format!(
                    "refusing to remove `{}` from the cluster: {reason}",
                    cx.host
                )))
            }
            Err(reason) => {
                return Ok(Plan::unchanged().with_notes(vec![format!(
                    "`{}` is no longer in the PostgreSQL group but is still a member; `--allow-removal` would refuse to remove it: {reason}",
                    cx.host
                )]))
            }
        };
        if leave.is_empty() {
            return Ok(Plan::unchanged());
        }
        let through = found
            .etcd
            .as_ref()
            .map(|e| e.healthy_others.clone())
            .unwrap_or_default();
        let changes = self.changes(&found, &leave, &through);
        if !cx.allow_removal {
            let what: Vec<String> = changes.iter().map(|c| c.summary.clone()).collect();
            return Ok(Plan::unchanged().with_notes(vec![format!(
                "`{}` is no longer in the PostgreSQL group but is still a member: nothing is removed without `--allow-removal`; with it, apply would {}",
                cx.host,
                what.join("; ")
            )]));
        }
        Ok(Plan::changes(
            changes,
            Work {
                name: found.name,
                leave,
                etcd: here,
                through,
            },
        ))
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(w) = plan.work::<Work>() else {
            return Ok(());
        };
        if w.leave.patroni {
            let cmd = format!("systemctl disable --now {PATRONI_SERVICE}");
            exec::check(cx, &cmd, &cmd).await?;
            self.wait_gone_from_dcs(cx, &w.name).await?;
        }
        if w.leave.etcd_stop {
            let cmd = format!("systemctl disable --now {}", quote(&self.etcd_service));
            exec::check(cx, &cmd, &cmd).await?;
        }
        if let (Some(id), Some(h)) = (w.leave.etcd_remove, &w.etcd) {
            let args = format!("member remove {id:x}");
            exec::check(cx, &h.ctl(&w.through, &args), &format!("etcdctl {args}")).await?;
            // Done when the members that stay no longer list it and answer `endpoint health`.
            let deadline = Instant::now() + Duration::from_secs(self.timeout);
            loop {
                let listed = self.member_list(cx, h, &w.through).await;
                let health = exec::run(cx, &h.ctl(&w.through, "endpoint health")).await?;
                match listed {
                    Ok(l) if health.status == 0 && l.iter().all(|m| m.id != id) => break,
                    _ if Instant::now() >= deadline => {
                        return Err(ModuleError::Failed(format!(
                            "etcd members `{}` not healthy without `{}` after {} s: {}",
                            w.through.join("`, `"),
                            w.name,
                            self.timeout,
                            exec::failure("etcdctl endpoint health", &health)
                        )))
                    }
                    _ => tokio::time::sleep(Duration::from_millis(500)).await,
                }
            }
        }
        Ok(())
    }
}

impl Params for RemovedMember {
    const NAME: &'static str = "removed_member";
    const SUMMARY: &'static str =
        "a host taken out of the PostgreSQL group leaves Patroni and etcd (with `--allow-removal`)";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.timeout == 0 {
            problems.push(Problem::field("timeout", "`timeout` must be at least 1 s"));
        }
        if self.etcd_service.is_empty() {
            problems.push(Problem::field("etcd_service", "`etcd_service` is empty"));
        }
        problems
    }

    /// One host at a time: each removal is decided on the cluster the previous one left.
    fn ordering(cx: &OrderingContext<'_>) -> HostOrdering {
        match cx.hosts.first() {
            Some(first) => HostOrdering::FirstThenRolling {
                first: first.name.clone(),
                then_at_most: 1,
            },
            None => HostOrdering::Independent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETCD: &str = "# Managed by pgdeploy (module `etcd`): where `pgdeploy status` finds etcd\n\
        ETCD_CONFIG=/etc/default/etcd\nETCDCTL=/usr/bin/etcdctl\n\
        ETCD_NAME=\"pg3\"\n\
        ETCD_INITIAL_ADVERTISE_PEER_URLS=\"https://10.0.0.13:2380\"\n\
        ETCD_ADVERTISE_CLIENT_URLS=\"https://10.0.0.13:2379\"\n\
        ETCD_INITIAL_CLUSTER=\"pg1=https://10.0.0.11:2380,pg2=https://10.0.0.12:2380,pg3=https://10.0.0.13:2380\"\n\
        ETCD_TRUSTED_CA_FILE=\"/etc/etcd/pki/ca.crt\"\n\
        ETCD_CERT_FILE=\"/etc/etcd/pki/pg3.crt\"\n\
        ETCD_KEY_FILE=\"/etc/etcd/pki/pg3.key\"\n";

    #[test]
    fn etcd_is_found_from_the_locator_and_its_file() {
        let h = parse_etcd(ETCD).unwrap();
        assert_eq!(h.etcdctl, "/usr/bin/etcdctl");
        assert_eq!(h.name, "pg3");
        assert_eq!(h.peer_url, "https://10.0.0.13:2380");
        assert_eq!(
            h.endpoints,
            [
                "https://10.0.0.13:2379",
                "https://10.0.0.11:2379",
                "https://10.0.0.12:2379"
            ]
        );
        assert_eq!(h.cert, "/etc/etcd/pki/pg3.crt");
        // The module's own file, without a setting it needs, is no guess.
        assert_eq!(parse_etcd(&ETCD.replace("ETCD_NAME", "X")), None);
    }

    #[test]
    fn quoted_values_are_read() {
        assert_eq!(value_of("A='/a b'\n", "A"), Some("/a b"));
        assert_eq!(value_of("A=\"x\"\n", "A"), Some("x"));
        assert_eq!(value_of("AB=1\n", "A"), None);
    }
}
