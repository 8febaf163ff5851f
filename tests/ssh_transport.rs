//! The SSH transport against real OpenSSH servers on 127.0.0.1 (see `support/sshd.rs`).
//! Run as root: sshd needs it, and the owner/group tests chown to `nobody:nogroup`.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgdeploy_core::transport::{Become, ExecRequest, FileAttrs, Transport, TransportError};
use pgdeploy_engine::run::connect::{connect, ConnectionTarget};
use pgdeploy_ssh::{JumpHost, SshConfigFile, SshParams, SshTarget, SshTransport};
use support::sshd::Sshd;

fn req(command: &str) -> ExecRequest {
    ExecRequest {
        command: command.into(),
        ..Default::default()
    }
}

async fn open(sshd: &Sshd) -> SshTransport {
    SshTransport::connect(&sshd.target("db1"))
        .await
        .expect("connect to the fixture sshd")
}

#[tokio::test]
async fn exec_returns_stdout_stderr_status_and_takes_stdin() {
    let sshd = Sshd::start();
    let t = open(&sshd).await;
    assert_eq!(t.host(), "db1");
    let out = t
        .exec(&req("echo out; echo err >&2; exit 7"))
        .await
        .unwrap();
    assert_eq!(out.status, 7);
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");

    // Binary-safe stdin, larger than one SSH window packet.
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let out = t
        .exec(&ExecRequest {
            command: "cat".into(),
            stdin: Some(data.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.status, 0);
    assert_eq!(out.stdout, data);

    // Quoting survives the remote login shell and /bin/sh.
    let out = t.exec(&req("printf '%s' \"it's $((1+1))\"")).await.unwrap();
    assert_eq!(out.stdout, b"it's 2");

    // A command that reads no stdin does not hang on it.
    let out = t.exec(&req("cat >/dev/null; echo done")).await.unwrap();
    assert_eq!(out.stdout, b"done\n");
    t.close().await;
}

#[tokio::test]
async fn many_concurrent_execs_share_one_connection() {
    let sshd = Sshd::start();
    let t: Arc<dyn Transport> = connect(&ConnectionTarget::Ssh(sshd.target("db1")))
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.exec(&req(&format!("sleep 0.2; echo {i}"))).await
        }));
    }
    // While they run, exactly one TCP connection exists to the server.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let during = sshd.client_connections();
    for (i, task) in tasks.into_iter().enumerate() {
        let out = task.await.unwrap().unwrap();
        assert_eq!(out.stdout, format!("{i}\n").into_bytes());
    }
    let elapsed = started.elapsed();
    eprintln!("50 concurrent execs (sleep 0.2 each) over one connection: {elapsed:?}");
    assert_eq!(during, 1, "expected one TCP connection while commands ran");
    assert_eq!(sshd.client_connections(), 1);

    // A burst of very short commands, more than sshd's MaxSessions (10) at once.
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.exec(&req("true")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status, 0);
    }

    // A plain no-op round trip on the open connection.
    let started = Instant::now();
    for _ in 0..20 {
        t.exec(&req("true")).await.unwrap();
    }
    eprintln!("sequential no-op exec: {:?} each", started.elapsed() / 20);
}

