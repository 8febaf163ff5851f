//! Rotating the superuser's and the replication user's passwords on a running cluster.
//!
//! Patroni sets the roles' passwords only when it bootstraps the cluster; afterwards a changed
//! `postgresql.authentication` only changes how Patroni connects (its local connection,
//! replication, `pg_rewind`) once it reloads its configuration. So a rotation is, in order:
//! `ALTER ROLE … PASSWORD` on the leader (replicated to every replica), a wait until every
//! streaming replica replayed it, then each member's configuration file and a reload. Doing
//! the database first means no member's Patroni ever holds a password the database refuses:
//! Patroni reconnecting to its own PostgreSQL with a refused password would take it for a
//! failed server. Connections already established (Patroni's own, the replicas' WAL
//! receivers) are not authenticated again; only new ones use the new passwords.
//!
//! Whether the database holds the wanted passwords is read on each member (replicas replay
//! `pg_authid`) and checked against the SCRAM verifier it stores ([`scram`]): exact, and
//! nothing kept between runs. The clear passwords never reach the server: the verifier is
//! computed here, and `ALTER ROLE` is sent on psql's standard input, never in a command line.

use std::collections::BTreeMap;

use serde_json::Value;

use super::rest::Rest;
use crate::common::exec;
use crate::common::scram::{self, Verifier};
use crate::common::secret::Secret;
use crate::common::shell::quote;
use pgdeploy_core::module::{Change, HostContext, ModuleError};
use pgdeploy_core::transport::ExecRequest;

/// One role whose password the inventory gives.
#[derive(Debug, Clone)]
pub(super) struct Role {
    pub name: String,
    /// `superuser` or `replication`, for messages.
    pub kind: &'static str,
    pub password: Secret,
}

/// What `apply` does: the roles whose passwords change, and how it logs in to the leader.
#[derive(Debug, Clone)]
pub(super) struct Rotation {
    pub roles: Vec<Role>,
    login_user: String,
    /// The superuser's password the database accepts now: the new one when only the
    /// replication password changes, else the one Patroni's configuration holds.
    login_password: Secret,
    psql: String,
}

/// Where to find the roles: `psql`, the local port, and the configuration file's current
/// text (its passwords are what the database held until now).
pub(super) struct Local<'a> {
    pub psql: String,
    pub port: u16,
    pub config_file: &'a str,
    pub config: Option<&'a [u8]>,
}

/// The passwords a Patroni configuration file holds, by kind (`superuser`, `replication`).
pub(super) fn configured_passwords(config: &[u8]) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let Ok(doc) = serde_yaml_ng::from_slice::<Value>(config) else {
        return out;
    };
    for kind in ["superuser", "replication"] {
        if let Some(p) = doc["postgresql"]["authentication"][kind]["password"].as_str() {
            pgdeploy_core::secrets::record(p);
            out.insert(kind, p.to_string());
        }
    }
    out
}

/// The read of `pg_authid` on this member, as `postgres` over the local socket (peer).
pub(super) fn read_command(local: &Local<'_>, roles: &[Role]) -> String {
    let names: Vec<String> = roles
        .iter()
        .map(|r| format!("'{}'", r.name.replace('\'', "''")))
        .collect();
    let query = format!(
        "SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN ({})",
        names.join(", ")
    );
    format!(
        "runuser -u postgres -- {} -X -A -t -F ' ' -p {} -d postgres -c {}",
        quote(&local.psql),
        local.port,
        quote(&query)
    )
}

/// `rolname rolpassword` lines, by name.
pub(super) fn parse_stored(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, p)| (n.to_string(), p.trim().to_string()))
        .collect()
}

/// Whether `stored` (a `rolpassword`) was made from `password`; an error when that cannot be
/// told.
fn holds(role: &Role, stored: &str, host: &str) -> Result<bool, ModuleError> {
    match Verifier::parse(stored) {
        Some(v) if v.matches(role.password.expose()) => Ok(true),
        _ if scram::needs_saslprep(role.password.expose()) => Err(ModuleError::Failed(format!(
            "the {} password of role `{}` has non-ASCII characters: pgdeploy checks and sets \
             SCRAM verifiers itself and does not implement SASLprep, so it cannot tell whether \
             the database on `{host}` holds it; use an ASCII password",
            role.kind, role.name
        ))),
        _ => Ok(false),
    }
}

