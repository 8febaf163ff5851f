//! `command`: a command run on the host, made idempotent by guards (`creates`, `removes`,
//! `unless`) and told whether it changed anything (`changed_when`).

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};

use super::common::exec;
use super::common::shell::quote;

/// `changed_when`: a fixed answer, or an expression over `rc`, `stdout` and `stderr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangedWhen {
    Always(bool),
    Expression(String),
}

impl<'de> Deserialize<'de> for ChangedWhen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ChangedWhen;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean or an expression")
            }
            fn visit_bool<E>(self, b: bool) -> Result<ChangedWhen, E> {
                Ok(ChangedWhen::Always(b))
            }
            fn visit_str<E>(self, s: &str) -> Result<ChangedWhen, E> {
                Ok(ChangedWhen::Expression(s.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// A shell command line (run by `/bin/sh -c`).
    pub cmd: String,
    /// Skip when this path exists.
    pub creates: Option<String>,
    /// Skip when this path does not exist.
    pub removes: Option<String>,
    /// Skip when this command succeeds (exit status 0).
    pub unless: Option<String>,
    pub changed_when: Option<ChangedWhen>,
    pub chdir: Option<String>,
}

/// What `apply` runs: the shell script (with its `cd`), decided by `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandWork {
    pub script: String,
}

/// Why a guard says the command need not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Creates,
    Removes,
    Unless,
}

impl Command {
    /// The command as run: in `chdir` when given. A failing `cd` stops the script instead of
    /// running the command elsewhere.
    fn script(&self) -> String {
        match &self.chdir {
            Some(dir) => format!("cd -- {} || exit 1\n{}", quote(dir), self.cmd),
            None => self.cmd.clone(),
        }
    }

    /// One script evaluating every guard, printing `skip creates|removes|unless` or `run`.
    /// `None` when there is no guard (nothing to read on the host). `unless` runs with no
    /// input and its output discarded; it must only read (it runs during `plan`).
    fn guard_script(&self) -> Option<String> {
        if self.creates.is_none() && self.removes.is_none() && self.unless.is_none() {
            return None;
        }
        let mut s = String::new();
        if let Some(dir) = &self.chdir {
            // Missing now, maybe created by an earlier task: guards cannot say, so run.
            s.push_str(&format!(
                "cd -- {} 2>/dev/null || {{ echo run; exit 0; }}\n",
                quote(dir)
            ));
        }
        if let Some(path) = &self.creates {
            s.push_str(&format!(
                "[ -e {} ] && {{ echo skip creates; exit 0; }}\n",
                quote(path)
            ));
        }
        if let Some(path) = &self.removes {
            s.push_str(&format!(
                "[ -e {} ] || {{ echo skip removes; exit 0; }}\n",
                quote(path)
            ));
        }
        if let Some(unless) = &self.unless {
            s.push_str(&format!(
                "if ( {unless}\n ) </dev/null >/dev/null 2>&1; then echo skip unless; exit 0; fi\n"
            ));
        }
        s.push_str("echo run");
        Some(s)
    }

    fn parse_guard(stdout: &str) -> Option<Skip> {
        match stdout.lines().last().map(str::trim) {
            Some("skip creates") => Some(Skip::Creates),
            Some("skip removes") => Some(Skip::Removes),
            Some("skip unless") => Some(Skip::Unless),
            _ => None,
        }
    }

    /// `changed_when` after the run; `None` when the planned change stands.
    fn changed_after(
        &self,
        rc: i32,
        stdout: &str,
        stderr: &str,
    ) -> Result<Option<bool>, ModuleError> {
        match &self.changed_when {
            None => Ok(None),
            Some(ChangedWhen::Always(b)) => Ok(Some(*b)),
            Some(ChangedWhen::Expression(e)) => {
                let env = pgdeploy_core::template::environment();
                let expr = env.compile_expression(e).map_err(|err| {
                    ModuleError::Failed(format!("`changed_when` expression `{e}`: {}", err.kind()))
                })?;
                let stdout = stdout.trim_end_matches('\n');
                let stderr = stderr.trim_end_matches('\n');
                let ctx = minijinja::context! {
                    rc => rc,
                    stdout => stdout,
                    stderr => stderr,
                    stdout_lines => stdout.lines().collect::<Vec<_>>(),
                    stderr_lines => stderr.lines().collect::<Vec<_>>(),
                };
                let value = expr.eval(ctx).map_err(|err| {
                    ModuleError::Failed(format!("`changed_when` expression `{e}`: {}", err.kind()))
                })?;
                Ok(Some(value.is_true()))
            }
        }
    }
}

#[async_trait::async_trait]
impl Action for Command {
    /// No round trip without guards; one with guards (all evaluated in one script). With
    /// `changed_when: false` the plan shows no change but still asks for `apply`
    /// ([`Plan::run_unchanged`]), so `check` reports no drift for read-only commands.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        if let Some(guard) = self.guard_script() {
            let out = exec::run(cx, &guard).await?;
            if out.status != 0 {
                return Err(exec::failure("guards of `command`", &out));
            }
            if Self::parse_guard(&String::from_utf8_lossy(&out.stdout)).is_some() {
                return Ok(Plan::unchanged());
            }
        }
        let work = CommandWork {
            script: self.script(),
        };
        Ok(match self.changed_when {
            Some(ChangedWhen::Always(false)) => Plan::run_unchanged(work),
            _ => Plan::changes(vec![Change::new(format!("run `{}`", self.cmd))], work),
        })
    }

    /// The guards `creates` and `removes` (paths). An `unless` command may ask anything (a
    /// cluster, another host) whose answer changes on its own: such guards run when their
    /// step does, never ahead.
    fn probes(
        &self,
        _cx: &pgdeploy_core::module::ProbeContext<'_>,
    ) -> Vec<pgdeploy_core::module::Probe> {
        if self.unless.is_some() {
            return Vec::new();
        }
        self.guard_script()
            .into_iter()
            .map(pgdeploy_core::module::Probe::command)
            .collect()
    }

    /// Runs the command; a non-zero exit status fails the task. Then `changed_when` tells
    /// the engine whether it changed anything ([`Plan::report_changed`]).
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<CommandWork>() else {
            return Ok(());
        };
        let out = exec::run(cx, &work.script).await?;
        if out.status != 0 {
            return Err(exec::failure(&self.cmd, &out));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if let Some(changed) = self.changed_after(out.status, &stdout, &stderr)? {
            plan.report_changed(changed);
        }
        Ok(())
    }
}

