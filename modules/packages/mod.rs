//! `packages`: distribution packages installed, removed or upgraded in one batch (apt or dnf,
//! chosen from the host's facts).

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::OneOrMany;
use pgdeploy_core::transport::ExecRequest;

mod errors;
mod query;
pub(crate) use query::{parse_query, query_script, Installed};
pub use query::{Manager, PackagesWork};

use super::common::exec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    #[default]
    Present,
    Absent,
    Latest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    pub name: OneOrMany<String>,
    #[serde(default)]
    pub state: PackageState,
    /// Refresh the package index first (`apt-get update`), only when something is to install.
    #[serde(default)]
    pub update_cache: bool,
    /// Let the packages' maintainer scripts start (and restart) their services, as apt does
    /// by default. `false` (apt): none is started, so that a daemon is first started by the
    /// module that configures it (etcd's package would otherwise start a lone default
    /// member). dnf never starts services.
    #[serde(default = "yes")]
    pub start_services: bool,
    /// Install recommended (apt) or weak (dnf) dependencies. Unset: apt without (as always),
    /// dnf with its own default.
    #[serde(default)]
    pub install_recommends: Option<bool>,
}

fn yes() -> bool {
    true
}

/// A requested package: its name and, with apt, an optional `=VERSION` pin (a trailing `*`
/// matches any version starting with what precedes it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted<'a> {
    spec: &'a str,
    name: &'a str,
    pin: Option<&'a str>,
}

impl<'a> Wanted<'a> {
    fn parse(spec: &'a str, manager: Manager) -> Self {
        match (manager, spec.split_once('=')) {
            (Manager::Apt, Some((name, pin))) => Wanted {
                spec,
                name,
                pin: Some(pin),
            },
            _ => Wanted {
                spec,
                name: spec,
                pin: None,
            },
        }
    }
    fn pin_matches(&self, version: &str) -> bool {
        match self.pin {
            None => true,
            Some(pin) => match pin.strip_suffix('*') {
                Some(prefix) => version.starts_with(prefix),
                None => version == pin,
            },
        }
    }
}

impl Packages {
    fn manager_from_facts(facts: &pgdeploy_core::template::Facts) -> Option<Manager> {
        facts
            .get("ansible_pkg_mgr")
            .and_then(|v| v.as_str())
            .and_then(Manager::from_fact)
    }

    fn decide(&self, manager: Manager, found: &Installed) -> (Vec<Change>, PackagesWork) {
        let mut work = PackagesWork {
            manager,
            update_cache: self.update_cache,
            finish_interrupted: found.interrupted,
            start_services: self.start_services,
            install_recommends: self.install_recommends,
            install: Vec::new(),
            upgrade: Vec::new(),
            remove: Vec::new(),
        };
        let mut upgrades = Vec::new();
        let mut repins = Vec::new();
        for spec in &self.name.0 {
            let w = Wanted::parse(spec, manager);
            let installed = found.versions.get(w.name);
            match (self.state, installed) {
                (PackageState::Absent, Some(_)) => work.remove.push(w.name.to_string()),
                (PackageState::Absent, None) => {}
                (_, None) => work.install.push(w.spec.to_string()),
                (_, Some(v)) if !w.pin_matches(v) => {
                    repins.push(format!("`{}` (`{v}` installed)", w.spec));
                    work.install.push(w.spec.to_string());
                }
                (PackageState::Latest, Some(v)) if w.pin.is_none() => {
                    if let Some(new) = found.upgrades.get(w.name) {
                        upgrades.push(format!("`{}` (`{v}` → `{new}`)", w.name));
                        match manager {
                            Manager::Apt => work.install.push(w.spec.to_string()),
                            Manager::Dnf => work.upgrade.push(w.spec.to_string()),
                        }
                    }
                }
                _ => {}
            }
        }
        let mut changes = Vec::new();
        if found.interrupted {
            changes.push(Change::new(
                "finish the interrupted package installation (`dpkg --configure -a`)",
            ));
        }
        let needs_index = !work.install.is_empty() || !work.upgrade.is_empty();
        if self.update_cache && needs_index {
            changes.push(Change::new("refresh the package index"));
        }
        let newly: Vec<String> = work
            .install
            .iter()
            .filter(|s| !found.versions.contains_key(Wanted::parse(s, manager).name))
            .map(|s| format!("`{s}`"))
            .collect();
        if !newly.is_empty() {
            changes.push(Change::new(format!("install {}", newly.join(", "))));
        }
        if !repins.is_empty() {
            changes.push(Change::new(format!("install {}", repins.join(", "))));
        }
        if !upgrades.is_empty() {
            changes.push(Change::new(format!("upgrade {}", upgrades.join(", "))));
        }
        if !work.remove.is_empty() {
            let names: Vec<String> = work.remove.iter().map(|n| format!("`{n}`")).collect();
            changes.push(Change::new(format!("remove {}", names.join(", "))));
        }
        (changes, work)
    }
}

