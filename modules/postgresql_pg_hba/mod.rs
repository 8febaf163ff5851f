//! `postgresql_pg_hba`: one client authentication rule of the Patroni cluster
//! (`community.postgresql`'s `postgresql_pg_hba`), kept in Patroni's cluster-wide `pg_hba`
//! list (the DCS's `postgresql.pg_hba`), which every member writes to its own `pg_hba.conf`
//! and reloads: no restart, and no file edited behind Patroni's back (it would overwrite it).
//!
//! Every member runs the step; the leader alone changes the list (one change for the
//! cluster), then waits until its PostgreSQL has loaded the new file, so a client that reaches
//! the leader (the VIP) is under the new rule when `apply` returns. The list is shared with the
//! `patroni` module's site lines: see [`crate::common::hba`] for how each keeps to its own.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::transport::ExecRequest;

use super::common::exec;
use super::common::hba;
use super::common::patroni_state;
use super::common::postgres::{self, Member};
use super::postgresql_role::State;

/// `pg_hba.conf`'s connection types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ConType {
    Local,
    Host,
    #[default]
    Hostssl,
    Hostnossl,
    Hostgssenc,
    Hostnogssenc,
}

impl ConType {
    fn word(self) -> &'static str {
        match self {
            ConType::Local => "local",
            ConType::Host => "host",
            ConType::Hostssl => "hostssl",
            ConType::Hostnossl => "hostnossl",
            ConType::Hostgssenc => "hostgssenc",
            ConType::Hostnogssenc => "hostnogssenc",
        }
    }
}

