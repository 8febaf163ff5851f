//! `postgresql_database`: a database of the Patroni cluster (`community.postgresql`'s
//! `postgresql_db`), made on the current leader only (the other members plan nothing and get
//! it by replication). The plan compares `pg_database`: created with its owner, encoding and
//! template, its owner changed, or dropped. An existing database with another encoding is an
//! error: PostgreSQL cannot change it.

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};

use super::common::postgres::{self, ident, literal, Member};
use super::postgresql_role::State;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresqlDatabase {
    /// The database's name.
    pub name: String,
    /// Its owner (a role that exists); unset: the creating role (`postgres`) for a new
    /// database, left as it is otherwise.
    #[serde(default)]
    pub owner: Option<String>,
    /// Its encoding (`UTF8`), for a new database; an existing one must already have it.
    #[serde(default)]
    pub encoding: Option<String>,
    /// The template a new database is copied from (`template0` when `encoding` is given).
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub state: State,
    /// This host's Patroni member name: its inventory name by default.
    #[serde(default)]
    pub member: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    owner: String,
    encoding: String,
}

/// The SQL `apply` runs, one statement a line (`CREATE`/`DROP DATABASE` outside any
/// transaction: `psql` runs each on its own).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Work(String);

const READ: &str = "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) \
                    FROM pg_database WHERE datname = ";

fn text(f: &Found) -> String {
    format!("owner: {}\nencoding: {}\n", f.owner, f.encoding)
}