impl Packages {
    /// The read-only script that finds the manager (unless the facts name it) and what is
    /// installed.
    fn query(&self, facts: &pgdeploy_core::template::Facts) -> String {
        let known = Self::manager_from_facts(facts);
        let names: Vec<&str> = self
            .name
            .0
            .iter()
            .map(|s| match s.split_once('=') {
                Some((name, _)) if known != Some(Manager::Dnf) => name,
                _ => s.as_str(),
            })
            .collect();
        let latest = self.state == PackageState::Latest;
        query_script(known, &names, latest)
    }
}

#[async_trait::async_trait]
impl Action for Packages {
    /// One round trip: every name is queried in one command (plus `apt-cache policy` or
    /// `dnf list --upgrades` in the same script for `latest`); without the `ansible_pkg_mgr`
    /// fact, the same script also finds the manager.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let script = self.query(cx.facts);
        let out = exec::run(cx, &script).await?;
        let (manager, found) = parse_query(&String::from_utf8_lossy(&out.stdout));
        let Some(manager) = manager else {
            return Err(ModuleError::Failed(format!(
                "no supported package manager on `{}` (neither `apt-get` nor `dnf` found)",
                cx.host
            )));
        };
        let (changes, work) = self.decide(manager, &found);
        Ok(if changes.is_empty() {
            Plan::unchanged()
        } else {
            Plan::changes(changes, work)
        })
    }

    fn probes(
        &self,
        cx: &pgdeploy_core::module::ProbeContext<'_>,
    ) -> Vec<pgdeploy_core::module::Probe> {
        vec![pgdeploy_core::module::Probe::command(self.query(cx.facts))]
    }

    /// One round trip: the index refresh (if asked), installs, upgrades and removals chained.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        match plan.work::<PackagesWork>() {
            Some(work) => run_work(cx, work).await,
            None => Ok(()),
        }
    }
}

/// Runs `work`'s command (nothing when it has none), with the long install timeout; other
/// modules that install packages (`patroni`) go through here too.
pub(crate) async fn run_work(cx: &HostContext<'_>, work: &PackagesWork) -> Result<(), ModuleError> {
    let command = work.command();
    if !command.is_empty() {
        let out = exec_long(cx, &command).await?;
        if out.status != 0 {
            return Err(errors::failure(cx.host, work, &out));
        }
    }
    Ok(())
}

/// Runs `command` with [`INSTALL_TIMEOUT`] and returns its output, whatever its exit status.
pub(crate) async fn exec_long(
    cx: &HostContext<'_>,
    command: &str,
) -> Result<pgdeploy_core::transport::ExecOutput, ModuleError> {
    let req = ExecRequest {
        command: command.to_string(),
        become_: cx.become_.clone(),
        timeout: Some(INSTALL_TIMEOUT),
        ..ExecRequest::default()
    };
    Ok(cx.transport.exec(&req).await?)
}

/// Installing can take much longer than the transport's default command timeout.
pub(crate) const INSTALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1800);

