//! Reading what is installed (and, for `latest`, what is available) in one command, and the
//! commands that change it: apt (`dpkg-query`, `apt-cache policy`, `apt-get`) and dnf
//! (`rpm -q`, `dnf list --upgrades`, `dnf`).

use std::collections::HashMap;

use super::super::common::shell::quote_all;

/// The package manager of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Dnf,
}

impl Manager {
    /// From the `ansible_pkg_mgr` fact (`yum` hosts have dnf nowadays).
    pub fn from_fact(fact: &str) -> Option<Manager> {
        match fact {
            "apt" => Some(Manager::Apt),
            "dnf" | "dnf5" | "yum" => Some(Manager::Dnf),
            _ => None,
        }
    }
}

/// Separates the installed list from the candidates in the query's output.
const CANDIDATES: &str = "--candidates--";

/// Printed (apt) when dpkg was interrupted: packages left unpacked or half-configured
/// (`dpkg --audit` says so) or updates of its database not merged (`/var/lib/dpkg/updates/`).
/// Not while another dpkg holds the lock: then the work is in progress, not interrupted.
const INTERRUPTED: &str = "--interrupted--";

/// The shell that prints [`INTERRUPTED`]: one `dpkg --audit` (a read of dpkg's database,
/// some 30 ms) in the query's own command, so a converged host pays no round trip for it.
const INTERRUPTED_CHECK: &str = "a=$(dpkg --audit 2>&1); case \"$a\" in *'locked the database'*) ;; \
     *) if [ -n \"$a\" ] || [ -n \"$(ls -A /var/lib/dpkg/updates 2>/dev/null)\" ]; then echo --interrupted--; fi ;; esac";

/// The query script for `names` (package names without version pins). Its first line names
/// the manager, so a host without the fact is probed in the same round trip.
pub(crate) fn query_script(manager: Option<Manager>, names: &[&str], latest: bool) -> String {
    let list = quote_all(names);
    let apt = format!(
        "echo apt; {INTERRUPTED_CHECK}; dpkg-query -W -f='${{Package}}\\t${{Status}}\\t${{Version}}\\n' -- {list} 2>/dev/null; \
         echo {CANDIDATES}{}",
        if latest {
            format!("; LC_ALL=C apt-cache policy -- {list} 2>/dev/null")
        } else {
            String::new()
        }
    );
    let dnf = format!(
        "echo dnf; rpm -q --qf '%{{NAME}}\\t%{{VERSION}}-%{{RELEASE}}\\n' -- {list} 2>/dev/null; \
         echo {CANDIDATES}{}",
        if latest {
            format!("; LC_ALL=C dnf -q list --upgrades -- {list} 2>/dev/null")
        } else {
            String::new()
        }
    );
    match manager {
        Some(Manager::Apt) => apt,
        Some(Manager::Dnf) => dnf,
        None => format!(
            "if command -v apt-get >/dev/null 2>&1; then {apt}; \
             elif command -v dnf >/dev/null 2>&1; then {dnf}; else echo none; fi"
        ),
    }
}

/// What the query found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Installed {
    /// Installed packages and their versions.
    pub versions: HashMap<String, String>,
    /// Packages with a newer version available, and that version (only for `latest`).
    pub upgrades: HashMap<String, String>,
    /// dpkg was interrupted: `dpkg --configure -a` must finish its work first.
    pub interrupted: bool,
}

/// Reads the query's output: the manager (`None` when neither apt nor dnf was found) and
/// what is installed.
pub(crate) fn parse_query(stdout: &str) -> (Option<Manager>, Installed) {
    let mut lines = stdout.lines();
    let manager = match lines.next().map(str::trim) {
        Some("apt") => Manager::Apt,
        Some("dnf") => Manager::Dnf,
        _ => return (None, Installed::default()),
    };
    let mut out = Installed::default();
    let mut installed_part = true;
    let mut rest = Vec::new();
    for line in lines {
        if line == CANDIDATES {
            installed_part = false;
        } else if line == INTERRUPTED {
            out.interrupted = true;
        } else if installed_part {
            let f: Vec<&str> = line.split('\t').collect();
            match (manager, f.as_slice()) {
                (Manager::Apt, [name, status, version])
                    if status.split_whitespace().last() == Some("installed") =>
                {
                    out.versions.insert(name.to_string(), version.to_string());
                }
                (Manager::Dnf, [name, version]) => {
                    out.versions.insert(name.to_string(), version.to_string());
                }
                _ => {}
            }
        } else {
            rest.push(line);
        }
    }
    out.upgrades = match manager {
        Manager::Apt => parse_apt_policy(&rest),
        Manager::Dnf => parse_dnf_upgrades(&rest),
    };
    (Some(manager), out)
}

