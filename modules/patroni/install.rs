//! Patroni itself on the host: from the distribution's (or PGDG's) packages, into a pip
//! virtualenv, or already there. What is installed is read by the module's one probe script
//! (`patroni --version`, the package query, the venv's stamp), so a converged host costs no
//! round trip of its own; and the method decides the binaries the unit, the validation and
//! `pgdeploy status` use.

use serde::Deserialize;

use super::super::common::exec;
use super::super::common::pip;
use super::super::common::shell::quote;
use super::super::packages::{self, parse_query, query_script, Installed, PackagesWork};
use super::platform::Family;
use pgdeploy_core::module::{Change, HostContext, ModuleError, Problem};
use pgdeploy_core::params::OneOrMany;

/// How Patroni gets onto the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method {
    /// apt/dnf packages (`patroni`; on EL `patroni` and `patroni-etcd`).
    #[default]
    Package,
    /// A virtualenv with `patroni[extras]` from an index or a find-links directory.
    Pip,
    /// Installed by other means at `executable`.
    None,
}

/// The `install` parameter.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Install {
    #[serde(default)]
    pub method: Method,
    /// `package`: the package name(s); default `patroni` (EL: `patroni`, `patroni-etcd`).
    pub package: Option<OneOrMany<String>>,
    /// `pip`: the virtualenv; default `/opt/patroni`.
    pub venv: Option<String>,
    /// `pip`: an exact version; without it any installed 4.x is kept, else the latest 4.x.
    pub version: Option<String>,
    /// `pip`: Patroni's extras; default `etcd3`, `psycopg3` (the DCS client and the driver).
    pub extras: Option<Vec<String>>,
    /// `pip`: a PEP 503 index instead of PyPI.
    pub index_url: Option<String>,
    /// `pip`: a find-links URL or directory; without `index_url`, the only source (`--no-index`).
    pub find_links: Option<String>,
    /// `none`: where Patroni is (`patronictl` beside it); default `/usr/local/bin/patroni`.
    pub executable: Option<String>,
}

const DEFAULT_VENV: &str = "/opt/patroni";
const DEFAULT_EXECUTABLE: &str = "/usr/local/bin/patroni";
const DEFAULT_EXTRAS: [&str; 2] = ["etcd3", "psycopg3"];
/// Written into the venv after a pip run succeeded, with the requirement it installed: a
/// failed or interrupted run leaves no stamp, so the next run installs again (and repairs).
const STAMP: &str = ".pgdeploy-pip";
/// The major version accepted when `version` is not given.
const MAJOR: u64 = 4;

/// The binaries Patroni's method puts on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Binaries {
    pub patroni: String,
    pub patronictl: String,
}

impl Install {
    pub(crate) fn venv(&self) -> &str {
        self.venv.as_deref().unwrap_or(DEFAULT_VENV)
    }

    pub(crate) fn executable(&self) -> &str {
        self.executable.as_deref().unwrap_or(DEFAULT_EXECUTABLE)
    }

    pub(crate) fn extras(&self) -> Vec<String> {
        self.extras
            .clone()
            .unwrap_or_else(|| DEFAULT_EXTRAS.iter().map(|e| e.to_string()).collect())
    }

    /// The packages of `method: package` on `family`.
    pub(crate) fn packages(&self, family: Family) -> Vec<String> {
        match &self.package {
            Some(p) => p.0.clone(),
            None => family.patroni_packages(),
        }
    }

    pub(crate) fn binaries(&self) -> Binaries {
        let beside = |exe: &str| {
            let dir = exe.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            Binaries {
                patroni: exe.to_string(),
                patronictl: format!("{dir}/patronictl"),
            }
        };
        match self.method {
            Method::Package => beside("/usr/bin/patroni"),
            Method::Pip => beside(&format!("{}/bin/patroni", self.venv())),
            Method::None => beside(self.executable()),
        }
    }

