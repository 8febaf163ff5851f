//! Day-2 operations on a running Patroni cluster: `switchover`, `failover`, `restart`,
//! `reinit`, `pause`, `resume` (one file each). What they share is here: finding the cluster
//! from the inventory alone ([`Cluster::open`]: every host of `--hosts` connected over SSH,
//! the first that answers runs `patronictl` with the configuration its locator file names,
//! as `status` does), asking for confirmation ([`confirm`]), reporting ([`Report`]: text or
//! `--json` events) and waiting for the cluster to settle ([`Cluster::wait_for`]).
//!
//! Every action is a `patronictl` command on that member (which talks to the members'
//! REST APIs with the client certificate its `ctl` section names), so no port needs to be
//! open to the workstation and nothing here knows where Patroni was installed.

pub(crate) mod backrest;
pub(crate) mod backup;
pub(crate) mod decide;
pub(crate) mod failover;
pub(crate) mod pause;
pub(crate) mod reinit;
pub(crate) mod restart;
pub(crate) mod restore;
pub(crate) mod restore_on;
pub(crate) use pgdeploy_modules::patroni_state as state;
pub(crate) mod switchover;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::OpsArgs;
use crate::commands::connect_all;
use pgdeploy_core::exit::Exit;
use pgdeploy_core::inventory::Inventory;
use pgdeploy_core::transport::shell::quote;
use pgdeploy_core::transport::{Become, ExecOutput, ExecRequest, Transport};
use pgdeploy_engine::run::connect::{connect, resolve_targets};
use state::ClusterState;

/// Text lines or `--json` events (one JSON object per line on stdout). In text, what is
/// decided and done goes to stdout, progress and errors to stderr.
pub(crate) struct Report {
    pub json: bool,
    pub command: &'static str,
}

impl Report {
    fn event(&self, event: &str, message: &str, mut extra: Value) {
        let mut v = json!({"event": event, "command": self.command, "message": message});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object_mut()) {
            o.append(e);
        }
        pgdeploy_core::outln!("{}", pgdeploy_core::secrets::mask_logged(&v.to_string()));
    }
    /// What the command will do (before the confirmation).
    pub(crate) fn plan(&self, message: &str, extra: Value) {
        if self.json {
            self.event("plan", message, extra);
        } else {
            pgdeploy_core::outln!("{}", pgdeploy_core::secrets::mask_logged(message));
        }
    }
    /// A step on the way (waiting, a member done).
    pub(crate) fn progress(&self, message: &str, extra: Value) {
        if self.json {
            self.event("progress", message, extra);
        } else {
            pgdeploy_core::eoutln!("{}", pgdeploy_core::secrets::mask_logged(message));
        }
    }
    /// A result.
    pub(crate) fn done(&self, message: &str, extra: Value) {
        if self.json {
            self.event("done", message, extra);
        } else {
            pgdeploy_core::outln!("{}", pgdeploy_core::secrets::mask_logged(message));
        }
    }
    /// The command refuses or fails: the reason, and the exit code to return.
    pub(crate) fn fail(&self, message: &str, exit: Exit) -> Exit {
        if self.json {
            self.event("error", message, json!({"exit": exit as u8}));
        } else {
            pgdeploy_core::eoutln!("error: {}", pgdeploy_core::secrets::mask_logged(message));
        }
        exit
    }
}

/// Asks on the terminal before a change; `--yes` answers for the user. Without a terminal on
/// stdin (a script, CI) nobody can answer: refused with exit 64, the command line lacking
/// `--yes` being the problem. "No" exits 1 with nothing changed.
pub(crate) fn confirm(report: &Report, yes: bool, question: &str) -> Result<(), Exit> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(report.fail(
            &format!(
                "`pgdeploy {}` changes the cluster and stdin is not a terminal to confirm on: \
                 nothing was done; add `--yes` to run it without asking",
                report.command
            ),
            Exit::Usage,
        ));
    }
    pgdeploy_core::output::write_err(&format!("{question} [y/N] "));
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(report.fail("not confirmed: nothing was done", Exit::Error))
    }
}

/// A connected member.
struct Host {
    name: String,
    transport: Arc<dyn Transport>,
    become_: Become,
}