impl PostgresqlDatabase {
    fn decide(&self, found: Option<&Found>) -> Result<Plan, ModuleError> {
        let db = ident(&self.name);
        let path = format!("database {}", self.name);
        match (self.state, found) {
            (State::Absent, None) => Ok(Plan::unchanged()),
            (State::Absent, Some(f)) => Ok(Plan::changes(
                vec![
                    Change::new(format!("drop database `{}`", self.name)).with_diff(Diff {
                        path,
                        before: Some(text(f)),
                        after: None,
                    }),
                ],
                Work(format!("DROP DATABASE {db};\n")),
            )),
            (State::Present, None) => {
                let mut sql = format!("CREATE DATABASE {db}");
                if let Some(o) = &self.owner {
                    sql.push_str(&format!(" OWNER {}", ident(o)));
                }
                if let Some(e) = &self.encoding {
                    sql.push_str(&format!(" ENCODING {}", literal(e)));
                }
                let template = self
                    .template
                    .as_deref()
                    .or(self.encoding.as_ref().map(|_| "template0"));
                if let Some(t) = template {
                    sql.push_str(&format!(" TEMPLATE {}", ident(t)));
                }
                sql.push_str(";\n");
                let after = Found {
                    owner: self.owner.clone().unwrap_or_else(|| "postgres".into()),
                    encoding: self
                        .encoding
                        .clone()
                        .unwrap_or_else(|| "(the template's)".into()),
                };
                Ok(Plan::changes(
                    vec![
                        Change::new(format!("create database `{}`", self.name)).with_diff(Diff {
                            path,
                            before: None,
                            after: Some(text(&after)),
                        }),
                    ],
                    Work(sql),
                ))
            }
            (State::Present, Some(f)) => {
                if let Some(e) = &self.encoding {
                    let same = e.eq_ignore_ascii_case(&f.encoding)
                        || (e.eq_ignore_ascii_case("utf-8") && f.encoding == "UTF8");
                    if !same {
                        return Err(ModuleError::Failed(format!(
                            "database `{}` exists with encoding `{}`, not `{e}`: PostgreSQL cannot change a database's encoding (dump it and restore it into a new database)",
                            self.name, f.encoding
                        )));
                    }
                }
                match &self.owner {
                    Some(o) if *o != f.owner => {
                        let after = Found {
                            owner: o.clone(),
                            ..f.clone()
                        };
                        Ok(Plan::changes(
                            vec![Change::new(format!(
                                "change the owner of database `{}` from `{}` to `{o}`",
                                self.name, f.owner
                            ))
                            .with_diff(Diff {
                                path,
                                before: Some(text(f)),
                                after: Some(text(&after)),
                            })],
                            Work(format!("ALTER DATABASE {db} OWNER TO {};\n", ident(o))),
                        ))
                    }
                    _ => Ok(Plan::unchanged()),
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl Action for PostgresqlDatabase {
    /// Patroni's leader first; on it, one `psql` read of `pg_database`.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let me = self.member.as_deref().unwrap_or(cx.host);
        if let Member::Replica { leader } = postgres::member(cx, me).await? {
            return Ok(postgres::on_replica(&leader));
        }
        let out =
            postgres::psql(cx, "postgres", &format!("{READ}{};\n", literal(&self.name))).await?;
        let found = match postgres::first_row(&out) {
            Some(row) if row.len() == 2 => Some(Found {
                owner: row[0].clone(),
                encoding: row[1].clone(),
            }),
            Some(row) => {
                return Err(ModuleError::Failed(format!(
                    "unexpected `pg_database` row: {} fields",
                    row.len()
                )))
            }
            None => None,
        };
        self.decide(found.as_ref())
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(Work(sql)) = plan.work::<Work>() else {
            return Ok(());
        };
        postgres::psql(cx, "postgres", sql).await.map(|_| ())
    }
}

impl Params for PostgresqlDatabase {
    const NAME: &'static str = "postgresql_database";
    const SUMMARY: &'static str =
        "a PostgreSQL database, on Patroni's leader: owner, encoding, or absent";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push(Problem::field("name", "a database needs a name"));
        }
        if matches!(self.name.as_str(), "postgres" | "template0" | "template1")
            && self.state == State::Absent
        {
            problems.push(Problem::field(
                "name",
                format!(
                    "`{}` is a database PostgreSQL needs: it is never dropped",
                    self.name
                ),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(yaml: &str) -> PostgresqlDatabase {
        serde_yaml_ng::from_str(yaml).unwrap()
    }
    fn found(owner: &str) -> Found {
        Found {
            owner: owner.into(),
            encoding: "UTF8".into(),
        }
    }

    #[test]
    fn created_with_owner_encoding_and_template0() {
        let p = db("{name: db1, owner: bob, encoding: UTF8}")
            .decide(None)
            .unwrap();
        assert_eq!(p.changes[0].summary, "create database `db1`");
        assert_eq!(
            p.work::<Work>().unwrap().0,
            "CREATE DATABASE \"db1\" OWNER \"bob\" ENCODING 'UTF8' TEMPLATE \"template0\";\n"
        );
    }

    #[test]
    fn owner_is_changed_and_the_same_plans_nothing() {
        let d = db("{name: db1, owner: bob, encoding: utf-8}");
        assert!(!d.decide(Some(&found("bob"))).unwrap().is_changed());
        let p = d.decide(Some(&found("postgres"))).unwrap();
        assert_eq!(
            p.work::<Work>().unwrap().0,
            "ALTER DATABASE \"db1\" OWNER TO \"bob\";\n"
        );
        let diff = p.changes[0].diff.as_ref().unwrap().unified();
        assert!(diff.contains("-owner: postgres\n+owner: bob\n"), "{diff}");
    }

    #[test]
    fn another_encoding_is_an_error() {
        let e = db("{name: db1, encoding: LATIN1}")
            .decide(Some(&found("bob")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exists with encoding `UTF8`, not `LATIN1`"),
            "{e}"
        );
    }

    #[test]
    fn absent_drops() {
        let d = db("{name: db1, state: absent}");
        assert!(!d.decide(None).unwrap().is_changed());
        assert_eq!(
            d.decide(Some(&found("bob")))
                .unwrap()
                .work::<Work>()
                .unwrap()
                .0,
            "DROP DATABASE \"db1\";\n"
        );
    }
}