impl Params for Command {
    const NAME: &'static str = "command";
    const SUMMARY: &'static str = "a command, with creates/removes/unless guards and changed_when";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.cmd.trim().is_empty() {
            problems.push(Problem::field("cmd", "empty command"));
        }
        if let Some(ChangedWhen::Expression(e)) = &self.changed_when {
            if let Err(err) = pgdeploy_core::template::environment().compile_expression(e) {
                problems.push(Problem::field(
                    "changed_when",
                    format!("invalid expression `{e}`: {}", err.kind()),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::fake::*;

    fn command(cmd: &str) -> Command {
        Command {
            cmd: cmd.into(),
            creates: None,
            removes: None,
            unless: None,
            changed_when: None,
            chdir: None,
        }
    }

    #[test]
    fn without_guards_plan_costs_nothing_and_apply_runs_in_chdir() {
        let mut c = command("make install");
        c.chdir = Some("/src/a b".into());
        let h = Harness::new(
            MemoryTransport::default()
                .answer_exact("cd -- '/src/a b' || exit 1\nmake install", output(0, "")),
            Default::default(),
        );
        let plan = block_on(c.plan(&h.cx())).unwrap();
        assert!(h.transport.commands().is_empty());
        assert_eq!(plan.changes[0].summary, "run `make install`");
        block_on(c.apply(&h.cx(), &plan)).unwrap();
        assert_eq!(
            h.transport.commands(),
            ["cd -- '/src/a b' || exit 1\nmake install"]
        );
        assert!(plan.applied_changed());
    }

    #[test]
    fn guards_are_one_script_and_skip() {
        let mut c = command("init");
        c.creates = Some("/var/lib/x/done".into());
        c.unless = Some("test -f /y".into());
        let script = c.guard_script().unwrap();
        assert!(script.contains("[ -e /var/lib/x/done ] && { echo skip creates; exit 0; }"));
        assert!(script.contains("if ( test -f /y\n ) </dev/null >/dev/null 2>&1; then"));
        let h = Harness::new(
            MemoryTransport::default().answer("skip creates", output(0, "skip unless\n")),
            Default::default(),
        );
        assert!(!block_on(c.plan(&h.cx())).unwrap().needs_apply());
        assert_eq!(h.transport.commands().len(), 1);
    }

    #[test]
    fn changed_when_false_runs_without_reporting_a_change() {
        let mut c = command("patronictl list");
        c.changed_when = Some(ChangedWhen::Always(false));
        let h = Harness::new(
            MemoryTransport::default().answer_exact("patronictl list", output(0, "+ pg1 +\n")),
            Default::default(),
        );
        let plan = block_on(c.plan(&h.cx())).unwrap();
        assert!(!plan.is_changed() && plan.needs_apply());
        block_on(c.apply(&h.cx(), &plan)).unwrap();
        assert_eq!(h.transport.commands(), ["patronictl list"]);
        assert!(!plan.applied_changed());
    }

    #[test]
    fn changed_when_expression_sees_the_output() {
        let mut c = command("etcdctl member add x");
        c.changed_when = Some(ChangedWhen::Expression(
            "'added' in stdout and rc == 0".into(),
        ));
        assert_eq!(
            c.changed_after(0, "member added\n", "").unwrap(),
            Some(true)
        );
        assert_eq!(c.changed_after(0, "already\n", "").unwrap(), Some(false));
        let h = Harness::new(
            MemoryTransport::default().answer("etcdctl", output(0, "nothing\n")),
            Default::default(),
        );
        let plan = block_on(c.plan(&h.cx())).unwrap();
        assert!(plan.is_changed());
        block_on(c.apply(&h.cx(), &plan)).unwrap();
        assert!(!plan.applied_changed());
    }

    #[test]
    fn failure_names_the_command_not_the_script() {
        let c = command("false");
        let h = Harness::new(
            MemoryTransport::default().answer("false", output(3, "")),
            Default::default(),
        );
        let plan = block_on(c.plan(&h.cx())).unwrap();
        let e = block_on(c.apply(&h.cx(), &plan)).unwrap_err().to_string();
        assert_eq!(e, "`false` failed with exit status 3: no output");
    }

    /// With `creates`/`removes` guards, plan reads only the declared guard script.
    #[test]
    fn probes_cover_plan() {
        use crate::common::probe_cover::assert_probes_cover;
        let mut c = command("make install");
        c.creates = Some("/usr/local/bin/x".into());
        c.removes = Some("/tmp/build".into());
        c.chdir = Some("/src".into());
        for answer in ["skip creates\n", "run\n"] {
            let h = Harness::new(
                MemoryTransport::default().answer("skip creates", output(0, answer)),
                Default::default(),
            );
            assert_probes_cover(&c, &h.cx());
        }
        // no guard: plan reads nothing at all
        let h = Harness::new(MemoryTransport::default(), Default::default());
        assert_probes_cover(&command("make install"), &h.cx());
    }
}
