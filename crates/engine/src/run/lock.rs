//! One `pgdeploy apply` at a time on a host. Two applies interleaving their steps on one
//! cluster (an operator and a CI job, say) could restart members in an order neither planned,
//! or undo each other's files; so `apply` holds every host's lock for the whole run, and a
//! second apply stops before changing anything, naming the host and who holds it.
//!
//! The lock is `flock(2)` on the directory `/run/lock/pgdeploy` (`/tmp/pgdeploy` where
//! `/run/lock` is not world-writable), held by a command that runs on the host for the whole
//! apply over the run's own connection: the kernel releases it when that command ends, which
//! it does when the apply releases it, and also when the workstation dies or the connection
//! drops (the command writes a byte every half second to the connection; once nobody reads,
//! the write ends it). So there is never a stale lock to clean up. The directory is sticky and
//! world-writable (1777), so applies logging in as different users see the same lock; locking
//! the directory itself creates no file another user would have to open (refused by
//! `fs.protected_regular`) and follows no planted link. Who holds it is written there
//! (`owner.RUN`, RUN the run's random name), for the refusal's message: two inventory hosts
//! of one run that are the same machine (two addresses or ports of one server, containers
//! sharing `/run`) find their own run's file and share the lock instead of refusing each
//! other. The shell that does all this is in `lock/*.sh`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use pgdeploy_core::transport::shell;
use pgdeploy_core::transport::{Become, ExecOutput, ExecRequest, Transport, TransportError};

/// `hold.sh`'s exit status when another run holds the lock (`flock -E 75`; `EX_TEMPFAIL`).
#[cfg(test)]
const BUSY: i32 = 75;
/// How long the holding command may run: past this, the transport ends it and the lock goes.
const HOLD_AT_MOST: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long taking a free lock may take before it is an error.
const TAKE_WITHIN: Duration = Duration::from_secs(20);
/// How long a held lock is watched for this run's own name before it is someone else's: a
/// host of this run that is the same machine as another (two addresses, two ports) took it a
/// moment ago and may not have written its name yet.
const OWN_GRACE_SECS: u64 = 2;

/// Where the lock lives on every host (tests give their own).
pub const DEFAULT_DIR: &str = "/run/lock";

/// Finds the lock's directory (`$D`) and the holding command's word (`$T`); every script
/// below starts with it.
const LOCATE: &str = include_str!("lock/locate.sh");
/// Takes the lock and holds it with [`HELD`] (see the script for how).
const HOLD: &str = include_str!("lock/hold.sh");
/// What runs under `flock`, the lock held.
const HELD: &str = include_str!("lock/held.sh");
/// Waits for the holding command's word.
const OUTCOME: &str = include_str!("lock/outcome.sh");
/// Ends a holding command.
const RELEASE: &str = include_str!("lock/release.sh");

/// `script` (after [`LOCATE`]) as one command line, its arguments quoted: `$1` the lock's
/// directory asked for, `$2` the holding command's tag, then `args`.
fn script(body: &str, at: &str, tag: &str, args: &[&str]) -> String {
    let head = [
        format!("{LOCATE}{body}"),
        "pgdeploy-lock".into(),
        at.into(),
        tag.into(),
    ];
    let argv: Vec<String> = ["sh".to_string(), "-c".to_string()]
        .into_iter()
        .chain(head)
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    shell::join(&argv)
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
    /// Hosts that are the same machine as a held one: this run holds their lock already.
    shared: usize,
}

struct Held {
    at: String,
    transport: Arc<dyn Transport>,
    tag: String,
    holder: JoinHandle<Result<ExecOutput, TransportError>>,
}

