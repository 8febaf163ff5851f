//! One `pgdeploy apply` at a time on a host. Two applies interleaving their steps on one
//! cluster (an operator and a CI job, say) could restart members in an order neither planned,
//! or undo each other's files; so `apply` holds every host's lock for the whole run, and a
//! second apply stops before changing anything, naming the host and who holds it.
//!
//! The lock is `flock(2)` on `/run/lock/pgdeploy-apply.lock` (`/tmp` where `/run/lock` is
//! missing), held by a command that runs on the host for the whole apply over the run's own
//! connection: the kernel releases it when that command ends, which it does when the apply
//! releases it, and also when the workstation dies or the connection drops (the command
//! writes a byte every half second to the connection; once nobody reads, the write ends it). So there
//! is never a stale lock to clean up. `/run/lock` is writable by every user (mode 1777), so
//! applies logging in as different users see the same lock. Who holds it is written beside
//! it (`pgdeploy-apply.owner`), for the refusal's message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use pgdeploy_core::transport::shell::quote;
use pgdeploy_core::transport::{Become, ExecOutput, ExecRequest, Transport, TransportError};

/// `flock`'s exit status when the lock is held by someone else (`-E`; `EX_TEMPFAIL`).
const BUSY: i32 = 75;
/// How long the holding command may run: past this, the transport ends it and the lock goes.
const HOLD_AT_MOST: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long taking a free lock may take before it is an error.
const TAKE_WITHIN: Duration = Duration::from_secs(20);

/// Where the lock lives on every host (tests give their own).
pub const DEFAULT_DIR: &str = "/run/lock";

/// The shell that finds the lock's directory (`$L`): `dir`, or `/tmp` where it is missing.
fn dir(dir: &str) -> String {
    format!(
        "L={}; {{ [ -d \"$L\" ] && [ -w \"$L\" ]; }} || L=/tmp; ",
        quote(dir)
    )
}

/// Why a host's lock was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Another apply holds it: who (as it wrote itself down).
    Busy { host: String, held_by: String },
    /// The lock could not be taken (no `flock`, the connection failed, …).
    Failed { host: String, error: String },
}

/// The locks of a run, released together.
pub struct ApplyLocks {
    held: Vec<Held>,
}

struct Held {
    at: String,
    transport: Arc<dyn Transport>,
    tag: String,
    holder: JoinHandle<Result<ExecOutput, TransportError>>,
}

/// Who this run is, as another run's refusal shows it: `` `pgdeploy apply` by
/// user@workstation (pid N) since TIME``.
pub fn owner(command: &str) -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // No login variables (a service, `sudo -i` with a bare environment): the uid.
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .and_then(|l| l.split_whitespace().next().map(|u| format!("uid {u}")))
                })
                .unwrap_or_else(|| "unknown".into())
        });
    let workstation = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let since = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        "`pgdeploy {command}` by {user}@{workstation} (pid {}) since {since}",
        std::process::id()
    )
}

/// The command that holds the lock: `flock -n` (refuse at once) or `-w WAIT`; `-o` so only
/// `flock` holds it, not the loop below it (a killed loop would otherwise leave its `sleep`
/// holding the lock a second longer). Once held: who holds it written down, the loop's pid
/// in `pgdeploy-apply.TAG` (what the engine waits for, and what release kills), then a byte
/// every half second until that write fails.
fn hold_script(at: &str, tag: &str, owner: &str, wait: Duration) -> String {
    let how = if wait.is_zero() {
        "-n".to_string()
    } else {
        format!("-w {}", wait.as_secs().max(1))
    };
    format!(
        "{}umask 000; exec flock {how} -o -E {BUSY} \"$L/pgdeploy-apply.lock\" sh -c \
         'printf \"%s\\n\" \"$3\" > \"$1/pgdeploy-apply.owner\" 2>/dev/null; \
         echo $$ > \"$1/pgdeploy-apply.$2\" || exit 1; \
         while printf .; do sleep 0.5; done' holder \"$L\" {} {}",
        dir(at),
        quote(tag),
        quote(owner)
    )
}

/// The pid the holding command wrote once it held the lock (empty: not yet).
fn held_script(at: &str, tag: &str) -> String {
    format!(
        "{}cat \"$L/pgdeploy-apply.\"{} 2>/dev/null; true",
        dir(at),
        quote(tag)
    )
}

fn owner_script(at: &str) -> String {
    format!(
        "{}cat \"$L/pgdeploy-apply.owner\" 2>/dev/null; true",
        dir(at)
    )
}

fn release_script(at: &str, tag: &str) -> String {
    let f = format!("\"$L/pgdeploy-apply.\"{}", quote(tag));
    format!(
        "{}p=$(cat {f} 2>/dev/null); rm -f {f}; \
         if [ -n \"$p\" ]; then kill \"$p\" 2>/dev/null; fi; true",
        dir(at)
    )
}

fn request(command: String, timeout: Duration) -> ExecRequest {
    ExecRequest {
        command,
        stdin: None,
        become_: Become::No,
        timeout: Some(timeout),
    }
}

/// Takes the lock of every host at once. `Err`: the refusals, every lock taken meanwhile
/// released.
/// `command`: what holds them (`apply`, `switchover`, …), for another run's refusal; `at`:
/// the lock's directory ([`DEFAULT_DIR`]); `wait`: how long a held lock is waited for (zero:
/// refused at once).
pub async fn take(
    transports: &HashMap<String, Arc<dyn Transport>>,
    command: &str,
    at: &str,
    wait: Duration,
) -> Result<ApplyLocks, Vec<Refusal>> {
    let owner = owner(command);
    let results = futures::future::join_all(
        transports
            .iter()
            .map(|(host, t)| acquire(host, t.clone(), at, &owner, wait)),
    )
    .await;
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for r in results {
        match r {
            Ok(h) => held.push(h),
            Err(e) => refused.push(e),
        }
    }
    let locks = ApplyLocks { held };
    if refused.is_empty() {
        Ok(locks)
    } else {
        locks.release().await;
        refused.sort_by(|a, b| host_of(a).cmp(host_of(b)));
        Err(refused)
    }
}

