//! Test support: does a module's `plan` read only what its `probes()` declared?
//!
//! The engine runs the declared probes of a host's coming steps in one round trip and answers
//! `plan`'s requests identical to a probe from what it kept (`run::readahead`: same command,
//! same privilege, no stdin, the default timeout). Any other read of `plan` is a round trip of
//! its own on every no-op run: a miss. [`misses`] plans through a transport that counts them,
//! answering every request from the test's fake host, so a module's test can assert that on a
//! realistic host state its probes cover its plan.

use std::collections::HashSet;

use async_trait::async_trait;

use pgdeploy_core::module::{Action, HostContext, ModuleError, ProbeContext};
use pgdeploy_core::transport::{
    Become, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};

/// `inner`, recording each read that no declared probe answers.
struct Counting<'a> {
    inner: &'a dyn Transport,
    declared: HashSet<(Become, String)>,
    misses: std::sync::Mutex<Vec<String>>,
}

impl Counting<'_> {
    fn miss(&self, what: String) {
        self.misses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }
}

#[async_trait]
impl Transport for Counting<'_> {
    fn host(&self) -> &str {
        self.inner.host()
    }

    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        // What `ReadAhead::exec` answers from its kept answers, and nothing else.
        let answered = req.stdin.is_none()
            && req.timeout.is_none()
            && self
                .declared
                .contains(&(req.become_.clone(), req.command.clone()));
        if !answered {
            self.miss(format!("exec `{}`", req.command));
        }
        self.inner.exec(req).await
    }

    async fn read_file(
        &self,
        path: &str,
        become_: &Become,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        self.miss(format!("read_file `{path}`"));
        self.inner.read_file(path, become_).await
    }

    async fn write_file(
        &self,
        path: &str,
        _content: &[u8],
        _attrs: &FileAttrs,
        _become: &Become,
    ) -> Result<(), TransportError> {
        panic!("`plan` wrote `{path}`: plan must not change the host")
    }
}

/// Plans `action` in `cx` with reads counted against its declared probes: the reads no probe
/// answered (empty when the probes cover the plan), or the plan's error.
pub(crate) async fn misses(
    action: &dyn Action,
    cx: &HostContext<'_>,
) -> Result<Vec<String>, ModuleError> {
    let probes = action.probes(&ProbeContext {
        host: cx.host,
        facts: cx.facts,
    });
    let counting = Counting {
        inner: cx.transport,
        declared: probes
            .iter()
            .map(|p| (cx.become_.clone(), p.command.clone()))
            .collect(),
        misses: Default::default(),
    };
    let counted = HostContext {
        host: cx.host,
        transport: &counting,
        facts: cx.facts,
        scope: cx.scope,
        become_: cx.become_.clone(),
        playbook_dir: cx.playbook_dir,
        allow_removal: cx.allow_removal,
    };
    action.plan(&counted).await?;
    let misses = counting
        .misses
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(misses)
}

/// Asserts that `plan` of `action` in `cx` makes no read its probes did not declare, naming
/// the misses and the declared probes when it does.
pub(crate) fn assert_probes_cover(action: &dyn Action, cx: &HostContext<'_>) {
    assert_probes_cover_except(action, cx, &[]);
}

/// [`assert_probes_cover`], but for the reads a module leaves out of its probes on purpose
/// (cluster state that changes on its own, see [`Action::probes`]): each miss must contain
/// one of `undeclared`, and each of `undeclared` must be missed, so the list stays exact.
pub(crate) fn assert_probes_cover_except(
    action: &dyn Action,
    cx: &HostContext<'_>,
    undeclared: &[&str],
) {
    let found = super::fake::block_on(misses(action, cx)).expect("plan");
    let unexpected: Vec<&String> = found
        .iter()
        .filter(|m| !undeclared.iter().any(|u| m.contains(u)))
        .collect();
    if !unexpected.is_empty() {
        let declared: Vec<String> = action
            .probes(&ProbeContext {
                host: cx.host,
                facts: cx.facts,
            })
            .into_iter()
            .map(|p| format!("  `{}`", p.command))
            .collect();
        let list: Vec<&str> = unexpected.iter().map(|m| m.as_str()).collect();
        panic!(
            "{} read(s) of `plan` no probe answered:\n  {}\ndeclared probes:\n{}",
            unexpected.len(),
            list.join("\n  "),
            if declared.is_empty() {
                "  (none)".to_owned()
            } else {
                declared.join("\n")
            }
        );
    }
    for u in undeclared {
        assert!(
            found.iter().any(|m| m.contains(u)),
            "`{u}` is listed as an undeclared read but `plan` did not make it: {found:#?}"
        );
    }
}