/// The rotation this member's database needs, if any, and its change for the plan. A note
/// when the roles cannot be read and Patroni's configuration already holds the wanted
/// passwords (nothing would change either way); an error when they cannot be read and the
/// configuration would change, since Patroni must never get a password the database refuses.
pub(super) async fn plan(
    cx: &HostContext<'_>,
    rest: &Rest,
    local: &Local<'_>,
    roles: &[Role],
) -> Result<(Option<(Change, Rotation)>, Option<String>), ModuleError> {
    let configured = local.config.map(configured_passwords).unwrap_or_default();
    let config_is_current = roles
        .iter()
        .all(|r| configured.get(r.kind).map(String::as_str) == Some(r.password.expose()));
    let out = exec::run(cx, &read_command(local, roles)).await?;
    if out.status != 0 {
        let why = exec::failure("psql", &out);
        let reading = format!(
            "cannot read the roles' passwords on `{}` (`pg_authid`, as `postgres` over the local \
             socket: `dcs.pg_hba` needs `local all postgres peer`): {why}",
            cx.host
        );
        if config_is_current {
            return Ok((None, Some(format!("{reading}; passwords not checked"))));
        }
        return Err(ModuleError::Failed(format!(
            "{reading}; Patroni's passwords are not changed before the database's"
        )));
    }
    let stored = parse_stored(&String::from_utf8_lossy(&out.stdout));
    let mut changing = Vec::new();
    for role in roles {
        let Some(current) = stored.get(&role.name) else {
            return Err(ModuleError::Failed(format!(
                "role `{}` ({}) does not exist in the database on `{}`",
                role.name, role.kind, cx.host
            )));
        };
        if !holds(role, current, cx.host)? {
            changing.push(role.clone());
        }
    }
    if changing.is_empty() {
        return Ok((None, None));
    }
    let superuser = roles
        .iter()
        .find(|r| r.kind == "superuser")
        .expect("the superuser is always given");
    let login_password = if !changing.iter().any(|r| r.kind == "superuser") {
        superuser.password.clone()
    } else {
        let old = configured.get("superuser").map(String::as_str);
        match (old, stored.get(&superuser.name)) {
            (Some(old), Some(current))
                if Verifier::parse(current).is_some_and(|v| v.matches(old)) =>
            {
                Secret::new(old)
            }
            _ => {
                return Err(ModuleError::Failed(format!(
                    "the password of role `{}` in the database on `{}` is neither the \
                     inventory's nor the one in `{}`: pgdeploy cannot log in to change it; \
                     set it with ALTER ROLE on the leader",
                    superuser.name, cx.host, local.config_file
                )))
            }
        }
    };
    let leader = leader(cx, rest).await?;
    let names: Vec<String> = changing
        .iter()
        .map(|r| format!("`{}` ({})", r.name, r.kind))
        .collect();
    let change = Change::new(format!(
        "set the password of {} on the leader `{}` (ALTER ROLE with a SCRAM-SHA-256 verifier \
         computed by pgdeploy): {}; then wait until every streaming replica replayed it",
        names.join(", "),
        leader.0,
        pgdeploy_core::secrets::SECRET_CHANGED
    ));
    Ok((
        Some((
            change,
            Rotation {
                roles: changing,
                login_user: superuser.name.clone(),
                login_password,
                psql: local.psql.clone(),
            },
        )),
        None,
    ))
}