/// `apt-cache policy`: a package whose candidate differs from its installed version.
fn parse_apt_policy(lines: &[&str]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let (mut name, mut installed) = (None::<String>, None::<String>);
    for line in lines {
        if !line.starts_with(' ') {
            name = line.strip_suffix(':').map(str::to_string);
            installed = None;
        } else if let Some(v) = line.trim().strip_prefix("Installed: ") {
            installed = Some(v.to_string());
        } else if let Some(candidate) = line.trim().strip_prefix("Candidate: ") {
            if let (Some(n), Some(i)) = (&name, &installed) {
                if i != "(none)" && candidate != "(none)" && candidate != i {
                    out.insert(n.clone(), candidate.to_string());
                }
            }
        }
    }
    out
}

/// `dnf list --upgrades`: lines `NAME.ARCH  VERSION  REPO`.
fn parse_dnf_upgrades(lines: &[&str]) -> HashMap<String, String> {
    lines
        .iter()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [name_arch, version, _repo] = f.as_slice() else {
                return None;
            };
            let (name, _arch) = name_arch.rsplit_once('.')?;
            Some((name.to_string(), version.to_string()))
        })
        .collect()
}

/// The commands that change the host, decided by `plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesWork {
    pub manager: Manager,
    pub update_cache: bool,
    /// `dpkg --configure -a` first: an earlier run was interrupted.
    pub finish_interrupted: bool,
    /// `false`: maintainer scripts start no service (apt; see [`NO_START`]).
    pub start_services: bool,
    /// Recommended (apt) or weak (dnf) dependencies; `None`: apt without, dnf its default.
    pub install_recommends: Option<bool>,
    /// Missing packages, and, with apt, the ones to upgrade (`apt-get install` upgrades).
    pub install: Vec<String>,
    /// With dnf, installed packages to upgrade.
    pub upgrade: Vec<String>,
    pub remove: Vec<String>,
}

impl PackagesWork {
    /// One shell command doing all of it, in a single batch per verb.
    pub fn command(&self) -> String {
        let mut cmds = Vec::new();
        match self.manager {
            Manager::Apt => {
                let apt = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300";
                // Maintainer scripts run by both: with `start_services: false`, under the
                // policy that forbids starting services.
                let mut configure = Vec::new();
                if self.finish_interrupted {
                    configure.push(
                        "DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a"
                            .to_string(),
                    );
                }
                if !self.install.is_empty() {
                    if self.update_cache {
                        cmds.push(super::super::common::apt::UPDATE.to_string());
                    }
                    let recommends = match self.install_recommends {
                        Some(true) => "--install-recommends",
                        _ => "--no-install-recommends",
                    };
                    configure.push(format!(
                        "{apt} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                         install {recommends} -- {}",
                        quote_all(&self.install)
                    ));
                }
                if !configure.is_empty() {
                    let configure = configure.join(" && ");
                    cmds.push(if self.start_services {
                        format!("{{ {LEFTOVER_CLEANUP}; {configure}; }}")
                    } else {
                        format!("( {NO_START}; {configure} )")
                    });
                }
                if !self.remove.is_empty() {
                    cmds.push(format!("{apt} remove -- {}", quote_all(&self.remove)));
                }
            }
            Manager::Dnf => {
                let refresh = if self.update_cache { " --refresh" } else { "" };
                let weak = match self.install_recommends {
                    Some(true) => " --setopt=install_weak_deps=True",
                    Some(false) => " --setopt=install_weak_deps=False",
                    None => "",
                };
                if !self.install.is_empty() {
                    cmds.push(format!(
                        "dnf -y{refresh}{weak} install -- {}",
                        quote_all(&self.install)
                    ));
                }
                if !self.upgrade.is_empty() {
                    cmds.push(format!(
                        "dnf -y{refresh} upgrade -- {}",
                        quote_all(&self.upgrade)
                    ));
                }
                if !self.remove.is_empty() {
                    cmds.push(format!("dnf -y remove -- {}", quote_all(&self.remove)));
                }
            }
        }
        cmds.join(" && ")
    }
}

