//! What the SQL object modules (`postgresql_role`, `postgresql_database`,
//! `postgresql_extension`) share: finding Patroni's leader (a change is made there only, so a
//! replica never receives it but through replication), running SQL with `psql` as `postgres`
//! with the script on stdin (never on a command line), and quoting names and literals.

use crate::common::patroni_state;
use pgdeploy_core::module::{HostContext, ModuleError, Plan};
use pgdeploy_core::transport::ExecRequest;

use super::exec;
use super::shell::quote;

/// Where a step runs, as Patroni says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Member {
    /// This host is the leader: the step reads and changes the objects here.
    Leader,
    /// Another member leads: the step does nothing here.
    Replica { leader: String },
}

/// Asks Patroni (`patronictl list` through the `patroni.env` locator) which member leads.
/// `name` is this host's Patroni member name.
pub(crate) async fn member(cx: &HostContext<'_>, name: &str) -> Result<Member, ModuleError> {
    Ok(member_and_config(cx, name).await?.0)
}

/// [`member`], with the DCS configuration read by the same command (`patronictl show-config`,
/// as JSON; `Null` when it could not be read).
pub(crate) async fn member_and_config(
    cx: &HostContext<'_>,
    name: &str,
) -> Result<(Member, serde_json::Value), ModuleError> {
    let out = exec::run(cx, &patroni_state::read_script()).await?;
    let text = String::from_utf8_lossy(&out.stdout);
    let config = patroni_state::dcs_config(&text);
    let member = leader_of(cx, name, &text)?;
    Ok((member, config))
}

fn leader_of(cx: &HostContext<'_>, name: &str, text: &str) -> Result<Member, ModuleError> {
    let cluster = patroni_state::parse(cx.host, text).map_err(|e| {
        ModuleError::Failed(format!(
            "cannot find Patroni's leader from `{}`: {e}",
            cx.host
        ))
    })?;
    match cluster.healthy_leader() {
        Some(l) if l.name == name => Ok(Member::Leader),
        Some(l) => Ok(Member::Replica {
            leader: l.name.clone(),
        }),
        None => Err(ModuleError::Failed(format!(
            "Patroni's cluster has no running leader (read from `{}`): {}",
            cx.host,
            cluster.summary()
        ))),
    }
}

/// The plan of a step on a member that does not lead: nothing, and where it happens.
pub(crate) fn on_replica(leader: &str) -> Plan {
    Plan::unchanged().with_notes(vec![format!(
        "on the leader `{leader}`: nothing to do on this replica (it receives the change through replication)"
    )])
}

/// Runs `sql` (on stdin) with `psql` as `postgres` on the local socket, in database `db`,
/// stopping at the first error; returns the unaligned, tuples-only output. The error names the
/// database, never the script.
pub(crate) async fn psql(cx: &HostContext<'_>, db: &str, sql: &str) -> Result<String, ModuleError> {
    let req = ExecRequest {
        command: format!(
            "cd / && runuser -u postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -d {}",
            quote(db)
        ),
        stdin: Some(sql.as_bytes().to_vec()),
        become_: cx.become_.clone(),
        ..ExecRequest::default()
    };
    let out = cx.transport.exec(&req).await?;
    if out.status == 0 {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(exec::failure(&format!("psql on database `{db}`"), &out))
    }
}

/// A name as an SQL identifier: `"bob"`, `"a""b"`.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A value as an SQL string literal (`standard_conforming_strings` on, PostgreSQL's default
/// since 9.1: backslashes are plain characters, quotes are doubled).
pub(crate) fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The fields of `psql -A -t`'s first row (`|`-separated), or `None` when there is no row.
pub(crate) fn first_row(out: &str) -> Option<Vec<String>> {
    let line = out.lines().find(|l| !l.is_empty())?;
    Some(line.split('|').map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's \\ x"), "'it''s \\ x'");
        assert_eq!(
            first_row("\nt|f|x\n"),
            Some(vec!["t".into(), "f".into(), "x".into()])
        );
        assert_eq!(first_row(""), None);
    }
}
