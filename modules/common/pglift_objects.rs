//! What `pglift_role` and `pglift_database` share: the pglift instance the task names
//! (`instance: 15/main`), read in one command per plan — `pglift instance env` (Patroni's
//! member name, the superuser, how `psql` reaches the instance), Patroni's members through
//! the instance's own `patronictl` configuration, `pg_is_in_recovery()`, and on the primary
//! only, pglift's description of the object (`pglift role get NAME -o json`) and a query the
//! module adds. A change is made on the primary only, with pglift's declarative interface
//! (`pglift role apply -f -`: the manifest on stdin, never on a command line): pglift refuses
//! to write on a standby, and with Patroni every other member receives the object through
//! replication.

use serde_json::Value;

use super::exec;
use super::postgres::literal;
use super::shell::quote;
use crate::pglift_site::as_user;
use pgdeploy_core::module::{HostContext, ModuleError, Plan};
use pgdeploy_core::transport::ExecRequest;

pub(crate) const DEFAULT_EXECUTABLE: &str = "/opt/pglift/bin/pglift";

/// The instance and how pglift is run for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `15/main` or `main`, as the collection's `instance`.
    pub instance: String,
    pub executable: String,
    pub system_user: String,
}

/// What one read found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    /// pglift, or the instance, is not there yet (a dry run on bare hosts): what to say.
    NotYet(String),
    /// Another member leads; nothing happens here.
    Replica { leader: String },
    /// A standby instance that no Patroni runs (pglift's own standby): nothing happens here.
    Standby,
    /// The primary: the object as pglift describes it (`None`: it does not exist), the
    /// superuser's name and the module's query output.
    Primary {
        object: Option<Value>,
        surole: String,
        sql: String,
    },
}

const MARK_MISSING: &str = "==missing";
const MARK_NO_INSTANCE: &str = "==no-instance";

impl Target {
    fn pglift(&self, args: &str) -> String {
        format!("{} --non-interactive {args}", quote(&self.executable))
    }

    /// `patronictl` beside `pglift` (pglift's venv, as `pglift_instance` has it).
    fn patronictl(&self) -> String {
        let dir = self
            .executable
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or("");
        format!("{dir}/patronictl")
    }

    /// The read: `kind` is `role` or `database`, `name` the object, `sql` run with `psql` in
    /// database `db` when this host is the primary (empty: none).
    pub(crate) fn read_script(&self, kind: &str, name: &str, db: &str, sql: &str) -> String {
        let exe = quote(&self.executable);
        let id = quote(&self.instance);
        let script = format!(
            "if [ ! -x {exe} ]; then echo {MARK_MISSING}; exit 0; fi; \
             env=$({env} 2>&1) || {{ echo {MARK_NO_INSTANCE}; echo \"$env\"; exit 0; }}; \
             set -a; eval \"$env\"; set +a; \
             echo \"==name ${{PATRONI_NAME:-}}\"; echo \"==surole ${{PGUSER:-postgres}}\"; \
             if [ -n \"${{PATRONICTL_CONFIG_FILE:-}}\" ]; then echo ==patroni; \
             {ctl} -c \"$PATRONICTL_CONFIG_FILE\" list -f json 2>/dev/null | tr -d '\\n'; echo; fi; \
             rec=$(psql -XAtq -d postgres -c 'SELECT pg_is_in_recovery()' 2>/dev/null); \
             echo \"==recovery $rec\"; \
             if [ \"$rec\" = f ]; then echo ==get; {get} 2>&1; echo \"==get-status $?\"; \
             echo ==sql; {sql_cmd}; fi",
            env = self.pglift(&format!("instance env {id}")),
            ctl = quote(&self.patronictl()),
            get = self.pglift(&format!("{kind} -i {id} get {} -o json", quote(name))),
            sql_cmd = if sql.is_empty() {
                "true".to_string()
            } else {
                format!(
                    "psql -XAtq -v ON_ERROR_STOP=1 -d {} -c {} 2>/dev/null || true",
                    quote(db),
                    quote(sql)
                )
            },
        );
        as_user(&self.system_user, &script)
    }

