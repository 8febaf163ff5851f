//! What the module derives from its parameters: the environment file of a member, its path,
//! the members' URLs and certificate paths, the `etcdctl` command line, the fingerprint
//! script; and the rewrite of the environment file.

use pgdeploy_core::module::{HostContext, ModuleError};
use pgdeploy_core::params::Mode;

use super::super::common::attrs::Wanted;
use super::super::common::shell::quote;
use super::cluster::{url, ClusterState, Member};
use super::params::Etcd;
use super::unit;

/// The environment file of `host` when `config` is not set: where the OS family's packages
/// have their unit read it.
pub fn config_for(
    facts: &pgdeploy_core::template::Facts,
    host: &str,
) -> Result<String, ModuleError> {
    match facts.get("ansible_os_family").and_then(|v| v.as_str()) {
        Some("Debian") => Ok("/etc/default/etcd".into()),
        Some("RedHat") => Ok("/etc/etcd/etcd.conf".into()),
        Some(other) => Err(ModuleError::Failed(format!(
            "`{host}` is of OS family `{other}`: set `config` (the environment file etcd's unit reads)"
        ))),
        None => Err(ModuleError::Failed(format!(
            "`{host}` has no `ansible_os_family` fact: set `config` (the environment file etcd's unit reads)"
        ))),
    }
}

/// Where the fingerprint of the configuration etcd was last started with is kept.
pub const STAMP: &str = "/var/lib/pgdeploy/etcd.started";

impl Etcd {
    pub(super) fn peer_url(&self, m: &Member) -> String {
        url(&m.address, self.peer_port)
    }
    pub(super) fn client_url(&self, m: &Member) -> String {
        url(&m.address, self.client_port)
    }
    pub(super) fn cert(&self, host: &str) -> String {
        format!("{}/{host}.crt", self.pki_dir.trim_end_matches('/'))
    }
    pub(super) fn key(&self, host: &str) -> String {
        format!("{}/{host}.key", self.pki_dir.trim_end_matches('/'))
    }
    pub(super) fn ca(&self) -> String {
        format!("{}/ca.crt", self.pki_dir.trim_end_matches('/'))
    }

    /// The members with their addresses from the inventory; duplicate URLs are errors.
    pub(super) fn resolve(&self, cx: &HostContext<'_>) -> Result<Vec<Member>, ModuleError> {
        let inventory = &cx.scope.shared().inventory;
        let members: Vec<Member> = self
            .members
            .iter()
            .map(|name| Member {
                name: name.clone(),
                address: inventory
                    .hosts
                    .get(name)
                    .map_or_else(|| name.clone(), |h| h.connection.address.clone()),
            })
            .collect();
        for (i, m) in members.iter().enumerate() {
            if let Some(other) = members[..i].iter().find(|o| o.address == m.address) {
                return Err(ModuleError::Failed(format!(
                    "members `{}` and `{}` have the same address `{}`: their etcd URLs would clash",
                    other.name, m.name, m.address
                )));
            }
        }
        Ok(members)
    }

    /// The environment file of this host: `config`, else the OS family's.
    pub(super) fn config_path(
        &self,
        facts: &pgdeploy_core::template::Facts,
        host: &str,
    ) -> Result<String, ModuleError> {
        match &self.config {
            Some(c) => Ok(c.clone()),
            None => config_for(facts, host),
        }
    }

    /// `etcdctl` (the v3 API, which etcd 3.4 and 3.5 both default to, said anyway) over https
    /// with this host's client certificate.
    pub(super) fn ctl(&self, host: &str, endpoints: &[String], args: &str) -> String {
        format!(
            "ETCDCTL_API=3 {} --endpoints={} --cacert={} --cert={} --key={} \
             --dial-timeout=2s --command-timeout=5s {args}",
            quote(&self.etcdctl),
            quote(&endpoints.join(",")),
            quote(&self.ca()),
            quote(&self.cert(host)),
            quote(&self.key(host)),
        )
    }

    /// The environment file.
    pub fn render(
        &self,
        me: &Member,
        initial_cluster: &[(String, String)],
        state: ClusterState,
    ) -> String {
        let cluster = initial_cluster
            .iter()
            .map(|(n, u)| format!("{n}={u}"))
            .collect::<Vec<_>>()
            .join(",");
        let (cert, key, ca) = (self.cert(&me.name), self.key(&me.name), self.ca());
        let lines = [
            ("ETCD_NAME", me.name.clone()),
            ("ETCD_DATA_DIR", self.data_dir.clone()),
            ("ETCD_LISTEN_PEER_URLS", url("0.0.0.0", self.peer_port)),
            ("ETCD_LISTEN_CLIENT_URLS", url("0.0.0.0", self.client_port)),
            ("ETCD_INITIAL_ADVERTISE_PEER_URLS", self.peer_url(me)),
            ("ETCD_ADVERTISE_CLIENT_URLS", self.client_url(me)),
            ("ETCD_INITIAL_CLUSTER", cluster),
            ("ETCD_INITIAL_CLUSTER_TOKEN", self.cluster_token.clone()),
            ("ETCD_INITIAL_CLUSTER_STATE", state.as_str().to_string()),
            ("ETCD_CLIENT_CERT_AUTH", "true".into()),
            ("ETCD_TRUSTED_CA_FILE", ca.clone()),
            ("ETCD_CERT_FILE", cert.clone()),
            ("ETCD_KEY_FILE", key.clone()),
            ("ETCD_PEER_CLIENT_CERT_AUTH", "true".into()),
            ("ETCD_PEER_TRUSTED_CA_FILE", ca),
            ("ETCD_PEER_CERT_FILE", cert),
            ("ETCD_PEER_KEY_FILE", key),
        ];
        let mut out = String::from(
            "# Written by pgdeploy (module `etcd`): changes made here are overwritten.\n\
             # ETCD_INITIAL_CLUSTER_STATE is computed from the cluster, never set by hand.\n",
        );
        for (k, v) in lines {
            out.push_str(&format!("{k}=\"{v}\"\n"));
        }
        out
    }

    pub(super) fn file_attrs(&self) -> Wanted<'static> {
        Wanted {
            owner: Some("root"),
            group: Some("root"),
            mode: Some(Mode(0o644)),
        }
    }

    /// Replaces the environment file with `text` (atomically, with its owner and mode), for
    /// the rewrites after a start: the list after a join, `new` turned into `existing`.
    pub(super) async fn write_config(
        &self,
        cx: &HostContext<'_>,
        config: &str,
        text: &str,
    ) -> Result<(), ModuleError> {
        cx.transport
            .write_file(
                config,
                text.as_bytes(),
                &self.file_attrs().for_write(None),
                &cx.become_,
            )
            .await?;
        Ok(())
    }

    /// Shell that prints the fingerprint of what etcd runs with: the environment file, the
    /// certificates, and the unit when the module wrote it (absent otherwise, so a host
    /// with the package's unit keeps the fingerprint it had before units were written).
    pub(super) fn fingerprint_script(&self, host: &str, config: &str) -> String {
        format!(
            "{{ grep -v '^ETCD_INITIAL_CLUSTER' {}; cat {} {} {} {}; }} 2>/dev/null | sha256sum | cut -c1-64",
            quote(config),
            quote(&self.cert(host)),
            quote(&self.key(host)),
            quote(&self.ca()),
            quote(&unit::unit_path(&self.service))
        )
    }
}
