//! `postgres_exporter`: Prometheus' postgres_exporter (Debian's `prometheus-postgres-exporter`
//! package) for the PostgreSQL instance of a host, as a systemd service of its own
//! (`pgdeploy-postgres-exporter@NAME`), connecting with a monitoring role (`pg_monitor`) whose
//! password is in a file of its own (mode 0600, written atomically, never shown: the
//! environment file names the file, so no diff or unit holds the secret).
//!
//! The role is made where PostgreSQL is writable only (the Patroni leader: every other member
//! is in recovery) with `postgresql_role`'s code, and reaches the replicas by replication.
//! Every member reads it in the same `psql` command, so a no-op step is one read of the
//! cluster and the file probes. After a start or restart, `apply` waits until the exporter
//! answers `/metrics` with `pg_up 1` (on a replica: once the role has been replicated).
//! The locator (`/var/lib/pgdeploy/postgres_exporter-NAME.env`) tells `pgdeploy verify`
//! where each exporter answers.

use serde::Deserialize;

use pgdeploy_core::module::{
    Action, Change, HostContext, ModuleError, Params, ParseContext, Plan, Problem,
};
use pgdeploy_core::params::Mode;

use super::common::attrs::Wanted;
use super::common::content::{self, ContentWork, Desired};
use super::common::exec;
use super::common::postgres::{self, literal};
use super::common::secret::Secret;
use super::common::shell::quote;
use super::common::stat::{self, Kind};
use super::postgresql_role::PostgresqlRole;
use super::service::{Service, ServiceState};

pub(crate) mod render;

use render::{env_path, password_path, unit_name, CONFIG_DIR, UNIT_PATH};

fn d_name() -> String {
    "main".into()
}
fn d_listen() -> String {
    "127.0.0.1".into()
}
fn d_port() -> u16 {
    9187
}
fn d_user() -> String {
    "prometheus".into()
}
fn yes() -> bool {
    true
}
fn d_pg_host() -> String {
    "127.0.0.1".into()
}
fn d_pg_port() -> u16 {
    5432
}
fn d_dbname() -> String {
    "postgres".into()
}
fn d_sslmode() -> String {
    "require".into()
}
fn d_binary() -> String {
    "/usr/bin/prometheus-postgres-exporter".into()
}
fn d_wait() -> u64 {
    60
}

/// The role every monitoring role is made a member of (PostgreSQL's own, since 10).
const MONITOR_ROLE: &str = "pg_monitor";
/// The package's own unit: enabled by its installation, it would listen on `:9187` with an
/// empty connection string; the instances' units replace it.
const PACKAGE_UNIT: &str = "prometheus-postgres-exporter.service";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresExporter {
    /// The instance's name: its unit is `pgdeploy-postgres-exporter@NAME`.
    #[serde(default = "d_name")]
    pub name: String,
    /// The address the exporter listens on (`0.0.0.0`: every IPv4 address).
    #[serde(default = "d_listen")]
    pub listen_address: String,
    #[serde(default = "d_port")]
    pub port: u16,
    /// The PostgreSQL role the exporter connects as.
    #[serde(default = "d_user")]
    pub user: String,
    /// Its password (a secret: masked everywhere; in its own 0600 file on the host).
    /// Required; `none` is accepted when the task is read (a playbook passes
    /// `default(none)` to a task its `when` skips) and refused when the step plans.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Make `user` a login role of `pg_monitor` with `password` (on the leader). `false`: the
    /// role exists already (the superuser, say) and is left as it is.
    #[serde(default = "yes")]
    pub create_role: bool,
    /// Where the exporter reaches PostgreSQL (TCP: the password is checked there).
    #[serde(default = "d_pg_host")]
    pub pg_host: String,
    #[serde(default = "d_pg_port")]
    pub pg_port: u16,
    #[serde(default = "d_dbname")]
    pub dbname: String,
    /// libpq's `sslmode` (`require` for `playbooks/site.yml`'s `hostssl`-only `pg_hba`).
    #[serde(default = "d_sslmode")]
    pub sslmode: String,
    /// The exporter's executable (the package's by default).
    #[serde(default = "d_binary")]
    pub binary: String,
    /// The system user the service runs as (the package creates `prometheus`).
    #[serde(default = "d_user")]
    pub run_as: String,
    /// Seconds `apply` waits, after a start or restart, for `/metrics` to say `pg_up 1`
    /// (0: no wait).
    #[serde(default = "d_wait")]
    pub wait_timeout: u64,
}