    /// Reads the instance on this host (see [`Target::read_script`]) and says where it stands.
    pub(crate) async fn read(
        &self,
        cx: &HostContext<'_>,
        kind: &str,
        name: &str,
        db: &str,
        sql: &str,
    ) -> Result<Found, ModuleError> {
        let out = exec::run(cx, &self.read_script(kind, name, db, sql)).await?;
        if out.status != 0 {
            return Err(exec::failure(
                &format!("reading pglift instance `{}`", self.instance),
                &out,
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        self.parse(cx.host, kind, name, &text)
    }

    /// Reads [`Target::read_script`]'s output.
    pub(crate) fn parse(
        &self,
        host: &str,
        kind: &str,
        name: &str,
        text: &str,
    ) -> Result<Found, ModuleError> {
        let trimmed = text.trim();
        if trimmed == MARK_MISSING {
            return Ok(Found::NotYet(format!(
                "`{}` is not installed yet: the change is made on the primary once it is",
                self.executable
            )));
        }
        if let Some(why) = trimmed.strip_prefix(MARK_NO_INSTANCE) {
            let why = why.trim();
            if why.contains("not found") {
                return Ok(Found::NotYet(format!(
                    "instance `{}` does not exist yet: the change is made on its primary once it does",
                    self.instance
                )));
            }
            return Err(ModuleError::Failed(format!(
                "`pglift instance env {}` failed on `{host}`: {why}",
                self.instance
            )));
        }
        let line = |mark: &str| -> Option<&str> {
            text.lines()
                .find_map(|l| l.strip_prefix(mark))
                .map(str::trim)
        };
        let me = line("==name ").unwrap_or("");
        let surole = line("==surole ").unwrap_or("postgres").to_string();
        let recovery = line("==recovery ").unwrap_or("");
        if let Some(rows) = section(text, "==patroni", &["==recovery"]) {
            let rows: Vec<Value> = serde_json::from_str(rows.trim()).unwrap_or_default();
            let leader = rows
                .iter()
                .find(|r| r["Role"] == "Leader" && r["State"] == "running")
                .and_then(|r| r["Member"].as_str());
            match leader {
                None => {
                    return Err(ModuleError::Failed(format!(
                        "Patroni's cluster of instance `{}` has no running leader (read from `{host}`)",
                        self.instance
                    )))
                }
                Some(l) if l != me => {
                    return Ok(Found::Replica {
                        leader: l.to_string(),
                    })
                }
                Some(_) if recovery != "f" => {
                    return Err(ModuleError::Failed(format!(
                        "Patroni says `{me}` leads but its PostgreSQL is not a primary yet (`pg_is_in_recovery()`: `{recovery}`): run again once the cluster is settled"
                    )))
                }
                Some(_) => {}
            }
        } else if recovery == "t" {
            return Ok(Found::Standby);
        } else if recovery != "f" {
            return Err(ModuleError::Failed(format!(
                "PostgreSQL of instance `{}` does not answer on `{host}`: start it first",
                self.instance
            )));
        }
        let get = section(text, "==get", &["==get-status"]).unwrap_or("");
        let status = line("==get-status ").unwrap_or("");
        let object = if status == "0" {
            Some(serde_json::from_str(get.trim()).map_err(|e| {
                ModuleError::Failed(format!(
                    "`pglift {kind} get {name} -o json` gave no JSON on `{host}`: {e}"
                ))
            })?)
        } else if get.contains("not found") {
            None
        } else {
            return Err(ModuleError::Failed(format!(
                "`pglift {kind} get {name}` failed on `{host}` (exit status {status}): {}",
                get.trim()
            )));
        };
        let sql = section(text, "==sql", &[]).unwrap_or("").to_string();
        Ok(Found::Primary {
            object,
            surole,
            sql,
        })
    }

    /// `pglift KIND -i INSTANCE apply -f -` with `manifest` on stdin, on the primary.
    pub(crate) async fn apply(
        &self,
        cx: &HostContext<'_>,
        kind: &str,
        manifest: &Value,
    ) -> Result<(), ModuleError> {
        let cmd = self.pglift(&format!(
            "{kind} -i {} apply -f - -o json",
            quote(&self.instance)
        ));
        let req = ExecRequest {
            command: as_user(&self.system_user, &cmd),
            stdin: Some(manifest.to_string().into_bytes()),
            become_: cx.become_.clone(),
            timeout: Some(std::time::Duration::from_secs(600)),
        };
        let out = cx.transport.exec(&req).await?;
        if out.status != 0 {
            return Err(exec::failure(
                &format!("pglift {kind} -i {} apply", self.instance),
                &out,
            ));
        }
        Ok(())
    }
}

/// What a pglift object's plan leaves for its apply.
#[derive(Debug)]
pub(crate) enum Work {
    /// The manifest for `pglift KIND apply -f -`.
    Apply(Value),
    /// Planned before pglift or the instance was there: read and decide again when applying.
    Later,
}

impl Target {
    /// Carries out what `plan` decided: its manifest applied, or, when it was planned before
    /// the instance existed, the object read and decided again now (`replan`, not awaited
    /// otherwise); still no instance then is an error naming it.
    pub(crate) async fn apply_planned(
        &self,
        cx: &HostContext<'_>,
        kind: &str,
        plan: &Plan,
        replan: impl std::future::Future<Output = Result<Plan, ModuleError>>,
    ) -> Result<(), ModuleError> {
        match plan.work::<Work>() {
            Some(Work::Apply(manifest)) => self.apply(cx, kind, manifest).await,
            Some(Work::Later) => {
                let again = replan.await?;
                match again.work::<Work>() {
                    Some(Work::Apply(manifest)) => self.apply(cx, kind, manifest).await,
                    Some(Work::Later) => Err(ModuleError::Failed(format!(
                        "pglift instance `{}` is still not there on `{}`: {}",
                        self.instance,
                        cx.host,
                        again.notes.join("; ")
                    ))),
                    None => Ok(()),
                }
            }
            None => Ok(()),
        }
    }
}

/// The lines after the line `mark`, up to the first line starting with one of `until`.
fn section<'a>(text: &'a str, mark: &str, until: &[&str]) -> Option<&'a str> {
    let start = text.find(&format!("{mark}\n"))? + mark.len() + 1;
    let rest = &text[start..];
    let end = until
        .iter()
        .filter_map(|u| {
            if rest.starts_with(u) {
                Some(0)
            } else {
                rest.find(&format!("\n{u}")).map(|i| i + 1)
            }
        })
        .min()
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The plan of a step on a host that is not the primary.
pub(crate) fn elsewhere(found: &Found) -> Option<Plan> {
    match found {
        Found::Replica { leader } => Some(super::postgres::on_replica(leader)),
        Found::Standby => Some(Plan::unchanged().with_notes(vec![
            "a standby instance: nothing to do here (it receives the change from its primary)"
                .to_string(),
        ])),
        _ => None,
    }
}

/// A name as an SQL literal, for the modules' queries.
pub(crate) fn sql_literal(s: &str) -> String {
    literal(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            instance: "15/main".into(),
            executable: DEFAULT_EXECUTABLE.into(),
            system_user: "postgres".into(),
        }
    }

    const LEADER: &str = "==name pg1\n==surole postgres\n==patroni\n[{\"Cluster\": \"c\", \"Member\": \"pg1\", \"Role\": \"Leader\", \"State\": \"running\"}, {\"Member\": \"pg2\", \"Role\": \"Replica\", \"State\": \"streaming\"}]\n==recovery f\n==get\n{\"name\": \"bob\"}\n==get-status 0\n==sql\nSCRAM-SHA-256$x\n";

    #[test]
    fn the_leader_reads_the_object() {
        let f = target().parse("pg1", "role", "bob", LEADER).unwrap();
        assert_eq!(
            f,
            Found::Primary {
                object: Some(serde_json::json!({"name": "bob"})),
                surole: "postgres".into(),
                sql: "SCRAM-SHA-256$x\n".into()
            }
        );
    }

    #[test]
    fn a_replica_names_the_leader_and_a_missing_object_is_none() {
        let text = "==name pg2\n==surole postgres\n==patroni\n[{\"Member\": \"pg1\", \"Role\": \"Leader\", \"State\": \"running\"}]\n==recovery t\n";
        assert_eq!(
            target().parse("pg2", "role", "bob", text).unwrap(),
            Found::Replica {
                leader: "pg1".into()
            }
        );
        let text = "==name \n==surole postgres\n==recovery f\n==get\nError: role 'bob' not found\n==get-status 1\n==sql\n";
        match target().parse("pg1", "role", "bob", text).unwrap() {
            Found::Primary { object, .. } => assert_eq!(object, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_installed_or_not_created_yet_is_a_note_and_other_failures_errors() {
        assert!(matches!(
            target().parse("pg1", "role", "bob", "==missing\n").unwrap(),
            Found::NotYet(_)
        ));
        assert!(matches!(
            target()
                .parse(
                    "pg1",
                    "role",
                    "bob",
                    "==no-instance\nError: instance '15/main' not found\n"
                )
                .unwrap(),
            Found::NotYet(_)
        ));
        assert!(target()
            .parse("pg1", "role", "bob", "==no-instance\nboom\n")
            .is_err());
        let no_leader = "==name pg1\n==patroni\n[]\n==recovery \n";
        assert!(target().parse("pg1", "role", "bob", no_leader).is_err());
    }

    #[test]
    fn the_script_quotes_names() {
        let s = target().read_script("role", "it's", "postgres", "SELECT 1");
        assert!(!s.contains("get it's"), "{s}");
    }
}