    /// What pip installs: `patroni[etcd3,psycopg3]==4.1.5`, or the latest 4.x without a
    /// version (bounded, so that a 5.0 on the index does not make every run reinstall).
    pub(crate) fn requirement(&self) -> String {
        let extras = self.extras();
        let name = if extras.is_empty() {
            "patroni".to_string()
        } else {
            format!("patroni[{}]", extras.join(","))
        };
        match &self.version {
            Some(v) => format!("{name}=={v}"),
            None => format!("{name}>={MAJOR},<{}", MAJOR + 1),
        }
    }

    /// Where pip installs from, as messages name it.
    pub(crate) fn source(&self) -> String {
        match (&self.index_url, &self.find_links) {
            (Some(i), Some(f)) => format!("`{i}` and `{f}`"),
            (Some(i), None) => format!("`{i}`"),
            (None, Some(f)) => format!("`{f}`"),
            (None, None) => "PyPI".to_string(),
        }
    }

    fn stamp_path(&self) -> String {
        format!("{}/{STAMP}", self.venv())
    }

    /// `VENV/bin/pip install …`, then the stamp (removed first, so only success leaves it).
    fn pip_command(&self) -> String {
        let venv = self.venv();
        let pip = pip::install_command(venv, self.index_url.as_deref(), self.find_links.as_deref());
        let req = quote(&self.requirement());
        let stamp = quote(&self.stamp_path());
        format!("rm -f -- {stamp} && {pip} {req} && echo {req} > {stamp}")
    }

    /// The packages the probe asks about: Patroni's (`package`) or the venv support (`pip`).
    fn queried_packages(&self, family: Family) -> Vec<String> {
        match self.method {
            Method::Package => self.packages(family),
            Method::Pip => family
                .venv_package()
                .map(|p| vec![p.to_string()])
                .unwrap_or_default(),
            Method::None => Vec::new(),
        }
    }

    /// The lines the module's probe script adds for the installation; read by [`parse`].
    pub(crate) fn probe_script(&self, family: Family) -> String {
        let bin = quote(&self.binaries().patroni);
        // The version from Patroni's `version.py` where the method puts it (a file read):
        // `patroni --version` starts Python and imports Patroni, about 0.3 s of every no-op
        // run. The binary is asked only where the module is found nowhere (`none`, or an
        // unusual layout).
        let sources = match self.method {
            Method::Pip => format!("{}/lib/python3*/site-packages", quote(self.venv())),
            Method::Package => {
                "/usr/lib/python3/dist-packages /usr/lib/python3*/site-packages".to_string()
            }
            Method::None => String::new(),
        };
        let mut s = if sources.is_empty() {
            format!("printf 'patroni_version=%s\\n' \"$({bin} --version 2>/dev/null)\"; ")
        } else {
            format!(
                "v=; if [ -x {bin} ]; then for d in {sources}; do \
                 v=$(sed -n \"s/^__version__ = ['\\\"]\\([^'\\\"]*\\)['\\\"].*/\\1/p\" \"$d/patroni/version.py\" 2>/dev/null); \
                 [ -n \"$v\" ] && break; done; \
                 if [ -n \"$v\" ]; then v=\"patroni $v\"; else v=$({bin} --version 2>/dev/null); fi; fi; \
                 printf 'patroni_version=%s\\n' \"$v\"; "
            )
        };
        match self.method {
            Method::Pip => {
                let venv = self.venv();
                s.push_str(&format!(
                    "printf 'venv=%s\\n' \"$(test -x {} && echo yes)\"; \
                     printf 'pip_stamp=%s\\n' \"$(cat {} 2>/dev/null)\"; ",
                    quote(&format!("{venv}/bin/pip")),
                    quote(&self.stamp_path())
                ));
            }
            Method::None => {
                s.push_str(&format!(
                    "printf 'executable=%s\\n' \"$(test -x {bin} && echo yes)\"; "
                ));
            }
            Method::Package => {}
        }
        let names = self.queried_packages(family);
        if !names.is_empty() {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            s.push_str(&format!(
                "echo {PACKAGES}; {}; echo {END}; ",
                query_script(Some(family.manager()), &names, false)
            ));
        }
        s
    }

