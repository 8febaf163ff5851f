//! Members of the running cluster that no host of the inventory is: with `--allow-removal`,
//! the first member's `configured` step removes one per run (`etcdctl member remove`, refused
//! below quorum); without it, a note names the flag. A stale member that is still a host of
//! the inventory (taken out of the group only) leaves through its own `removed_member` task,
//! which stops its daemons first.

use super::configured::StaleRemoval;
use super::{Etcd, Listed, Member};
use crate::removed_member::decide::quorum_refusal;
use pgdeploy_core::module::{HostContext, ModuleError};

use super::super::common::exec;
use super::super::common::shell::quote;

impl Etcd {
    /// The removal this step makes, if any, and the notes about the other stale members.
    pub(super) async fn stale_removal(
        &self,
        cx: &HostContext<'_>,
        members: &[Member],
        stale: &[Listed],
        listed: Option<&[Listed]>,
        notes: &mut Vec<String>,
    ) -> Result<Option<StaleRemoval>, ModuleError> {
        let inventory = &cx.scope.shared().inventory;
        let first = members.first().is_some_and(|m| m.name == cx.host);
        let mut removal = None;
        for s in stale {
            let urls = s.peer_urls.join(", ");
            if inventory.hosts.contains_key(&s.name) {
                notes.push(format!(
                    "etcd member `{}` ({urls}) is no longer in `members`: it leaves through its own `removed_member` task, with `--allow-removal`",
                    s.name
                ));
                continue;
            }
            if !cx.allow_removal {
                notes.push(format!(
                    "etcd member `{}` ({urls}) is not in the inventory: nothing is removed without `--allow-removal` (with it, apply removes it from etcd, `etcdctl member remove {:x}`)",
                    s.name, s.id
                ));
                continue;
            }
            if !first || removal.is_some() {
                notes.push(format!(
                    "etcd member `{}` ({urls}) is not in the inventory: the first member removes one such member per run; apply again for this one",
                    s.name
                ));
                continue;
            }
            let listed = listed.unwrap_or_default();
            let staying: Vec<String> = listed
                .iter()
                .filter(|l| l.id != s.id)
                .filter_map(|l| l.client_urls.first().cloned())
                .collect();
            let healthy = self.healthy_of(cx, &staying).await?;
            if let Some(refusal) = quorum_refusal(&s.name, listed.len(), healthy.len()) {
                return Err(ModuleError::Failed(format!(
                    "refusing the removal: {refusal}"
                )));
            }
            notes.push(format!(
                "`{}` is not in the inventory, so pgdeploy cannot stop its daemons: its etcd stops once removed, but run `systemctl disable --now patroni etcd` on it and never start them again on their old data (Patroni drops its member key within `ttl` once its Patroni is stopped)",
                s.name
            ));
            removal = Some(StaleRemoval {
                name: s.name.clone(),
                id: s.id,
                through: healthy,
            });
        }
        Ok(removal)
    }

    /// Those of `urls` that answer `endpoint health` (each asked alone).
    async fn healthy_of(
        &self,
        cx: &HostContext<'_>,
        urls: &[String],
    ) -> Result<Vec<String>, ModuleError> {
        let mut script = String::from("true");
        for url in urls {
            script.push_str(&format!(
                "; if {} >/dev/null 2>&1; then echo {}; fi",
                self.ctl(cx.host, std::slice::from_ref(url), "endpoint health"),
                quote(url)
            ));
        }
        let out = exec::run(cx, &script).await?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| urls.iter().any(|u| u == l))
            .map(str::to_string)
            .collect())
    }
}
