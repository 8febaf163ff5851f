//! `certificates`: a CA kept on this machine and, per host, a leaf certificate signed by it,
//! installed where the daemons want it (`installs`: directory, owner, group, key mode).
//!
//! The CA lives in `pki_dir` beside the playbook (created on the first `apply`, key mode
//! 0600, never uploaded) unless the user names their own (`ca_cert` + `ca_key`). `plan` only
//! reads: a missing CA is reported as "create CA" and created by `apply`. A leaf is reissued
//! only when it or its key is missing, when its SANs differ from the wanted ones, when it was
//! not issued by the CA, or within 30 days of its expiry; the plan says which. Private keys
//! never appear in diffs, logs or errors.

pub(crate) mod pki;

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;
use pgdeploy_core::transport::FileAttrs;

use super::common::attrs::Wanted;
use super::common::exec;
use super::common::shell::quote;
use super::common::stat::{self, Kind, PathState};

/// A leaf is reissued when it expires within this many days.
pub(crate) const RENEW_BEFORE_DAYS: i64 = 30;
/// What a diff shows for a private key.
pub(crate) const KEY_NOT_SHOWN: &str = "(private key, not shown)\n";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Certificates {
    /// Directory of the generated CA on this machine, relative to the playbook's directory.
    #[serde(default = "default_pki_dir")]
    pub pki_dir: String,
    /// A CA certificate of the user's (with `ca_key`), relative to the playbook's directory.
    pub ca_cert: Option<String>,
    pub ca_key: Option<String>,
    /// Base name of the host's files (`NAME.crt`, `NAME.key`); default: the inventory name.
    pub name: Option<String>,
    /// More SANs (IP addresses or DNS names) beyond the host's address, its inventory name,
    /// `127.0.0.1` and `localhost`.
    #[serde(default)]
    pub extra_sans: Vec<String>,
    /// Validity of a leaf certificate, in days.
    #[serde(default = "default_days")]
    pub days: u32,
    /// Validity of a generated CA, in days.
    #[serde(default = "default_ca_days")]
    pub ca_days: u32,
    /// Where the certificate, its key and the CA certificate go on the host.
    pub installs: Vec<Install>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Install {
    /// Directory on the host (created if missing): `NAME.crt`, `NAME.key`, `ca.crt`.
    pub dir: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    #[serde(default = "default_key_mode")]
    pub key_mode: Mode,
    #[serde(default = "default_cert_mode")]
    pub cert_mode: Mode,
}

fn default_pki_dir() -> String {
    "pki".into()
}
fn default_days() -> u32 {
    825
}
fn default_ca_days() -> u32 {
    3650
}
fn default_key_mode() -> Mode {
    Mode(0o600)
}
fn default_cert_mode() -> Mode {
    Mode(0o644)
}

/// The subject of a generated CA.
pub(crate) const CA_NAME: &str = "pgdeploy CA";

impl Certificates {
    fn ca_paths(&self, playbook_dir: &Path) -> pki::CaPaths {
        match (&self.ca_cert, &self.ca_key) {
            (Some(c), Some(k)) => pki::CaPaths {
                cert: playbook_dir.join(c),
                key: playbook_dir.join(k),
                generated: false,
            },
            _ => {
                let dir = playbook_dir.join(&self.pki_dir);
                pki::CaPaths {
                    cert: dir.join("ca.crt"),
                    key: dir.join("ca.key"),
                    generated: true,
                }
            }
        }
    }

    fn base_name<'a>(&'a self, cx: &'a HostContext<'_>) -> &'a str {
        self.name.as_deref().unwrap_or(cx.host)
    }

    /// The SANs the host's certificate must have: its inventory name, its address
    /// (`ansible_host`) and default IPv4 address (fact), `127.0.0.1`, `localhost`, extras.
    pub(crate) fn wanted_sans(&self, cx: &HostContext<'_>) -> Vec<String> {
        let mut sans: Vec<String> = vec![cx.host.to_string()];
        if let Some(h) = cx.scope.shared().inventory.hosts.get(cx.host) {
            sans.push(h.connection.address.clone());
        }
        if let Some(ip) = cx
            .facts
            .get("ansible_default_ipv4")
            .and_then(|v| v.get("address"))
            .and_then(|v| v.as_str())
        {
            sans.push(ip.to_string());
        }
        sans.push("127.0.0.1".into());
        sans.push("localhost".into());
        sans.extend(self.extra_sans.iter().cloned());
        let mut seen = BTreeSet::new();
        sans.retain(|s| seen.insert(pki::normalise_sans(std::slice::from_ref(s))));
        sans
    }
}