/// What `apply` does, decided by `plan`, in this order.
#[derive(Default)]
struct Work {
    /// The executable, missing at plan time (a dry run on a bare host).
    require: Option<exec::Required>,
    dir: Option<String>,
    unit: Option<ContentWork>,
    env: Option<ContentWork>,
    password: Option<ContentWork>,
    locator: Option<(ContentWork, bool)>,
    role: RoleWork,
    package_unit: Option<(Service, Plan)>,
    service: Option<(Service, Plan)>,
    /// The files changed: `daemon-reload` (the unit), restart (a running exporter).
    unit_changed: bool,
}

/// The monitoring role's part of the work.
#[derive(Default)]
enum RoleWork {
    #[default]
    Nothing,
    /// On the leader: what `postgresql_role` planned, and the `GRANT`, when it is missing.
    Change {
        role: Box<PostgresqlRole>,
        plan: Plan,
        grant: Option<String>,
    },
    /// PostgreSQL did not answer when the step planned (a dry run before Patroni runs):
    /// read and decided again when the step applies.
    Later,
}

/// What the one `psql` read of a member says.
#[derive(Debug, PartialEq, Eq)]
struct Read {
    in_recovery: bool,
    /// The `pg_authid` row's output, for `postgresql_role`.
    role: String,
    member_of_monitor: bool,
}

fn parse_read(out: &str) -> Result<Read, ModuleError> {
    let (head, rest) = out
        .split_once("==role\n")
        .ok_or_else(|| ModuleError::Failed("unexpected `psql` output: no role part".into()))?;
    let (role, member) = rest
        .split_once("==member\n")
        .ok_or_else(|| ModuleError::Failed("unexpected `psql` output: no member part".into()))?;
    Ok(Read {
        in_recovery: head.trim() == "t",
        role: role.to_string(),
        member_of_monitor: member.trim() != "0",
    })
}

impl PostgresExporter {
    fn role(&self) -> PostgresqlRole {
        PostgresqlRole {
            name: self.user.clone(),
            password: self.password.clone(),
            login: Some(true),
            superuser: None,
            createdb: None,
            createrole: None,
            replication: None,
            inherit: None,
            state: Default::default(),
            member: None,
        }
    }

    /// Whether this member is in recovery, the role's row and its membership, in one `psql`.
    fn read_sql(&self) -> String {
        format!(
            "SELECT pg_is_in_recovery();\n\\echo ==role\n{}\\echo ==member\n\
             SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid \
             JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = {} AND u.rolname = {};\n",
            self.role().read_sql(),
            literal(MONITOR_ROLE),
            literal(&self.user)
        )
    }

    /// The role's changes on a member that is not in recovery; nothing elsewhere.
    fn decide_role(&self, read: &Read) -> Result<(Vec<Change>, RoleWork), ModuleError> {
        if read.in_recovery {
            return Ok((Vec::new(), RoleWork::Nothing));
        }
        let role = self.role();
        let plan = role.plan_read(&read.role)?;
        let mut changes = plan.changes.clone();
        let grant = (!read.member_of_monitor).then(|| {
            changes.push(Change::new(format!(
                "grant `{MONITOR_ROLE}` to `{}`",
                self.user
            )));
            format!(
                "GRANT {} TO {};\n",
                postgres::ident(MONITOR_ROLE),
                postgres::ident(&self.user)
            )
        });
        if changes.is_empty() {
            return Ok((changes, RoleWork::Nothing));
        }
        Ok((
            changes,
            RoleWork::Change {
                role: Box::new(role),
                plan,
                grant,
            },
        ))
    }