    /// Checks of the parameter alone, before any host is contacted.
    pub(crate) fn check(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let only = |given: bool, name: &str, method: &str, p: &mut Vec<Problem>| {
            if given {
                p.push(Problem::field(
                    "install",
                    format!("`{name}` is only for `method: {method}`"),
                ));
            }
        };
        let pip = self.method == Method::Pip;
        only(
            self.method != Method::Package && self.package.is_some(),
            "package",
            "package",
            &mut p,
        );
        for (given, name) in [
            (self.venv.is_some(), "venv"),
            (self.version.is_some(), "version"),
            (self.extras.is_some(), "extras"),
            (self.index_url.is_some(), "index_url"),
            (self.find_links.is_some(), "find_links"),
        ] {
            only(!pip && given, name, "pip", &mut p);
        }
        only(
            self.method != Method::None && self.executable.is_some(),
            "executable",
            "none",
            &mut p,
        );
        for (name, path) in [("venv", &self.venv), ("executable", &self.executable)] {
            if let Some(path) = path {
                if !path.starts_with('/') || path.len() < 2 {
                    p.push(Problem::field(
                        "install",
                        format!("`{name}`: `{path}` is not an absolute path"),
                    ));
                }
            }
        }
        if let Some(v) = &self.version {
            let ok = v.starts_with(|c: char| c.is_ascii_digit())
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".+!-".contains(c));
            if !ok {
                p.push(Problem::field(
                    "install",
                    format!("`version`: `{v}` is not a version (such as `4.1.5`)"),
                ));
            }
        }
        for e in self.extras.iter().flatten() {
            if e.is_empty()
                || !e
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                p.push(Problem::field(
                    "install",
                    format!("`extras`: `{e}` is not an extra's name"),
                ));
            }
        }
        for (name, url) in [
            ("index_url", &self.index_url),
            ("find_links", &self.find_links),
        ] {
            if let Some(u) = url {
                if u.is_empty() || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    p.push(Problem::field(
                        "install",
                        format!("`{name}`: `{u}` is not a URL or a directory"),
                    ));
                }
            }
        }
        if let Some(names) = &self.package {
            if names.0.is_empty() {
                p.push(Problem::field("install", "`package` names no package"));
            }
            for n in &names.0 {
                if n.is_empty()
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-._:".contains(c))
                {
                    p.push(Problem::field(
                        "install",
                        format!("`package`: `{n}` is not a package name"),
                    ));
                }
            }
        }
        p
    }

    /// What to do so that Patroni is installed as asked: the plan's changes and the work, or
    /// an error (method `none` without its executable).
    pub(crate) fn decide(
        &self,
        host: &str,
        family: Family,
        found: &Found,
    ) -> Result<(Vec<Change>, Option<InstallWork>), ModuleError> {
        let mut changes = Vec::new();
        // Debian's `patroni` enables and starts its own unit on install: its maintainer
        // scripts start nothing here (the module's unit and config come next).
        let packages_work = |names: Vec<String>| PackagesWork {
            manager: family.manager(),
            update_cache: false,
            finish_interrupted: false,
            start_services: false,
            install_recommends: None,
            install: names,
            upgrade: Vec::new(),
            remove: Vec::new(),
        };
        let missing = |names: Vec<String>| -> Vec<String> {
            names
                .into_iter()
                .filter(|n| !found.packages.versions.contains_key(n))
                .collect()
        };
        let work = match self.method {
            Method::None => {
                if !found.executable {
                    return Err(ModuleError::Failed(format!(
                        "`{}` is not an executable on `{host}` (`install.method: none` expects Patroni there): \
                         install it, set `install.executable`, or use `method: package` or `pip`",
                        self.executable()
                    )));
                }
                None
            }
            Method::Package => {
                let names = missing(self.packages(family));
                if names.is_empty() {
                    None
                } else {
                    let shown: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                    changes.push(Change::new(format!(
                        "install package{} {}",
                        if names.len() > 1 { "s" } else { "" },
                        shown.join(", ")
                    )));
                    Some(InstallWork {
                        packages: Some(packages_work(names)),
                        venv: None,
                        pip: None,
                    })
                }
            }
            Method::Pip => {
                if self.pip_satisfied(found) {
                    None
                } else {
                    let mut w = InstallWork {
                        packages: None,
                        venv: None,
                        pip: None,
                    };
                    if !found.venv {
                        let venv_support = missing(self.queried_packages(family));
                        if !venv_support.is_empty() {
                            let shown: Vec<String> =
                                venv_support.iter().map(|n| format!("`{n}`")).collect();
                            changes.push(Change::new(format!(
                                "install {} (Python's `venv`, for Patroni's virtualenv)",
                                shown.join(", ")
                            )));
                            w.packages = Some(packages_work(venv_support));
                        }
                        w.venv = Some(format!("python3 -m venv {}", quote(self.venv())));
                    }
                    let now = match &found.version {
                        Some(v) => format!("; `{}` installed", v.text),
                        None => String::new(),
                    };
                    changes.push(Change::new(format!(
                        "install Patroni (pip `{}` into `{}` from {}{now})",
                        self.requirement(),
                        self.venv(),
                        self.source()
                    )));
                    w.pip = Some(self.pip_command());
                    Some(w)
                }
            }
        };
        Ok((changes, work))
    }

    /// The venv has the wanted version (any 4.x without `version`), and the last pip run
    /// completed with the wanted extras.
    fn pip_satisfied(&self, found: &Found) -> bool {
        let Some(installed) = &found.version else {
            return false;
        };
        let version_ok = match &self.version {
            Some(v) => Version::parse(v).same_release(installed),
            None => installed.major() == Some(MAJOR),
        };
        let stamp_extras = found.stamp.as_deref().map(extras_of);
        let mut wanted = self.extras();
        wanted.sort();
        version_ok && stamp_extras == Some(wanted)
    }

    /// The Patroni version the host will run after `work` (if it is known before then).
    pub(crate) fn version_after(
        &self,
        found: &Found,
        work: Option<&InstallWork>,
    ) -> Option<Version> {
        match (work, self.method, &self.version) {
            (None, ..) => found.version.clone(),
            (Some(_), Method::Pip, Some(v)) => Some(Version::parse(v)),
            (Some(_), ..) => None,
        }
    }
}

