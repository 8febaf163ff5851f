//! Read-ahead: the read-only commands of a host's coming steps, run in one round trip.
//!
//! A no-op run is all reads: every step asks the host what is there and finds it right. One
//! SSH exec per step makes the remote shell start, the channel open and close, and the
//! client wait, twenty times for twenty tasks; on many hosts that is most of a run's cost.
//! Modules declare the commands their `plan` will run ([`pgdeploy_core::module::Action::probes`]);
//! before a step plans, [`ReadAhead::prefetch`] runs the probes of that step and of the host's
//! following steps in one script, and keeps the answers. `plan` then runs as usual through
//! [`ReadAhead`] (a [`Transport`]), which answers a request identical to a probe from what it
//! kept.
//!
//! Why the answers stay true: a host's steps run one after the other, and what this run does
//! to the host goes through its transport. Every exec that is not a declared probe, and every
//! write, first drops all answers; so does the executor before a step applies. Other hosts
//! can change shared state too (a cluster, a shared disk), so answers never cross a wait on
//! other hosts: a read-ahead stops before the first step that waits for another host (a
//! barrier, `wait_for`, a first-host order, the next play: [`StepProbes::fence`]), and the
//! executor drops the answers when such a step starts. Between two such waits, what a step
//! sees is what it would have read itself, unless something outside the run changed the host
//! in between; modules leave reads that change on their own out of their probes.
//!
//! Should a batch fail (a `sudo` refused, a lost link, output that does not parse), nothing
//! is kept, read-ahead stops for that host, and each step runs its probes itself, reporting
//! its own errors.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use petgraph::graph::NodeIndex;

use pgdeploy_core::module::{Batcher, Probe};
use pgdeploy_core::transport::shell::new_tag;
use pgdeploy_core::transport::{
    Become, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};

/// A batch takes following steps' probes while it holds fewer than this many (the asking
/// step's always go in): enough for a long play, few enough that one batch never makes a step
/// wait long.
const MAX_AHEAD: usize = 200;

/// One step's probes, as the engine will run them.
#[derive(Debug, Clone)]
pub struct StepProbes {
    pub node: NodeIndex,
    pub become_: Become,
    pub probes: Vec<Probe>,
    /// This step, or a step of the host since the previous one with probes, waits for other
    /// hosts: no read-ahead from before that wait reaches it.
    pub fence: bool,
}

/// A probe as the host runs it: privilege and command.
pub(super) type Key = (Become, String);

/// One command of a batch: a probe run as it is, or probes of one kind answered together.
enum Unit {
    Alone(String),
    Together {
        batcher: &'static dyn Batcher,
        items: Vec<String>,
        commands: Vec<String>,
    },
}

impl Unit {
    fn command(&self) -> String {
        match self {
            Unit::Alone(command) => command.clone(),
            Unit::Together { batcher, items, .. } => batcher.script(items),
        }
    }
}

/// The units answering `probes`: those with a batcher grouped by it, in first-seen order.
fn units(probes: Vec<Probe>) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for probe in probes {
        let Some(group) = probe.group else {
            units.push(Unit::Alone(probe.command));
            continue;
        };
        let same = units.iter_mut().find_map(|u| match u {
            Unit::Together {
                batcher,
                items,
                commands,
            } if batcher.name() == group.batcher.name() => Some((items, commands)),
            _ => None,
        });
        match same {
            Some((items, commands)) => {
                items.push(group.item);
                commands.push(probe.command);
            }
            None => units.push(Unit::Together {
                batcher: group.batcher,
                items: vec![group.item],
                commands: vec![probe.command],
            }),
        }
    }
    units
}

/// A host's transport with the answers to probes run ahead of the steps that need them.
pub(super) struct ReadAhead {
    inner: Arc<dyn Transport>,
    /// The host's steps that declare probes, in the order they run.
    steps: Vec<StepProbes>,
    /// Every probe those steps declared: read-only, so running one changes nothing.
    declared: HashSet<Key>,
    kept: Mutex<Kept>,
    /// Set when a batch failed: no more batches for this host.
    off: AtomicBool,
}

/// What the batches found out.
#[derive(Default)]
struct Kept {
    answers: HashMap<Key, ExecOutput>,
    /// Probes a batcher could not answer: left to the step, not batched again.
    alone: HashSet<Key>,
}

impl ReadAhead {
    pub(super) fn new(inner: Arc<dyn Transport>, steps: Vec<StepProbes>) -> Self {
        let declared = steps
            .iter()
            .flat_map(|s| {
                s.probes
                    .iter()
                    .map(|p| (s.become_.clone(), p.command.clone()))
            })
            .collect();
        ReadAhead {
            inner,
            steps,
            declared,
            kept: Mutex::new(Kept::default()),
            off: AtomicBool::new(false),
        }
    }

