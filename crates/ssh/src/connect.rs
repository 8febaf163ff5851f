//! Opening one authenticated SSH session: TCP (or a tunnel through a jump host), handshake with
//! host key verification, then authentication (ssh-agent first, then key files).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};

use super::known_hosts::{self, Verdict};

/// One hop of a connection: a jump host or the target itself.
#[derive(Debug, Clone)]
pub(super) struct Hop {
    pub address: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
}

impl Hop {
    /// `user@address:port`, how messages name a hop.
    pub(crate) fn label(&self) -> String {
        format!("{}@{}:{}", self.user, self.address, self.port)
    }
}

/// Settings shared by every hop of one connection.
#[derive(Debug, Clone)]
pub(super) struct Policy {
    pub known_hosts: PathBuf,
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
    pub keepalive_interval: Option<Duration>,
}

/// Why a hop could not be opened.
#[derive(Debug)]
pub(super) enum HopError {
    /// The host key was refused: never retried, reported as such.
    HostKey(String),
    /// Anything else: the host is unreachable for this reason.
    Unreachable(String),
}

/// The russh client handler: only host key verification is ours.
pub(super) struct Client {
    address: String,
    port: u16,
    known_hosts: PathBuf,
    accept_new: bool,
}

/// The handler's error: russh's own, or our refusal of the host key (kept apart so it is not
/// reported as a mere network problem).
#[derive(Debug)]
pub(super) enum ClientError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(ClientError::HostKey(format!(
                    "host `{}` presented a host certificate; only plain host keys in \
                     known_hosts are supported",
                    known_hosts::host_pattern(&self.address, self.port)
                )))
            }
        };
        match known_hosts::verify(
            &self.address,
            self.port,
            key,
            &self.known_hosts,
            self.accept_new,
        ) {
            Ok(Verdict::Known) | Ok(Verdict::Learned) => Ok(true),
            Err(reason) => Err(ClientError::HostKey(reason)),
        }
    }
}

/// Opens, verifies and authenticates a session to `hop`, directly over TCP or, with `via`,
/// through a `direct-tcpip` channel of an already open session (ProxyJump).
pub(super) async fn open_hop(
    hop: &Hop,
    via: Option<&Handle<Client>>,
    policy: &Policy,
) -> Result<Handle<Client>, HopError> {
    let config = Arc::new(client::Config {
        keepalive_interval: policy.keepalive_interval,
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let handler = Client {
        address: hop.address.clone(),
        port: hop.port,
        known_hosts: policy.known_hosts.clone(),
        accept_new: policy.accept_new_host_keys,
    };
    let limit = policy.connect_timeout;
    let handshake = async {
        match via {
            None => {
                let stream = tcp_connect(hop, limit).await?;
                client::connect_stream(config, stream, handler).await
            }
            Some(jump) => {
                let channel = jump
                    .channel_open_direct_tcpip(hop.address.clone(), hop.port.into(), "127.0.0.1", 0)
                    .await
                    .map_err(|e| {
                        ClientError::Ssh(e).into_hop_error(&format!(
                            "the jump host cannot open a tunnel to {}:{}",
                            hop.address, hop.port
                        ))
                    })
                    .map_err(HopOrClient::Hop)?;
                client::connect_stream(config, channel.into_stream(), handler).await
            }
        }
        .map_err(HopOrClient::Client)
    };
    let mut session = match tokio::time::timeout(limit, handshake).await {
        Ok(Ok(session)) => session,
        Ok(Err(HopOrClient::Hop(e))) => return Err(e),
        Ok(Err(HopOrClient::Client(e))) => {
            return Err(e.into_hop_error(&format!(
                "SSH handshake with {}:{} failed",
                hop.address, hop.port
            )))
        }
        Err(_) => {
            return Err(HopError::Unreachable(format!(
                "SSH handshake with {}:{} timed out after {}",
                hop.address,
                hop.port,
                human(limit)
            )))
        }
    };
    match tokio::time::timeout(limit, authenticate(&mut session, hop)).await {
        Ok(Ok(())) => Ok(session),
        Ok(Err(reason)) => Err(HopError::Unreachable(reason)),
        Err(_) => Err(HopError::Unreachable(format!(
            "authentication as `{}` timed out after {}",
            hop.user,
            human(limit)
        ))),
    }
}

/// Either our own hop error or the handler's, while the handshake runs.
enum HopOrClient {
    Hop(HopError),
    Client(ClientError),
}

impl From<HopError> for HopOrClient {
    fn from(e: HopError) -> Self {
        HopOrClient::Hop(e)
    }
}

impl ClientError {
    fn into_hop_error(self, context: &str) -> HopError {
        match self {
            ClientError::HostKey(reason) => HopError::HostKey(reason),
            ClientError::Ssh(e) => HopError::Unreachable(format!("{context}: {e}")),
        }
    }
}

/// A TCP connection with its own timeout and an error that says what happened in words.
async fn tcp_connect(hop: &Hop, limit: Duration) -> Result<tokio::net::TcpStream, HopOrClient> {
    let target = format!("{}:{}", hop.address, hop.port);
    let attempt = tokio::net::TcpStream::connect((hop.address.as_str(), hop.port));
    let stream = match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return Err(HopError::Unreachable(format!("connection refused to {target}")).into())
        }
        Ok(Err(e)) => {
            return Err(HopError::Unreachable(format!("cannot connect to {target}: {e}")).into())
        }
        Err(_) => {
            return Err(HopError::Unreachable(format!(
                "connection to {target} timed out after {}",
                human(limit)
            ))
            .into())
        }
    };
    // Commands are many small round trips: do not let Nagle delay them.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%target, "set_nodelay failed: {e}");
    }
    Ok(stream)
}

