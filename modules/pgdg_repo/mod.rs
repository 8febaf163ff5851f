//! `pgdg_repo`: the PostgreSQL Global Development Group repository (APT or DNF, chosen from
//! the host's facts), or, with `source: distro`, no such repository at all.
//!
//! Plan reads the host in one round trip: whether the signing key is there, the repository
//! file (bytes and attributes), and on EL 8/9 the state of dnf's `postgresql` module stream.

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;
use pgdeploy_core::transport::ExecOutput;

use super::common::apt;
use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::exec;
use super::common::shell::quote;
use super::common::stat::{self, Kind, PathState};

pub(crate) const APT_MIRROR: &str = "https://apt.postgresql.org/pub/repos/apt";
pub(crate) const DNF_MIRROR: &str = "https://download.postgresql.org/pub/repos/yum";
pub(crate) const APT_KEY_URL: &str = "https://www.postgresql.org/media/keys/ACCC4CF8.asc";
pub(crate) const DNF_KEY_URL: &str =
    "https://download.postgresql.org/pub/repos/yum/keys/PGDG-RPM-GPG-KEY-RHEL";
/// Not PGDG's documented `/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc`: the
/// `postgresql-common` package ships a file there (PGDG's own key) and replaces the one we put,
/// which breaks every later `apt-get update` of a mirror signed with its own key. Debian's
/// place for local keys is `/etc/apt/keyrings`, which no package owns.
pub(crate) const APT_KEY: &str = "/etc/apt/keyrings/pgdg.asc";
pub(crate) const DNF_KEY: &str = "/etc/pki/rpm-gpg/PGDG-RPM-GPG-KEY-RHEL";
pub(crate) const APT_SOURCE: &str = "/etc/apt/sources.list.d/pgdg.sources";
pub(crate) const DNF_REPO: &str = "/etc/yum.repos.d/pgdg.repo";
/// Where dnf records a module stream's state (`state=disabled`).
const DNF_MODULE_STATE: &str = "/etc/dnf/modules.d/postgresql.module";
const DEFAULT_VERSIONS: &[u32] = &[17];

/// Where PostgreSQL packages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Source {
    /// The PGDG repository (apt.postgresql.org / download.postgresql.org, or `mirror`).
    #[default]
    Pgdg,
    /// The distribution's own packages: no PGDG repository file on the host.
    Distro,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PgdgRepo {
    #[serde(default)]
    pub source: Source,
    /// The repository's base URL, for air-gapped sites with a local mirror.
    pub mirror: Option<String>,
    /// Where the host downloads the signing key from (only when the key is missing).
    pub key_url: Option<String>,
    /// PostgreSQL major versions with a DNF repository section (APT has one suite for all).
    pub versions: Option<Vec<u32>>,
}

/// The package family of a host, from `ansible_os_family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Apt,
    Dnf,
}

/// What the host is, as far as the repository is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Platform {
    pub family: Family,
    /// `ansible_distribution` (`Debian`, `Ubuntu`, `Rocky`, `Fedora`, …).
    pub distribution: String,
    /// `ansible_distribution_release` (`bookworm`); APT only.
    pub codename: String,
    /// `ansible_distribution_major_version` (`9`).
    pub major: String,
    /// `ansible_architecture` (`x86_64`).
    pub arch: String,
}

impl Platform {
    pub(crate) fn from_facts(cx: &HostContext<'_>) -> Result<Self, ModuleError> {
        let fact = |k: &str| {
            cx.facts
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let family = match fact("ansible_os_family").as_str() {
            "Debian" => Family::Apt,
            "RedHat" => Family::Dnf,
            "" => {
                return Err(ModuleError::Failed(format!(
                    "`{}` has no `ansible_os_family` fact; pgdg_repo needs the facts of the host",
                    cx.host
                )))
            }
            other => {
                return Err(ModuleError::Failed(format!(
                    "`{}` is of OS family `{other}`; pgdg_repo supports `Debian` (APT) and `RedHat` (DNF)",
                    cx.host
                )))
            }
        };
        Ok(Platform {
            family,
            distribution: fact("ansible_distribution"),
            codename: fact("ansible_distribution_release"),
            major: fact("ansible_distribution_major_version"),
            arch: fact("ansible_architecture"),
        })
    }

    /// The repository file of this family.
    pub(crate) fn repo_file(&self) -> &'static str {
        match self.family {
            Family::Apt => APT_SOURCE,
            Family::Dnf => DNF_REPO,
        }
    }

