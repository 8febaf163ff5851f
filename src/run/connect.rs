//! From inventory hosts to connection targets, then to open transports.
//!
//! Targets are resolved for every host before any connection is opened, so a bad ssh config
//! or ProxyJump stops the run before a host is contacted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::inventory::{ConnectionKind, Inventory};
use crate::transport::{ConnectionTarget, SshConfigError, SshConfigFile, SshParams, SshTarget};
use crate::transport::{Transport, TransportError};

/// Connection settings that come from the command line, not the inventory.
#[derive(Debug, Clone, Default)]
pub struct ConnectSettings {
    /// Record unknown host keys instead of refusing them.
    pub accept_new_host_keys: bool,
    /// An ssh config file to use instead of `~/.ssh/config`.
    pub ssh_config: Option<PathBuf>,
}

/// The connection target of each of `hosts`.
pub fn resolve_targets(
    inventory: &Inventory,
    hosts: &[String],
    settings: &ConnectSettings,
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
        let c = &host.connection;
        let target = match c.kind {
            ConnectionKind::Local => ConnectionTarget::Local {
                host: name.clone(),
                escalation: c.escalation.clone(),
            },
            ConnectionKind::Ssh => {
                let params = SshParams {
                    // The inventory name stays the ssh config alias unless `ansible_host`
                    // says otherwise (Ansible's behaviour).
                    host: (c.address != *name).then(|| c.address.clone()),
                    port: c.port,
                    user: c.user.clone(),
                    private_key_file: c.private_key_file.as_deref().map(expand_home),
                    proxy_jump: None,
                };
                let mut t = SshTarget::resolve(name, &params, &config)?;
                if let Some(kh) = &c.known_hosts_file {
                    t.known_hosts = expand_home(kh);
                }
                t.accept_new_host_keys = settings.accept_new_host_keys;
                t.escalation = c.escalation.clone();
                ConnectionTarget::Ssh(t)
            }
        };
        targets.insert(name.clone(), target);
    }
    Ok(targets)
}

/// Opens the connection to one resolved target.
pub async fn connect(target: &ConnectionTarget) -> Result<Arc<dyn Transport>, TransportError> {
    crate::transport::connect(target).await
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
