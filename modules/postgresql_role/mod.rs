//! `postgresql_role`: a PostgreSQL role of the Patroni cluster (`community.postgresql`'s
//! `postgresql_user`), made on the current leader only: every member runs the step, Patroni
//! says which one leads, and the others plan nothing (the role reaches them by replication).
//! The plan compares `pg_authid` with the parameters: attributes set only when given, the
//! password compared against its stored SCRAM verifier ([`password`]) and shown masked.
//! SQL goes to `psql` on stdin, with the password as a verifier computed here.

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::secrets::MASK;

use super::common::postgres::{self, ident, literal, Member};
use super::common::secret::Secret;

pub(crate) mod password;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    #[default]
    Present,
    Absent,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresqlRole {
    /// The role's name.
    pub name: String,
    /// Its password (a secret: masked everywhere, stored as a SCRAM-SHA-256 verifier). Unset:
    /// the password is left as it is.
    #[serde(default)]
    pub password: Option<Secret>,
    /// `LOGIN`; unset: left as it is (`false` for a new role).
    #[serde(default)]
    pub login: Option<bool>,
    #[serde(default)]
    pub superuser: Option<bool>,
    #[serde(default)]
    pub createdb: Option<bool>,
    #[serde(default)]
    pub createrole: Option<bool>,
    #[serde(default)]
    pub replication: Option<bool>,
    #[serde(default)]
    pub inherit: Option<bool>,
    #[serde(default)]
    pub state: State,
    /// This host's Patroni member name (the `patroni` module's `name`): its inventory name by
    /// default.
    #[serde(default)]
    pub member: Option<String>,
}

/// The attributes, in `pg_authid`'s order, with their SQL keyword.
const ATTRS: [(&str, &str); 6] = [
    ("superuser", "SUPERUSER"),
    ("createrole", "CREATEROLE"),
    ("createdb", "CREATEDB"),
    ("login", "LOGIN"),
    ("replication", "REPLICATION"),
    ("inherit", "INHERIT"),
];

/// A role as `pg_authid` has it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    attrs: [bool; 6],
    /// `rolpassword` (a verifier, never printed), empty without one.
    stored: String,
}

const READ: &str = "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, \
                    rolinherit, coalesce(rolpassword, '') FROM pg_authid WHERE rolname = ";

/// The SQL `apply` runs (it holds a verifier: recorded as a secret, never in a change).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Work(String);

fn parse_found(out: &str) -> Result<Option<Found>, ModuleError> {
    let Some(row) = postgres::first_row(out) else {
        return Ok(None);
    };
    if row.len() != 7 {
        return Err(ModuleError::Failed(format!(
            "unexpected `pg_authid` row: {} fields",
            row.len()
        )));
    }
    let mut attrs = [false; 6];
    for (i, a) in attrs.iter_mut().enumerate() {
        *a = row[i] == "t";
    }
    Ok(Some(Found {
        attrs,
        stored: row[6].clone(),
    }))
}

impl PostgresqlRole {
    /// The `pg_authid` read of this role, for a module that manages a role as part of its own
    /// work (`postgres_exporter`'s monitoring role) and has found the leader itself.
    pub(crate) fn read_sql(&self) -> String {
        format!("{READ}{};\n", literal(&self.name))
    }

    /// The plan from [`Self::read_sql`]'s output, applied by [`Action::apply`] as usual.
    pub(crate) fn plan_read(&self, out: &str) -> Result<Plan, ModuleError> {
        self.decide(parse_found(out)?.as_ref())
    }

    fn wanted(&self) -> [Option<bool>; 6] {
        [
            self.superuser,
            self.createrole,
            self.createdb,
            self.login,
            self.replication,
            self.inherit,
        ]
    }

    /// The attributes as the diff shows them: one line each, the password masked.
    fn text(attrs: &[bool; 6], password: Option<&str>) -> String {
        let mut s = String::new();
        for (i, (name, _)) in ATTRS.iter().enumerate() {
            s.push_str(&format!("{name}: {}\n", attrs[i]));
        }
        if let Some(p) = password {
            s.push_str(&format!("password: {p}\n"));
        }
        s
    }

