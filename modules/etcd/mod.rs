//! `etcd`: an etcd cluster with peer and client mutual TLS, configured through the
//! environment file its unit reads (`/etc/default/etcd` on Debian, `/etc/etcd/etcd.conf` on
//! RedHat), with the package's unit or, when no package ships one (upstream release
//! tarballs), a unit of its own, in two tasks of the same module:
//!
//! - `state: configured` writes the environment file (and the unit, the user and the data
//!   directory when missing, and the locator `pgdeploy status` reads). Hosts run it one at a time (the first
//!   member first), so that a host added to the inventory joins alone: it is added with
//!   `etcdctl member add` through a healthy member, then started, then waited for, before the
//!   next host is looked at. `ETCD_INITIAL_CLUSTER_STATE` is computed, never set by hand: `new`
//!   only when no member exists yet (no `member` directory in the data directory and no member
//!   answering `member list`), `existing` otherwise.
//! - `state: started` runs once every host is configured (a barrier): it enables and starts
//!   etcd (all members of a fresh cluster start together), restarts it only when its
//!   configuration or certificates changed since it last started, waits until every member
//!   reports `endpoint health`, and then turns `new` into `existing` in the file.
//!
//! Whether a restart is due is decided by a fingerprint (SHA-256 of the environment file
//! without its `ETCD_INITIAL_CLUSTER*` lines, and of the certificate, key and CA files) written
//! when the module starts etcd: bootstrap-only settings, which etcd ignores once it has data,
//! never restart it.
//!
//! The files: `params.rs` (parameters and their checks), `cluster.rs` (members, `member list`,
//! the pure new/existing decision), `render.rs` (the environment file, paths, `etcdctl`),
//! `service.rs` (start and health, for both states), `configured.rs` and `started.rs` (each
//! state's plan and apply), `removal.rs`, `host.rs`, `unit.rs`; this file dispatches.

use pgdeploy_core::module::{Action, HostContext, ModuleError, Plan, Probe, ProbeContext};

mod cluster;
mod configured;
pub mod health;
mod host;
mod params;
mod removal;
mod render;
mod service;
mod started;
pub mod unit;

#[cfg(test)]
use cluster::url;
pub use cluster::{covers, decide, parse_member_list, ClusterState, Decision, Listed, Member};
use configured::ConfigWork;
pub use params::{Etcd, EtcdState};
#[cfg(test)]
use pgdeploy_core::module::{Params, ParseContext};
pub use render::{config_for, STAMP};
use started::StartWork;

#[async_trait::async_trait]
impl Action for Etcd {
    fn probes(&self, cx: &ProbeContext<'_>) -> Vec<Probe> {
        match self.state {
            // `configured` first asks which members answer (not a probe: it changes on its
            // own), which drops kept answers anyway.
            EtcdState::Configured => Vec::new(),
            EtcdState::Started => match self.config_path(cx.facts, cx.host) {
                Ok(config) => vec![Probe::command(self.started_probe(cx.host, &config))],
                // `plan` says why.
                Err(_) => Vec::new(),
            },
        }
    }

    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        match self.state {
            EtcdState::Configured => self.plan_configured(cx).await,
            EtcdState::Started => self.plan_started(cx).await,
        }
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        if let Some(w) = plan.work::<ConfigWork>() {
            self.apply_configured(cx, w).await?;
        }
        if let Some(w) = plan.work::<StartWork>() {
            self.apply_started(cx, w).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