#[tokio::test]
async fn write_then_read_file_with_owner_group_mode_atomically() {
    let sshd = Sshd::start();
    let t = open(&sshd).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("patroni.yml");
    let path_s = path.to_str().unwrap();

    assert_eq!(t.read_file(path_s, &Become::No).await.unwrap(), None);

    let content: Vec<u8> = (0..=255u8).rev().cycle().take(100_000).collect();
    let attrs = FileAttrs {
        owner: Some("nobody".into()),
        group: Some("nogroup".into()),
        mode: Some(0o640),
    };
    t.write_file(path_s, &content, &attrs, &Become::Root)
        .await
        .unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.uid(), 65534, "owner nobody");
    assert_eq!(meta.gid(), 65534, "group nogroup");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert_eq!(std::fs::read(&path).unwrap(), content);
    assert_eq!(
        t.read_file(path_s, &Become::No).await.unwrap(),
        Some(content)
    );

    // Overwrite without attributes keeps the existing owner and mode.
    t.write_file(path_s, b"v2\n", &FileAttrs::default(), &Become::No)
        .await
        .unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o7777),
        (65534, 0o640)
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"v2\n");

    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["patroni.yml".to_owned()]);

    // A failing write (unknown owner) leaves the old file and no temporary file.
    let err = t
        .write_file(
            path_s,
            b"secret-content-xyz",
            &FileAttrs {
                owner: Some("no-such-user-pgdeploy".into()),
                ..Default::default()
            },
            &Become::No,
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(path_s), "{msg}");
    assert!(!msg.contains("secret-content-xyz"), "content leaked: {msg}");
    assert_eq!(std::fs::read(&path).unwrap(), b"v2\n");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // The parent directory must exist.
    let orphan = dir.path().join("missing/dir/file");
    let err = t
        .write_file(
            orphan.to_str().unwrap(),
            b"x",
            &FileAttrs::default(),
            &Become::No,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn permission_denied_is_an_error_not_a_missing_file() {
    let sshd = Sshd::start();
    let t = open(&sshd).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"s").unwrap();
    let nobody = Become::User("nobody".into());

    let err = t
        .read_file(secret.to_str().unwrap(), &nobody)
        .await
        .unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(msg.contains(secret.to_str().unwrap()), "{msg}");
    assert!(msg.contains("ermission denied"), "{msg}");

    // Even a file that does not exist, behind a directory we cannot search, is an error.
    let hidden = dir.path().join("nope");
    assert!(t
        .read_file(hidden.to_str().unwrap(), &nobody)
        .await
        .is_err());
    // As root it is simply missing.
    assert_eq!(
        t.read_file(hidden.to_str().unwrap(), &Become::Root)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn become_changes_user() {
    let sshd = Sshd::start();
    let t = open(&sshd).await;
    let who = |b: Become| {
        let t = &t;
        async move {
            let out = t
                .exec(&ExecRequest {
                    command: "id -un".into(),
                    become_: b,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(out.status, 0, "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        }
    };
    assert_eq!(who(Become::No).await, "root");
    // Logged in as root: no sudo needed for root...
    assert_eq!(who(Become::Root).await, "root");
    // ...and another user is reached with runuser (works without sudo installed).
    assert_eq!(who(Become::User("nobody".into())).await, "nobody");
}

#[tokio::test]
async fn changed_host_key_is_refused_naming_the_known_hosts_line() {
    let sshd = Sshd::start();
    let other = Sshd::start();
    // Record the *other* server's key for this server's address, on line 3.
    std::fs::write(
        &sshd.known_hosts,
        format!(
            "# managed by test\nsomehost {}\n[127.0.0.1]:{} {}\n",
            other.host_public_key, sshd.port, other.host_public_key
        ),
    )
    .unwrap();
    let mut target = sshd.target("db1");
    target.accept_new_host_keys = true; // must not matter for a changed key
    let err = SshTransport::connect(&target)
        .await
        .err()
        .expect("a changed key must be refused");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, TransportError::HostKey(_)), "{msg}");
    assert!(msg.contains("db1"), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(
        msg.contains(&sshd.known_hosts.display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("SHA256:"), "{msg}");
    assert!(msg.contains("CHANGED"), "{msg}");
}

#[tokio::test]
async fn unknown_host_is_refused_unless_accept_new_which_records_it() {
    let sshd = Sshd::start();
    std::fs::write(&sshd.known_hosts, "").unwrap();
    let mut target = sshd.target("db1");
    let err = SshTransport::connect(&target)
        .await
        .err()
        .expect("an unknown key must be refused");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, TransportError::HostKey(_)), "{msg}");
    assert!(msg.contains("--accept-new-host-keys"), "{msg}");
    assert_eq!(std::fs::read_to_string(&sshd.known_hosts).unwrap(), "");

    target.accept_new_host_keys = true;
    let t = SshTransport::connect(&target).await.unwrap();
    assert_eq!(t.exec(&req("true")).await.unwrap().status, 0);
    let recorded = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    assert!(
        recorded.contains(&sshd.known_hosts_line()),
        "recorded {recorded:?}"
    );

    target.accept_new_host_keys = false;
    let t = SshTransport::connect(&target).await.unwrap();
    assert_eq!(t.exec(&req("true")).await.unwrap().status, 0);
}

#[tokio::test]
async fn proxy_jump_through_one_sshd_to_another() {
    let jump = Sshd::start();
    let target_sshd = Sshd::start();
    let known_hosts = target_sshd.dir().join("known_hosts_both");
    std::fs::write(
        &known_hosts,
        format!(
            "{}\n{}\n",
            jump.known_hosts_line(),
            target_sshd.known_hosts_line()
        ),
    )
    .unwrap();
    let mut target = target_sshd.target("db2");
    target.known_hosts = known_hosts.clone();
    target.proxy_jump = vec![JumpHost {
        address: "127.0.0.1".into(),
        port: jump.port,
        user: "root".into(),
        identity_files: vec![jump.client_key.clone()],
    }];
    let t = SshTransport::connect(&target).await.unwrap();
    let out = t.exec(&req("echo via-jump")).await.unwrap();
    assert_eq!(out.stdout, b"via-jump\n");
    // The target sees its client coming from the jump host's sshd, and our only direct TCP
    // connection is the one to the jump host.
    assert_eq!(jump.client_connections(), 1);
    t.close().await;

    // The jump host's key is verified too.
    std::fs::write(
        &known_hosts,
        format!("{}\n", target_sshd.known_hosts_line()),
    )
    .unwrap();
    let err = SshTransport::connect(&target)
        .await
        .err()
        .expect("unknown jump host key must be refused");
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, TransportError::HostKey(_)), "{msg}");
    assert!(msg.contains("jump host"), "{msg}");
    assert!(msg.contains(&format!("[127.0.0.1]:{}", jump.port)), "{msg}");
}

#[tokio::test]
async fn proxy_jump_from_ssh_config() {
    let jump = Sshd::start();
    let target_sshd = Sshd::start();
    let config = target_sshd.dir().join("ssh_config");
    std::fs::write(
        &config,
        format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n\n\
             Host db-*\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n  ProxyJump bastion\n",
            jump.port,
            jump.client_key.display(),
            target_sshd.port,
            target_sshd.client_key.display()
        ),
    )
    .unwrap();
    let known_hosts = target_sshd.dir().join("known_hosts_both");
    std::fs::write(
        &known_hosts,
        format!(
            "{}\n{}\n",
            jump.known_hosts_line(),
            target_sshd.known_hosts_line()
        ),
    )
    .unwrap();
    let config = SshConfigFile::load(&config).unwrap();
    let mut target = SshTarget::resolve("db-3", &SshParams::default(), &config).unwrap();
    assert_eq!(target.proxy_jump.len(), 1);
    target.known_hosts = known_hosts;
    let t = SshTransport::connect(&target).await.unwrap();
    assert_eq!(t.exec(&req("echo ok")).await.unwrap().stdout, b"ok\n");
}

#[tokio::test]
async fn ssh_config_alias_gives_hostname_port_user_and_key() {
    let sshd = Sshd::start();
    let config_path = sshd.dir().join("ssh_config");
    std::fs::write(
        &config_path,
        format!(
            "Host pg-primary\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {}\n",
            sshd.port,
            sshd.client_key.display()
        ),
    )
    .unwrap();
    let config = SshConfigFile::load(&config_path).unwrap();
    let mut target = SshTarget::resolve("pg-primary", &SshParams::default(), &config).unwrap();
    assert_eq!(target.address, "127.0.0.1");
    assert_eq!(target.port, sshd.port);
    assert_eq!(target.user, "root");
    assert_eq!(target.identity_files, vec![sshd.client_key.clone()]);
    target.known_hosts = sshd.known_hosts.clone();
    let t = SshTransport::connect(&target).await.unwrap();
    assert_eq!(t.exec(&req("echo hi")).await.unwrap().stdout, b"hi\n");
}

#[tokio::test]
async fn closed_port_is_unreachable_naming_the_host_within_the_timeout() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut target = SshTarget::new("db9", "127.0.0.1");
    target.port = port;
    target.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = SshTransport::connect(&target).await.err().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, TransportError::Unreachable { .. }), "{msg}");
    assert!(msg.contains("`db9`"), "{msg}");
    assert!(
        msg.contains(&format!("connection refused to 127.0.0.1:{port}")),
        "{msg}"
    );
}