    async fn plan_file(
        &self,
        cx: &HostContext<'_>,
        dest: &str,
        content: String,
        wanted: Wanted<'_>,
    ) -> Result<Plan, ModuleError> {
        content::plan(
            cx,
            &Desired {
                dest,
                content: content.into_bytes(),
                wanted,
                validate: None,
            },
        )
        .await
    }

    /// Exits 0 once the exporter's `/metrics` says `pg_up 1`, 1 after the timeout.
    fn wait_script(&self) -> String {
        let url = quote(&render::local_url(&self.listen_address, self.port));
        format!(
            "end=$(( $(date +%s) + {t} )); while :; do \
             if command -v curl >/dev/null 2>&1; then out=$(curl -s --max-time 5 {url} 2>/dev/null); \
             else out=$(python3 -c 'import sys,urllib.request;print(urllib.request.urlopen(sys.argv[1],timeout=5).read().decode())' {url} 2>/dev/null); fi; \
             printf '%s\\n' \"$out\" | grep -q '^pg_up 1$' && exit 0; \
             [ $(date +%s) -ge $end ] && {{ printf '%s\\n' \"$out\" | grep '^pg_up' || echo 'no answer'; exit 1; }}; \
             sleep 1; done",
            t = self.wait_timeout
        )
    }
}

#[async_trait::async_trait]
impl Action for PostgresExporter {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        let Some(secret) = &self.password else {
            return Err(ModuleError::Failed(format!(
                "postgres_exporter `{}` needs a `password` (the role `{}`'s)",
                self.name, self.user
            )));
        };
        let mut changes = Vec::new();
        let mut notes = Vec::new();
        let mut work = Work::default();
        let test = format!("test -x {}", quote(&self.binary));
        if exec::run(cx, &test).await?.status != 0 {
            notes.push(format!(
                "`{}` is not installed yet (package `prometheus-postgres-exporter`)",
                self.binary
            ));
            work.require = Some(exec::Required {
                path: self.binary.clone(),
                error: format!(
                    "`{}` is not an executable on `{}`: install the package `prometheus-postgres-exporter` first",
                    self.binary, cx.host
                ),
            });
        }
        let dir_wanted = Wanted {
            owner: Some("root"),
            group: Some(&self.run_as),
            mode: Some(Mode(0o750)),
        };
        let dir = stat::probe(cx, CONFIG_DIR, false).await?;
        let install_dir = format!(
            "install -d -o root -g {} -m 0750 -- {CONFIG_DIR}",
            quote(&self.run_as)
        );
        match dir.kind {
            Kind::Missing => {
                changes.push(Change::new(format!(
                    "create directory `{CONFIG_DIR}`{}",
                    dir_wanted.describe()
                )));
                work.dir = Some(install_dir);
            }
            Kind::Directory => {
                let fix = dir_wanted.diff(&dir.ownership.clone().unwrap_or_default());
                if !fix.is_empty() {
                    changes.push(Change::new(format!("`{CONFIG_DIR}`: {}", fix.describe())));
                    work.dir = Some(install_dir);
                }
            }
            ref other => {
                return Err(ModuleError::Failed(format!(
                    "`{CONFIG_DIR}` is {}, not a directory",
                    other.describe()
                )))
            }
        }
        let root = Wanted {
            owner: Some("root"),
            group: Some("root"),
            mode: Some(Mode(0o644)),
        };
        let unit = self
            .plan_file(cx, UNIT_PATH, self.render_unit(), root)
            .await?;
        changes.extend(unit.changes.iter().cloned());
        work.unit = unit.work::<ContentWork>().cloned();
        let env = self
            .plan_file(
                cx,
                &env_path(&self.name),
                self.render_env(),
                Wanted {
                    owner: Some("root"),
                    group: Some(&self.run_as),
                    mode: Some(Mode(0o640)),
                },
            )
            .await?;
        changes.extend(env.changes.iter().cloned());
        work.env = env.work::<ContentWork>().cloned();
        let pass_path = password_path(&self.name);
        let password = self
            .plan_file(
                cx,
                &pass_path,
                secret.expose().to_string(),
                Wanted {
                    owner: Some(&self.run_as),
                    group: Some(&self.run_as),
                    mode: Some(Mode(0o600)),
                },
            )
            .await?;
        // The file is the secret: its changes are said, never shown as a diff.
        changes.extend(password.changes.iter().map(|c| Change {
            summary: if c.summary.starts_with("update ") {
                format!("update `{pass_path}` (secret changed)")
            } else {
                c.summary.clone()
            },
            diff: None,
        }));
        work.password = password.work::<ContentWork>().cloned();
        work.unit_changed = work.unit.is_some();
        let files_changed = work.unit.is_some() || work.env.is_some() || work.password.is_some();