    /// What is kept. A panic while the lock was held left at worst a partial map of correct
    /// answers, so a poisoned lock is still usable.
    fn kept(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every kept answer: the host may be about to change.
    pub(super) fn forget(&self) {
        let mut kept = self.kept();
        kept.answers.clear();
        kept.alone.clear();
    }

    /// Makes sure the probes of step `node` are answered, running them with those of the
    /// following steps in one round trip per privilege when some are not.
    pub(super) async fn prefetch(&self, node: NodeIndex) {
        if self.off.load(Ordering::Relaxed) {
            return;
        }
        let Some(at) = self.steps.iter().position(|s| s.node == node) else {
            return;
        };
        let wanted: Vec<(Become, Probe)> = {
            let kept = self.kept();
            let missing = |s: &StepProbes| {
                s.probes
                    .iter()
                    .filter(|p| {
                        let key = (s.become_.clone(), p.command.clone());
                        !kept.answers.contains_key(&key) && !kept.alone.contains(&key)
                    })
                    .map(|p| (s.become_.clone(), p.clone()))
                    .collect::<Vec<_>>()
            };
            let mut wanted = missing(&self.steps[at]);
            if wanted.is_empty() {
                return;
            }
            for s in &self.steps[at + 1..] {
                if wanted.len() >= MAX_AHEAD || s.fence {
                    break;
                }
                wanted.extend(missing(s));
            }
            let mut seen = HashSet::new();
            wanted.retain(|(b, p)| seen.insert((b.clone(), p.command.clone())));
            wanted
        };
        let mut by_become: Vec<(Become, Vec<Probe>)> = Vec::new();
        for (become_, probe) in wanted {
            match by_become.iter_mut().find(|(b, _)| *b == become_) {
                Some((_, probes)) => probes.push(probe),
                None => by_become.push((become_, vec![probe])),
            }
        }
        for (become_, probes) in by_become {
            let batch = Batch::new(become_.clone(), probes);
            let req = ExecRequest {
                command: batch.script(),
                stdin: None,
                become_,
                timeout: None,
            };
            let found = match self.inner.exec(&req).await {
                Ok(out) => batch.read(&out),
                Err(_) => None,
            };
            match found {
                Some(found) => self.keep(found),
                None => {
                    // The next batch would fail the same way: the steps read for themselves.
                    tracing::debug!(
                        host = self.inner.host(),
                        "probe batch failed: read-ahead off"
                    );
                    self.off.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Keeps what a batch found: answers, and probes left to their step.
    pub(super) fn keep(&self, found: Vec<Found>) {
        let mut kept = self.kept();
        for (key, answer) in found {
            match answer {
                Some(answer) => {
                    kept.answers.insert(key, answer);
                }
                None => {
                    kept.alone.insert(key);
                }
            }
        }
    }
}

/// What a batch found for one probe: its answer, or `None` when its batcher left it to the
/// step.
pub(super) type Found = (Key, Option<ExecOutput>);

/// Probes to run in one command with one privilege.
pub struct Batch {
    become_: Become,
    units: Vec<Unit>,
    boundary: String,
}

impl Batch {
    pub fn new(become_: Become, probes: Vec<Probe>) -> Self {
        Batch {
            become_,
            units: units(probes),
            boundary: format!("{}{}", new_tag(), new_tag()),
        }
    }

    /// The first probes of `steps` (in order, at most [`MAX_AHEAD`], each once) that run
    /// with `become_`, up to the first step that waits for other hosts.
    pub fn ahead(become_: &Become, steps: &[StepProbes]) -> Self {
        let mut seen = HashSet::new();
        let probes: Vec<Probe> = steps
            .iter()
            .take_while(|s| !s.fence)
            .filter(|s| s.become_ == *become_)
            .flat_map(|s| s.probes.iter())
            .filter(|p| seen.insert(p.command.clone()))
            .take(MAX_AHEAD)
            .cloned()
            .collect();
        Batch::new(become_.clone(), probes)
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The shell script that runs every probe (see [`batch_script`]).
    pub fn script(&self) -> String {
        let commands: Vec<String> = self.units.iter().map(Unit::command).collect();
        batch_script(&commands, &self.boundary)
    }

    /// What the script's output says of each probe; `None` when it does not parse.
    pub fn read(self, out: &ExecOutput) -> Option<Vec<Found>> {
        let outputs = parse_batch(out, &self.boundary, self.units.len())?;
        let become_ = self.become_;
        let mut found = Vec::new();
        for (unit, output) in self.units.into_iter().zip(outputs) {
            match unit {
                Unit::Alone(command) => found.push(((become_.clone(), command), Some(output))),
                Unit::Together {
                    batcher,
                    items,
                    commands,
                } => {
                    let split = batcher.split(&items, &output);
                    for (command, answer) in commands.into_iter().zip(split) {
                        found.push(((become_.clone(), command), answer));
                    }
                }
            }
        }
        Some(found)
    }

    /// A marker no output of this batch contains, for a caller that runs something else
    /// before the batch in the same command.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }
}

#[async_trait]
impl Transport for ReadAhead {
    fn host(&self) -> &str {
        self.inner.host()
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        if req.stdin.is_none() && req.timeout.is_none() {
            let key = (req.become_.clone(), req.command.clone());
            if let Some(out) = self.kept().answers.get(&key) {
                return Ok(out.clone());
            }
            // A declared probe that the batch could not answer (a batcher leaves symbolic
            // links to their own probe): it only reads, so the other answers stay true.
            if self.declared.contains(&key) {
                let out = self.inner.exec(req).await?;
                self.kept().answers.insert(key, out.clone());
                return Ok(out);
            }
        }
        self.forget();
        self.inner.exec(req).await
    }

    async fn read_file(
        &self,
        path: &str,
        become_: &Become,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.inner.read_file(path, become_).await
    }

    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        become_: &Become,
    ) -> Result<(), TransportError> {
        self.forget();
        self.inner.write_file(path, content, attrs, become_).await
    }

    async fn close(&self) {
        self.inner.close().await
    }
}

/// One POSIX shell script running `commands` one after the other, each in a subshell (so its
/// `exit` ends only itself) with stdin from `/dev/null`, as `/bin/sh -c` would run it alone.
///
/// Each command's output is framed in both streams, with shell builtins only (no process but
/// the subshell per command): on stdout, a line `--BOUNDARY`, its stdout, a newline and a line
/// `--BOUNDARY STATUS`; on stderr, a line `--BOUNDARY`, its stderr and a newline. `boundary`
/// is random per batch, so nothing a probe prints can fake a frame.
pub(super) fn batch_script(commands: &[String], boundary: &str) -> String {
    let mut s = String::new();
    for command in commands {
        s.push_str(&format!(
            "echo '--{boundary}'; echo '--{boundary}' >&2
(
"
        ));
        s.push_str(command);
        s.push_str(&format!(
            "\n) </dev/null\npgdeploy_rc=$?; echo; echo \"--{boundary} $pgdeploy_rc\"; echo >&2\n"
        ));
    }
    s
}

/// The outputs of a [`batch_script`] run, in order; `None` unless the batch ran to the end and
/// printed exactly `count` well-formed frames on both streams. What the login shell printed
/// before the first frame (a locale warning, a banner) is skipped.
pub(super) fn parse_batch(
    out: &ExecOutput,
    boundary: &str,
    count: usize,
) -> Option<Vec<ExecOutput>> {
    if out.status != 0 {
        return None;
    }
    let open = format!("--{boundary}\n");
    let close = format!("\n--{boundary} ");
    let next = format!("\n--{boundary}\n");
    let mut stdout: &[u8] = &out.stdout;
    let mut stderr: &[u8] = &out.stderr;
    if count > 0 {
        stdout = &stdout[find(stdout, open.as_bytes())?..];
        stderr = &stderr[find(stderr, open.as_bytes())?..];
    }
    let mut outputs = Vec::with_capacity(count);
    for i in 0..count {
        stdout = stdout.strip_prefix(open.as_bytes())?;
        let end = find(stdout, close.as_bytes())?;
        let text = stdout[..end].to_vec();
        stdout = &stdout[end + close.len()..];
        let eol = stdout.iter().position(|&b| b == b'\n')?;
        let status: i32 = std::str::from_utf8(&stdout[..eol]).ok()?.parse().ok()?;
        stdout = &stdout[eol + 1..];

        stderr = stderr.strip_prefix(open.as_bytes())?;
        // Stderr runs to the next frame (or the end), less the newline the script added.
        let end = if i + 1 == count {
            stderr.len()
        } else {
            find(stderr, next.as_bytes())? + 1
        };
        let errors = stderr[..end].strip_suffix(b"\n")?.to_vec();
        stderr = &stderr[end..];
        outputs.push(ExecOutput {
            status,
            stdout: text,
            stderr: errors,
        });
    }
    (stdout.is_empty() && stderr.is_empty()).then_some(outputs)
}

/// Where `needle` first occurs in `haystack`.
pub(super) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgdeploy_core::transport::LocalTransport;

    fn probes() -> Vec<String> {
        vec![
            "printf 'no newline'".into(),
            "echo out; echo err >&2; exit 3".into(),
            "printf 'a\\0b\\n\\n'".into(),
            "cat /nonexistent/file".into(),
            "true".into(),
            // Reads stdin: must get /dev/null, not the rest of the script.
            "cat; echo after".into(),
        ]
    }

    #[tokio::test]
    async fn a_batch_answers_each_probe_as_running_it_alone_would() {
        let local = LocalTransport::new("here");
        let boundary = format!("{}{}", new_tag(), new_tag());
        let commands = probes();
        let out = local
            .exec(&ExecRequest {
                command: batch_script(&commands, &boundary),
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        let batched = parse_batch(&out, &boundary, commands.len()).expect("parses");
        for (command, got) in commands.iter().zip(batched) {
            let alone = local
                .exec(&ExecRequest {
                    command: format!("{command} </dev/null"),
                    ..ExecRequest::default()
                })
                .await
                .unwrap();
            assert_eq!(got, alone, "{command}");
        }
    }

    #[test]
    fn truncated_or_failed_batches_are_refused() {
        let out = |stdout: &[u8], stderr: &[u8], status| ExecOutput {
            status,
            stdout: stdout.to_vec(),
            stderr: stderr.to_vec(),
        };
        let b = "B";
        let (o, e) = (
            &b"--B\nx\n--B 0\n--B\n\n--B 1\n"[..],
            &b"--B\n\n--B\nerr\n\n"[..],
        );
        let parsed = parse_batch(&out(o, e, 0), b, 2).unwrap();
        assert_eq!(
            (&parsed[0].stdout[..], &parsed[0].stderr[..]),
            (&b"x"[..], &b""[..])
        );
        assert_eq!(
            (parsed[1].status, &parsed[1].stderr[..]),
            (1, &b"err\n"[..])
        );
        assert!(parse_batch(&out(o, e, 1), b, 2).is_none());
        assert!(parse_batch(&out(o, e, 0), b, 3).is_none());
        assert!(parse_batch(&out(&o[..o.len() - 3], e, 0), b, 2).is_none());
        assert!(parse_batch(&out(o, &e[..4], 0), b, 2).is_none());
        // Noise of the login shell before the first frame is skipped; inside, it is refused.
        let noisy = out(
            &[b"motd\n", o].concat(),
            &[b"setlocale: no\n", e].concat(),
            0,
        );
        assert_eq!(parse_batch(&noisy, b, 2).unwrap(), parsed);
        let inside = out(&[&o[..9], b"junk", &o[9..]].concat(), e, 0);
        assert!(parse_batch(&inside, b, 2).is_none());
    }

    #[tokio::test]
    async fn answers_are_kept_until_the_host_may_change() {
        let dir = tempfile::tempdir().unwrap();
        let local: Arc<dyn Transport> = Arc::new(LocalTransport::new("here"));
        // A probe whose every real run answers something new.
        let random = "od -An -N8 -tx8 /dev/urandom";
        let step = |i: usize, c: &str| StepProbes {
            node: NodeIndex::new(i),
            become_: Become::No,
            probes: vec![Probe::command(c)],
            fence: i == 2,
        };
        let ra = ReadAhead::new(
            local,
            vec![
                step(0, "true"),
                step(1, random),
                step(2, "echo after a wait"),
            ],
        );
        let run = |command: &str| ExecRequest {
            command: command.to_string(),
            ..ExecRequest::default()
        };
        ra.prefetch(NodeIndex::new(0)).await;
        // Step 2 waits for other hosts first: its probe is not read before that wait.
        let after_wait = (Become::No, "echo after a wait".to_string());
        assert!(!ra.kept().answers.contains_key(&after_wait));
        // Step 1's probe was read ahead with step 0's: answered twice the same.
        let first = ra.exec(&run(random)).await.unwrap();
        assert_eq!(first.status, 0);
        assert_eq!(ra.exec(&run(random)).await.unwrap(), first);
        // A write drops every answer: the next one is read from the host again.
        let path = dir.path().join("f").display().to_string();
        ra.write_file(&path, b"x", &FileAttrs::default(), &Become::No)
            .await
            .unwrap();
        let fresh = ra.exec(&run(random)).await.unwrap();
        assert_ne!(fresh, first);
        // A declared probe run on its own (here `true`, dropped by the write) only reads:
        // the other answers stay.
        assert_eq!(ra.exec(&run(random)).await.unwrap(), fresh);
        ra.exec(&run("true")).await.unwrap();
        assert_eq!(ra.exec(&run(random)).await.unwrap(), fresh);
        // Any other command drops them.
        ra.exec(&run("echo something else")).await.unwrap();
        assert_ne!(ra.exec(&run(random)).await.unwrap(), fresh);
    }
}
