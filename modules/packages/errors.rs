//! What a failed install says: the packages the repositories do not have, named with the
//! host, instead of the whole chained command and apt's progress output.

use super::super::common::apt;
use super::query::{Manager, PackagesWork};
use pgdeploy_core::module::ModuleError;
use pgdeploy_core::transport::ExecOutput;

/// The packages that the manager says it cannot find, in the order it said so.
pub(super) fn not_found(manager: Manager, text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        let name = match manager {
            // `E: Unable to locate package X`, `E: Package 'X' has no installation candidate`,
            // `E: Version 'V' for 'X' was not found`.
            Manager::Apt => line
                .strip_prefix("E: Unable to locate package ")
                .map(str::to_string)
                .or_else(|| {
                    line.strip_prefix("E: Package '")
                        .and_then(|r| r.strip_suffix("' has no installation candidate"))
                        .map(str::to_string)
                })
                .or_else(|| {
                    let rest = line.strip_prefix("E: Version '")?;
                    let (version, rest) = rest.split_once("' for '")?;
                    let name = rest.strip_suffix("' was not found")?;
                    Some(format!("{name}={version}"))
                }),
            // `No match for argument: X` (dnf 4), `Error: Unable to find a match: X Y`.
            Manager::Dnf => line
                .strip_prefix("No match for argument: ")
                .map(str::to_string),
        };
        if let Some(n) = name.map(|n| n.trim().to_string()) {
            if !n.is_empty() && !names.contains(&n) {
                names.push(n);
            }
        }
    }
    names
}

/// The error for the failed apply command of `work` on `host`.
pub(super) fn failure(host: &str, work: &PackagesWork, out: &ExecOutput) -> ModuleError {
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let missing = not_found(work.manager, &text);
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
        let (what, index) = match work.manager {
            Manager::Apt => (
                "apt",
                " (is the package index up to date? `update_cache: true`)",
            ),
            Manager::Dnf => ("dnf", ""),
        };
        return ModuleError::Failed(format!(
            "{} {} not in the repositories {what} knows on `{host}`{index}",
            if names.len() == 1 {
                "package"
            } else {
                "packages"
            },
            if names.len() == 1 {
                format!("{} is", names[0])
            } else {
                format!("{} are", names.join(", "))
            },
        ));
    }
    let update = apt::update_problems(out);
    let failed_update = work.manager == Manager::Apt
        && work.update_cache
        && text.contains("Failed to fetch")
        && !update.is_empty();
    if failed_update {
        return ModuleError::Failed(format!(
            "`apt-get update` on `{host}` failed: {}",
            update.join("; ")
        ));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    let verbs: Vec<String> = [
        ("install", &work.install),
        ("upgrade", &work.upgrade),
        ("remove", &work.remove),
    ]
    .iter()
    .filter(|(_, l)| !l.is_empty())
    .map(|(v, l)| format!("{v} {}", l.join(" ")))
    .collect();
    ModuleError::Failed(format!(
        "packages ({}) failed on `{host}` with exit status {}: {}",
        verbs.join("; "),
        out.status,
        apt::last_lines(said.trim(), 5)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(manager: Manager, install: &[&str]) -> PackagesWork {
        PackagesWork {
            manager,
            update_cache: false,
            finish_interrupted: false,
            start_services: true,
            install_recommends: None,
            install: install.iter().map(|s| s.to_string()).collect(),
            upgrade: vec![],
            remove: vec![],
        }
    }

    fn out(status: i32, stderr: &str) -> ExecOutput {
        ExecOutput {
            status,
            stdout: b"Reading package lists...\nBuilding dependency tree...\n".to_vec(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn apt_names_every_missing_package() {
        // Debian 12's apt 2.6.1, `apt-get install -s pgdeploy-nope1 pgdeploy-nope2 coreutils=0.1`.
        let e = failure(
            "pg1",
            &work(Manager::Apt, &["pgdeploy-nope1", "pgdeploy-nope2", "coreutils=0.1"]),
            &out(
                100,
                "E: Unable to locate package pgdeploy-nope1\nE: Unable to locate package pgdeploy-nope2\nE: Version '0.1' for 'coreutils' was not found\n",
            ),
        );
        assert_eq!(
            e.to_string(),
            "packages `pgdeploy-nope1`, `pgdeploy-nope2`, `coreutils=0.1` are not in the repositories apt knows on `pg1` (is the package index up to date? `update_cache: true`)"
        );
        let e = failure(
            "pg1",
            &work(Manager::Apt, &["etcd"]),
            &out(100, "E: Package 'etcd' has no installation candidate\n"),
        );
        assert_eq!(
            e.to_string(),
            "package `etcd` is not in the repositories apt knows on `pg1` (is the package index up to date? `update_cache: true`)"
        );
    }

    #[test]
    fn dnf_names_the_missing_package() {
        let e = failure(
            "rocky1",
            &work(Manager::Dnf, &["etcd", "curl"]),
            &out(
                1,
                "No match for argument: etcd\nError: Unable to find a match: etcd\n",
            ),
        );
        assert_eq!(
            e.to_string(),
            "package `etcd` is not in the repositories dnf knows on `rocky1`"
        );
    }

    #[test]
    fn other_failures_keep_the_last_lines() {
        let e = failure(
            "pg1",
            &work(Manager::Apt, &["etcd-server"]),
            &out(100, "dpkg: error processing package etcd-server (--configure):\n installed etcd-server package post-installation script subprocess returned error exit status 1\nE: Sub-process /usr/bin/dpkg returned an error code (1)\n"),
        );
        assert_eq!(
            e.to_string(),
            "packages (install etcd-server) failed on `pg1` with exit status 100: dpkg: error processing package etcd-server (--configure): | installed etcd-server package post-installation script subprocess returned error exit status 1 | E: Sub-process /usr/bin/dpkg returned an error code (1)"
        );
    }
}
