//! Starting etcd and waiting for its members' health, shared by both states: a host
//! joining in `configured`, every host in `started`.

use std::time::{Duration, Instant};

use pgdeploy_core::module::{HostContext, ModuleError};

use super::super::certificates::pki;
use super::super::common::exec;
use super::super::common::shell::quote;
use super::super::common::stat;
use super::cluster::{covers, Member};
use super::params::Etcd;
use super::render::STAMP;

/// Printed by the health probe when the local unit has failed.
pub(super) const UNIT_FAILED: &str = "@pgdeploy-unit-failed@";

impl Etcd {
    /// Starts (or restarts) etcd without waiting for it, after recording the fingerprint.
    pub(super) async fn start(
        &self,
        cx: &HostContext<'_>,
        config: &str,
        verb: &str,
        enable: bool,
    ) -> Result<(), ModuleError> {
        let members = self.resolve(cx)?;
        if let Some(me) = members.iter().find(|m| m.name == cx.host) {
            if let Some(problem) = self.certificate_problem(cx, me).await? {
                return Err(ModuleError::Failed(format!(
                    "{problem}: not starting `{}` (reissue it with the certificates task)",
                    self.service
                )));
            }
        }
        let unit = quote(&self.service);
        let mut cmd = String::new();
        if enable {
            cmd.push_str(&format!("systemctl enable {unit} && "));
        }
        cmd.push_str(&format!(
            "mkdir -p /var/lib/pgdeploy && {} > {STAMP} && systemctl {verb} --no-block {unit}",
            self.fingerprint_script(cx.host, config)
        ));
        exec::check(cx, &cmd, &format!("systemctl {verb} {unit}")).await?;
        Ok(())
    }

    /// Waits until every endpoint in `endpoints` answers `endpoint health`.
    pub(super) async fn wait_healthy(
        &self,
        cx: &HostContext<'_>,
        endpoints: &[String],
    ) -> Result<(), ModuleError> {
        // When the local unit has failed (etcd exits at once on a bad certificate or a
        // cluster mismatch), say why now instead of waiting for the timeout.
        let unit = quote(&self.service);
        let cmd = format!(
            "{}; rc=$?; if [ $rc -ne 0 ] && systemctl is-failed -q {unit}; then echo {UNIT_FAILED}; \
             journalctl -u {unit} -n 5 --no-pager -o cat 2>/dev/null; fi; exit $rc",
            self.ctl(cx.host, endpoints, "endpoint health")
        );
        let deadline = Instant::now() + Duration::from_secs(self.timeout);
        loop {
            let out = exec::run(cx, &cmd).await?;
            if out.status == 0 {
                return Ok(());
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            if let Some((_, journal)) = stdout.split_once(UNIT_FAILED) {
                let last: Vec<&str> = journal.trim().lines().collect();
                return Err(ModuleError::Failed(format!(
                    "`{}` failed on `{}`; its last messages: {}",
                    self.service,
                    cx.host,
                    last.join(" | ")
                )));
            }
            if Instant::now() >= deadline {
                let e = exec::failure("etcdctl endpoint health", &out);
                return Err(ModuleError::Failed(format!(
                    "etcd members not healthy after {} s: {e}",
                    self.timeout
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Why this host's installed certificate cannot serve etcd: it does not cover the address
    /// etcd advertises for the host (peers and clients would refuse it), or it is not a
    /// certificate. `None` when it is fine or not installed.
    pub(super) async fn certificate_problem(
        &self,
        cx: &HostContext<'_>,
        me: &Member,
    ) -> Result<Option<String>, ModuleError> {
        let cert = self.cert(cx.host);
        let Some(pem) = stat::probe(cx, &cert, true).await?.content else {
            return Ok(None);
        };
        let info = match pki::inspect(&pem) {
            Ok(info) => info,
            Err(e) => return Ok(Some(format!("`{cert}` is not a certificate ({e})"))),
        };
        if covers(&info.sans, &me.address) {
            return Ok(None);
        }
        Ok(Some(format!(
            "`{cert}` does not cover `{}`, the address etcd advertises for `{}` (its SANs: {})",
            me.address,
            me.name,
            info.sans.iter().cloned().collect::<Vec<_>>().join(", ")
        )))
    }
}