/// The sorted extras of a stamp's requirement (`patroni[etcd3,psycopg3]==4.1.5`).
fn extras_of(requirement: &str) -> Vec<String> {
    let mut e: Vec<String> = requirement
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(inner, _)| {
            inner
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    e.sort();
    e
}

/// Marks the package query's output inside the probe's.
const PACKAGES: &str = "==patroni-packages";
const END: &str = "==patroni-packages-end";

/// What the probe found about the installation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// `patroni --version` of the method's binary.
    pub version: Option<Version>,
    /// `pip`: the venv has its `pip`.
    pub venv: bool,
    /// `pip`: the requirement of the last completed pip run.
    pub stamp: Option<String>,
    /// `none`: the executable exists.
    pub executable: bool,
    pub packages: Installed,
}

/// Reads the installation's part of the probe's output.
pub(super) fn parse(out: &str) -> Found {
    let mut f = Found::default();
    let mut query = None::<String>;
    for line in out.lines() {
        if let Some(q) = query.as_mut() {
            if line == END {
                f.packages = parse_query(q).1;
                query = None;
            } else {
                q.push_str(line);
                q.push('\n');
            }
            continue;
        }
        if line == PACKAGES {
            query = Some(String::new());
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k {
            "patroni_version" if !v.is_empty() => f.version = Some(Version::from_output(v)),
            "venv" => f.venv = v == "yes",
            "pip_stamp" if !v.is_empty() => f.stamp = Some(v.to_string()),
            "executable" => f.executable = v == "yes",
            _ => {}
        }
    }
    f
}

/// A Patroni version as `patroni --version` prints it (`patroni 4.1.5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Version {
    pub text: String,
}

