//! `pglift_site`: pglift's site on a host. pglift and pglift-cli installed into a pip venv
//! (from an index or a find-links directory) unless told they are there, the site settings
//! (`settings.yaml`) rendered from typed parameters, the `pg_hba.conf` template beside them,
//! both diffed like any file and written atomically, and `pglift site-configure install` run
//! as the system user only when the settings changed or it never ran (a stamp holding the
//! digest of what it ran with).

mod settings;

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub(crate) use settings::Settings;

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::exec;
use super::common::pip;
use super::common::shell::quote;
use super::common::stat;
use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;

const DEFAULT_VENV: &str = "/opt/pglift";
const DEFAULT_EXECUTABLE: &str = "/usr/local/bin/pglift";
const DEFAULT_CONFIG_DIR: &str = "/etc/pglift";
/// Written into the venv after pip succeeded, with the requirements it installed.
const PIP_STAMP: &str = ".pgdeploy-pip";
/// Written into the config directory after `site-configure install` succeeded, with the
/// digest of the settings and template it ran with.
const SITE_STAMP: &str = ".pgdeploy-site-configure";

/// How pglift gets onto the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method {
    /// A virtualenv with `pglift` and `pglift-cli` from an index or a find-links directory.
    #[default]
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
    /// `pip`: the virtualenv; default `/opt/pglift`.
    pub venv: Option<String>,
    /// `pip`: an exact version of pglift and pglift-cli; without it the latest 3.x.
    pub version: Option<String>,
    /// `pip`: more requirements for the same venv (`patroni[etcd3]`, say).
    #[serde(default)]
    pub extra: Vec<String>,
    /// `pip`: a PEP 503 index instead of PyPI.
    pub index_url: Option<String>,
    /// `pip`: a find-links URL or directory; without `index_url`, the only source.
    pub find_links: Option<String>,
    /// `none`: where `pglift` is; default `/usr/local/bin/pglift`.
    pub executable: Option<String>,
}

impl Install {
    pub(crate) fn venv(&self) -> &str {
        self.venv.as_deref().unwrap_or(DEFAULT_VENV)
    }

    /// The `pglift` binary the method puts on the host.
    pub(crate) fn executable(&self) -> String {
        match self.method {
            Method::Pip => format!("{}/bin/pglift", self.venv()),
            Method::None => self
                .executable
                .clone()
                .unwrap_or_else(|| DEFAULT_EXECUTABLE.to_string()),
        }
    }

    /// The requirements pip installs, in order.
    pub(crate) fn requirements(&self) -> Vec<String> {
        let pin = match &self.version {
            Some(v) => format!("=={v}"),
            None => ">=3,<4".to_string(),
        };
        let mut r = vec![format!("pglift{pin}"), format!("pglift-cli{pin}")];
        r.extend(self.extra.iter().cloned());
        r
    }

    fn stamp_text(&self) -> String {
        self.requirements().join(" ")
    }

    fn source(&self) -> String {
        match (&self.index_url, &self.find_links) {
            (Some(i), Some(f)) => format!("`{i}` and `{f}`"),
            (Some(i), None) => format!("`{i}`"),
            (None, Some(f)) => format!("`{f}`"),
            (None, None) => "PyPI".to_string(),
        }
    }

    /// The venv (created when missing), then pip, then the stamp (removed first, so only a
    /// successful run leaves it).
    fn pip_script(&self) -> String {
        let venv = self.venv();
        let mut pip =
            pip::install_command(venv, self.index_url.as_deref(), self.find_links.as_deref());
        for r in self.requirements() {
            pip.push_str(&format!(" {}", quote(&r)));
        }
        let stamp = quote(&format!("{venv}/{PIP_STAMP}"));
        format!(
            "if [ ! -x {bin} ]; then python3 -m venv {v}; fi && rm -f -- {stamp} && {pip} && echo {text} > {stamp}",
            bin = quote(&format!("{venv}/bin/pip")),
            v = quote(venv),
            text = quote(&self.stamp_text()),
        )
    }