/// The cluster, reached through its members over SSH.
pub(crate) struct Cluster {
    runtime: tokio::runtime::Runtime,
    hosts: Vec<Host>,
    /// The member `patronictl` runs on (index into `hosts`).
    control: usize,
    inventory: Inventory,
    /// How hosts are reached, for [`Cluster::connect_host`].
    ssh: pgdeploy_engine::run::connect::ConnectSettings,
    /// Hosts outside `--hosts` connected later (a pgBackRest repository host).
    extra: Vec<Host>,
    pub state: ClusterState,
    pub timeout: Duration,
    /// The members' locks (the same as `apply`'s), held while the command runs.
    locks: Option<pgdeploy_engine::run::lock::ApplyLocks>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(l) = self.locks.take() {
            self.runtime.block_on(l.release());
        }
    }
}

impl Cluster {
    /// Loads the inventory, connects to every host of `--hosts` and reads the cluster from
    /// the first that can tell. Failures are reported; the `Exit` to return comes back.
    pub(crate) fn open(args: &OpsArgs, report: &Report) -> Result<Cluster, Exit> {
        Self::open_for(args, report, report.command)
    }

    /// [`Cluster::open`], the members locked as held by `pgdeploy COMMAND` (refused, exit 75,
    /// when another run holds one).
    fn open_for(args: &OpsArgs, report: &Report, command: &str) -> Result<Cluster, Exit> {
        let inventory = match connect_all::load_masked(&args.vault, &args.inventory) {
            Ok(i) => i,
            Err(diags) => {
                crate::commands::report_as(&diags.sorted(), report.json);
                return Err(Exit::Error);
            }
        };
        let members = match connect_all::select_hosts(&inventory, &args.hosts) {
            Ok(h) => h,
            Err(e) => return Err(report.fail(&e, Exit::Usage)),
        };
        let targets = match resolve_targets(
            &inventory,
            &members,
            &args.ssh.settings(),
            &Default::default(),
        ) {
            Ok(t) => t,
            Err(e) => return Err(report.fail(&e.to_string(), Exit::Error)),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => return Err(report.fail(&e.to_string(), Exit::Error)),
        };
        let connected = runtime.block_on(connect_all::connect_all(&members, &targets));
        let hosts: Vec<Host> = connected
            .up
            .into_iter()
            .map(|(name, transport)| Host {
                become_: crate::commands::become_of(&inventory.hosts[&name].connection),
                name,
                transport,
            })
            .collect();
        let problems: Vec<String> = connected
            .failed
            .iter()
            .map(|(_, e)| e.to_string())
            .collect();
        if hosts.is_empty() {
            for p in &problems {
                report.fail(p, Exit::Unreachable);
            }
            return Err(report.fail(
                &format!("no host of `{}` could be reached", args.hosts),
                Exit::Unreachable,
            ));
        }
        for p in &problems {
            report.progress(&format!("warning: {p}"), json!({"warning": true}));
        }
        let locks = lock_members(&runtime, &hosts, command, report)?;
        let mut cluster = Cluster {
            runtime,
            hosts,
            control: 0,
            inventory,
            ssh: args.ssh.settings(),
            extra: Vec::new(),
            state: ClusterState {
                read_from: String::new(),
                scope: None,
                members: Vec::new(),
                paused: false,
                synchronous_mode: false,
                maximum_lag_on_failover: 0,
                patroni_version: None,
            },
            timeout: Duration::from_secs(args.timeout),
            locks: Some(locks),
        };
        match cluster.refresh() {
            Ok(_) => Ok(cluster),
            Err(e) => Err(report.fail(&e, Exit::Error)),
        }
    }

    fn exec_on(&self, i: usize, command: String, timeout: Duration) -> Result<ExecOutput, String> {
        self.exec_host(&self.hosts[i], command, None, timeout)
    }

