//! Resolving where and how to connect: inventory values merged over `~/.ssh/config`.
//!
//! Ansible passes the inventory's `ansible_host`, `ansible_port`, `ansible_user` and key file to
//! `ssh` on the command line, and OpenSSH lets command-line values win over its config file;
//! `Host` patterns match the address Ansible connects to (`ansible_host`, or the inventory
//! name). We reproduce exactly that, so an existing inventory + ssh config reach the same hosts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ssh2_config::{ParseRule, SshConfig as Parsed};

use super::{JumpHost, SshTarget};

/// Connection values an inventory may give for one host (Ansible's variable names in brackets);
/// each one left `None` falls back to `~/.ssh/config`, then to OpenSSH's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshParams {
    /// `ansible_host`: the address (or ssh config alias) to connect to.
    pub host: Option<String>,
    /// `ansible_port`.
    pub port: Option<u16>,
    /// `ansible_user`.
    pub user: Option<String>,
    /// `ansible_ssh_private_key_file`.
    pub private_key_file: Option<PathBuf>,
    /// Jump host(s), OpenSSH `ProxyJump` syntax: `[user@]host[:port][,...]`, or `none`.
    pub proxy_jump: Option<String>,
}

/// A problem in the connection settings themselves (not the host): a validation error, to be
/// reported before any host is contacted.
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    #[error("cannot read ssh config `{path}`: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("host `{host}`: invalid ProxyJump entry `{entry}`")]
    ProxyJump { host: String, entry: String },
}

/// A parsed OpenSSH client configuration (or none at all).
#[derive(Debug, Clone, Default)]
pub struct SshConfigFile {
    parsed: Option<Parsed>,
}

impl SshConfigFile {
    /// No configuration: only inventory values and defaults apply.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Parses `~/.ssh/config`; a missing file is the same as an empty one.
    pub fn load_default() -> Result<Self, SshConfigError> {
        match dirs::home_dir() {
            Some(home) => Self::load(&home.join(".ssh").join("config")),
            None => Ok(Self::empty()),
        }
    }

    /// Parses the configuration at `path` (injectable for tests); a missing file is the same as
    /// an empty one. Options this parser does not know are ignored, as they do not concern the
    /// values we use, but a malformed file is an error naming it.
    pub fn load(path: &Path) -> Result<Self, SshConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::empty()),
            Err(e) => return Err(config_error(path, &e.to_string())),
        };
        Self::parse(&text).map_err(|e| config_error(path, &e))
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reader = std::io::BufReader::new(text.as_bytes());
        let parsed = Parsed::default()
            .parse(
                &mut reader,
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .map_err(|e| e.to_string())?;
        Ok(Self {
            parsed: Some(parsed),
        })
    }

    /// What the configuration says for `alias` (what the user typed, before `HostName`).
    fn query(&self, alias: &str) -> Resolved {
        let Some(parsed) = &self.parsed else {
            return Resolved::default();
        };
        let p = parsed.query(alias);
        Resolved {
            host_name: p.host_name,
            port: p.port,
            user: p.user,
            identity_files: p.identity_file.unwrap_or_default(),
            proxy_jump: p.proxy_jump.map(|v| v.join(",")),
            keepalive: p.server_alive_interval,
            connect_timeout: p.connect_timeout,
        }
    }
}

fn config_error(path: &Path, cause: &str) -> SshConfigError {
    SshConfigError::Read {
        path: path.to_path_buf(),
        cause: cause.to_owned(),
    }
}

/// The subset of ssh config values we use, for one alias.
#[derive(Debug, Default)]
struct Resolved {
    host_name: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_files: Vec<PathBuf>,
    proxy_jump: Option<String>,
    keepalive: Option<Duration>,
    connect_timeout: Option<Duration>,
}

impl SshTarget {
    /// Resolves the connection to inventory host `name`: inventory values win, then `config`,
    /// then defaults (port 22, the current user, `~/.ssh/known_hosts`, 10 s connect timeout,
    /// 600 s command timeout, 30 s keepalive). Jump hosts are resolved through `config` too,
    /// as OpenSSH does. Other fields (`accept_new_host_keys`, timeouts, become) can be changed
    /// on the result.
    pub fn resolve(
        name: &str,
        inventory: &SshParams,
        config: &SshConfigFile,
    ) -> Result<SshTarget, SshConfigError> {
        let alias = inventory.host.clone().unwrap_or_else(|| name.to_owned());
        let cfg = config.query(&alias);
        let mut identity_files: Vec<PathBuf> = inventory.private_key_file.iter().cloned().collect();
        identity_files.extend(cfg.identity_files);
        let jump_spec = inventory.proxy_jump.clone().or(cfg.proxy_jump);
        let proxy_jump = match jump_spec.as_deref() {
            None | Some("none") | Some("") => Vec::new(),
            Some(spec) => parse_proxy_jump(spec)
                .map_err(|entry| SshConfigError::ProxyJump {
                    host: name.to_owned(),
                    entry,
                })?
                .into_iter()
                .map(|j| j.resolve(config))
                .collect(),
        };
        let mut target = SshTarget::new(name, cfg.host_name.unwrap_or(alias));
        target.port = inventory.port.or(cfg.port).unwrap_or(22);
        if let Some(user) = inventory.user.clone().or(cfg.user) {
            target.user = user;
        }
        target.identity_files = identity_files;
        target.proxy_jump = proxy_jump;
        if let Some(k) = cfg.keepalive {
            target.keepalive_interval = Some(k);
        }
        if let Some(t) = cfg.connect_timeout {
            target.connect_timeout = t;
        }
        Ok(target)
    }
}

