//! Real OpenSSH servers on 127.0.0.1, for the SSH benchmarks (and the test suite's fixture in
//! `tests/support/sshd.rs`, which builds on these functions).
//!
//! Each server runs `/usr/sbin/sshd -D` as our child with its own fresh ed25519 host key, on a
//! free port of 127.0.0.1 only, authorising one client key. Needs root (sshd changes user for
//! sessions) and OpenSSH (`apt-get install openssh-server openssh-client`).

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The OpenSSH server binary.
pub const SSHD: &str = "/usr/sbin/sshd";

#[derive(Debug, thiserror::Error)]
pub enum SshdError {
    #[error("`{SSHD}` is missing: install OpenSSH's server with `apt-get install openssh-server`")]
    Missing,
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("`ssh-keygen` failed for `{}`", .0.display())]
    Keygen(PathBuf),
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sshd did not start listening on 127.0.0.1; its log `{}`:\n{log}", path.display())]
    NotListening { path: PathBuf, log: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SshdError + '_ {
    move |source| SshdError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Generates an ed25519 key pair without passphrase: `path` and `path.pub`.
pub fn keygen(path: &Path) -> Result<(), SshdError> {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "pgdeploy-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .map_err(|source| SshdError::Spawn {
            program: "ssh-keygen".into(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        Err(SshdError::Keygen(path.to_path_buf()))
    }
}

/// `ssh-ed25519 AAAA...` (no comment) of the key pair whose private half is `private`.
pub fn public_key_of(private: &Path) -> Result<String, SshdError> {
    let path = private.with_extension("pub");
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    Ok(text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// A port of 127.0.0.1 that was free a moment ago, and that this process has not handed out
/// before: servers started in parallel must not be given the same port (the kernel may pick a
/// port again once its probe listener is closed).
pub fn free_port() -> Result<u16, SshdError> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(io_error(Path::new("127.0.0.1:0")))?;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.insert(port) {
            return Ok(port);
        }
    }
}

/// The files of one server, all in its own directory.
#[derive(Debug, Clone)]
pub struct ServerFiles {
    pub dir: PathBuf,
    pub host_key: PathBuf,
    pub authorized_keys: PathBuf,
    pub log: PathBuf,
}

impl ServerFiles {
    pub fn in_dir(dir: &Path) -> ServerFiles {
        ServerFiles {
            dir: dir.to_path_buf(),
            host_key: dir.join("host_ed25519"),
            authorized_keys: dir.join("authorized_keys"),
            log: dir.join("sshd.log"),
        }
    }

    /// The foreground sshd command line for these files on `port`, with extra `-o` options.
    pub fn command(&self, port: u16, options: &[String]) -> Command {
        let mut cmd = Command::new(SSHD);
        cmd.args(["-D", "-f", "/dev/null", "-h"])
            .arg(&self.host_key)
            .arg("-E")
            .arg(&self.log)
            .args(["-o", &format!("Port={port}")])
            .args(["-o", "ListenAddress=127.0.0.1"])
            .args([
                "-o",
                &format!("AuthorizedKeysFile={}", self.authorized_keys.display()),
            ])
            .args([
                "-o",
                &format!("PidFile={}", self.dir.join("sshd.pid").display()),
            ])
            .args(["-o", "UsePAM=no", "-o", "StrictModes=no"])
            .args(["-o", "Subsystem=sftp /usr/lib/openssh/sftp-server"])
            .stdin(Stdio::null());
        for o in options {
            cmd.args(["-o", o]);
        }
        cmd
    }

    /// Starts sshd on `port` and waits until it accepts connections.
    pub fn spawn(&self, port: u16, options: &[String]) -> Result<Option<Child>, SshdError> {
        let mut child = self
            .command(port, options)
            .spawn()
            .map_err(|source| SshdError::Spawn {
                program: SSHD.into(),
                source,
            })?;
        if wait_listening(&mut child, port) {
            Ok(Some(child))
        } else {
            let _ = child.kill();
            let _ = child.wait();
            Ok(None)
        }
    }

    /// Starts sshd on a free port (retried: another process may take the port first).
    pub fn spawn_on_free_port(&self, options: &[String]) -> Result<(Child, u16), SshdError> {
        require_sshd()?;
        for _ in 0..5 {
            let port = free_port()?;
            if let Some(child) = self.spawn(port, options)? {
                return Ok((child, port));
            }
        }
        Err(SshdError::NotListening {
            path: self.log.clone(),
            log: std::fs::read_to_string(&self.log).unwrap_or_default(),
        })
    }
}

/// `Err` with the install hint when OpenSSH's server is missing; creates sshd's privilege
/// separation directory.
pub fn require_sshd() -> Result<(), SshdError> {
    if !Path::new(SSHD).exists() {
        return Err(SshdError::Missing);
    }
    std::fs::create_dir_all("/run/sshd").map_err(io_error(Path::new("/run/sshd")))
}

/// Waits until the child serves SSH on `port` (true) or exits (false). A TCP connection
/// alone proves nothing: between `free_port` releasing the port and sshd binding it, another
/// process (a parallel test probing for a free port) may hold it, and its listen backlog
/// accepts the connection while our sshd failed to bind and exits. So the server must send
/// an SSH banner, and the child must still run.
pub fn wait_listening(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut banner = [0u8; 4];
            let ssh =
                std::io::Read::read_exact(&mut stream, &mut banner).is_ok() && &banner == b"SSH-";
            if ssh && matches!(child.try_wait(), Ok(None)) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A running server for benchmarks; dropping it stops the server.
pub struct LocalSshd {
    child: Child,
    pub port: u16,
    /// `ssh-ed25519 AAAA...` of its host key.
    pub host_public_key: String,
}

impl LocalSshd {
    /// Starts a server with its files in `dir` (created), authorising `client_public_key`.
    pub fn start(dir: &Path, client_public_key: &str) -> Result<LocalSshd, SshdError> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let files = ServerFiles::in_dir(dir);
        keygen(&files.host_key)?;
        let host_public_key = public_key_of(&files.host_key)?;
        std::fs::write(&files.authorized_keys, format!("{client_public_key}\n"))
            .map_err(io_error(&files.authorized_keys))?;
        let (child, port) = files.spawn_on_free_port(&[])?;
        Ok(LocalSshd {
            child,
            port,
            host_public_key,
        })
    }

    /// Starts `count` servers, the `i`th with its files in `root/sshd{i}`, several at a time:
    /// one after the other, each waiting for its own key generation and listening socket,
    /// 200 servers took most of a minute before the benchmark measured anything. The servers
    /// come back in order; on an error, those already started are stopped.
    pub fn start_many(
        root: &Path,
        count: usize,
        client_public_key: &str,
    ) -> Result<Vec<LocalSshd>, SshdError> {
        // Mostly waiting on child processes (ssh-keygen, sshd's start): more threads than cores.
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .saturating_mul(4)
            .clamp(1, count.max(1));
        let next = AtomicUsize::new(0);
        let started: Mutex<Vec<Option<Result<LocalSshd, SshdError>>>> =
            Mutex::new((0..count).map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let server =
                        LocalSshd::start(&root.join(format!("sshd{i}")), client_public_key);
                    let failed = server.is_err();
                    started.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(server);
                    if failed {
                        // The others stop taking new servers; the error is returned below.
                        next.store(count, Ordering::Relaxed);
                        break;
                    }
                });
            }
        });
        let started = started.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut servers = Vec::with_capacity(count);
        let mut error = None;
        for s in started.into_iter().flatten() {
            match s {
                Ok(s) => servers.push(s),
                Err(e) => error = error.or(Some(e)),
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(servers),
        }
    }

    /// Its known_hosts line.
    pub fn known_hosts_line(&self) -> String {
        format!("[127.0.0.1]:{} {}", self.port, self.host_public_key)
    }
}

impl Drop for LocalSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