/// How taking one host's lock went.
enum Taken {
    Held(Held),
    /// The machine's lock is this run's already (through another of its hosts).
    Shared,
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

/// The command that takes the lock and holds it for run `run` (`owner`: who it is), trying a
/// held lock again for `wait` (and [`OWN_GRACE_SECS`]).
fn hold_script(at: &str, tag: &str, run: &str, owner: &str, wait: Duration) -> String {
    let seconds = (wait.as_secs() + OWN_GRACE_SECS).to_string();
    script(HOLD, at, tag, &[run, owner, &seconds, HELD])
}

/// Waits for the holding command's word, `steps` of 20 ms at most, and prints it.
fn outcome_script(at: &str, tag: &str, steps: u64) -> String {
    script(OUTCOME, at, tag, &[&steps.to_string()])
}

fn release_script(at: &str, tag: &str) -> String {
    script(RELEASE, at, tag, &[])
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
///
/// Two sessions per host: the holding command and the one that waits for its word; release
/// is a third.
pub async fn take(
    transports: &HashMap<String, Arc<dyn Transport>>,
    command: &str,
    at: &str,
    wait: Duration,
) -> Result<ApplyLocks, Vec<Refusal>> {
    let owner = owner(command);
    let run = shell::new_tag();
    let results = futures::future::join_all(
        transports
            .iter()
            .map(|(host, t)| acquire(host, t.clone(), at, &run, &owner, wait)),
    )
    .await;
    let mut locks = ApplyLocks {
        held: Vec::new(),
        shared: 0,
    };
    let mut refused = Vec::new();
    for r in results {
        match r {
            Ok(Taken::Held(h)) => locks.held.push(h),
            Ok(Taken::Shared) => locks.shared += 1,
            Err(e) => refused.push(e),
        }
    }
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
    run: &str,
    owner: &str,
    wait: Duration,
) -> Result<Taken, Refusal> {
    let tag = shell::new_tag();
    let t = transport.clone();
    let command = hold_script(at, &tag, run, owner, wait);
    let mut holder = tokio::spawn(async move { t.exec(&request(command, HOLD_AT_MOST)).await });
    let failed = |error: String| Refusal::Failed {
        host: host.to_string(),
        error,
    };
    let within = TAKE_WITHIN + wait + Duration::from_secs(OWN_GRACE_SECS);
    let ask = request(
        outcome_script(at, &tag, within.as_millis() as u64 / 20),
        within + Duration::from_secs(10),
    );
    let asker = transport.clone();
    let outcome = asker.exec(&ask);
    tokio::pin!(outcome);
    let asked = tokio::select! {
        out = &mut outcome => out,
        // The holding command ending first: it could not start (a transport error), or it
        // said why it did not hold the lock, which the wait is reading.
        ended = &mut holder => {
            let out = match ended {
                Err(e) => return Err(failed(format!("the lock's command panicked: {e}"))),
                Ok(Err(e)) => return Err(failed(e.to_string())),
                Ok(Ok(out)) => out,
            };
            let said = tokio::time::timeout(Duration::from_secs(5), &mut outcome)
                .await
                .ok()
                .and_then(|r| r.ok())
                .map(|o| word(&o.stdout))
                .unwrap_or_default();
            return judge(host, &said, &out);
        }
    };
    let said = match asked {
        Ok(o) => word(&o.stdout),
        Err(e) => {
            cancel(&transport, at, &tag, holder).await;
            return Err(failed(e.to_string()));
        }
    };
    if said.is_empty() {
        cancel(&transport, at, &tag, holder).await;
        return Err(failed(format!(
            "the lock was not taken within {} s",
            within.as_secs()
        )));
    }
    if said.starts_with("held ") {
        return Ok(Taken::Held(Held {
            at: at.to_string(),
            transport,
            tag,
            holder,
        }));
    }
    // Not held: the command has said why and is ending.
    match tokio::time::timeout(Duration::from_secs(10), &mut holder).await {
        Ok(Ok(Ok(out))) => judge(host, &said, &out),
        Ok(Ok(Err(e))) => Err(failed(e.to_string())),
        Ok(Err(e)) => Err(failed(format!("the lock's command panicked: {e}"))),
        Err(_) => {
            cancel(&transport, at, &tag, holder).await;
            Err(failed(format!(
                "the lock's command said `{said}` and did not end"
            )))
        }
    }
}

/// The holding command's word: the last line it printed (a login shell may print before it).
fn word(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string()
}

/// Ends a holding command that did not come to hold the lock for this run (or not in time):
/// released on the host if it holds it or comes to, as a held one is.
async fn cancel(
    transport: &Arc<dyn Transport>,
    at: &str,
    tag: &str,
    holder: JoinHandle<Result<ExecOutput, TransportError>>,
) {
    Held {
        at: at.to_string(),
        transport: transport.clone(),
        tag: tag.to_string(),
        holder,
    }
    .release()
    .await;
}

/// What the holding command's word means once it has ended without holding the lock.
fn judge(host: &str, said: &str, out: &ExecOutput) -> Result<Taken, Refusal> {
    if said == "shared" {
        return Ok(Taken::Shared);
    }
    if let Some(who) = said.strip_prefix("busy") {
        let who = who.trim();
        return Err(Refusal::Busy {
            host: host.to_string(),
            held_by: if who.is_empty() {
                "unknown".into()
            } else {
                who.to_string()
            },
        });
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    Err(Refusal::Failed {
        host: host.to_string(),
        error: match said.strip_prefix("failed: ") {
            Some(why) => why.to_string(),
            None if said.starts_with("held ") => format!(
                "the lock's command ended as soon as it held the lock (status {}; the connection closed?)",
                out.status
            ),
            None if stderr.is_empty() => {
                format!("the lock's command ended with status {}", out.status)
            }
            None => format!(
                "the lock's command ended with status {}: {stderr}",
                out.status
            ),
        },
    })
}

impl Held {
    /// Ends the holding command (the lock goes with it) and waits for it, a few seconds at
    /// most: a host that cannot be reached any more releases its lock when its connection is
    /// gone.
    async fn release(self) {
        let _ = self
            .transport
            .exec(&request(
                release_script(&self.at, &self.tag),
                Duration::from_secs(10),
            ))
            .await;
        let mut holder = self.holder;
        if tokio::time::timeout(Duration::from_secs(5), &mut holder)
            .await
            .is_err()
        {
            holder.abort();
        }
    }
}

impl ApplyLocks {
    /// Ends every holding command ([`Held::release`]), all at once.
    pub async fn release(self) {
        futures::future::join_all(self.held.into_iter().map(Held::release)).await;
    }

    /// How many hosts are held.
    pub fn len(&self) -> usize {
        self.held.len() + self.shared
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.shared == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdeploy_core::transport::LocalTransport;
    use std::time::Instant;

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

    /// A directory like `/run/lock`: world-writable and sticky.
    fn lock_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            d.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        d
    }

    /// The files left in the lock's directory.
    fn left(at: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(format!("{at}/pgdeploy"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// What the holding command `tag` said, once it said something.
    fn word(at: &str, tag: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(w) = std::fs::read_to_string(format!("{at}/pgdeploy/apply.{tag}")) {
                return w.trim().to_string();
            }
            assert!(Instant::now() < deadline, "`{tag}` never said anything");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the holding command `tag` said, read as `acquire` reads it (which removes it).
    fn said(at: &str, tag: &str) -> String {
        String::from_utf8_lossy(&run(&outcome_script(at, tag, 500)).stdout)
            .trim()
            .to_string()
    }

    fn wait_held(at: &str, tag: &str) {
        let w = word(at, tag);
        assert!(w.starts_with("held "), "{w}");
    }

    /// A holding command for run `run`, started and holding the lock.
    fn holding(at: &str, tag: &str, run: &str, owner: &str, wait: u64) -> std::process::Child {
        let child = spawn(&hold_script(at, tag, run, owner, Duration::from_secs(wait)));
        wait_held(at, tag);
        child
    }

    #[test]
    fn another_run_is_refused_naming_the_holder_the_same_run_shares_it_and_it_goes_with_its_holder()
    {
        assert!(
            !run("command -v flock").stdout.is_empty(),
            "flock (util-linux) is needed"
        );
        let d = lock_dir();
        let at = d.path().to_str().unwrap();
        let mut first = holding(at, "t1", "run-1", "alice@ws (pid 1) since now", 0);
        // another run: refused, naming the holder
        let second = run(&hold_script(at, "t2", "run-2", "bob", Duration::ZERO));
        assert_eq!(second.status.code(), Some(BUSY));
        assert_eq!(said(at, "t2"), "busy alice@ws (pid 1) since now");
        // the same run through another host of the same machine: its own lock, not waited for
        let same = run(&hold_script(
            at,
            "t5",
            "run-1",
            "alice",
            Duration::from_secs(60),
        ));
        assert_eq!(same.status.code(), Some(0));
        assert_eq!(said(at, "t5"), "shared");
        // released: a third takes it, waiting for it if need be
        run(&release_script(at, "t1"));
        let _ = first.wait();
        assert!(!std::path::Path::new(&format!("{at}/pgdeploy/apply.t1")).exists());
        let mut third = holding(at, "t3", "run-3", "carol", 5);
        // its reader gone (the workstation died, the connection dropped): the holder ends
        // within a second, the lock with it
        drop(third.stdout.take());
        let _ = third.wait().unwrap();
        let mut fourth = holding(at, "t4", "run-4", "dave", 5);
        run(&release_script(at, "t4"));
        let _ = fourth.wait();
        assert_eq!(left(at), Vec::<String>::new(), "nothing left behind");
    }

    #[test]
    fn a_release_before_the_lock_is_held_cancels_it_and_a_foreign_pid_is_never_killed() {
        let d = lock_dir();
        let at = d.path().to_str().unwrap();
        run(&release_script(at, "early"));
        let late = run(&hold_script(at, "early", "run-1", "x", Duration::ZERO));
        assert_eq!(late.status.code(), Some(0), "{late:?}");
        // a word naming another process (planted, or stale): that process lives on
        let mut other = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(
            format!("{at}/pgdeploy/apply.forged"),
            format!("held {}\n", other.id()),
        )
        .unwrap();
        run(&release_script(at, "forged"));
        assert!(
            other.try_wait().unwrap().is_none(),
            "a foreign pid was killed"
        );
        let _ = other.kill();
        let _ = other.wait();
        // its cancel stays: no holder of that tag ever came to read it
        assert_eq!(left(at), vec!["apply.forged.cancel".to_string()]);
    }

    #[test]
    fn a_lock_directory_that_is_not_world_writable_means_tmp_for_every_user() {
        let d = tempfile::tempdir().unwrap();
        let at = d.path().to_str().unwrap();
        let out = run(&script("echo \"$D\"", at, "t", &[]));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "/tmp/pgdeploy");
        let d = lock_dir();
        let at = d.path().to_str().unwrap();
        let out = run(&script("echo \"$D\"", at, "t", &[]));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{at}/pgdeploy")
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(format!("{at}/pgdeploy"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o7777, 0o1777);
    }

    /// Operators log in as different users: each one's apply takes the lock after the
    /// other's, whoever created its files (as root: `nobody` through `runuser`). Run with
    /// `sysctl fs.protected_regular=1` (a systemd host's value, which this machine lacks) it
    /// passes; the lock file in `/run/lock` itself failed there (`flock`'s exit 66).
    #[test]
    fn users_take_it_in_turn() {
        use std::os::unix::fs::MetadataExt as _;
        if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
            // not root: there is no second user to be
            return;
        }
        let d = lock_dir();
        let at = d.path().to_str().unwrap();
        // like /run/lock: world-writable and sticky
        std::fs::set_permissions(
            d.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )
        .unwrap();
        let as_nobody = |script: &str| {
            std::process::Command::new("runuser")
                .args(["-u", "nobody", "--", "sh", "-c", script])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        for (i, nobody) in [true, false, true, false].into_iter().enumerate() {
            let tag = format!("u{i}");
            let script = hold_script(at, &tag, &format!("run-{i}"), "op", Duration::ZERO);
            let mut holder = if nobody {
                as_nobody(&script)
            } else {
                spawn(&script)
            };
            let w = word(at, &tag);
            assert!(w.starts_with("held "), "turn {i} (nobody: {nobody}): {w}");
            run(&release_script(at, &tag));
            let _ = holder.wait();
        }
    }

    #[tokio::test]
    async fn take_and_release_over_a_transport() {
        let d = lock_dir();
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
        assert_eq!(left(at), Vec::<String>::new(), "nothing left behind");
    }

    #[tokio::test]
    async fn two_hosts_of_one_run_on_the_same_machine_share_its_lock() {
        let d = lock_dir();
        let at = d.path().to_str().unwrap();
        let hosts: HashMap<String, Arc<dyn Transport>> = ["db1", "db2", "db3"]
            .iter()
            .map(|h| {
                let t: Arc<dyn Transport> = Arc::new(LocalTransport::new(*h));
                (h.to_string(), t)
            })
            .collect();
        let locks = take(&hosts, "apply", at, Duration::ZERO)
            .await
            .expect("one machine, one run");
        assert_eq!((locks.held.len(), locks.shared), (1, 2));
        let one = HashMap::from([("db1".to_string(), hosts["db1"].clone())]);
        assert!(take(&one, "apply", at, Duration::ZERO).await.is_err());
        locks.release().await;
        take(&one, "apply", at, Duration::ZERO)
            .await
            .expect("free again")
            .release()
            .await;
        assert_eq!(left(at), Vec::<String>::new(), "nothing left behind");
    }
}