/// PostgreSQL's authentication methods (those `pg_hba.conf` accepts).
const METHODS: &[&str] = &[
    "trust",
    "reject",
    "scram-sha-256",
    "md5",
    "password",
    "gss",
    "sspi",
    "ident",
    "peer",
    "ldap",
    "radius",
    "cert",
    "pam",
    "bsd",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresqlPgHba {
    /// `local`, `host`, `hostssl` (the default), `hostnossl`, `hostgssenc`, `hostnogssenc`.
    #[serde(default)]
    pub contype: ConType,
    /// The database field: `all`, `db1`, `db1,db2`, `sameuser`, `replication`, …
    #[serde(default = "all")]
    pub databases: String,
    /// The user field: `all`, `bob`, `+group`, `bob,alice`, …
    #[serde(default = "all")]
    pub users: String,
    /// The client address (`10.0.0.0/24`, `samenet`, a host name); required unless `local`.
    #[serde(default, alias = "src", alias = "address")]
    pub source: Option<String>,
    /// The authentication method: `scram-sha-256` by default (`community.postgresql` says
    /// `md5`, which pgdeploy refuses on the network), `cert`, `reject`, …
    #[serde(default = "scram")]
    pub method: String,
    /// The method's options (`clientcert=verify-full`, `map=…`).
    #[serde(default)]
    pub options: Option<String>,
    #[serde(default)]
    pub state: State,
    /// This host's Patroni member name: its inventory name by default.
    #[serde(default)]
    pub member: Option<String>,
}

fn all() -> String {
    "all".into()
}
fn scram() -> String {
    "scram-sha-256".into()
}

/// The new list and what changed, or `None` when `lines` already say what is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    lines: Vec<String>,
    summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Work;

impl PostgresqlPgHba {
    /// The rule as Patroni writes it into `pg_hba.conf`, with the mark that makes it this
    /// module's.
    fn line(&self) -> String {
        let mut words = vec![self.contype.word(), &self.databases, &self.users];
        if let Some(s) = &self.source {
            words.push(s);
        }
        words.push(&self.method);
        if let Some(o) = self.options.as_deref().filter(|o| !o.is_empty()) {
            words.push(o);
        }
        format!("{} {}", words.join(" "), hba::MARK)
    }

    /// The rule without its mark, as messages show it.
    fn shown(&self) -> String {
        let line = self.line();
        line[..line.len() - hba::MARK.len()].trim_end().to_string()
    }

    /// What the whole list becomes (`None`: nothing to change): the rule added after the other
    /// marked lines, replaced where it is when its identity (type, databases, users, address)
    /// is there with another method or options, or removed.
    fn converge(&self, lines: &[String]) -> Option<Outcome> {
        let base = hba::unmanaged(lines);
        let mut managed = hba::managed(lines);
        let line = self.line();
        let id = hba::identity(&line);
        let at = managed.iter().position(|l| hba::identity(l) == id);
        let shown = self.shown();
        let summary = match (self.state, at) {
            (State::Present, Some(i)) if managed[i] == line => return None,
            (State::Present, Some(i)) => {
                let before = std::mem::replace(&mut managed[i], line);
                format!(
                    "pg_hba rule `{}` becomes `{shown}`",
                    before[..before.len() - hba::MARK.len()].trim_end()
                )
            }
            (State::Present, None) => {
                managed.push(line);
                let next = hba::merge(&base, &managed);
                let pos = next.iter().position(|l| *l == self.line()).unwrap_or(0);
                let place = match next.get(pos + 1) {
                    Some(after) => format!("before `{after}`"),
                    None => "at the end".into(),
                };
                return Some(Outcome {
                    lines: next,
                    summary: format!("add pg_hba rule `{shown}` ({place})"),
                });
            }
            (State::Absent, Some(i)) => {
                managed.remove(i);
                format!("remove pg_hba rule `{shown}`")
            }
            (State::Absent, None) => return None,
        };
        Some(Outcome {
            lines: hba::merge(&base, &managed),
            summary,
        })
    }

    /// The DCS's `postgresql.pg_hba`, refusing a cluster without one: a list of this rule
    /// alone would replace every line Patroni writes today.
    fn current(config: &Value) -> Result<Vec<String>, ModuleError> {
        match config["postgresql"]["pg_hba"].as_array() {
            Some(a) if !a.is_empty() => Ok(a
                .iter()
                .map(|l| l.as_str().map(str::to_string).unwrap_or_else(|| l.to_string()))
                .collect()),
            _ => Err(ModuleError::Failed(
                "Patroni's DCS configuration has no `postgresql.pg_hba`: set the site's lines first \
                 (the `patroni` module's `dcs.pg_hba`), a rule is added to them"
                    .into(),
            )),
        }
    }

    /// Notes on the plan: a site line with the same identity is checked before or after the
    /// rule, as the list orders them.
    fn notes(&self, lines: &[String]) -> Vec<String> {
        let id = hba::identity(&self.line());
        hba::unmanaged(lines)
            .iter()
            .filter(|l| hba::identity(l) == id)
            .map(|l| {
                format!(
                    "the site's `pg_hba` has `{l}` for the same connections: the first line that matches decides"
                )
            })
            .collect()
    }

    fn plan_for(&self, config: &Value) -> Result<Plan, ModuleError> {
        let lines = Self::current(config)?;
        let notes = self.notes(&lines);
        let Some(outcome) = self.converge(&lines) else {
            return Ok(Plan::unchanged().with_notes(notes));
        };
        let text = |l: &[String]| l.iter().map(|l| format!("{l}\n")).collect::<String>();
        Ok(Plan::changes(
            vec![Change::new(outcome.summary).with_diff(Diff {
                path: "pg_hba (Patroni's DCS `postgresql.pg_hba`)".into(),
                before: Some(text(&lines)),
                after: Some(text(&outcome.lines)),
            })],
            Work,
        )
        .with_notes(notes))
    }
}

/// `patronictl edit-config` merging `{"postgresql": {"pg_hba": LINES}}` (read on stdin) into
/// the DCS configuration: a list replaces the list.
async fn write_list(cx: &HostContext<'_>, lines: &[String]) -> Result<(), ModuleError> {
    let body = json!({"postgresql": {"pg_hba": lines}}).to_string();
    let req = ExecRequest {
        command: format!(
            "{}ctl edit-config --force --quiet --apply - >/dev/null",
            patroni_state::ctl_prefix()
        ),
        stdin: Some(body.into_bytes()),
        become_: cx.become_.clone(),
        ..ExecRequest::default()
    };
    let out = cx.transport.exec(&req).await?;
    if out.status == 0 {
        Ok(())
    } else {
        Err(exec::failure("patronictl edit-config (pg_hba)", &out))
    }
}

/// The rule lines of a `pg_hba.conf` (comments and blank lines left out), to compare a file
/// with the list Patroni writes it from.
fn rules(lines: impl IntoIterator<Item = impl AsRef<str>>) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| l.as_ref().trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Reads the leader's `hba_file` and whether PostgreSQL loaded it after its last write.
const LOADED: &str =
    "SELECT pg_conf_load_time() >= (pg_stat_file(current_setting('hba_file'))).modification;\n\
                      SELECT pg_read_file(current_setting('hba_file'));\n";

/// Waits until this member's PostgreSQL runs with `lines` (Patroni writes the file and reloads
/// within a loop, `loop_wait`).
async fn wait_loaded(
    cx: &HostContext<'_>,
    lines: &[String],
    timeout: Duration,
) -> Result<(), ModuleError> {
    let wanted = rules(lines);
    let started = Instant::now();
    loop {
        let out = postgres::psql(cx, "postgres", LOADED).await?;
        let mut it = out.lines();
        let loaded = it.next() == Some("t");
        let file = rules(it);
        if loaded && file == wanted {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            let why = if file == wanted {
                "the file is written but PostgreSQL has not reloaded it".to_string()
            } else {
                "its `pg_hba.conf` does not hold the new list; a `postgresql.pg_hba` in the \
                 member's own Patroni configuration file overrides the DCS's"
                    .to_string()
            };
            return Err(ModuleError::Failed(format!(
                "Patroni on `{}` did not apply the new `pg_hba` within {:.1} s: {why}",
                cx.host,
                timeout.as_secs_f64()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[async_trait::async_trait]
impl Action for PostgresqlPgHba {
    /// Patroni's leader and its DCS configuration, in one command; on the leader, the list's
    /// change.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let me = self.member.as_deref().unwrap_or(cx.host);
        let (member, config) = postgres::member_and_config(cx, me).await?;
        if let Member::Replica { leader } = member {
            return Ok(Plan::unchanged().with_notes(vec![format!(
                "on the leader `{leader}`: nothing to do on this replica (Patroni writes the cluster's `pg_hba` here)"
            )]));
        }
        self.plan_for(&config)
    }

    /// Reads the list again (a saved plan may be older than it) and writes what it becomes,
    /// then waits until the leader's PostgreSQL has loaded it.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        if plan.work::<Work>().is_none() {
            return Ok(());
        }
        let me = self.member.as_deref().unwrap_or(cx.host);
        let (member, config) = postgres::member_and_config(cx, me).await?;
        if let Member::Replica { leader } = member {
            return Err(ModuleError::Failed(format!(
                "`{me}` no longer leads (`{leader}` does): run the task again"
            )));
        }
        let lines = Self::current(&config)?;
        let Some(outcome) = self.converge(&lines) else {
            return Ok(());
        };
        write_list(cx, &outcome.lines).await?;
        // Each member reads the DCS once per `loop_wait`, then writes the file and reloads.
        let loop_wait = config["loop_wait"].as_u64().unwrap_or(10);
        wait_loaded(cx, &outcome.lines, Duration::from_secs(3 * loop_wait + 15)).await
    }
}

/// Why a field of a rule is refused: `pg_hba.conf` splits on blanks and ends a line at `#`.
fn bad_word(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("holds a blank or a control character")
    } else if value.contains(['#', '"']) {
        Some("holds `#` or `\"`")
    } else {
        None
    }
}

impl Params for PostgresqlPgHba {
    const NAME: &'static str = "postgresql_pg_hba";
    const SUMMARY: &'static str =
        "a client authentication rule in Patroni's cluster-wide pg_hba, changed without a restart";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("databases", Some(&self.databases)),
            ("users", Some(&self.users)),
            ("source", self.source.as_ref()),
            ("method", Some(&self.method)),
        ] {
            if let Some(why) = value.and_then(|v| bad_word(v)) {
                problems.push(Problem::field(field, format!("`{}` {why}", value.unwrap())));
            }
        }
        if let Some(o) = &self.options {
            if o.contains(['#', '\n', '\r']) {
                problems.push(Problem::field(
                    "options",
                    "holds `#` or a line break".to_string(),
                ));
            }
        }
        match (self.contype, &self.source) {
            (ConType::Local, Some(_)) => {
                problems.push(Problem::field("source", "a `local` rule has no address"))
            }
            (c, None) if c != ConType::Local => problems.push(Problem::field(
                "source",
                format!(
                    "a `{}` rule needs the client address (`10.0.0.0/24`, `samenet`, …)",
                    c.word()
                ),
            )),
            _ => {}
        }
        if !METHODS.contains(&self.method.as_str()) {
            problems.push(Problem::field(
                "method",
                format!(
                    "unknown method `{}`; one of {}",
                    self.method,
                    METHODS.join(", ")
                ),
            ));
        } else if problems.is_empty() {
            if let Some(why) = hba::weak_line(&self.shown()) {
                problems.push(Problem::field("method", why));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests;
