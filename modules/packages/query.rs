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

/// The query script for `names` (package names without version pins). Its first line names
/// the manager, so a host without the fact is probed in the same round trip.
pub fn query_script(manager: Option<Manager>, names: &[&str], latest: bool) -> String {
    let list = quote_all(names);
    let apt = format!(
        "echo apt; dpkg-query -W -f='${{Package}}\\t${{Status}}\\t${{Version}}\\n' -- {list} 2>/dev/null; \
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
pub struct Installed {
    /// Installed packages and their versions.
    pub versions: HashMap<String, String>,
    /// Packages with a newer version available, and that version (only for `latest`).
    pub upgrades: HashMap<String, String>,
}

/// Reads the query's output: the manager (`None` when neither apt nor dnf was found) and
/// what is installed.
pub fn parse_query(stdout: &str) -> (Option<Manager>, Installed) {
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
                let apt = "DEBIAN_FRONTEND=noninteractive apt-get -q -y";
                if !self.install.is_empty() {
                    if self.update_cache {
                        cmds.push("apt-get -q update".to_string());
                    }
                    cmds.push(format!(
                        "{apt} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                         install --no-install-recommends -- {}",
                        quote_all(&self.install)
                    ));
                }
                if !self.remove.is_empty() {
                    cmds.push(format!("{apt} remove -- {}", quote_all(&self.remove)));
                }
            }
            Manager::Dnf => {
                let refresh = if self.update_cache { " --refresh" } else { "" };
                if !self.install.is_empty() {
                    cmds.push(format!(
                        "dnf -y{refresh} install -- {}",
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
            install: vec!["curl".into(), "acl".into()],
            upgrade: vec![],
            remove: vec!["nano".into()],
        };
        assert_eq!(
            w.command(),
            "apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y \
             -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
             install --no-install-recommends -- curl acl && \
             DEBIAN_FRONTEND=noninteractive apt-get -q -y remove -- nano"
        );
        let w = PackagesWork {
            manager: Manager::Dnf,
            update_cache: false,
            install: vec![],
            upgrade: vec!["curl".into()],
            remove: vec![],
        };
        assert_eq!(w.command(), "dnf -y upgrade -- curl");
    }
}