        let locator = pgdeploy_core::locator::postgres_exporter(&self.name);
        let state = stat::probe(cx, &locator, true).await?;
        let desired = Desired {
            dest: &locator,
            content: self.render_locator().into_bytes(),
            wanted: root,
            validate: None,
        };
        if let Some((c, w)) = content::decide(&desired, &state)? {
            changes.extend(c);
            work.locator = Some((w, state.kind == Kind::Missing));
        }

        if self.create_role {
            match postgres::psql(cx, "postgres", &self.read_sql()).await {
                Ok(out) => {
                    let (c, w) = self.decide_role(&parse_read(&out)?)?;
                    changes.extend(c);
                    work.role = w;
                }
                Err(_) => {
                    notes.push(format!(
                        "PostgreSQL does not answer on `{}` yet: the role `{}` is checked when the step applies",
                        cx.host, self.user
                    ));
                    work.role = RoleWork::Later;
                }
            }
        }

        let package = Service {
            name: PACKAGE_UNIT.into(),
            state: Some(ServiceState::Stopped),
            enabled: Some(false),
            daemon_reload: false,
        };
        let package_plan = package.plan(cx).await?;
        if package_plan.is_changed() {
            changes.extend(package_plan.changes.iter().cloned());
            work.package_unit = Some((package, package_plan));
        }
        let service = Service {
            name: unit_name(&self.name),
            state: Some(ServiceState::Started),
            enabled: Some(true),
            daemon_reload: false,
        };
        let mut svc_plan = service.plan(cx).await?;
        let running = !svc_plan
            .changes
            .iter()
            .any(|c| c.summary.starts_with("start "));
        if files_changed && running {
            let restart = Service {
                state: Some(ServiceState::Restarted),
                ..service.clone()
            };
            svc_plan = restart.plan(cx).await?;
            changes.extend(svc_plan.changes.iter().cloned());
            work.service = Some((restart, svc_plan));
        } else if svc_plan.is_changed() {
            changes.extend(svc_plan.changes.iter().cloned());
            work.service = Some((service, svc_plan));
        }

