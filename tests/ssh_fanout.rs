//! Many hosts at once: one connection each, opened concurrently, against real sshd servers on
//! 127.0.0.1 (see `support/sshd.rs`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use pgdeploy_core::transport::{ExecRequest, Transport};
use pgdeploy_engine::run::connect::{connect, ConnectionTarget};
use support::sshd::Sshd;

/// Connects to every server at once, runs one command on each, and returns the elapsed time.
async fn fan_out(servers: &[Sshd], user: &str) -> std::time::Duration {
    let started = Instant::now();
    let tasks: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let target = ConnectionTarget::Ssh(s.target_as(&format!("host{i}"), user));
            tokio::spawn(async move {
                let t: Arc<dyn Transport> = connect(&target).await?;
                let out = t
                    .exec(&ExecRequest {
                        command: "echo ok".into(),
                        ..Default::default()
                    })
                    .await?;
                t.close().await;
                Ok::<_, pgdeploy_core::transport::TransportError>((t.host().to_owned(), out.stdout))
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let (host, stdout) = task.await.unwrap().unwrap();
        assert_eq!(host, format!("host{i}"));
        assert_eq!(stdout, b"ok\n");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_hosts_in_parallel() {
    let servers = Sshd::start_many(10);
    let elapsed = fan_out(&servers, "root").await;
    eprintln!("connect + one exec on 10 hosts: {elapsed:?}");
}

/// Connects to every server, then runs `sleep 3` on all of them at once: returns the wall
/// time of that exec phase and each host's own exec time.
async fn sleep_everywhere(servers: &[Sshd]) -> (Duration, Vec<Duration>) {
    let mut transports = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let target = ConnectionTarget::Ssh(s.target_as(&format!("host{i}"), "root"));
        transports.push(connect(&target).await.expect("connect"));
    }
    let started = Instant::now();
    let tasks: Vec<_> = transports
        .iter()
        .map(|t| {
            let t: Arc<dyn Transport> = Arc::clone(t);
            tokio::spawn(async move {
                let own = Instant::now();
                let out = t
                    .exec(&ExecRequest {
                        command: "sleep 3; echo ok".into(),
                        ..Default::default()
                    })
                    .await?;
                Ok::<_, pgdeploy_core::transport::TransportError>((own.elapsed(), out.stdout))
            })
        })
        .collect();
    let mut each = Vec::new();
    for task in tasks {
        let (own, stdout) = task.await.unwrap().unwrap();
        assert_eq!(stdout, b"ok\n");
        each.push(own);
    }
    let wall = started.elapsed();
    for t in &transports {
        t.close().await;
    }
    (wall, each)
}

/// The hosts' commands overlap: 20 hosts each sleeping 3 s take far less than the 60 s
/// that running them one after the other takes at least. The bound is that sum of the sleeps,
/// not of the measured per-host times: those include waiting, so a transport that serialised
/// the hosts would inflate them and pass. Sleeps, not CPU work, so a loaded 2-core machine does
/// not make this flaky: in parallel the phase takes about 3 s plus the exec overheads (about
/// 1.5 s on an idle 2-core machine, 8 s at a load average of 27).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_hosts_run_their_commands_at_the_same_time() {
    let servers = Sshd::start_many(20);
    let (wall, each) = sleep_everywhere(&servers).await;
    let serial = Duration::from_secs(3) * each.len() as u32;
    eprintln!("`sleep 3` on 20 hosts: wall {wall:?}, {serial:?} one after the other");
    assert!(
        each.iter().all(|d| *d >= Duration::from_secs(3)),
        "a host answered before its sleep ended: {each:?}"
    );
    assert!(
        wall.as_secs_f64() < 0.4 * serial.as_secs_f64(),
        "not parallel: wall `{wall:?}` is not below 40 % of `{serial:?}` (per host: {each:?})"
    );
}

/// Timing for the later no-op benchmark: `PGDEPLOY_BENCH_USER=bench cargo test --release
/// --test ssh_fanout -- --ignored --nocapture` (see `ssh_transport.rs` for the bench user).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_fifty_hosts() {
    let user = std::env::var("PGDEPLOY_BENCH_USER").unwrap_or_else(|_| "root".into());
    let servers = Sshd::start_many(50);
    for _ in 0..3 {
        let elapsed = fan_out(&servers, &user).await;
        eprintln!("connect + verify + auth + one exec on 50 hosts as `{user}`: {elapsed:?}");
    }
}