impl Params for Packages {
    const NAME: &'static str = "packages";
    const SUMMARY: &'static str =
        "distribution packages (apt/dnf), batched: present, absent or latest";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.name.0.is_empty() {
            problems.push(Problem::field("name", "no package named"));
        }
        for n in &self.name.0 {
            let valid = !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._:=*~".contains(c));
            if !valid {
                problems.push(Problem::field(
                    "name",
                    format!("`{n}` is not a package name"),
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

    fn packages(names: &[&str], state: PackageState, update_cache: bool) -> Packages {
        Packages {
            name: OneOrMany(names.iter().map(|s| s.to_string()).collect()),
            state,
            update_cache,
            start_services: true,
            install_recommends: None,
        }
    }

    fn facts(mgr: &str) -> pgdeploy_core::template::Facts {
        [("ansible_pkg_mgr".to_string(), serde_json::json!(mgr))]
            .into_iter()
            .collect()
    }

    const DPKG: &str = "apt\ncurl\tinstall ok installed\t7.88\n--candidates--\n";

    #[test]
    fn installs_only_what_is_missing_in_one_batch() {
        let p = packages(&["curl", "acl", "jq"], PackageState::Present, true);
        let h = Harness::new(
            MemoryTransport::default()
                .answer("dpkg-query", output(1, DPKG))
                .answer("Error-Mode=any update && ", output(0, "")),
            facts("apt"),
        );
        let plan = block_on(p.plan(&h.cx())).unwrap();
        let summaries: Vec<_> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            summaries,
            ["refresh the package index", "install `acl`, `jq`"]
        );
        block_on(p.apply(&h.cx(), &plan)).unwrap();
        let cmds = h.transport.commands();
        assert_eq!(cmds.len(), 2);
        assert!(cmds[0].starts_with("echo apt; a=$(dpkg --audit"));
        assert!(cmds[1].contains("Error-Mode=any update && ") && cmds[1].ends_with("-- acl jq; }"));
    }

    #[test]
    fn an_interrupted_installation_is_finished_first() {
        let p = packages(&["curl"], PackageState::Present, false);
        let interrupted =
            "apt\n--interrupted--\ncurl\tinstall ok installed\t7.88\n--candidates--\n";
        let h = Harness::new(
            MemoryTransport::default()
                .answer("dpkg-query", output(0, interrupted))
                .answer("--configure -a", output(0, "")),
            facts("apt"),
        );
        let plan = block_on(p.plan(&h.cx())).unwrap();
        let summaries: Vec<_> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            summaries,
            ["finish the interrupted package installation (`dpkg --configure -a`)"]
        );
        block_on(p.apply(&h.cx(), &plan)).unwrap();
        let cmds = h.transport.commands();
        assert_eq!(cmds.len(), 2, "one query, one apply: {cmds:?}");
        assert!(cmds[1].contains("dpkg --force-confdef --force-confold --configure -a"));
        assert!(!cmds[1].contains("apt-get"), "{}", cmds[1]);
    }

    #[test]
    fn start_services_false_installs_under_a_policy_that_forbids_starts() {
        let mut p = packages(&["etcd-server"], PackageState::Present, false);
        p.start_services = false;
        let h = Harness::new(
            MemoryTransport::default()
                .answer("dpkg-query", output(0, "apt\n--candidates--\n"))
                .answer(
                    "install --no-install-recommends -- etcd-server",
                    output(0, ""),
                ),
            facts("apt"),
        );
        let plan = block_on(p.plan(&h.cx())).unwrap();
        block_on(p.apply(&h.cx(), &plan)).unwrap();
        let cmd = &h.transport.commands()[1];
        assert!(
            cmd.starts_with("( p=/usr/sbin/policy-rc.d; if [ ! -e $p ]"),
            "{cmd}"
        );
        assert!(
            cmd.contains("trap 'rm -f -- /usr/sbin/policy-rc.d' EXIT"),
            "{cmd}"
        );
        assert!(
            cmd.ends_with("install --no-install-recommends -- etcd-server )"),
            "{cmd}"
        );
        // dnf starts nothing: no policy.
        let h = Harness::new(
            MemoryTransport::default()
                .answer("rpm -q", output(0, "dnf\n--candidates--\n"))
                .answer_exact("dnf -y install -- etcd-server", output(0, "")),
            facts("dnf"),
        );
        let plan = block_on(p.plan(&h.cx())).unwrap();
        block_on(p.apply(&h.cx(), &plan)).unwrap();
        assert_eq!(h.transport.commands()[1], "dnf -y install -- etcd-server");
    }

    #[test]
    fn a_missing_package_fails_naming_it_and_the_host() {
        let p = packages(&["pgdeploy-nope"], PackageState::Present, false);
        let h = Harness::new(
            MemoryTransport::default()
                .answer("dpkg-query", output(0, "apt\n--candidates--\n"))
                .answer(
                    "install --no-install-recommends",
                    pgdeploy_core::transport::ExecOutput {
                        status: 100,
                        stdout: b"Reading package lists...\n".to_vec(),
                        stderr: b"E: Unable to locate package pgdeploy-nope\n".to_vec(),
                    },
                ),
            facts("apt"),
        );
        let plan = block_on(p.plan(&h.cx())).unwrap();
        let e = block_on(p.apply(&h.cx(), &plan)).unwrap_err().to_string();
        assert_eq!(
            e,
            "package `pgdeploy-nope` is not in the repositories apt knows on `h1` (is the package index up to date? `update_cache: true`)"
        );
    }

    #[test]
    fn installed_is_a_no_op_and_update_cache_is_skipped() {
        let p = packages(&["curl"], PackageState::Present, true);
        let h = Harness::new(
            MemoryTransport::default().answer("dpkg-query", output(0, DPKG)),
            facts("apt"),
        );
        assert!(!block_on(p.plan(&h.cx())).unwrap().is_changed());
    }

    #[test]
    fn latest_absent_and_pins() {
        let found = Installed {
            versions: [("curl".into(), "1.0".into()), ("nano".into(), "2".into())].into(),
            upgrades: [("curl".into(), "1.1".into())].into(),
            interrupted: false,
        };
        let (changes, work) =
            packages(&["curl"], PackageState::Latest, false).decide(Manager::Dnf, &found);
        assert_eq!(changes[0].summary, "upgrade `curl` (`1.0` → `1.1`)");
        assert_eq!(work.upgrade, ["curl"]);
        let (changes, work) =
            packages(&["nano", "vim"], PackageState::Absent, false).decide(Manager::Apt, &found);
        assert_eq!(changes[0].summary, "remove `nano`");
        assert_eq!(work.remove, ["nano"]);
        let (changes, _) = packages(&["curl=1.0*", "nano=3"], PackageState::Present, false)
            .decide(Manager::Apt, &found);
        assert_eq!(changes[0].summary, "install `nano=3` (`2` installed)");
    }

    #[test]
    fn probes_the_manager_without_facts() {
        let p = packages(&["curl"], PackageState::Present, false);
        let h = Harness::new(
            MemoryTransport::default().answer("command -v", output(0, "none\n")),
            Default::default(),
        );
        let e = block_on(p.plan(&h.cx())).unwrap_err().to_string();
        assert_eq!(
            e,
            "no supported package manager on `h1` (neither `apt-get` nor `dnf` found)"
        );
    }

    /// Plan reads only the declared query, with APT and with DNF.
    #[test]
    fn probes_cover_plan() {
        use crate::common::probe_cover::assert_probes_cover;
        let p = packages(&["curl", "acl"], PackageState::Present, true);
        let h = Harness::new(
            MemoryTransport::default().answer("dpkg-query", output(0, DPKG)),
            facts("apt"),
        );
        assert_probes_cover(&p, &h.cx());
        let h = Harness::new(
            MemoryTransport::default().answer("rpm -q", output(0, "dnf\n--candidates--\n")),
            facts("dnf"),
        );
        assert_probes_cover(&p, &h.cx());
    }
}