fn host_of(r: &Refusal) -> &str {
    match r {
        Refusal::Busy { host, .. } | Refusal::Failed { host, .. } => host,
    }
}

async fn acquire(
    host: &str,
    transport: Arc<dyn Transport>,
    at: &str,
    owner: &str,
    wait: Duration,
) -> Result<Held, Refusal> {
    let tag = pgdeploy_core::transport::shell::new_tag();
    let t = transport.clone();
    let command = hold_script(at, &tag, owner, wait);
    let mut holder = tokio::spawn(async move { t.exec(&request(command, HOLD_AT_MOST)).await });
    let failed = |error: String| Refusal::Failed {
        host: host.to_string(),
        error,
    };
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if holder.is_finished() {
            let out = (&mut holder)
                .await
                .map_err(|e| failed(format!("the lock's command panicked: {e}")))?
                .map_err(|e| failed(e.to_string()))?;
            if out.status == BUSY {
                let who = transport
                    .exec(&request(owner_script(at), Duration::from_secs(30)))
                    .await
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .unwrap_or_default();
                return Err(Refusal::Busy {
                    host: host.to_string(),
                    held_by: if who.is_empty() {
                        "unknown".into()
                    } else {
                        who
                    },
                });
            }
            return Err(failed(format!(
                "the lock's command ended with status {}: {}",
                out.status,
                pgdeploy_core::transport::shell::stderr_text(&out.stderr)
            )));
        }
        let out = transport
            .exec(&request(held_script(at, &tag), Duration::from_secs(30)))
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !String::from_utf8_lossy(&out.stdout).trim().is_empty() {
            return Ok(Held {
                at: at.to_string(),
                transport,
                tag,
                holder,
            });
        }
        if started.elapsed() >= TAKE_WITHIN + wait {
            holder.abort();
            return Err(failed(format!(
                "the lock was not taken within {} s",
                (TAKE_WITHIN + wait).as_secs()
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

impl ApplyLocks {
    /// Ends every holding command (the locks go with them) and waits for them, a few seconds
    /// at most: a host that cannot be reached any more releases its lock when its connection
    /// is gone.
    pub async fn release(self) {
        futures::future::join_all(self.held.into_iter().map(|h| async move {
            let _ = h
                .transport
                .exec(&request(
                    release_script(&h.at, &h.tag),
                    Duration::from_secs(10),
                ))
                .await;
            let mut holder = h.holder;
            if tokio::time::timeout(Duration::from_secs(5), &mut holder)
                .await
                .is_err()
            {
                holder.abort();
            }
        }))
        .await;
    }

    /// How many hosts are held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdeploy_core::transport::LocalTransport;

    fn run(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    }

    fn spawn(script: &str) -> std::process::Child {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn wait_held(at: &str, tag: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while run(&held_script(at, tag)).stdout.is_empty() {
            assert!(Instant::now() < deadline, "`{tag}` never held the lock");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_second_holder_is_refused_with_who_holds_it_and_the_lock_goes_with_its_holder() {
        assert!(
            !run("command -v flock").stdout.is_empty(),
            "flock (util-linux) is needed"
        );
        let d = tempfile::tempdir().unwrap();
        let at = d.path().to_str().unwrap();
        let mut first = spawn(&hold_script(
            at,
            "t1",
            "alice@ws (pid 1) since now",
            Duration::ZERO,
        ));
        wait_held(at, "t1");
        let second = run(&hold_script(at, "t2", "bob", Duration::ZERO));
        assert_eq!(second.status.code(), Some(BUSY));
        assert_eq!(
            String::from_utf8_lossy(&run(&owner_script(at)).stdout).trim(),
            "alice@ws (pid 1) since now"
        );
        // released: a third takes it, waiting for it if need be
        run(&release_script(at, "t1"));
        let _ = first.wait();
        let mut third = spawn(&hold_script(at, "t3", "carol", Duration::from_secs(5)));
        wait_held(at, "t3");
        // its reader gone (the workstation died, the connection dropped): the holder ends
        // within a second, the lock with it
        drop(third.stdout.take());
        assert!(!third.wait().unwrap().success());
        let mut fourth = spawn(&hold_script(at, "t4", "dave", Duration::from_secs(5)));
        wait_held(at, "t4");
        run(&release_script(at, "t4"));
        let _ = fourth.wait();
    }

    #[tokio::test]
    async fn take_and_release_over_a_transport() {
        let d = tempfile::tempdir().unwrap();
        let at = d.path().to_str().unwrap();
        let t: Arc<dyn Transport> = Arc::new(LocalTransport::new("here"));
        let hosts = HashMap::from([("here".to_string(), t)]);
        let locks = take(&hosts, "apply", at, Duration::ZERO)
            .await
            .expect("a free lock");
        assert_eq!(locks.len(), 1);
        // held: a second run is refused, naming this process
        match take(&hosts, "apply", at, Duration::ZERO).await {
            Err(r) => match &r[0] {
                Refusal::Busy { host, held_by } => {
                    assert_eq!(host, "here");
                    assert!(
                        held_by.contains(&format!("(pid {})", std::process::id())),
                        "{held_by}"
                    );
                }
                other => panic!("{other:?}"),
            },
            Ok(_) => panic!("taken twice"),
        }
        locks.release().await;
        let again = take(&hosts, "apply", at, Duration::ZERO)
            .await
            .expect("free again");
        again.release().await;
    }
}