    fn key_file(&self) -> &'static str {
        match self.family {
            Family::Apt => APT_KEY,
            Family::Dnf => DNF_KEY,
        }
    }

    /// Whether dnf has a `postgresql` module stream to disable (EL 8 and 9; EL 10 and Fedora
    /// have no modularity for it).
    fn has_module_stream(&self) -> bool {
        self.family == Family::Dnf
            && self.distribution != "Fedora"
            && matches!(self.major.as_str(), "8" | "9")
    }

    /// Debian's name for the machine architecture, for `Architectures:`.
    fn deb_arch(&self) -> Option<&'static str> {
        match self.arch.as_str() {
            "x86_64" | "amd64" => Some("amd64"),
            "aarch64" | "arm64" => Some("arm64"),
            "ppc64le" | "ppc64el" => Some("ppc64el"),
            "s390x" => Some("s390x"),
            _ => None,
        }
    }
}

/// What `apply` does, decided by `plan`, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PgdgWork {
    /// Download the signing key on the host: (URL, path).
    pub key: Option<(String, String)>,
    /// Write the repository file.
    pub file: Option<ContentWork>,
    /// Remove the repository file (`source: distro`).
    pub remove: Option<String>,
    /// `apt-get update` after the sources changed.
    pub apt_update: bool,
    /// `dnf -qy module disable postgresql`.
    pub module_disable: bool,
}

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probed {
    pub key_present: bool,
    /// The `state=` of dnf's `postgresql` module (empty when none is recorded).
    pub module_state: String,
    pub file: PathState,
}

const HEADER: &str =
    "# Managed by pgdeploy (pgdg_repo): the PostgreSQL Global Development Group repository\n";

impl PgdgRepo {
    fn mirror(&self, family: Family) -> String {
        match &self.mirror {
            Some(m) => m.trim_end_matches('/').to_string(),
            None => match family {
                Family::Apt => APT_MIRROR.to_string(),
                Family::Dnf => DNF_MIRROR.to_string(),
            },
        }
    }

    fn key_url(&self, family: Family) -> String {
        match &self.key_url {
            Some(u) => u.clone(),
            None => match family {
                Family::Apt => APT_KEY_URL.to_string(),
                Family::Dnf => DNF_KEY_URL.to_string(),
            },
        }
    }

    fn versions(&self) -> &[u32] {
        self.versions.as_deref().unwrap_or(DEFAULT_VERSIONS)
    }

    /// The repository file for `platform`.
    pub(crate) fn render(&self, platform: &Platform) -> Result<String, ModuleError> {
        let mirror = self.mirror(platform.family);
        let mut out = String::from(HEADER);
        match platform.family {
            Family::Apt => {
                if platform.codename.is_empty() {
                    return Err(ModuleError::Failed(
                        "the host has no `ansible_distribution_release` fact (the codename of the APT suite)".into(),
                    ));
                }
                out.push_str("Types: deb\n");
                out.push_str(&format!("URIs: {mirror}\n"));
                out.push_str(&format!("Suites: {}-pgdg\n", platform.codename));
                out.push_str("Components: main\n");
                if let Some(arch) = platform.deb_arch() {
                    out.push_str(&format!("Architectures: {arch}\n"));
                }
                out.push_str(&format!("Signed-By: {APT_KEY}\n"));
            }
            Family::Dnf => {
                let (dist, label) = if platform.distribution == "Fedora" {
                    ("fedora/fedora", "Fedora")
                } else {
                    ("redhat/rhel", "RHEL")
                };
                for v in self.versions() {
                    out.push_str(&format!(
                        "\n[pgdg{v}]\n\
                         name=PostgreSQL {v} for {label} $releasever - $basearch\n\
                         baseurl={mirror}/{v}/{dist}-$releasever-$basearch\n\
                         enabled=1\n\
                         gpgcheck=1\n\
                         gpgkey=file://{DNF_KEY}\n"
                    ));
                }
            }
        }
        Ok(out)
    }

    /// The one probe script: key, module state, then the repository file's `stat` probe
    /// with its bytes (last, since the bytes run to the end of the output).
    pub(crate) fn probe_script(&self, platform: &Platform) -> String {
        let file = platform.repo_file();
        match self.source {
            Source::Distro => stat::probe_script(file, true),
            Source::Pgdg => format!(
                "if [ -s {key} ]; then echo key=present; else echo key=missing; fi; \
                 echo \"module=$(sed -n 's/^state=//p' {module} 2>/dev/null | head -n 1)\"; \
                 {file_probe}",
                key = quote(platform.key_file()),
                module = quote(DNF_MODULE_STATE),
                file_probe = stat::probe_script(file, true),
            ),
        }
    }