    fn check(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.method == Method::None {
            for (given, name) in [
                (self.venv.is_some(), "venv"),
                (self.version.is_some(), "version"),
                (!self.extra.is_empty(), "extra"),
                (self.index_url.is_some(), "index_url"),
                (self.find_links.is_some(), "find_links"),
            ] {
                if given {
                    p.push(Problem::field(
                        "install",
                        format!("`{name}` is only for `method: pip`"),
                    ));
                }
            }
        } else if self.executable.is_some() {
            p.push(Problem::field(
                "install",
                "`executable` is only for `method: none`",
            ));
        }
        for path in [&self.venv, &self.executable].into_iter().flatten() {
            if !path.starts_with('/') || path.len() < 2 {
                p.push(Problem::field(
                    "install",
                    format!("`{path}` is not an absolute path"),
                ));
            }
        }
        for r in self.requirements() {
            if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                p.push(Problem::field(
                    "install",
                    format!("`{r}` is not a pip requirement"),
                ));
            }
        }
        p
    }
}

/// The module's parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PgliftSite {
    #[serde(default)]
    pub install: Install,
    /// Where `settings.yaml` and the templates go; default `/etc/pglift` (a directory pglift
    /// reads site settings from).
    pub config_dir: Option<String>,
    /// The site settings.
    #[serde(default)]
    pub settings: Settings,
    /// The `pg_hba.conf` template (`{surole}`, `{replrole}`, `{auth.local}`, `{auth.host}`
    /// are pglift's substitutions); without it, pglift's own.
    pub pg_hba: Option<String>,
}

