//! The drill's write load through the VIP: one client, one transaction every [`PACE`], each
//! inserting the next sequence number into [`TABLE`] and counted only once its COMMIT is
//! acknowledged. A failed or stalled statement drops the connection; the client reconnects
//! after [`BACKOFF`], as an application's pool would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::timeout;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The drill's table: one row per acknowledged (or maybe committed) transaction of a run.
pub(crate) const TABLE: &str = "pgdeploy_drill";
/// Between two transactions: a light load (50 a second) that still times a gap to 20 ms.
pub(crate) const PACE: Duration = Duration::from_millis(20);
/// Before a new connection after a failure.
pub(crate) const BACKOFF: Duration = Duration::from_millis(100);
/// A statement (or a connection) that takes longer has failed: a powered-off host answers
/// nothing, and TCP would wait minutes.
pub(crate) const STALL: Duration = Duration::from_secs(2);

/// Where and as whom the drill connects (the password is a secret: never shown).
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub tls: MakeRustlsConnect,
}

impl Target {
    /// The same credentials towards another address (a member, directly).
    pub(crate) fn at(&self, host: &str, port: u16) -> Target {
        Target {
            host: host.to_string(),
            port,
            user: self.user.clone(),
            password: self.password.clone(),
            tls: self.tls.clone(),
        }
    }

    /// A TLS connection (`sslmode=require` with the CA-checking connector), its connection
    /// task spawned.
    pub(crate) async fn connect(&self) -> Result<Client, String> {
        let mut c = Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname("postgres")
            .application_name("pgdeploy-drill")
            .ssl_mode(SslMode::Require)
            .connect_timeout(STALL);
        let (client, connection) = match timeout(STALL, c.connect(self.tls.clone())).await {
            Ok(r) => r.map_err(|e| e.to_string())?,
            Err(_) => return Err(format!("no answer within {} s", STALL.as_secs())),
        };
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// One acknowledged commit: its sequence number, and when (since the drill started).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ack {
    pub seq: i64,
    pub at: Duration,
}

/// What the load did.
#[derive(Debug, Default)]
pub(crate) struct Load {
    pub acks: Vec<Ack>,
    /// Transactions tried (acknowledged or not).
    pub attempts: i64,
    /// Connections made (the first one included).
    pub connections: u32,
    /// The first failures (when, what), for the report.
    pub errors: Vec<(Duration, String)>,
}

/// The table, through `target` (before the load starts).
pub(crate) async fn create_table(target: &Target) -> Result<(), String> {
    let client = target.connect().await?;
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {TABLE} (run text NOT NULL, seq bigint NOT NULL, \
         at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (run, seq))"
    );
    timeout(STALL * 5, client.batch_execute(&sql))
        .await
        .map_err(|_| "creating the drill table: no answer".to_string())?
        .map_err(|e| format!("creating the drill table: {e}"))
}

/// Runs until `stop` turns true; `last_ack_ms` follows the time of the latest acknowledged
/// commit (ms since `start`, 0 before the first) for the drill to watch.
pub(crate) async fn run(
    target: Arc<Target>,
    run: String,
    start: Instant,
    last_ack_ms: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Load {
    let mut load = Load::default();
    let mut conn: Option<(Client, tokio_postgres::Statement)> = None;
    let insert = format!("INSERT INTO {TABLE} (run, seq) VALUES ($1, $2)");
    let mut seq: i64 = 0;
    let note = |load: &mut Load, e: String| {
        if load.errors.len() < 10 {
            load.errors.push((start.elapsed(), e));
        }
    };
    while !*stop.borrow() {
        let tick = Instant::now();
        if conn.is_none() {
            let made = async {
                let c = target.connect().await?;
                let s = timeout(STALL, c.prepare(&insert))
                    .await
                    .map_err(|_| "prepare: no answer".to_string())?
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((c, s))
            }
            .await;
            match made {
                Ok(c) => {
                    load.connections += 1;
                    conn = Some(c);
                }
                Err(e) => {
                    note(&mut load, e);
                    let _ = timeout(BACKOFF, stop.changed()).await;
                    continue;
                }
            }
        }
        let Some((client, statement)) = conn.as_mut() else {
            continue;
        };
        seq += 1;
        load.attempts += 1;
        let done = timeout(STALL, async {
            let tx = client.transaction().await?;
            tx.execute(&*statement, &[&run, &seq]).await?;
            tx.commit().await
        })
        .await;
        match done {
            Ok(Ok(())) => {
                let at = start.elapsed();
                load.acks.push(Ack { seq, at });
                last_ack_ms.store(at.as_millis() as u64, Ordering::SeqCst);
            }
            Ok(Err(e)) => {
                note(&mut load, e.to_string());
                conn = None;
                let _ = timeout(BACKOFF, stop.changed()).await;
                continue;
            }
            Err(_) => {
                note(&mut load, format!("no answer within {} s", STALL.as_secs()));
                conn = None;
                continue;
            }
        }
        if let Some(rest) = PACE.checked_sub(tick.elapsed()) {
            let _ = timeout(rest, stop.changed()).await;
        }
    }
    load
}

/// The sequence numbers of run `run` in the table, read on `target` (the new leader), and
/// whether that server is a primary.
pub(crate) async fn read_back(target: &Target, run: &str) -> Result<(Vec<i64>, bool), String> {
    let client = target.connect().await?;
    let rows = timeout(
        STALL * 5,
        client.query(&format!("SELECT seq FROM {TABLE} WHERE run = $1"), &[&run]),
    )
    .await
    .map_err(|_| "reading the drill's rows: no answer".to_string())?
    .map_err(|e| format!("reading the drill's rows: {e}"))?;
    let primary = timeout(
        STALL,
        client.query_one("SELECT NOT pg_is_in_recovery()", &[]),
    )
    .await
    .map_err(|_| "pg_is_in_recovery: no answer".to_string())?
    .map_err(|e| e.to_string())?
    .get::<_, bool>(0);
    if primary {
        // the run's rows served their purpose (the table stays for the next drill)
        let _ = timeout(
            STALL * 5,
            client.execute(&format!("DELETE FROM {TABLE} WHERE run = $1"), &[&run]),
        )
        .await;
    }
    Ok((rows.iter().map(|r| r.get::<_, i64>(0)).collect(), primary))
}
