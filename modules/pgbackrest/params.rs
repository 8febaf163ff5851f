//! The `pgbackrest` task's parameters, as written in a playbook, and their checks.

use serde::Deserialize;

use super::super::common::secret::Secret;
use pgdeploy_core::module::Problem;

fn default_group() -> String {
    "postgres".into()
}
fn default_user() -> String {
    "postgres".into()
}
fn default_pg_port() -> u16 {
    5432
}
fn default_repo_path() -> String {
    "/var/lib/pgbackrest".into()
}
fn default_tls_port() -> u16 {
    8432
}
fn two() -> u32 {
    2
}
fn seven() -> u32 {
    7
}
fn default_full() -> String {
    "Sun *-*-* 01:00:00".into()
}
fn default_diff() -> String {
    "Mon..Sat *-*-* 01:00:00".into()
}

/// Which part of the setup a task does: the files and daemons (before Patroni starts, so
/// that the first WAL segments find `archive-push` configured), or the stanza (once the
/// cluster runs: `stanza-create` needs the primary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    #[default]
    Configured,
    /// The stanza exists and `check` passed; on the repository host only.
    Stanza,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pgbackrest {
    /// The stanza (pgBackRest's name for the cluster), the same on every host.
    pub stanza: String,
    /// The inventory host that keeps the repository; the others of `group` are members.
    pub repo_host: String,
    /// The inventory group of the PostgreSQL hosts.
    #[serde(default = "default_group")]
    pub group: String,
    /// The data directory on the members (Patroni's `data_dir`); required by
    /// `state: configured`.
    pub pg_path: Option<String>,
    #[serde(default = "default_pg_port")]
    pub pg_port: u16,
    /// The user pgBackRest runs as on the repository host (owner of the repository).
    #[serde(default = "default_user")]
    pub repo_user: String,
    #[serde(default = "default_repo_path")]
    pub repo_path: String,
    /// This host's certificate, key and the CA (the `certificates` module's files): the
    /// members and the repository talk over mutual TLS (`pgbackrest server`, port
    /// `tls_port`); a peer is let in by the CN of its certificate, its inventory name.
    /// Required by `state: configured`.
    pub tls: Option<Tls>,
    #[serde(default = "default_tls_port")]
    pub tls_port: u16,
    #[serde(default)]
    pub retention: Retention,
    #[serde(default)]
    pub schedule: Schedule,
    /// Encrypts the repository (`aes-256-cbc`); kept on the repository host only.
    pub cipher_pass: Option<Secret>,
    #[serde(default)]
    pub state: State,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    pub cert_file: String,
    pub key_file: String,
    pub ca_file: String,
}

/// How many backups the repository keeps (`repo1-retention-full`, `repo1-retention-diff`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Retention {
    #[serde(default = "two")]
    pub full: u32,
    #[serde(default = "seven")]
    pub diff: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            full: two(),
            diff: seven(),
        }
    }
}

/// When the timers on the repository host take backups (systemd `OnCalendar` expressions;
/// an empty one: no timer of that type).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Schedule {
    #[serde(default = "default_full")]
    pub full: String,
    #[serde(default = "default_diff")]
    pub diff: String,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            full: default_full(),
            diff: default_diff(),
        }
    }
}

/// A name pgBackRest and systemd accept as they are: letters, digits, `-`, `_`, `.`.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Pgbackrest {
    /// The TLS files (empty paths when not given: `check` refuses that for `configured`).
    pub(crate) fn tls(&self) -> Tls {
        self.tls.clone().unwrap_or_default()
    }
    pub(crate) fn pg_path(&self) -> &str {
        self.pg_path.as_deref().unwrap_or_default()
    }

    pub(crate) fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !plain(&self.stanza) {
            problems.push(Problem::field(
                "stanza",
                format!(
                    "`{}` is not a plain name (letters, digits, `-`, `_`, `.`)",
                    self.stanza
                ),
            ));
        }
        if !plain(&self.repo_user) {
            problems.push(Problem::field(
                "repo_user",
                format!("`{}` is not a plain user name", self.repo_user),
            ));
        }
        if self.state == State::Configured {
            for (field, missing) in [
                ("pg_path", self.pg_path.is_none()),
                ("tls", self.tls.is_none()),
            ] {
                if missing {
                    problems.push(Problem::field(
                        field,
                        format!("`state: configured` needs `{field}`"),
                    ));
                }
            }
        }
        let tls = self.tls();
        let pg_path = self.pg_path().to_string();
        let mut paths = vec![("repo_path", &self.repo_path)];
        if self.pg_path.is_some() {
            paths.push(("pg_path", &pg_path));
        }
        if self.tls.is_some() {
            paths.extend([
                ("tls", &tls.cert_file),
                ("tls", &tls.key_file),
                ("tls", &tls.ca_file),
            ]);
        }
        for (field, path) in paths {
            if !path.starts_with('/') || path.contains('\n') {
                problems.push(Problem::field(
                    field,
                    format!("`{path}` is not an absolute path"),
                ));
            }
        }
        if self.retention.full == 0 {
            problems.push(Problem::field(
                "retention",
                "`full` must be at least 1: 0 would keep no backup",
            ));
        }
        for (what, cal) in [("full", &self.schedule.full), ("diff", &self.schedule.diff)] {
            if cal.contains('\n') {
                problems.push(Problem::field(
                    "schedule",
                    format!("`{what}` is one line (a systemd `OnCalendar` expression)"),
                ));
            }
        }
        if let Some(p) = &self.cipher_pass {
            if p.expose().is_empty() || p.expose().contains('\n') {
                problems.push(Problem::field("cipher_pass", "must be one non-empty line"));
            }
        }
        problems
    }
}