    fn exec_host(
        &self,
        h: &Host,
        command: String,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, String> {
        self.runtime
            .block_on(h.transport.exec(&ExecRequest {
                command,
                stdin,
                become_: h.become_.clone(),
                timeout: Some(timeout),
            }))
            .map_err(|e| e.to_string())
    }

    /// Connects to inventory host `name` too (one outside `--hosts`), unless it already is.
    pub(crate) fn connect_host(&mut self, name: &str) -> Result<(), String> {
        if self.host(name).is_some() {
            return Ok(());
        }
        if !self.inventory.hosts.contains_key(name) {
            return Err(format!("`{name}` is not a host of the inventory"));
        }
        let targets = resolve_targets(
            &self.inventory,
            &[name.to_string()],
            &self.ssh,
            &Default::default(),
        )
        .map_err(|e| e.to_string())?;
        let transport = self
            .runtime
            .block_on(connect(&targets[name]))
            .map_err(|e| e.to_string())?;
        self.extra.push(Host {
            become_: crate::commands::become_of(&self.inventory.hosts[name].connection),
            name: name.to_string(),
            transport,
        });
        Ok(())
    }

    fn host(&self, name: &str) -> Option<&Host> {
        self.hosts
            .iter()
            .chain(&self.extra)
            .find(|h| h.name == name)
    }

    /// The inventory the cluster was found from.
    pub(crate) fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Reads the cluster through another member than inventory host `host` from now on
    /// (a drill is about to cut it off: its reads would wait for SSH's timeout first).
    pub(crate) fn avoid_control(&mut self, host: &str) {
        if self.hosts[self.control].name == host {
            if let Some(i) = self.hosts.iter().position(|h| h.name != host) {
                self.control = i;
            }
        }
    }

    /// The connected inventory hosts of `--hosts`, in inventory order.
    pub(crate) fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// The inventory host of member `member` (its name, or the host at its address).
    pub(crate) fn host_of_member(&self, member: &str) -> Option<String> {
        if self.hosts.iter().any(|h| h.name == member) {
            return Some(member.to_string());
        }
        let address = self
            .state
            .member(member)?
            .host
            .split(':')
            .next()?
            .to_string();
        self.hosts
            .iter()
            .find(|h| {
                self.inventory.hosts.get(&h.name).is_some_and(|ih| {
                    ih.vars.get("ansible_host").and_then(|v| v.value.as_str())
                        == Some(address.as_str())
                })
            })
            .map(|h| h.name.clone())
    }

    /// Runs `command` on connected host `name` (with its privilege), `stdin` given to it.
    pub(crate) fn run_on(
        &self,
        name: &str,
        command: &str,
        stdin: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<ExecOutput, String> {
        let h = self
            .host(name)
            .ok_or_else(|| format!("`{name}` is not connected"))?;
        self.exec_host(h, command.to_string(), stdin, timeout)
    }

    /// Like [`Cluster::run_on`], an error (with the output's last lines) unless it exits 0;
    /// its stdout otherwise. `shown` names the command in the error.
    pub(crate) fn run_ok(
        &self,
        name: &str,
        command: &str,
        shown: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let out = self.run_on(name, command, None, timeout)?;
        if out.status == 0 {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        let tail: Vec<&str> = text.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "{shown} on `{name}` failed (exit {}): {}",
            out.status,
            tail.join(" / ")
        ))
    }

    /// Reads the cluster again (from the member that runs `patronictl`, or the next one
    /// that can when it stops answering: a restarted or demoted member).
    pub(crate) fn refresh(&mut self) -> Result<&ClusterState, String> {
        let mut problems = Vec::new();
        let order: Vec<usize> = (self.control..self.hosts.len())
            .chain(0..self.control)
            .collect();
        for i in order {
            let name = self.hosts[i].name.clone();
            match self.exec_on(i, state::read_script(), Duration::from_secs(30)) {
                Ok(out) => {
                    let text = String::from_utf8_lossy(&out.stdout);
                    match state::parse(&name, &text) {
                        Ok(s) => {
                            self.control = i;
                            self.state = s;
                            return Ok(&self.state);
                        }
                        Err(e) => problems.push(format!(
                            "{e}{}",
                            stderr_tail(&out.stderr)
                                .map(|s| format!(" ({s})"))
                                .unwrap_or_default()
                        )),
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        Err(format!(
            "no member could read the cluster: {}",
            problems.join("; ")
        ))
    }

    /// The member name of inventory host `host` (its name, or the member at its address).
    pub(crate) fn member_name(&self, host: &str) -> String {
        if self.state.member(host).is_some() {
            return host.to_string();
        }
        let address = self
            .inventory
            .hosts
            .get(host)
            .and_then(|h| h.vars.get("ansible_host"))
            .and_then(|v| v.value.as_str())
            .map(str::to_string);
        address
            .and_then(|a| {
                self.state
                    .members
                    .iter()
                    .find(|m| m.host.split(':').next() == Some(a.as_str()))
            })
            .map(|m| m.name.clone())
            .unwrap_or_else(|| host.to_string())
    }

    pub(crate) fn scope(&self) -> String {
        self.state.scope.clone().unwrap_or_default()
    }

    /// Runs `patronictl ARGS` on the control member; an error carries its output.
    pub(crate) fn ctl(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let words: Vec<String> = args.iter().map(|a| quote(a)).collect();
        let command = format!("{}ctl {} 2>&1", state::ctl_prefix(), words.join(" "));
        let out = self.exec_on(self.control, command, timeout)?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status == 0 {
            Ok(text)
        } else {
            Err(format!(
                "`patronictl {}` on `{}` failed (exit {}): {text}",
                args.join(" "),
                self.hosts[self.control].name,
                out.status
            ))
        }
    }

    /// Polls the cluster until `done` holds, reporting each change of its summary; an error
    /// after the timeout, with the last state.
    pub(crate) fn wait_for(
        &mut self,
        report: &Report,
        what: &str,
        mut done: impl FnMut(&ClusterState) -> bool,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            match self.refresh() {
                Ok(s) => {
                    if done(s) {
                        return Ok(started.elapsed());
                    }
                    let summary = s.summary();
                    if summary != last {
                        report.progress(
                            &format!("  waiting for {what}: {summary}"),
                            json!({"members": s.members}),
                        );
                        last = summary;
                    }
                }
                Err(e) => last = e,
            }
            if started.elapsed() >= self.timeout {
                return Err(format!(
                    "{what}: not after {} s (last: {last}); raise `--timeout` or see `journalctl -u patroni`",
                    self.timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Releases the members' locks, then ends every connection politely.
    pub(crate) fn close(mut self) {
        let locks = self.locks.take();
        let transports: Vec<_> = self
            .hosts
            .iter()
            .chain(&self.extra)
            .map(|h| h.transport.clone())
            .collect();
        self.runtime.block_on(async {
            if let Some(l) = locks {
                l.release().await;
            }
            for t in transports {
                t.close().await;
            }
        });
    }
}

fn stderr_tail(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    text.trim()
        .lines()
        .last()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
}

/// Takes the lock of every connected member, as `apply` does (`PGDEPLOY_LOCK_WAIT` seconds of
/// waiting, none by default); a member another run holds stops the command with exit 75
/// before it does anything.
fn lock_members(
    runtime: &tokio::runtime::Runtime,
    hosts: &[Host],
    command: &str,
    report: &Report,
) -> Result<pgdeploy_engine::run::lock::ApplyLocks, Exit> {
    use pgdeploy_engine::run::lock;
    let wait = std::env::var("PGDEPLOY_LOCK_WAIT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_default();
    let map: std::collections::HashMap<String, Arc<dyn pgdeploy_core::transport::Transport>> =
        hosts
            .iter()
            .map(|h| (h.name.clone(), h.transport.clone()))
            .collect();
    match runtime.block_on(lock::take(&map, command, lock::DEFAULT_DIR, wait)) {
        Ok(l) => Ok(l),
        Err(refusals) => {
            let mut exit = Exit::Busy;
            for r in refusals {
                match r {
                    lock::Refusal::Busy { host, held_by } => {
                        report.fail(
                            &format!("`{host}`: another pgdeploy run holds this host: {held_by}"),
                            Exit::Busy,
                        );
                    }
                    lock::Refusal::Failed { host, error } => {
                        exit = Exit::Error;
                        report.fail(
                            &format!("`{host}`: cannot take its lock: {error}"),
                            Exit::Error,
                        );
                    }
                }
            }
            Err(report.fail(
                "nothing was done: no member is acted on while another pgdeploy run holds one (`PGDEPLOY_LOCK_WAIT=SECS` waits for it)",
                exit,
            ))
        }
    }
}
