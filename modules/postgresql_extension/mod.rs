//! `postgresql_extension`: an extension in one database of the Patroni cluster
//! (`community.postgresql`'s `postgresql_ext`), made on the current leader only (the other
//! members plan nothing and get it by replication; the extension's files must be installed on
//! every member, as the PostgreSQL packages do for the contrib extensions). The plan compares
//! `pg_extension`: created (in a schema, at a version), updated to the version asked, moved to
//! the schema asked, or dropped.

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};

use super::common::postgres::{self, ident, literal, Member};
use super::postgresql_role::State;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresqlExtension {
    /// The extension (`pg_stat_statements`); `ext` as `community.postgresql` spells it.
    #[serde(alias = "ext")]
    pub name: String,
    /// The database it is created in; `login_db` too.
    #[serde(alias = "login_db")]
    pub db: String,
    /// The schema its objects go to; unset: the first of the `search_path` for a new one, left
    /// as it is otherwise.
    #[serde(default)]
    pub schema: Option<String>,
    /// The version wanted; unset: the default version for a new one, left as it is otherwise.
    #[serde(default)]
    pub version: Option<String>,
    /// `DROP EXTENSION … CASCADE` (objects that depend on it are dropped too).
    #[serde(default)]
    pub cascade: bool,
    #[serde(default)]
    pub state: State,
    /// This host's Patroni member name: its inventory name by default.
    #[serde(default)]
    pub member: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    version: String,
    schema: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Work(String);

const READ: &str = "SELECT e.extversion, n.nspname FROM pg_extension e \
                    JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = ";

fn text(f: &Found) -> String {
    format!("version: {}\nschema: {}\n", f.version, f.schema)
}

impl PostgresqlExtension {
    fn where_(&self) -> String {
        format!("extension `{}` in database `{}`", self.name, self.db)
    }

    /// `found`: `None` when the extension is not there (or its database not yet).
    fn decide(&self, found: Option<&Found>) -> Plan {
        let ext = ident(&self.name);
        let path = format!("database {} extension {}", self.db, self.name);
        match (self.state, found) {
            (State::Absent, None) => Plan::unchanged(),
            (State::Absent, Some(f)) => Plan::changes(
                vec![
                    Change::new(format!("drop {}", self.where_())).with_diff(Diff {
                        path,
                        before: Some(text(f)),
                        after: None,
                    }),
                ],
                Work(format!(
                    "DROP EXTENSION {ext}{};\n",
                    if self.cascade { " CASCADE" } else { "" }
                )),
            ),
            (State::Present, None) => {
                let mut sql = format!("CREATE EXTENSION {ext}");
                if let Some(s) = &self.schema {
                    sql.push_str(&format!(" SCHEMA {}", ident(s)));
                }
                if let Some(v) = &self.version {
                    sql.push_str(&format!(" VERSION {}", literal(v)));
                }
                sql.push_str(";\n");
                let after = Found {
                    version: self.version.clone().unwrap_or_else(|| "(default)".into()),
                    schema: self
                        .schema
                        .clone()
                        .unwrap_or_else(|| "(search_path)".into()),
                };
                Plan::changes(
                    vec![
                        Change::new(format!("create {}", self.where_())).with_diff(Diff {
                            path,
                            before: None,
                            after: Some(text(&after)),
                        }),
                    ],
                    Work(sql),
                )
            }
            (State::Present, Some(f)) => {
                let mut after = f.clone();
                let mut sql = String::new();
                let mut what = Vec::new();
                if let Some(v) = self.version.as_ref().filter(|v| **v != f.version) {
                    sql.push_str(&format!(
                        "ALTER EXTENSION {ext} UPDATE TO {};\n",
                        literal(v)
                    ));
                    what.push(format!("version `{}` to `{v}`", f.version));
                    after.version = v.clone();
                }
                if let Some(s) = self.schema.as_ref().filter(|s| **s != f.schema) {
                    sql.push_str(&format!("ALTER EXTENSION {ext} SET SCHEMA {};\n", ident(s)));
                    what.push(format!("schema `{}` to `{s}`", f.schema));
                    after.schema = s.clone();
                }
                if what.is_empty() {
                    return Plan::unchanged();
                }
                Plan::changes(
                    vec![
                        Change::new(format!("{}: {}", self.where_(), what.join(", "))).with_diff(
                            Diff {
                                path,
                                before: Some(text(f)),
                                after: Some(text(&after)),
                            },
                        ),
                    ],
                    Work(sql),
                )
            }
        }
    }
}

#[async_trait::async_trait]
impl Action for PostgresqlExtension {
    /// Patroni's leader first; on it, whether the database exists (an earlier task may create
    /// it: then the extension is planned as missing), then `pg_extension` in it.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let me = self.member.as_deref().unwrap_or(cx.host);
        if let Member::Replica { leader } = postgres::member(cx, me).await? {
            return Ok(postgres::on_replica(&leader));
        }
        let exists = postgres::psql(
            cx,
            "postgres",
            &format!(
                "SELECT 1 FROM pg_database WHERE datname = {};\n",
                literal(&self.db)
            ),
        )
        .await?;
        let found = if postgres::first_row(&exists).is_none() {
            None
        } else {
            let out =
                postgres::psql(cx, &self.db, &format!("{READ}{};\n", literal(&self.name))).await?;
            match postgres::first_row(&out) {
                Some(row) if row.len() == 2 => Some(Found {
                    version: row[0].clone(),
                    schema: row[1].clone(),
                }),
                Some(row) => {
                    return Err(ModuleError::Failed(format!(
                        "unexpected `pg_extension` row: {} fields",
                        row.len()
                    )))
                }
                None => None,
            }
        };
        Ok(self.decide(found.as_ref()))
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(Work(sql)) = plan.work::<Work>() else {
            return Ok(());
        };
        postgres::psql(cx, &self.db, sql).await.map(|_| ())
    }
}