impl PgliftSite {
    fn config_dir(&self) -> &str {
        self.config_dir.as_deref().unwrap_or(DEFAULT_CONFIG_DIR)
    }
    fn settings_path(&self) -> String {
        format!("{}/settings.yaml", self.config_dir())
    }
    fn hba_path(&self) -> String {
        format!("{}/postgresql/pg_hba.conf", self.config_dir())
    }
    fn site_stamp_path(&self) -> String {
        format!("{}/{SITE_STAMP}", self.config_dir())
    }
    /// The user pglift runs as (`sysuser`'s first item), `postgres` by default.
    fn sysuser(&self) -> &str {
        self.settings
            .sysuser
            .as_ref()
            .and_then(|u| u.first())
            .map(String::as_str)
            .unwrap_or("postgres")
    }
    fn digest(&self, settings: &str) -> String {
        let mut h = Sha256::new();
        h.update(settings.as_bytes());
        h.update([0u8]);
        h.update(self.pg_hba.as_deref().unwrap_or("").as_bytes());
        h.update([0u8]);
        h.update(self.install.executable().as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn probe_script(&self) -> String {
        let mut s = String::new();
        match self.install.method {
            Method::Pip => {
                let venv = self.install.venv();
                s.push_str(&format!(
                    "printf 'venv=%s\\n' \"$(test -x {} && echo yes)\"; printf 'pip_stamp=%s\\n' \"$(cat {} 2>/dev/null)\"; ",
                    quote(&format!("{venv}/bin/pip")),
                    quote(&format!("{venv}/{PIP_STAMP}")),
                ));
            }
            Method::None => {}
        }
        s.push_str(&format!(
            "printf 'executable=%s\\n' \"$(test -x {} && echo yes)\"; printf 'site_stamp=%s\\n' \"$(cat {} 2>/dev/null)\"",
            quote(&self.install.executable()),
            quote(&self.site_stamp_path()),
        ));
        s
    }

    /// `pglift site-configure install` as the system user (through `runuser` when the task
    /// runs as root), from `/` so that the user's lack of access to the login directory does
    /// not matter.
    fn site_configure_command(&self) -> String {
        as_user(
            self.sysuser(),
            &format!(
                "{} --non-interactive site-configure install",
                quote(&self.install.executable())
            ),
        )
    }
}

/// `command` run as `user`: directly when the task already is that user, else through
/// `runuser` (the task is root), from `/`.
pub(crate) fn as_user(user: &str, command: &str) -> String {
    let u = quote(user);
    format!(
        "cd / && if [ \"$(id -un)\" = {u} ]; then {command}; else runuser -u {u} -- sh -c {}; fi",
        quote(command)
    )
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("")
}

/// What `apply` does, in this order.
#[derive(Debug, Default)]
struct Work {
    pip: Option<String>,
    /// `none`: the executable, missing at plan time, checked again at apply.
    require: Option<exec::Required>,
    dirs: Option<String>,
    files: Vec<ContentWork>,
    site_configure: Option<(String, String)>,
}

#[async_trait::async_trait]
impl Action for PgliftSite {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let out = exec::check(cx, &self.probe_script(), "pglift_site probe").await?;
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut changes = Vec::new();
        let mut work = Work::default();
        let mut notes = Vec::new();

        match self.install.method {
            Method::Pip => {
                let venv = self.install.venv();
                let stamp_ok = field(&out, "pip_stamp") == self.install.stamp_text();
                if !stamp_ok {
                    if field(&out, "venv") != "yes" {
                        changes.push(Change::new(format!("create virtualenv `{venv}`")));
                    }
                    let reqs: Vec<String> = self
                        .install
                        .requirements()
                        .iter()
                        .map(|r| format!("`{r}`"))
                        .collect();
                    changes.push(Change::new(format!(
                        "pip install {} into `{venv}` from {}",
                        reqs.join(", "),
                        self.install.source()
                    )));
                    work.pip = Some(self.install.pip_script());
                }
            }
            Method::None => {
                if field(&out, "executable") != "yes" {
                    let exe = self.install.executable();
                    notes.push(format!("`{exe}` is not installed yet"));
                    work.require = Some(exec::Required {
                        path: exe.clone(),
                        error: format!(
                            "`{exe}` is not an executable on `{}` (`install.method: none` expects pglift there)",
                            cx.host
                        ),
                    });
                }
            }
        }

        let rendered = self.settings.render();
        let hba_path = self.hba_path();
        let settings_path = self.settings_path();
        let mut paths = vec![settings_path.as_str()];
        if self.pg_hba.is_some() {
            paths.push(hba_path.as_str());
        }
        let states = stat::probe_files(cx, &paths).await?;
        if states.iter().any(|s| s.kind == stat::Kind::Missing) {
            work.dirs = Some(format!(
                "mkdir -p -- {} {}",
                quote(self.config_dir()),
                quote(&format!("{}/postgresql", self.config_dir()))
            ));
        }
        let wanted = Wanted {
            owner: Some("root"),
            group: Some("root"),
            mode: Some(Mode(0o644)),
        };
        let mut contents = vec![(settings_path.as_str(), rendered.clone().into_bytes())];
        if let Some(hba) = &self.pg_hba {
            let mut text = hba.clone();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            contents.push((hba_path.as_str(), text.into_bytes()));
        }
        for ((dest, content), state) in contents.into_iter().zip(states.iter()) {
            let desired = Desired {
                dest,
                content,
                wanted,
                validate: None,
            };
            if let Some((mut c, w)) = content::decide(&desired, state)? {
                changes.append(&mut c);
                work.files.push(w);
            }
        }

        let digest = self.digest(&rendered);
        let stamp = field(&out, "site_stamp");
        if stamp != digest {
            let why = if stamp.is_empty() {
                "never run by pgdeploy"
            } else {
                "the settings changed"
            };
            changes.push(Change::new(format!(
                "run `pglift site-configure install` as `{}` ({why})",
                self.sysuser()
            )));
            work.site_configure = Some((self.site_configure_command(), digest));
        }
        if changes.is_empty() && work.require.is_none() {
            return Ok(Plan::unchanged().with_notes(notes));
        }
        Ok(Plan::changes(changes, work).with_notes(notes))
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<Work>() else {
            return Ok(());
        };
        if let Some(pip) = &work.pip {
            exec::check(cx, pip, "pip install pglift").await?;
        }
        if let Some(r) = &work.require {
            r.check(cx).await?;
        }
        if let Some(dirs) = &work.dirs {
            exec::check(cx, dirs, dirs).await?;
        }
        for f in &work.files {
            content::apply(cx, f).await?;
        }
        if let Some((command, digest)) = &work.site_configure {
            exec::check(cx, command, "pglift site-configure install").await?;
            let stamp = format!(
                "printf '%s\\n' {} > {}",
                quote(digest),
                quote(&self.site_stamp_path())
            );
            exec::check(cx, &stamp, "write the site-configure stamp").await?;
        }
        Ok(())
    }
}

impl Params for PgliftSite {
    const NAME: &'static str = "pglift_site";
    const SUMMARY: &'static str =
        "pglift's site: pglift installed, settings.yaml and pg_hba template, site-configure install";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut p = self.install.check();
        if let Some(d) = &self.config_dir {
            if !d.starts_with('/') || d.len() < 2 {
                p.push(Problem::field(
                    "config_dir",
                    format!("`{d}` is not an absolute path"),
                ));
            }
        }
        if let Some(u) = &self.settings.sysuser {
            if u.len() != 2 {
                p.push(Problem::field(
                    "settings",
                    "`sysuser` is a list of two names: user and group",
                ));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests;