/// What `apply` does for one install.
#[derive(Debug, Clone, PartialEq, Eq)]
struct InstallWork {
    dir: String,
    create_dir: bool,
    reissue: bool,
    write_ca: bool,
    /// `chown`/`chmod` commands for files whose content stays.
    fixes: Vec<String>,
}

#[derive(Debug)]
struct CertWork {
    create_ca: bool,
    sans: Vec<String>,
    installs: Vec<InstallWork>,
}

/// The host's private key, as far as the plan is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyCheck {
    Missing,
    /// Unreadable, or not the key of the certificate.
    Mismatch,
    Matches,
}

/// Why a leaf found on a host must be reissued, or `None` when it is good.
pub(crate) fn reissue_reason(
    found: Option<&pki::CertInfo>,
    key: KeyCheck,
    ca_subject: Option<&str>,
    ca_matches: bool,
    wanted: &BTreeSet<String>,
    now: i64,
) -> Option<String> {
    let Some(info) = found else {
        return Some("missing".into());
    };
    match key {
        KeyCheck::Missing => return Some("its key is missing".into()),
        KeyCheck::Mismatch => return Some("its key on the host does not belong to it".into()),
        KeyCheck::Matches => {}
    }
    match ca_subject {
        None => return Some("the CA is new".into()),
        Some(s) if s != info.issuer => {
            return Some(format!("issued by `{}`, not by the CA `{s}`", info.issuer))
        }
        _ if !ca_matches => return Some("the CA certificate on the host differs".into()),
        _ => {}
    }
    if &info.sans != wanted {
        let added: Vec<&str> = wanted.difference(&info.sans).map(String::as_str).collect();
        let removed: Vec<&str> = info.sans.difference(wanted).map(String::as_str).collect();
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("add `{}`", added.join("`, `")));
        }
        if !removed.is_empty() {
            parts.push(format!("remove `{}`", removed.join("`, `")));
        }
        return Some(format!("SANs change: {}", parts.join("; ")));
    }
    if info.not_after - now < RENEW_BEFORE_DAYS * 86400 {
        return Some(format!(
            "it expires on {}, within {RENEW_BEFORE_DAYS} days",
            pki::date(info.not_after)
        ));
    }
    None
}

fn attrs_of(install: &Install, mode: Mode) -> Wanted<'_> {
    Wanted {
        owner: install.owner.as_deref(),
        group: install.group.as_deref(),
        mode: Some(mode),
    }
}