    /// The plan on the leader, from what `pg_authid` holds.
    fn decide(&self, found: Option<&Found>) -> Result<Plan, ModuleError> {
        let role = ident(&self.name);
        let path = format!("role {}", self.name);
        match (self.state, found) {
            (State::Absent, None) => Ok(Plan::unchanged()),
            (State::Absent, Some(f)) => Ok(Plan::changes(
                vec![
                    Change::new(format!("drop role `{}`", self.name)).with_diff(Diff {
                        path,
                        before: Some(Self::text(&f.attrs, (!f.stored.is_empty()).then_some(MASK))),
                        after: None,
                    }),
                ],
                Work(format!("DROP ROLE {role};\n")),
            )),
            (State::Present, None) => {
                let mut attrs = [false, false, false, false, false, true];
                for (i, w) in self.wanted().iter().enumerate() {
                    if let Some(w) = w {
                        attrs[i] = *w;
                    }
                }
                let mut sql = format!("CREATE ROLE {role}{};\n", Self::options(&attrs, None));
                if let Some(p) = &self.password {
                    sql.push_str(&self.set_password(p)?);
                }
                Ok(Plan::changes(
                    vec![
                        Change::new(format!("create role `{}`", self.name)).with_diff(Diff {
                            path,
                            before: None,
                            after: Some(Self::text(&attrs, self.password.as_ref().map(|_| MASK))),
                        }),
                    ],
                    Work(sql),
                ))
            }
            (State::Present, Some(f)) => {
                let mut attrs = f.attrs;
                let mut differ = Vec::new();
                for (i, w) in self.wanted().iter().enumerate() {
                    if let Some(w) = w {
                        if attrs[i] != *w {
                            attrs[i] = *w;
                            differ.push(ATTRS[i].0);
                        }
                    }
                }
                let had = (!f.stored.is_empty()).then_some(MASK);
                let new_password = self
                    .password
                    .as_ref()
                    .filter(|p| !password::matches(p.expose(), &f.stored));
                let mut sql = String::new();
                if !differ.is_empty() {
                    sql.push_str(&format!(
                        "ALTER ROLE {role}{};\n",
                        Self::options(&attrs, Some(&f.attrs))
                    ));
                }
                if let Some(p) = new_password {
                    differ.push("password");
                    sql.push_str(&self.set_password(p)?);
                }
                if differ.is_empty() {
                    return Ok(Plan::unchanged());
                }
                let after_password = match (new_password, had) {
                    (Some(_), _) => Some("******** (changed)"),
                    (None, had) => had,
                };
                Ok(Plan::changes(
                    vec![
                        Change::new(format!("alter role `{}`: {}", self.name, differ.join(", ")))
                            .with_diff(Diff {
                                path,
                                before: Some(Self::text(&f.attrs, had)),
                                after: Some(Self::text(&attrs, after_password)),
                            }),
                    ],
                    Work(sql),
                ))
            }
        }
    }

    /// ` WITH LOGIN NOSUPERUSER …`: every attribute for a new role, the changed ones
    /// otherwise.
    fn options(attrs: &[bool; 6], before: Option<&[bool; 6]>) -> String {
        let mut s = String::from(" WITH");
        for (i, (_, kw)) in ATTRS.iter().enumerate() {
            if before.is_none_or(|b| b[i] != attrs[i]) {
                s.push_str(if attrs[i] { " " } else { " NO" });
                s.push_str(kw);
            }
        }
        s
    }

    /// `ALTER ROLE … PASSWORD '<verifier>'`, the verifier recorded as a secret.
    fn set_password(&self, p: &Secret) -> Result<String, ModuleError> {
        let v = password::verifier(p.expose()).map_err(|e| {
            ModuleError::Failed(format!(
                "cannot read random bytes for the password's salt: {e}"
            ))
        })?;
        pgdeploy_core::secrets::record(&v);
        Ok(format!(
            "ALTER ROLE {} PASSWORD {};\n",
            ident(&self.name),
            literal(&v)
        ))
    }
}