/// The leader's name, address and PostgreSQL port, from `GET /cluster`.
async fn leader(cx: &HostContext<'_>, rest: &Rest) -> Result<(String, String, u64), ModuleError> {
    let cluster = rest.get(cx, "cluster").await?;
    cluster["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| matches!(m["role"].as_str(), Some("leader" | "master" | "primary")))
        .and_then(|m| {
            Some((
                m["name"].as_str()?.to_string(),
                m["host"].as_str()?.to_string(),
                m["port"].as_u64().unwrap_or(5432),
            ))
        })
        .ok_or_else(|| {
            ModuleError::Failed(format!(
                "the cluster has no leader (`GET /cluster` on `{}`): passwords are changed \
                 on the leader",
                cx.host
            ))
        })
}

/// A libpq connection string value, quoted.
fn conninfo_value(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// An SQL identifier, quoted.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The script `apply` runs with `sh -s` (its standard input, so neither the login password
/// nor the verifiers are in a command line or a log): `ALTER ROLE` for each role on the
/// leader, then a wait until every streaming replica replayed it.
pub(super) fn script(r: &Rotation, host: &str, port: u64, salts: &[[u8; 16]]) -> String {
    let mut sql = String::from(
        // The statements carry verifiers, not passwords; still keep them out of the log.
        "SET log_statement = 'none';\nSET log_min_duration_statement = -1;\n",
    );
    for (role, salt) in r.roles.iter().zip(salts) {
        let v = Verifier::new(role.password.expose(), salt, scram::ITERATIONS);
        sql.push_str(&format!(
            "ALTER ROLE {} PASSWORD '{}';\n",
            ident(&role.name),
            v.text()
        ));
    }
    sql.push_str(REPLAY_WAIT);
    format!(
        "PGPASSWORD={}; export PGPASSWORD\n\
         exec {} -X -q -v ON_ERROR_STOP=1 {} <<'PGDEPLOY_SQL'\n{sql}PGDEPLOY_SQL\n",
        quote(r.login_password.expose()),
        quote(&r.psql),
        quote(&format!(
            "host={} port={port} user={} dbname=postgres sslmode=require connect_timeout=10",
            conninfo_value(host),
            conninfo_value(&r.login_user)
        )),
    )
}

/// Waits (60 s at most) until every streaming replica replayed the leader's WAL up to the
/// `ALTER ROLE`s: the members that follow read the new verifiers from their own `pg_authid`.
const REPLAY_WAIT: &str = "DO $pgdeploy$\n\
DECLARE target pg_lsn := pg_current_wal_lsn();\n\
BEGIN\n\
  FOR i IN 1..600 LOOP\n\
    IF NOT EXISTS (SELECT 1 FROM pg_stat_replication WHERE state = 'streaming' \
AND (replay_lsn IS NULL OR replay_lsn < target)) THEN RETURN; END IF;\n\
    PERFORM pg_sleep(0.1);\n\
  END LOOP;\n\
  RAISE EXCEPTION 'streaming replicas have not replayed the new passwords after 60 s';\n\
END $pgdeploy$;\n";

/// Sets the passwords on the leader (found again now: it may have changed since the plan).
pub(super) async fn apply(
    cx: &HostContext<'_>,
    rest: &Rest,
    r: &Rotation,
) -> Result<(), ModuleError> {
    let (name, host, port) = leader(cx, rest).await?;
    let salts = r
        .roles
        .iter()
        .map(|_| random_salt())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ModuleError::Failed(format!("cannot read `/dev/urandom`: {e}")))?;
    let out = cx
        .transport
        .exec(&ExecRequest {
            command: "/bin/sh -s".into(),
            stdin: Some(script(r, &host, port, &salts).into_bytes()),
            become_: cx.become_.clone(),
            timeout: None,
        })
        .await?;
    if out.status != 0 {
        return Err(exec::failure(
            &format!("ALTER ROLE on the leader `{name}` ({host}:{port})"),
            &out,
        ));
    }
    Ok(())
}

fn random_salt() -> std::io::Result<[u8; 16]> {
    let mut salt = [0u8; 16];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut salt)?;
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, kind: &'static str, pw: &str) -> Role {
        Role {
            name: name.into(),
            kind,
            password: Secret::new(pw),
        }
    }

    #[test]
    fn the_script_holds_no_clear_new_password_and_quotes_the_login() {
        let r = Rotation {
            roles: vec![role("postgres", "superuser", "N'ew \\ $pw x")],
            login_user: "postgres".into(),
            login_password: Secret::new("O'ld \\ $pw"),
            psql: "/usr/lib/postgresql/17/bin/psql".into(),
        };
        let s = script(&r, "10.0.0.11", 5432, &[[7u8; 16]]);
        assert!(!s.contains("N'ew"), "{s}");
        assert!(
            s.starts_with("PGPASSWORD='O'\\''ld \\ $pw'; export PGPASSWORD\n"),
            "{s}"
        );
        let alter = s
            .lines()
            .find(|l| l.starts_with("ALTER ROLE \"postgres\" PASSWORD 'SCRAM-SHA-256$4096:"))
            .expect(&s);
        let verifier = alter
            .trim_start_matches("ALTER ROLE \"postgres\" PASSWORD '")
            .trim_end_matches("';");
        assert!(Verifier::parse(verifier).unwrap().matches("N'ew \\ $pw x"));
        assert!(
            s.contains("'host='\\''10.0.0.11'\\'' port=5432 user="),
            "{s}"
        );
        assert!(s.ends_with("END $pgdeploy$;\nPGDEPLOY_SQL\n"), "{s}");
    }

    #[test]
    fn configured_passwords_are_read_from_patronis_file() {
        let text = "postgresql:\n  authentication:\n    superuser: {username: postgres, password: 'a''b \\ $c'}\n    replication: {username: replicator, password: r1}\n";
        let p = configured_passwords(text.as_bytes());
        assert_eq!(p["superuser"], "a'b \\ $c");
        assert_eq!(p["replication"], "r1");
        assert!(configured_passwords(b": not yaml: [").is_empty());
    }

    #[test]
    fn stored_passwords_by_role() {
        let m = parse_stored("postgres SCRAM-SHA-256$4096:x$y:z\nreplicator \n");
        assert_eq!(m["postgres"], "SCRAM-SHA-256$4096:x$y:z");
        assert_eq!(m["replicator"], "");
        let cmd = read_command(
            &Local {
                psql: "/usr/bin/psql".into(),
                port: 5432,
                config_file: "/etc/patroni/config.yml",
                config: None,
            },
            &[
                role("postgres", "superuser", "x"),
                role("o'k", "replication", "y"),
            ],
        );
        assert!(
            cmd.contains("IN ('\\''postgres'\\'', '\\''o'\\'''\\''k'\\'')"),
            "{cmd}"
        );
    }
}