    pub(crate) fn parse_probe(
        &self,
        platform: &Platform,
        stdout: &[u8],
    ) -> Result<Probed, ModuleError> {
        let file = platform.repo_file();
        if self.source == Source::Distro {
            return Ok(Probed {
                key_present: false,
                module_state: String::new(),
                file: stat::parse_probe(file, stdout, true)?,
            });
        }
        let bad = || ModuleError::Failed("unexpected output of the pgdg_repo probe".into());
        let mut rest = stdout;
        let mut line = || -> Result<String, ModuleError> {
            let end = rest.iter().position(|b| *b == b'\n').ok_or_else(bad)?;
            let l = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest = &rest[end + 1..];
            Ok(l)
        };
        let key = line()?;
        let module = line()?;
        let key_present = match key.as_str() {
            "key=present" => true,
            "key=missing" => false,
            _ => return Err(bad()),
        };
        let module_state = module.strip_prefix("module=").ok_or_else(bad)?.to_string();
        Ok(Probed {
            key_present,
            module_state: module_state.trim().to_string(),
            file: stat::parse_probe(file, rest, true)?,
        })
    }

    /// The changes and work that bring the probed host to what is wanted.
    pub(crate) fn decide(
        &self,
        platform: &Platform,
        probed: &Probed,
    ) -> Result<Option<(Vec<Change>, PgdgWork)>, ModuleError> {
        let file = platform.repo_file();
        let mut changes = Vec::new();
        let mut work = PgdgWork::default();
        match self.source {
            Source::Distro => match probed.file.kind {
                Kind::Missing => {}
                _ => {
                    let before = probed
                        .file
                        .content
                        .as_deref()
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                    let mut change = Change::new(format!(
                        "remove `{file}` (`source: distro` uses the distribution's packages)"
                    ));
                    if let Some(before) = before {
                        change = change.with_diff(Diff {
                            path: file.to_string(),
                            before: Some(before),
                            after: None,
                        });
                    }
                    changes.push(change);
                    work.remove = Some(file.to_string());
                }
            },
            Source::Pgdg => {
                if !probed.key_present {
                    let url = self.key_url(platform.family);
                    changes.push(Change::new(format!(
                        "download the signing key `{}` from `{url}`",
                        platform.key_file()
                    )));
                    work.key = Some((url, platform.key_file().to_string()));
                }
                let desired = Desired {
                    dest: file,
                    content: self.render(platform)?.into_bytes(),
                    wanted: Wanted {
                        owner: Some("root"),
                        group: Some("root"),
                        mode: Some(Mode(0o644)),
                    },
                    validate: None,
                };
                if let Some((c, w)) = content::decide(&desired, &probed.file)? {
                    changes.extend(c);
                    work.file = Some(w);
                }
                if platform.has_module_stream() && probed.module_state != "disabled" {
                    changes.push(Change::new(
                        "disable the `postgresql` module stream of dnf (`dnf -qy module disable postgresql`)",
                    ));
                    work.module_disable = true;
                }
            }
        }
        if changes.is_empty() {
            return Ok(None);
        }
        let sources_changed = work.key.is_some() || work.file.is_some() || work.remove.is_some();
        if platform.family == Family::Apt && sources_changed {
            changes.push(Change::new("refresh the package index (`apt-get update`)"));
            work.apt_update = true;
        }
        Ok(Some((changes, work)))
    }
}

/// Exit status of [`key_script`] when `curl` failed (its message is on stderr).
const KEY_DOWNLOAD_FAILED: i32 = 2;
/// Exit status of [`key_script`] when what was downloaded is not an armored PGP key.
const KEY_NOT_A_KEY: i32 = 3;

/// The script that downloads the key at `url` to `path` on the host: into a temporary file
/// beside it, checked to be an armored PGP key, then renamed. Its exit status says which
/// part failed ([`KEY_DOWNLOAD_FAILED`], [`KEY_NOT_A_KEY`]), so the error can say it.
pub(crate) fn key_script(url: &str, path: &str) -> String {
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    let dir = if dir.is_empty() { "/" } else { dir };
    format!(
        "install -d -m 0755 -- {d} && tmp=$(mktemp {d}/.pgdg-key.XXXXXX) || exit 1; \
         if ! curl -fsSL --retry 3 -o \"$tmp\" -- {u}; then rm -f -- \"$tmp\"; exit {KEY_DOWNLOAD_FAILED}; fi; \
         if ! grep -q 'BEGIN PGP PUBLIC KEY BLOCK' \"$tmp\"; then rm -f -- \"$tmp\"; exit {KEY_NOT_A_KEY}; fi; \
         chmod 0644 \"$tmp\" && mv -f -- \"$tmp\" {p}",
        d = quote(dir),
        u = quote(url),
        p = quote(path),
    )
}