/// Forbids maintainer scripts to start, restart or stop services for the rest of the
/// (sub)shell, the Debian way: `invoke-rc.d` and `deb-systemd-invoke` run
/// `/usr/sbin/policy-rc.d` first and do nothing when it exits 101. In Debian 12
/// (init-system-helpers 1.65.2) both read only that path (neither honours a `POLICYRCD`
/// variable), so the file is written, only when there is none (an existing one is the
/// administrator's policy and stays in force), and removed when the shell exits, however it
/// exits. Its marker lets a later install remove one that a killed run left
/// ([`LEFTOVER_CLEANUP`]).
pub(super) const NO_START: &str = "p=/usr/sbin/policy-rc.d; if [ ! -e $p ] || grep -qs '^# pgdeploy start_services=false' $p; then \
     trap 'rm -f -- /usr/sbin/policy-rc.d' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM; \
     printf '#!/bin/sh\\n# pgdeploy start_services=false: no service starts during this install\\nexit 101\\n' > $p && chmod 0755 $p || exit 1; fi";

/// Removes a `policy-rc.d` that a killed `start_services: false` install left (and only that).
pub(super) const LEFTOVER_CLEANUP: &str = "if grep -qs '^# pgdeploy start_services=false' /usr/sbin/policy-rc.d; then rm -f -- /usr/sbin/policy-rc.d; fi";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dpkg_and_apt_policy() {
        let out = "apt\ncurl\tinstall ok installed\t7.88.1-10\n\
                   old\tdeinstall ok config-files\t1.0\n\
                   --candidates--\n\
                   curl:\n  Installed: 7.88.1-10\n  Candidate: 7.88.1-11\n  Version table:\n\
                   acl:\n  Installed: (none)\n  Candidate: 2.3\n";
        let (m, i) = parse_query(out);
        assert_eq!(m, Some(Manager::Apt));
        assert_eq!(
            i.versions.get("curl").map(String::as_str),
            Some("7.88.1-10")
        );
        assert!(!i.versions.contains_key("old"));
        assert_eq!(i.upgrades.len(), 1);
        assert_eq!(i.upgrades["curl"], "7.88.1-11");
    }

    #[test]
    fn parses_rpm_and_dnf_upgrades() {
        let out = "dnf\ncurl\t8.2-1.el9\npackage acl is not installed\n--candidates--\n\
                   Available Upgrades\ncurl.x86_64   8.3-1.el9   baseos\n";
        let (m, i) = parse_query(out);
        assert_eq!(m, Some(Manager::Dnf));
        assert_eq!(i.versions.len(), 1);
        assert_eq!(i.upgrades["curl"], "8.3-1.el9");
        assert_eq!(parse_query("none\n").0, None);
    }

    #[test]
    fn script_probes_the_manager_when_unknown() {
        let s = query_script(None, &["curl", "acl"], false);
        assert!(s.starts_with("if command -v apt-get"));
        assert!(s.contains("dpkg-query -W -f='${Package}\\t${Status}\\t${Version}\\n' -- curl acl"));
        assert!(!s.contains("apt-cache"));
        assert!(
            query_script(Some(Manager::Apt), &["curl"], true).contains("apt-cache policy -- curl")
        );
    }

    #[test]
    fn commands_batch_each_verb() {
        let w = PackagesWork {
            manager: Manager::Apt,
            update_cache: true,
            finish_interrupted: false,
            start_services: true,
            install_recommends: None,
            install: vec!["curl".into(), "acl".into()],
            upgrade: vec![],
            remove: vec!["nano".into()],
        };
        assert_eq!(
            w.command(),
            "LC_ALL=C DEBIAN_FRONTEND=noninteractive apt-get -q -o APT::Update::Error-Mode=any update && \
             { if grep -qs '^# pgdeploy start_services=false' /usr/sbin/policy-rc.d; then rm -f -- /usr/sbin/policy-rc.d; fi; \
             DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 \
             -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
             install --no-install-recommends -- curl acl; } && \
             DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 remove -- nano"
        );
        // Interrupted before, services not started: both under the policy, in a subshell.
        let w = PackagesWork {
            update_cache: false,
            finish_interrupted: true,
            start_services: false,
            install_recommends: Some(true),
            remove: vec![],
            ..w
        };
        let c = w.command();
        assert!(c.starts_with(&format!("( {NO_START}; DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a && ")), "{c}");
        assert!(
            c.ends_with("install --install-recommends -- curl acl )"),
            "{c}"
        );
        let w = PackagesWork {
            manager: Manager::Dnf,
            update_cache: false,
            finish_interrupted: false,
            start_services: true,
            install_recommends: None,
            install: vec![],
            upgrade: vec!["curl".into()],
            remove: vec![],
        };
        assert_eq!(w.command(), "dnf -y upgrade -- curl");
    }
}