/// Authenticates as `hop.user`: every ssh-agent identity first (OpenSSH's order), then the
/// configured key files, else the default ones. Returns a reason naming the user on failure.
async fn authenticate(session: &mut Handle<Client>, hop: &Hop) -> Result<(), String> {
    let mut tried: Vec<String> = Vec::new();
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        match AgentClient::connect_env().await {
            Ok(mut agent) => match agent.request_identities().await {
                Ok(identities) => {
                    let mut count = 0;
                    for identity in identities {
                        let AgentIdentity::PublicKey { key, .. } = identity else {
                            continue;
                        };
                        count += 1;
                        let hash = rsa_hash(session, key.algorithm().is_rsa()).await;
                        match session
                            .authenticate_publickey_with(&hop.user, key, hash, &mut agent)
                            .await
                        {
                            Ok(AuthResult::Success) => return Ok(()),
                            Ok(AuthResult::Failure { .. }) => {}
                            Err(e) => tracing::debug!("ssh-agent signing failed: {e}"),
                        }
                    }
                    tried.push(format!("ssh-agent ({count} keys)"));
                }
                Err(e) => tried.push(format!("ssh-agent (unusable: {e})")),
            },
            Err(e) => tried.push(format!("ssh-agent (cannot connect: {e})")),
        }
    }
    let explicit = !hop.identity_files.is_empty();
    let candidates: Vec<PathBuf> = if explicit {
        hop.identity_files.iter().map(|p| expand_tilde(p)).collect()
    } else {
        default_identity_files()
    };
    for path in candidates {
        if !path.exists() {
            if explicit {
                tried.push(format!("`{}` (missing)", path.display()));
            }
            continue;
        }
        let key = match russh::keys::load_secret_key(&path, None) {
            Ok(key) => key,
            Err(e) => {
                // Typically a passphrase-protected key: that is what the agent is for.
                tried.push(format!("`{}` (unusable: {e})", path.display()));
                continue;
            }
        };
        let hash = rsa_hash(session, key.algorithm().is_rsa()).await;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        match session.authenticate_publickey(&hop.user, key).await {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure { .. }) => tried.push(format!("`{}`", path.display())),
            Err(e) => return Err(format!("authentication as `{}` failed: {e}", hop.user)),
        }
    }
    let tried = if tried.is_empty() {
        "no ssh-agent and no key file found".to_owned()
    } else {
        format!("tried {}", tried.join(", "))
    };
    Err(format!(
        "authentication failed for user `{}` ({tried})",
        hop.user
    ))
}

/// The signature hash to use with an RSA key: the best the server supports (SHA-512/256).
async fn rsa_hash(session: &Handle<Client>, is_rsa: bool) -> Option<russh::keys::HashAlg> {
    if !is_rsa {
        return None;
    }
    session
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}

/// OpenSSH's default identities, in its order, that exist.
fn default_identity_files() -> Vec<PathBuf> {
    let Some(home) = dirs::home_dir() else {
        return Vec::new();
    };
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .map(|name| home.join(".ssh").join(name))
        .filter(|p| p.exists())
        .collect()
}

/// A timeout as people read it: `10 s`, or `500 ms` below a second.
fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// Expands a leading `~/` the way ssh does for inventory key paths.
pub(super) fn expand_tilde(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), dirs::home_dir()) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}