impl Params for PostgresqlExtension {
    const NAME: &'static str = "postgresql_extension";
    const SUMMARY: &'static str =
        "a PostgreSQL extension in a database, on Patroni's leader: version, schema, or absent";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push(Problem::field("name", "an extension needs a name"));
        }
        if self.db.is_empty() {
            problems.push(Problem::field("db", "the database to create it in"));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(yaml: &str) -> PostgresqlExtension {
        serde_yaml_ng::from_str(yaml).unwrap()
    }
    fn found() -> Found {
        Found {
            version: "1.11".into(),
            schema: "public".into(),
        }
    }

    #[test]
    fn created_when_missing_and_nothing_when_there() {
        let e = ext("{ext: pg_stat_statements, db: db1}");
        let p = e.decide(None);
        assert_eq!(
            p.changes[0].summary,
            "create extension `pg_stat_statements` in database `db1`"
        );
        assert_eq!(
            p.work::<Work>().unwrap().0,
            "CREATE EXTENSION \"pg_stat_statements\";\n"
        );
        assert!(!e.decide(Some(&found())).is_changed());
    }

    #[test]
    fn version_and_schema_are_converged() {
        let p = ext("{name: x, db: d, version: '1.12', schema: ext}").decide(Some(&found()));
        assert_eq!(
            p.changes[0].summary,
            "extension `x` in database `d`: version `1.11` to `1.12`, schema `public` to `ext`"
        );
        assert_eq!(
            p.work::<Work>().unwrap().0,
            "ALTER EXTENSION \"x\" UPDATE TO '1.12';\nALTER EXTENSION \"x\" SET SCHEMA \"ext\";\n"
        );
    }

    #[test]
    fn absent_shows_what_goes() {
        let p = ext("{name: x, db: d, state: absent, cascade: true}").decide(Some(&found()));
        assert_eq!(p.changes[0].summary, "drop extension `x` in database `d`");
        let d = p.changes[0].diff.as_ref().unwrap().unified();
        assert!(d.contains("-version: 1.11"), "{d}");
        assert_eq!(
            p.work::<Work>().unwrap().0,
            "DROP EXTENSION \"x\" CASCADE;\n"
        );
    }
}
