//! From inventory hosts to connection targets, then to open transports.
//!
//! Targets are resolved for every host before any connection is opened, so a bad ssh config
//! or ProxyJump stops the run before a host is contacted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pgdeploy_ssh::{SshConfigError, SshConfigFile, SshParams, SshTarget, SshTransport};

use pgdeploy_core::inventory::{ConnectionKind, Inventory};
use pgdeploy_core::transport::{Escalation, LocalTransport, Transport, TransportError};

/// How to reach one inventory host, as the engine resolved it.
// One per host per run: the size difference costs nothing worth a `Box` in every pattern.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionTarget {
    /// Over SSH (the default `ansible_connection: ssh`).
    Ssh(SshTarget),
    /// On this machine (`ansible_connection: local`), on behalf of inventory host `host`.
    Local {
        host: String,
        escalation: Escalation,
    },
}

impl ConnectionTarget {
    /// The inventory host name.
    pub fn host(&self) -> &str {
        match self {
            ConnectionTarget::Ssh(t) => &t.host,
            ConnectionTarget::Local { host, .. } => host,
        }
    }
}

/// Opens the one connection the engine keeps for a host for the whole run.
pub async fn connect(target: &ConnectionTarget) -> Result<Arc<dyn Transport>, TransportError> {
    match target {
        ConnectionTarget::Ssh(t) => Ok(Arc::new(SshTransport::connect(t).await?)),
        ConnectionTarget::Local { host, escalation } => Ok(Arc::new(
            LocalTransport::new(host.clone()).with_escalation(escalation.clone()),
        )),
    }
}

/// Connection settings that come from the command line, not the inventory.
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// Record unknown host keys instead of refusing them.
    pub accept_new_host_keys: bool,
    /// An ssh config file to use instead of `~/.ssh/config`.
    pub ssh_config: Option<PathBuf>,
}

/// The connection target of each of `hosts`.
///
/// `become_methods` are the playbook's `become_method` keywords per host (`Compiled::
/// become_methods`); they replace the inventory's default method.
pub fn resolve_targets(
    inventory: &Inventory,
    hosts: &[String],
    settings: &ConnectSettings,
    become_methods: &HashMap<String, pgdeploy_core::transport::BecomeMethod>,
) -> Result<HashMap<String, ConnectionTarget>, SshConfigError> {
    let config = match &settings.ssh_config {
        Some(path) => SshConfigFile::load(path)?,
        None => SshConfigFile::load_default()?,
    };
    let mut targets = HashMap::with_capacity(hosts.len());
    for name in hosts {
        let Some(host) = inventory.hosts.get(name) else {
            continue;
        };
        let mut escalation = host.connection.escalation.clone();
        if let Some(m) = become_methods.get(name) {
            escalation.method = *m;
        }
        let c = &host.connection;
        let target = match c.kind {
            ConnectionKind::Local => ConnectionTarget::Local {
                host: name.clone(),
                escalation: escalation.clone(),
            },
            ConnectionKind::Ssh => {
                // `ansible_port`/`_user`/`_ssh_private_key_file` come before the ssh args on
                // the command line Ansible builds, so they win; both win over ssh config.
                let o = &c.ssh;
                let mut keys: Vec<&str> = c.private_key_file.iter().map(String::as_str).collect();
                keys.extend(o.identity_files.iter().map(String::as_str));
                let params = SshParams {
                    // The inventory name stays the ssh config alias unless `ansible_host`
                    // says otherwise (Ansible's behaviour).
                    host: (c.address != *name).then(|| c.address.clone()),
                    port: c.port.or(o.port),
                    user: c.user.clone().or_else(|| o.user.clone()),
                    private_key_file: keys.first().map(|k| expand_home(k)),
                    proxy_jump: o.proxy_jump.clone(),
                };
                let mut t = SshTarget::resolve(name, &params, &config)?;
                for (i, k) in keys.iter().enumerate().skip(1) {
                    t.identity_files.insert(i, expand_home(k));
                }
                if let Some(kh) = c.known_hosts_file.as_ref().or(o.known_hosts_file.as_ref()) {
                    t.known_hosts = expand_home(kh);
                }
                if let Some(secs) = o.connect_timeout {
                    t.connect_timeout = std::time::Duration::from_secs(secs);
                }
                if let Some(secs) = o.server_alive_interval {
                    t.keepalive_interval = (secs > 0).then(|| std::time::Duration::from_secs(secs));
                }
                t.accept_new_host_keys = settings.accept_new_host_keys || o.accept_new_host_keys;
                t.escalation = escalation.clone();
                ConnectionTarget::Ssh(t)
            }
        };
        targets.insert(name.clone(), target);
    }
    Ok(targets)
}

/// `~/x` is relative to the home directory, as in OpenSSH and Ansible.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => Path::new(path).to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_is_expanded_in_key_paths() {
        let home = dirs::home_dir().expect("home");
        assert_eq!(expand_home("~/.ssh/id"), home.join(".ssh/id"));
        assert_eq!(expand_home("/k"), PathBuf::from("/k"));
        assert_eq!(expand_home("rel/k"), PathBuf::from("rel/k"));
    }
}