/// A fix of owner/group/mode for an existing file, with its change.
fn fix_attrs(path: &str, wanted: &Wanted<'_>, state: &PathState) -> Option<(Change, String)> {
    let current = state.ownership.as_ref()?;
    let fix = wanted.diff(current);
    let command = fix.command(path, false)?;
    Some((
        Change::new(format!("`{path}`: {}", fix.describe())),
        command,
    ))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Only one step at a time creates or loads the local CA (hosts run in parallel).
static CA_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn pki_failed(e: pki::PkiError) -> ModuleError {
    ModuleError::Failed(e.to_string())
}

#[async_trait::async_trait]
impl Action for Certificates {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let paths = self.ca_paths(cx.playbook_dir);
        let mut changes = Vec::new();
        let ca = if paths.exists() {
            Some(pki::load_ca(&paths).map_err(pki_failed)?)
        } else if paths.generated {
            changes.push(Change::new(format!(
                "create CA `{}` (key `{}`, mode 0600, kept on this machine)",
                paths.cert.display(),
                paths.key.display()
            )));
            None
        } else {
            return Err(ModuleError::Failed(format!(
                "CA certificate `{}` or key `{}` not found",
                paths.cert.display(),
                paths.key.display()
            )));
        };
        let name = self.base_name(cx);
        let sans = self.wanted_sans(cx);
        let wanted = pki::normalise_sans(&sans);
        let mut installs = Vec::new();
        for install in &self.installs {
            let dir = install.dir.trim_end_matches('/');
            let cert_path = format!("{dir}/{name}.crt");
            let key_path = format!("{dir}/{name}.key");
            let ca_path = format!("{dir}/ca.crt");
            let dir_state = stat::probe(cx, dir, false).await?;
            let create_dir = dir_state.kind == Kind::Missing;
            let (cert_state, key_state, ca_state) = if create_dir {
                let missing = PathState {
                    kind: Kind::Missing,
                    ownership: None,
                    link: None,
                    content: None,
                };
                (missing.clone(), missing.clone(), missing)
            } else {
                (
                    stat::probe(cx, &cert_path, true).await?,
                    // The key is read only to check that it belongs to the certificate; it
                    // is never shown nor kept in the plan.
                    stat::probe(cx, &key_path, true).await?,
                    stat::probe(cx, &ca_path, true).await?,
                )
            };
            if create_dir {
                changes.push(Change::new(format!(
                    "create directory `{dir}`{}",
                    attrs_of(install, Mode(0o755)).describe()
                )));
            }
            let found = cert_state
                .content
                .as_deref()
                .and_then(|c| pki::inspect(c).ok());
            let ca_on_host = ca_state.content.as_deref();
            let ca_matches = match (&ca, ca_on_host) {
                (Some(ca), Some(bytes)) => bytes == ca.cert_pem.as_bytes(),
                _ => false,
            };
            let key_check = match (&key_state.content, &found) {
                (None, _) => KeyCheck::Missing,
                (Some(k), Some(info)) if pki::key_matches(k, info) => KeyCheck::Matches,
                (Some(_), _) => KeyCheck::Mismatch,
            };
            let reason = reissue_reason(
                found.as_ref(),
                key_check,
                ca.as_ref().map(|c| c.subject.as_str()),
                ca_matches || ca_on_host.is_none(),
                &wanted,
                now(),
            );
            let mut fixes = Vec::new();
            let reissue = reason.is_some();
            if let Some(reason) = reason {
                let issuer = ca.as_ref().map_or(CA_NAME, |c| c.subject.as_str());
                let after = format!(
                    "subject: CN={name}\nissuer: {issuer}\nSANs: {}\nvalid for: {} days from issue\n",
                    wanted.iter().cloned().collect::<Vec<_>>().join(", "),
                    self.days
                );
                let cert_wanted = attrs_of(install, install.cert_mode);
                changes.push(
                    Change::new(format!(
                        "issue `{cert_path}`{} ({reason})",
                        cert_wanted.describe()
                    ))
                    .with_diff(Diff {
                        path: cert_path.clone(),
                        before: found.as_ref().map(pki::CertInfo::describe),
                        after: Some(after),
                    }),
                );
                let key_wanted = attrs_of(install, install.key_mode);
                let present = key_state.kind == Kind::File;
                changes.push(
                    Change::new(format!(
                        "{} `{key_path}`{}",
                        if present {
                            "replace private key"
                        } else {
                            "create private key"
                        },
                        key_wanted.describe()
                    ))
                    .with_diff(Diff {
                        path: key_path.clone(),
                        before: present.then(|| KEY_NOT_SHOWN.to_string()),
                        after: Some(KEY_NOT_SHOWN.to_string()),
                    }),
                );
            } else {
                for (path, state, mode) in [
                    (&cert_path, &cert_state, install.cert_mode),
                    (&key_path, &key_state, install.key_mode),
                ] {
                    if let Some((change, command)) =
                        fix_attrs(path, &attrs_of(install, mode), state)
                    {
                        changes.push(change);
                        fixes.push(command);
                    }
                }
            }
            let write_ca = match &ca {
                Some(ca) => ca_on_host != Some(ca.cert_pem.as_bytes()),
                None => true,
            };
            let ca_wanted = attrs_of(install, install.cert_mode);
            if write_ca {
                let verb = if ca_on_host.is_some() {
                    "update"
                } else {
                    "create"
                };
                let mut change = Change::new(format!("{verb} `{ca_path}`{}", ca_wanted.describe()));
                if let Some(ca) = &ca {
                    change = change.with_diff(Diff {
                        path: ca_path.clone(),
                        before: ca_on_host.map(|b| String::from_utf8_lossy(b).into_owned()),
                        after: Some(ca.cert_pem.clone()),
                    });
                }
                changes.push(change);
            } else if let Some((change, command)) = fix_attrs(&ca_path, &ca_wanted, &ca_state) {
                changes.push(change);
                fixes.push(command);
            }
            if create_dir || reissue || write_ca || !fixes.is_empty() {
                installs.push(InstallWork {
                    dir: dir.to_string(),
                    create_dir,
                    reissue,
                    write_ca,
                    fixes,
                });
            }
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        Ok(Plan::changes(
            changes,
            CertWork {
                create_ca: ca.is_none(),
                sans,
                installs,
            },
        ))
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<CertWork>() else {
            return Ok(());
        };
        let paths = self.ca_paths(cx.playbook_dir);
        let ca = {
            let _guard = CA_LOCK.lock().await;
            if paths.exists() {
                pki::load_ca(&paths)
            } else if paths.generated && work.create_ca {
                pki::create_ca(&paths, CA_NAME, self.ca_days)
            } else {
                return Err(ModuleError::Failed(format!(
                    "CA `{}` disappeared since the plan",
                    paths.cert.display()
                )));
            }
            .map_err(pki_failed)?
        };
        let name = self.base_name(cx);
        let mut leaf: Option<pki::Leaf> = None;
        for (install, iw) in self.installs.iter().filter_map(|i| {
            let dir = i.dir.trim_end_matches('/');
            work.installs.iter().find(|w| w.dir == dir).map(|w| (i, w))
        }) {
            let dir = &iw.dir;
            if iw.create_dir {
                let mut cmd = format!("mkdir -p -m 0755 -- {}", quote(dir));
                if let Some(fix) = attrs_of(install, Mode(0o755)).as_fix().command(dir, false) {
                    cmd.push_str(" && ");
                    cmd.push_str(&fix);
                }
                exec::check(cx, &cmd, &format!("mkdir {}", quote(dir))).await?;
            }
            let attrs = |mode: Mode| FileAttrs {
                owner: install.owner.clone(),
                group: install.group.clone(),
                mode: Some(mode.0),
            };
            if iw.write_ca {
                cx.transport
                    .write_file(
                        &format!("{dir}/ca.crt"),
                        ca.cert_pem.as_bytes(),
                        &attrs(install.cert_mode),
                        &cx.become_,
                    )
                    .await?;
            }
            if iw.reissue {
                if leaf.is_none() {
                    leaf = Some(pki::issue(&ca, name, &work.sans, self.days).map_err(pki_failed)?);
                }
                let l = leaf.as_ref().expect("issued above");
                cx.transport
                    .write_file(
                        &format!("{dir}/{name}.key"),
                        l.key_pem.as_bytes(),
                        &attrs(install.key_mode),
                        &cx.become_,
                    )
                    .await?;
                cx.transport
                    .write_file(
                        &format!("{dir}/{name}.crt"),
                        l.cert_pem.as_bytes(),
                        &attrs(install.cert_mode),
                        &cx.become_,
                    )
                    .await?;
            }
            for fix in &iw.fixes {
                exec::check(cx, fix, fix).await?;
            }
        }
        Ok(())
    }
}

impl Params for Certificates {
    const NAME: &'static str = "certificates";
    const SUMMARY: &'static str =
        "a local CA and per-host TLS certificates (IP/DNS SANs, serverAuth+clientAuth)";

    fn check(&self, cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        match (&self.ca_cert, &self.ca_key) {
            (Some(_), None) => problems.push(Problem::field(
                "ca_cert",
                "`ca_cert` needs `ca_key` (the CA's private key) too",
            )),
            (None, Some(_)) => problems.push(Problem::field(
                "ca_key",
                "`ca_key` needs `ca_cert` (the CA's certificate) too",
            )),
            (Some(c), Some(k)) => {
                problems.extend(super::check_local_file("ca_cert", c, cx));
                problems.extend(super::check_local_file("ca_key", k, cx));
            }
            (None, None) => {}
        }
        if self.installs.is_empty() {
            problems.push(Problem::field(
                "installs",
                "at least one install (`dir`, `owner`, `group`) is needed",
            ));
        }
        let mut dirs = BTreeSet::new();
        for i in &self.installs {
            problems.extend(super::check_absolute("installs", &i.dir));
            if !dirs.insert(i.dir.trim_end_matches('/')) {
                problems.push(Problem::field(
                    "installs",
                    format!("directory `{}` is listed twice", i.dir),
                ));
            }
        }
        for s in &self.extra_sans {
            if !pki::valid_san(s) {
                problems.push(Problem::field(
                    "extra_sans",
                    format!("`{s}` is neither an IP address nor a DNS name"),
                ));
            }
        }
        if let Some(n) = &self.name {
            if n.is_empty() || n.contains('/') {
                problems.push(Problem::field("name", format!("`{n}` is not a file name")));
            }
        }
        if self.days == 0 || i64::from(self.days) <= RENEW_BEFORE_DAYS {
            problems.push(Problem::field(
                "days",
                format!(
                    "`{}` days is too short: certificates are renewed {RENEW_BEFORE_DAYS} days before expiry",
                    self.days
                ),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests;