#[tokio::test]
async fn silent_server_times_out_the_handshake() {
    // Accepts TCP (kernel backlog) but never speaks SSH.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut target = SshTarget::new("db8", "127.0.0.1");
    target.port = listener.local_addr().unwrap().port();
    target.connect_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = SshTransport::connect(&target).await.err().unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, TransportError::Unreachable { .. }), "{msg}");
    assert!(msg.contains("timed out"), "{msg}");
}

#[tokio::test]
async fn wrong_key_is_an_authentication_failure_naming_the_user() {
    let sshd = Sshd::start();
    let other_key = sshd.dir().join("stranger");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(status.success());
    let mut target = sshd.target("db1");
    target.identity_files = vec![other_key];
    let err = SshTransport::connect(&target).await.err().unwrap();
    let msg = err.to_string();
    eprintln!("{msg}");
    assert!(matches!(err, TransportError::Unreachable { .. }), "{msg}");
    assert!(
        msg.contains("authentication failed for user `root`"),
        "{msg}"
    );
}

#[tokio::test]
async fn command_timeout_is_reported_and_the_connection_survives() {
    let sshd = Sshd::start();
    let t = open(&sshd).await;
    let started = Instant::now();
    let err = t
        .exec(&ExecRequest {
            command: "sleep 31.5".into(),
            timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    // Far below the command's 31.5 s: the timeout fired (generous for a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(25));
    assert!(
        matches!(err, TransportError::Timeout { secs: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("sleep 31.5"), "{err}");
    // The command itself was killed, not left running on the host.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let left = std::process::Command::new("pgrep")
        .args(["-f", "sleep 31[.]5"])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "still running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
    assert_eq!(t.exec(&req("echo alive")).await.unwrap().stdout, b"alive\n");
}

/// Timing, not correctness: `cargo test --test ssh_transport -- --ignored --nocapture`.
/// Log in as a user whose shell startup is cheap (root's `.bashrc` may run slow tools on every
/// command): set `PGDEPLOY_BENCH_USER` to such a user (`useradd -m -s /bin/bash bench;
/// usermod -p '*' bench`), else root is used.
#[tokio::test]
#[ignore]
async fn bench_exec_over_one_connection() {
    let user = std::env::var("PGDEPLOY_BENCH_USER").unwrap_or_else(|_| "root".into());
    let sshd = Sshd::start();
    let started = Instant::now();
    let t: Arc<dyn Transport> = Arc::new(
        SshTransport::connect(&sshd.target_as("db1", &user))
            .await
            .unwrap(),
    );
    eprintln!("connect + auth as `{user}`: {:?}", started.elapsed());
    let started = Instant::now();
    for _ in 0..50 {
        t.exec(&req("true")).await.unwrap();
    }
    eprintln!("50 sequential no-op execs: {:?}", started.elapsed());
    let started = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let t = t.clone();
            tokio::spawn(async move { t.exec(&req("true")).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().status, 0);
    }
    eprintln!("50 concurrent no-op execs: {:?}", started.elapsed());
    let started = Instant::now();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                t.read_file(&format!("/etc/hostname{}", i % 2), &Become::No)
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    eprintln!("50 concurrent read_file: {:?}", started.elapsed());
    assert_eq!(sshd.client_connections(), 1);
}
