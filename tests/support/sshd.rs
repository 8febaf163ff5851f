//! A real OpenSSH server on 127.0.0.1 for tests: `Sshd::start()` (built on
//! `pgdeploy::bench::sshd`, which the SSH benchmarks use too).
//!
//! Each server gets a random free port, its own fresh ed25519 host key and a known_hosts file
//! that records it, and authorises one client key shared by every server of the test process
//! (so ProxyJump and multi-host tests authenticate everywhere with the same key). The server
//! runs in the foreground (`-D`) as our child and is killed when the `Sshd` is dropped.
//! Needs root (sshd changes user for sessions) and `/usr/sbin/sshd` (`apt-get install
//! openssh-server`). Everything listens on loopback only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

use pgdeploy::bench::sshd::{self as server, ServerFiles, SSHD};
use pgdeploy_ssh::SshTarget;

/// A running sshd. Dropping it stops the server.
pub(crate) struct Sshd {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its private host key (the public half is `host_key.pub`).
    pub host_key: PathBuf,
    /// `ssh-ed25519 AAAA...` of its host key.
    pub host_public_key: String,
    /// A known_hosts file holding exactly this server's key (`[127.0.0.1]:PORT ...`).
    pub known_hosts: PathBuf,
    /// The client private key every fixture server accepts.
    pub client_key: PathBuf,
    /// sshd's own log (`-E`), handy when a test fails.
    pub log: PathBuf,
    opts: SshdOptions,
    dir: tempfile::TempDir,
}

/// Options for [`Sshd::start_with`].
#[derive(Debug, Clone, Default)]
pub(crate) struct SshdOptions {
    /// Extra `-o KEY=VALUE` options, e.g. `MaxSessions=20`.
    pub options: Vec<String>,
}

/// The client key pair shared by all servers of this test process.
struct ClientKey {
    _dir: tempfile::TempDir,
    private: PathBuf,
    public: String,
}

fn client_key() -> &'static ClientKey {
    static KEY: OnceLock<ClientKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory for the client key");
        let private = dir.path().join("id_ed25519");
        keygen(&private);
        let public = std::fs::read_to_string(private.with_extension("pub"))
            .expect("client public key")
            .trim()
            .to_owned();
        ClientKey {
            _dir: dir,
            private,
            public,
        }
    })
}

fn keygen(path: &Path) {
    server::keygen(path).unwrap_or_else(|e| panic!("{e} (apt-get install openssh-client)"));
}

fn public_key_of(private: &Path) -> String {
    server::public_key_of(private).unwrap_or_else(|e| panic!("{e}"))
}

/// Fails the test with the install hint when OpenSSH's server is not installed. Never skips:
/// a test suite that silently skips its SSH tests in CI proves nothing.
pub(crate) fn require_sshd() {
    if !Path::new(SSHD).exists() {
        panic!(
            "{SSHD} is missing: these tests need a real OpenSSH server; \
             install it with `apt-get install openssh-server`"
        );
    }
}

impl Sshd {
    /// Starts one server with default options.
    pub(crate) fn start() -> Sshd {
        Self::start_with(&SshdOptions::default())
    }

    /// Starts `n` servers (for multi-host tests and benchmarks).
    pub(crate) fn start_many(n: usize) -> Vec<Sshd> {
        (0..n).map(|_| Self::start()).collect()
    }

    /// Starts one server with extra options.
    pub(crate) fn start_with(opts: &SshdOptions) -> Sshd {
        require_sshd();
        server::require_sshd().expect("mkdir /run/sshd (are we root?)");
        let client = client_key();
        let dir = tempfile::tempdir().expect("temporary directory for sshd");
        let files = ServerFiles::in_dir(dir.path());
        keygen(&files.host_key);
        let host_public_key = public_key_of(&files.host_key);
        std::fs::write(&files.authorized_keys, format!("{}\n", client.public))
            .expect("authorized_keys");
        let (child, port) = files
            .spawn_on_free_port(&opts.options)
            .unwrap_or_else(|e| panic!("{e}"));
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {host_public_key}\n"),
        )
        .expect("known_hosts");
        Sshd {
            child,
            port,
            host_key: files.host_key.clone(),
            host_public_key,
            known_hosts,
            client_key: client.private.clone(),
            log: files.log.clone(),
            opts: opts.clone(),
            dir,
        }
    }

    /// Simulates a reinstalled host: stops the server, gives it a fresh host key and starts it
    /// again on the same port. `known_hosts` and `host_public_key` keep the *old* key, as a
    /// client's known_hosts would.
    pub(crate) fn reinstall(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.host_key);
        let _ = std::fs::remove_file(self.host_key.with_extension("pub"));
        keygen(&self.host_key);
        let files = ServerFiles::in_dir(self.dir.path());
        self.child = files
            .spawn(self.port, &self.opts.options)
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| {
                panic!(
                    "sshd did not restart on port {}; its log:\n{}",
                    self.port,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            });
    }

    /// The public half of the server's current host key (`ssh-ed25519 AAAA...`).
    pub(crate) fn current_public_key(&self) -> String {
        public_key_of(&self.host_key)
    }

    /// A scratch directory that lives as long as the server.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// This server's known_hosts line.
    pub(crate) fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_public_key)
    }

    /// A target for inventory host `name` on this server, logging in as root with the fixture
    /// key and verifying against this server's known_hosts, with short timeouts.
    pub(crate) fn target(&self, name: &str) -> SshTarget {
        self.target_as(name, "root")
    }

    /// Like [`Sshd::target`] with another login user (every user is authorised with the key).
    pub(crate) fn target_as(&self, name: &str, user: &str) -> SshTarget {
        let mut t = SshTarget::new(name, "127.0.0.1");
        t.port = self.port;
        t.user = user.to_owned();
        t.identity_files = vec![self.client_key.clone()];
        t.known_hosts = self.known_hosts.clone();
        t.connect_timeout = Duration::from_secs(5);
        t.command_timeout = Duration::from_secs(60);
        t
    }

    /// How many TCP connections to this server are established, counted from the client side
    /// (`ss`): proof of connection reuse.
    pub(crate) fn client_connections(&self) -> usize {
        let out = Command::new("ss")
            .args(["-Htn", "state", "established"])
            .arg(format!("( dport = :{} )", self.port))
            .output()
            .expect("ss (apt-get install iproute2)");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