#[async_trait::async_trait]
impl Action for PostgresqlRole {
    /// Patroni's leader first (`patronictl list`); on it, one `psql` read of `pg_authid`.
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let me = self.member.as_deref().unwrap_or(cx.host);
        if let Member::Replica { leader } = postgres::member(cx, me).await? {
            return Ok(postgres::on_replica(&leader));
        }
        let out =
            postgres::psql(cx, "postgres", &format!("{READ}{};\n", literal(&self.name))).await?;
        self.decide(parse_found(&out)?.as_ref())
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(Work(sql)) = plan.work::<Work>() else {
            return Ok(());
        };
        postgres::psql(cx, "postgres", sql).await.map(|_| ())
    }
}

impl Params for PostgresqlRole {
    const NAME: &'static str = "postgresql_role";
    const SUMMARY: &'static str =
        "a PostgreSQL role, on Patroni's leader: attributes and password (SCRAM), or absent";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.name.is_empty() {
            problems.push(Problem::field("name", "a role needs a name"));
        }
        if let Some(p) = &self.password {
            if !p.expose().is_ascii() {
                problems.push(Problem::field(
                    "password",
                    "only ASCII passwords are supported (others need SASLprep, which this module does not apply)",
                ));
            }
            if self.state == State::Absent {
                problems.push(Problem::field(
                    "password",
                    "a password is for `state: present`",
                ));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(yaml: &str) -> PostgresqlRole {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn found(login: bool, password: &str) -> Found {
        Found {
            attrs: [false, false, false, login, false, true],
            stored: password::verifier(password).unwrap(),
        }
    }

    #[test]
    fn a_new_role_is_created_with_its_password_masked() {
        let r = role("{name: bob, login: true, password: \"it's \\\\ x\"}");
        let p = r.decide(None).unwrap();
        let d = p.changes[0].diff.as_ref().unwrap();
        assert!(d.after.as_ref().unwrap().contains("login: true"));
        assert!(!d.after.as_ref().unwrap().contains("it's"));
        let Work(sql) = p.work::<Work>().unwrap();
        assert!(sql.starts_with("CREATE ROLE \"bob\" WITH NOSUPERUSER NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION INHERIT;\n"));
        assert!(sql.contains("PASSWORD 'SCRAM-SHA-256$4096:"));
        assert!(!sql.contains("it's"));
    }

    #[test]
    fn the_same_role_plans_nothing_and_a_new_password_a_masked_change() {
        let r = role("{name: bob, login: true, password: \"it's \\\\ x\"}");
        assert!(!r
            .decide(Some(&found(true, "it's \\ x")))
            .unwrap()
            .is_changed());
        let p = r.decide(Some(&found(true, "old"))).unwrap();
        assert_eq!(p.changes[0].summary, "alter role `bob`: password");
        let d = p.changes[0].diff.as_ref().unwrap().unified();
        assert!(d.contains("-password: ********\n"), "{d}");
        assert!(d.contains("+password: ******** (changed)\n"), "{d}");
        let Work(sql) = p.work::<Work>().unwrap();
        assert!(!sql.contains("ALTER ROLE \"bob\" WITH"));
    }

    #[test]
    fn only_given_attributes_are_compared() {
        let r = role("{name: bob, createdb: true}");
        let p = r.decide(Some(&found(true, "x"))).unwrap();
        assert_eq!(p.changes[0].summary, "alter role `bob`: createdb");
        let Work(sql) = p.work::<Work>().unwrap();
        assert_eq!(sql, "ALTER ROLE \"bob\" WITH CREATEDB;\n");
        assert!(!role("{name: bob}")
            .decide(Some(&found(true, "x")))
            .unwrap()
            .is_changed());
    }

    #[test]
    fn absent_drops_an_existing_role_only() {
        let r = role("{name: bob, state: absent}");
        assert!(!r.decide(None).unwrap().is_changed());
        let p = r.decide(Some(&found(true, "x"))).unwrap();
        assert_eq!(p.changes[0].summary, "drop role `bob`");
        assert_eq!(p.work::<Work>().unwrap().0, "DROP ROLE \"bob\";\n");
    }

    #[test]
    fn pg_authid_rows_are_read() {
        let f = parse_found("t|f|f|t|f|t|SCRAM-SHA-256$4096:x$y:z\n")
            .unwrap()
            .unwrap();
        assert_eq!(f.attrs, [true, false, false, true, false, true]);
        assert_eq!(f.stored, "SCRAM-SHA-256$4096:x$y:z");
        assert_eq!(parse_found("").unwrap(), None);
    }
}