/// One jump host as written in a `ProxyJump` list, before ssh config is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JumpSpec {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl JumpSpec {
    fn resolve(self, config: &SshConfigFile) -> JumpHost {
        let cfg = config.query(&self.host);
        JumpHost {
            address: cfg.host_name.unwrap_or(self.host),
            port: self.port.or(cfg.port).unwrap_or(22),
            user: self
                .user
                .or(cfg.user)
                .unwrap_or_else(pgdeploy_core::transport::local::current_user_name),
            identity_files: cfg.identity_files,
        }
    }
}

/// Parses OpenSSH's `ProxyJump` value: comma-separated `[user@]host[:port]` or
/// `ssh://[user@]host[:port]`, nearest jump first. IPv6 addresses go in brackets. The error is
/// the offending entry.
fn parse_proxy_jump(spec: &str) -> Result<Vec<JumpSpec>, String> {
    spec.split(',')
        .map(str::trim)
        .map(|one| {
            let bad = || one.to_owned();
            let rest = one.strip_prefix("ssh://").unwrap_or(one);
            let (user, hostport) = match rest.rsplit_once('@') {
                Some((u, h)) if !u.is_empty() => (Some(u.to_owned()), h),
                Some(_) => return Err(bad()),
                None => (None, rest),
            };
            let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
                let (h, tail) = v6.split_once(']').ok_or_else(bad)?;
                let port = match tail.strip_prefix(':') {
                    Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
                    None if tail.is_empty() => None,
                    None => return Err(bad()),
                };
                (h.to_owned(), port)
            } else {
                match hostport.rsplit_once(':') {
                    Some((h, p)) => (h.to_owned(), Some(p.parse::<u16>().map_err(|_| bad())?)),
                    None => (hostport.to_owned(), None),
                }
            };
            if host.is_empty() {
                return Err(bad());
            }
            Ok(JumpSpec { user, host, port })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
Host db1
    HostName 10.0.0.11
    User admin
    Port 2201
    IdentityFile /keys/db1

Host bastion
    HostName 192.0.2.1
    User jump
    Port 2222

Host db*
    ProxyJump bastion
    ServerAliveInterval 15

Host *
    User fallback
";

    fn config() -> SshConfigFile {
        SshConfigFile::parse(CONFIG).unwrap()
    }

    #[test]
    fn alias_gives_hostname_port_user_key() {
        let t = SshTarget::resolve("db1", &SshParams::default(), &config()).unwrap();
        assert_eq!(t.host, "db1");
        assert_eq!(t.address, "10.0.0.11");
        assert_eq!(t.port, 2201);
        assert_eq!(t.user, "admin");
        assert_eq!(t.identity_files, vec![PathBuf::from("/keys/db1")]);
        assert_eq!(t.keepalive_interval, Some(Duration::from_secs(15)));
        assert_eq!(
            t.proxy_jump,
            vec![JumpHost {
                address: "192.0.2.1".into(),
                port: 2222,
                user: "jump".into(),
                identity_files: vec![],
            }]
        );
    }

    #[test]
    fn inventory_values_win() {
        let inv = SshParams {
            host: Some("db1".into()),
            port: Some(22),
            user: Some("root".into()),
            private_key_file: Some("/inv/key".into()),
            proxy_jump: Some("none".into()),
        };
        let t = SshTarget::resolve("pg-primary", &inv, &config()).unwrap();
        assert_eq!(t.host, "pg-primary");
        assert_eq!(t.address, "10.0.0.11");
        assert_eq!(t.port, 22);
        assert_eq!(t.user, "root");
        assert_eq!(t.identity_files[0], PathBuf::from("/inv/key"));
        assert!(t.proxy_jump.is_empty());
    }

    #[test]
    fn unknown_host_uses_defaults_and_wildcard() {
        let t = SshTarget::resolve("web", &SshParams::default(), &config()).unwrap();
        assert_eq!(t.address, "web");
        assert_eq!(t.port, 22);
        assert_eq!(t.user, "fallback");
        let t = SshTarget::resolve("web", &SshParams::default(), &SshConfigFile::empty()).unwrap();
        assert_eq!(t.user, pgdeploy_core::transport::local::current_user_name());
    }

    #[test]
    fn proxy_jump_lists_parse() {
        let j = parse_proxy_jump("a@h1:2200,h2,ssh://b@[::1]:22,[fe80::1]").unwrap();
        assert_eq!(
            j,
            vec![
                JumpSpec {
                    user: Some("a".into()),
                    host: "h1".into(),
                    port: Some(2200)
                },
                JumpSpec {
                    user: None,
                    host: "h2".into(),
                    port: None
                },
                JumpSpec {
                    user: Some("b".into()),
                    host: "::1".into(),
                    port: Some(22)
                },
                JumpSpec {
                    user: None,
                    host: "fe80::1".into(),
                    port: None
                },
            ]
        );
        assert!(parse_proxy_jump("h:notaport").is_err());
        assert!(parse_proxy_jump("@h").is_err());
        assert!(parse_proxy_jump("").is_err());
    }

    #[test]
    fn inventory_proxy_jump_is_resolved_through_config() {
        let inv = SshParams {
            proxy_jump: Some("bastion,other@127.0.0.1:2022".into()),
            ..Default::default()
        };
        let t = SshTarget::resolve("web", &inv, &config()).unwrap();
        assert_eq!(t.proxy_jump.len(), 2);
        assert_eq!(t.proxy_jump[0].address, "192.0.2.1");
        assert_eq!(t.proxy_jump[1].user, "other");
        assert_eq!(t.proxy_jump[1].port, 2022);
    }

    #[test]
    fn missing_config_file_is_empty() {
        let c = SshConfigFile::load(Path::new("/nonexistent/pgdeploy/config")).unwrap();
        assert!(c.parsed.is_none());
    }
}