/// The error for a failed [`key_script`] on `host`.
pub(crate) fn key_failure(host: &str, url: &str, out: &ExecOutput) -> ModuleError {
    let said = apt::last_lines(String::from_utf8_lossy(&out.stderr).trim(), 3);
    ModuleError::Failed(match out.status {
        KEY_DOWNLOAD_FAILED => format!(
            "downloading the signing key from `{url}` on `{host}` failed: {}",
            if said.is_empty() { "no message from curl".to_string() } else { said }
        ),
        KEY_NOT_A_KEY => format!(
            "`{url}` (downloaded on `{host}`) is not an armored PGP public key: check `key_url`"
        ),
        status => format!(
            "installing the signing key from `{url}` on `{host}` failed with exit status {status}: {said}"
        ),
    })
}

/// The error for a failed `apt-get update` on `host` after the repository changed: which
/// sources failed and why, and, when the repository is not signed by the installed key,
/// where that key came from.
pub(crate) fn update_failure(
    host: &str,
    key: &str,
    key_url: &str,
    problems: &[String],
) -> ModuleError {
    let mut msg = format!(
        "`apt-get update` on `{host}` failed: {}",
        problems.join("; ")
    );
    let unsigned = problems
        .iter()
        .any(|p| p.contains("NO_PUBKEY") || p.contains("is not signed"));
    if unsigned {
        msg.push_str(&format!(
            " (the repository must be signed by the key in `{key}`, downloaded from `{key_url}`; to replace that key, remove the file)"
        ));
    }
    ModuleError::Failed(msg)
}

#[async_trait::async_trait]
impl Action for PgdgRepo {
    /// One round trip: key, module stream state and the repository file read together.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let platform = Platform::from_facts(cx)?;
        let script = self.probe_script(&platform);
        let out = exec::check(cx, &script, "pgdg_repo probe").await?;
        let probed = self.parse_probe(&platform, &out.stdout)?;
        Ok(match self.decide(&platform, &probed)? {
            Some((changes, work)) => Plan::changes(changes, work),
            None => Plan::unchanged(),
        })
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<PgdgWork>() else {
            return Ok(());
        };
        if let Some((url, path)) = &work.key {
            let out = exec::run(cx, &key_script(url, path)).await?;
            if out.status != 0 {
                return Err(key_failure(cx.host, url, &out));
            }
        }
        if let Some(file) = &work.file {
            content::apply(cx, file).await?;
        }
        if let Some(path) = &work.remove {
            let rm = format!("rm -f -- {}", quote(path));
            exec::check(cx, &rm, &rm).await?;
        }
        if work.apt_update {
            let out = exec::run(cx, apt::UPDATE).await?;
            let problems = apt::update_problems(&out);
            if !problems.is_empty() {
                let url = self.key_url(Family::Apt);
                return Err(update_failure(cx.host, APT_KEY, &url, &problems));
            }
        }
        if work.module_disable {
            let cmd = "dnf -qy module disable postgresql";
            exec::check(cx, cmd, cmd).await?;
        }
        Ok(())
    }
}

/// Whether `url` is an `http://` or `https://` URL with a host and no spaces.
fn check_url(field: &'static str, url: &str) -> Vec<Problem> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = match rest {
        Some(r) => {
            let host = r.split('/').next().unwrap_or_default();
            !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Vec::new()
    } else {
        vec![Problem::field(
            field,
            format!("`{url}` is not an `http://` or `https://` URL"),
        )]
    }
}

impl Params for PgdgRepo {
    const NAME: &'static str = "pgdg_repo";
    const SUMMARY: &'static str =
        "the PostgreSQL Global Development Group repository (APT or DNF), or none with `source: distro`";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.source == Source::Distro {
            for (field, given) in [
                ("mirror", self.mirror.is_some()),
                ("key_url", self.key_url.is_some()),
                ("versions", self.versions.is_some()),
            ] {
                if given {
                    problems.push(Problem::field(
                        field,
                        format!("`{field}` has no effect with `source: distro`"),
                    ));
                }
            }
            return problems;
        }
        if let Some(m) = &self.mirror {
            problems.extend(check_url("mirror", m));
        }
        if let Some(k) = &self.key_url {
            problems.extend(check_url("key_url", k));
        }
        if let Some(versions) = &self.versions {
            if versions.is_empty() {
                problems.push(Problem::field(
                    "versions",
                    "give at least one PostgreSQL major version",
                ));
            }
            for v in versions {
                if !(10..=99).contains(v) {
                    problems.push(Problem::field(
                        "versions",
                        format!("`{v}` is not a PostgreSQL major version (10 or later)"),
                    ));
                }
            }
            let mut sorted = versions.clone();
            sorted.sort_unstable();
            if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
                problems.push(Problem::field(
                    "versions",
                    format!("version `{}` is listed twice", w[0]),
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests;
