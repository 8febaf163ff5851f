//! Many hosts at once: one connection each, opened concurrently, against real sshd servers on
//! 127.0.0.1 (see `support/sshd.rs`).

mod support;

use std::sync::Arc;
use std::time::Instant;

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
