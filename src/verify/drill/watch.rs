//! Watching for two writable primaries: every [`EVERY`], one round asks each member's
//! PostgreSQL directly (its own address and port, not the VIP) `pg_is_in_recovery()`, all
//! members at once. A member TCP cannot reach is asked through `pgdeploy lab exec` on a lab
//! (a partitioned leader is still running, and still matters), else it counts as unobserved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::timeout;
use tokio_postgres::Client;

use super::load::Target;

pub(crate) const EVERY: Duration = Duration::from_millis(200);
const ASK: Duration = Duration::from_secs(1);

/// One member to watch.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub member: String,
    /// Its inventory host (a lab's node name).
    pub host: String,
    pub address: String,
    pub port: u16,
}

/// One round: when it started (since the drill's start) and, per member in the order given,
/// `Some(true)` writable, `Some(false)` in recovery, `None` not reached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Round {
    pub at: Duration,
    pub writable: Vec<Option<bool>>,
}

async fn ask(client: &Client) -> Result<bool, String> {
    let row = timeout(ASK, client.query_one("SELECT pg_is_in_recovery()", &[]))
        .await
        .map_err(|_| "no answer".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(!row.get::<_, bool>(0))
}

/// `pg_is_in_recovery()` on a lab node through its own namespaces, over the local socket.
async fn ask_lab(lab: String, node: String) -> Option<bool> {
    let argv: Vec<String> = [
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-XAtc",
        "SELECT pg_is_in_recovery()",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = timeout(
        ASK * 3,
        tokio::task::spawn_blocking(move || pgdeploy_lab::exec_output(&lab, &node, &argv)),
    )
    .await
    .ok()?
    .ok()?
    .ok()?;
    match String::from_utf8_lossy(&out.stdout).trim() {
        "t" => Some(false),
        "f" => Some(true),
        _ => None,
    }
}

/// Rounds until `stop` turns true.
pub(crate) async fn run(
    target: Arc<Target>,
    members: Vec<Watched>,
    lab: Option<String>,
    start: Instant,
    mut stop: watch::Receiver<bool>,
) -> Vec<Round> {
    let targets: Vec<Target> = members
        .iter()
        .map(|m| target.at(&m.address, m.port))
        .collect();
    let mut clients: Vec<Option<Client>> = members.iter().map(|_| None).collect();
    let mut rounds = Vec::new();
    while !*stop.borrow() {
        let at = start.elapsed();
        let asked = futures::future::join_all(clients.iter_mut().enumerate().map(|(i, slot)| {
            let t = &targets[i];
            let lab = lab.clone();
            let node = members[i].host.clone();
            async move {
                if slot.is_none() {
                    *slot = t.connect().await.ok();
                }
                if let Some(c) = slot.as_ref() {
                    match ask(c).await {
                        Ok(w) => return Some(w),
                        Err(_) => *slot = None,
                    }
                }
                match lab {
                    Some(lab) => ask_lab(lab, node).await,
                    None => None,
                }
            }
        }))
        .await;
        rounds.push(Round {
            at,
            writable: asked,
        });
        let _ = timeout(EVERY, stop.changed()).await;
    }
    rounds
}