impl Version {
    pub(crate) fn parse(text: &str) -> Self {
        Version {
            text: text.trim().to_string(),
        }
    }

    /// From `patroni --version`'s output: its last word.
    pub(crate) fn from_output(out: &str) -> Self {
        Version::parse(out.split_whitespace().last().unwrap_or_default())
    }

    /// The numeric release segments (`4.1.5` → 4, 1, 5), up to the first non-numeric part.
    fn release(&self) -> Vec<u64> {
        let mut r = Vec::new();
        for part in self.text.split('.') {
            let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
            let Ok(n) = digits.parse() else { break };
            r.push(n);
            if digits.len() != part.len() {
                break;
            }
        }
        r
    }

    pub(crate) fn major(&self) -> Option<u64> {
        self.release().first().copied()
    }

    /// The same version as pip compares `==` (`4.1` is `4.1.0`).
    pub(crate) fn same_release(&self, other: &Version) -> bool {
        let trim = |mut v: Vec<u64>| {
            while v.last() == Some(&0) {
                v.pop();
            }
            v
        };
        let plain = |v: &Version| v.text.chars().all(|c| c.is_ascii_digit() || c == '.');
        if plain(self) && plain(other) {
            trim(self.release()) == trim(other.release())
        } else {
            self.text == other.text
        }
    }
}

/// The command that checks a candidate config file (`%s`) with `patroni` at `binary`.
/// `--ignore-listen-port` (Patroni 4.0+) lets a running member's config be checked; older
/// Patroni (Debian 12's 3.0.2, Ubuntu 24.04's 3.2.2) has only `--validate-config`, which also
/// fails when the REST API or PostgreSQL port is in use: there, a failure whose only
/// complaints are ports in use passes. With the version unknown (not installed at plan
/// time), the binary's `--help` decides.
pub(super) fn validate_command(binary: &str, version: Option<&Version>) -> String {
    let bin = quote(binary);
    let new = format!("{bin} --validate-config --ignore-listen-port %s");
    let old = format!(
        "out=$({bin} --validate-config %s 2>&1); rc=$?; \
         if [ $rc -ne 0 ] && {{ [ -z \"$out\" ] || echo \"$out\" | grep -v 'is already in use' | grep -q .; }}; \
         then echo \"$out\" >&2; exit $rc; fi"
    );
    match version.and_then(Version::major) {
        Some(m) if m >= 4 => new,
        Some(_) => old,
        None => format!(
            "if {bin} --help 2>/dev/null | grep -q -- --ignore-listen-port; then {new}; else {old}; fi"
        ),
    }
}

/// What `apply` runs to install, in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstallWork {
    /// Patroni's packages, or Python's venv support (installed starting no service).
    pub packages: Option<PackagesWork>,
    pub venv: Option<String>,
    pub pip: Option<String>,
}

/// Installs as planned; a failed pip run names the host and where it installed from.
pub(super) async fn apply(
    cx: &HostContext<'_>,
    install: &Install,
    work: &InstallWork,
) -> Result<(), ModuleError> {
    if let Some(p) = &work.packages {
        packages::run_work(cx, p).await?;
    }
    if let Some(venv) = &work.venv {
        exec::check(cx, venv, venv).await?;
    }
    if let Some(pip) = &work.pip {
        let out = packages::exec_long(cx, pip).await?;
        if out.status != 0 {
            return Err(ModuleError::Failed(format!(
                "cannot install Patroni on `{}` from {}: pip exited with status {}: {}",
                cx.host,
                install.source(),
                out.status,
                last_lines(&out, 6)
            )));
        }
    }
    Ok(())
}

/// The last `n` non-empty lines of a failed command's stderr (else its stdout).
fn last_lines(out: &pgdeploy_core::transport::ExecOutput, n: usize) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let text = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        "no output".to_string()
    } else {
        tail.join(" / ")
    }
}