        let later = matches!(work.role, RoleWork::Later);
        if changes.is_empty() && !later {
            return Ok(Plan::unchanged().with_notes(notes));
        }
        if changes.is_empty() {
            return Ok(Plan::run_unchanged(work).with_notes(notes));
        }
        Ok(Plan::changes(changes, work).with_notes(notes))
    }

    /// The executable checked, the directory and files, the locator, the role (on the
    /// leader), the package's unit stopped, then the instance's unit (re)started and waited
    /// for until `/metrics` says `pg_up 1`.
    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        let Some(work) = plan.work::<Work>() else {
            return Ok(());
        };
        if let Some(r) = &work.require {
            r.check(cx).await?;
        }
        if let Some(cmd) = &work.dir {
            exec::check(cx, cmd, cmd).await?;
        }
        for w in [&work.unit, &work.env].into_iter().flatten() {
            content::apply(cx, w).await?;
        }
        if let Some(w) = &work.password {
            content::apply(cx, w).await.map_err(|e| match e {
                ModuleError::Failed(m) => ModuleError::Failed(match &self.password {
                    Some(p) => p.mask_in(&m),
                    None => m,
                }),
                other => other,
            })?;
        }
        if let Some((w, create_dir)) = &work.locator {
            if *create_dir {
                let cmd = format!("mkdir -p -- {}", pgdeploy_core::locator::DIR);
                exec::check(cx, &cmd, &cmd).await?;
            }
            content::apply(cx, w).await?;
        }
        let later;
        let role = match &work.role {
            RoleWork::Later => {
                let out = postgres::psql(cx, "postgres", &self.read_sql()).await?;
                later = self.decide_role(&parse_read(&out)?)?.1;
                &later
            }
            other => other,
        };
        if let RoleWork::Change { role, plan, grant } = role {
            role.apply(cx, plan).await?;
            if let Some(sql) = grant {
                postgres::psql(cx, "postgres", sql).await?;
            }
        }
        if let Some((s, p)) = &work.package_unit {
            s.apply(cx, p).await?;
        }
        if work.unit_changed {
            exec::check(cx, "systemctl daemon-reload", "systemctl daemon-reload").await?;
        }
        if let Some((s, p)) = &work.service {
            s.apply(cx, p).await?;
            if self.wait_timeout > 0 {
                let out = exec::run(cx, &self.wait_script()).await?;
                if out.status != 0 {
                    return Err(ModuleError::Failed(format!(
                        "postgres_exporter `{}` on `{}` does not answer `{}` with `pg_up 1` {} s after it was started ({}); see `journalctl -u {}`",
                        self.name,
                        cx.host,
                        render::local_url(&self.listen_address, self.port),
                        self.wait_timeout,
                        String::from_utf8_lossy(&out.stdout).trim(),
                        unit_name(&self.name)
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Names that go into unit names, paths, environment files and SQL unquoted.
fn plain(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Params for PostgresExporter {
    const NAME: &'static str = "postgres_exporter";
    const SUMMARY: &'static str =
        "Prometheus postgres_exporter per PostgreSQL instance: its systemd unit, monitoring role (pg_monitor) and password file";

    fn check(&self, _cx: &ParseContext<'_>) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (field, value) in [
            ("name", &self.name),
            ("user", &self.user),
            ("run_as", &self.run_as),
            ("dbname", &self.dbname),
        ] {
            if !plain(value) {
                problems.push(Problem::field(
                    field,
                    format!("`{value}` must be letters, digits, `_`, `-` or `.`"),
                ));
            }
        }
        for (field, value) in [
            ("listen_address", &self.listen_address),
            ("pg_host", &self.pg_host),
        ] {
            if value.is_empty()
                || value.chars().any(|c| {
                    !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
                })
            {
                problems.push(Problem::field(
                    field,
                    format!("`{value}` is not an address or host name"),
                ));
            }
        }
        if !matches!(
            self.sslmode.as_str(),
            "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full"
        ) {
            problems.push(Problem::field(
                "sslmode",
                format!("`{}` is not a libpq `sslmode`", self.sslmode),
            ));
        }
        if !self.binary.starts_with('/') || self.binary.contains(char::is_whitespace) {
            problems.push(Problem::field("binary", "an absolute path without spaces"));
        }
        let p = self.password.as_ref().map_or("-", |p| p.expose());
        if p.is_empty() {
            problems.push(Problem::field("password", "the password is empty"));
        } else if p.trim() != p {
            problems.push(Problem::field(
                "password",
                "the password begins or ends with white space, which the exporter trims from its password file",
            ));
        } else if !p.is_ascii() {
            problems.push(Problem::field(
                "password",
                "only ASCII passwords are supported (the role's SCRAM verifier is computed without SASLprep)",
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests;
