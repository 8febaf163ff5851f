//! `pglift_postgres_exporter` (also `dalibo.pglift.postgres_exporter`): a Prometheus
//! postgres_exporter service that pglift sets up on this host for an instance **elsewhere** (the
//! collection's example: `name: 12-main@dbserver1`, `dsn: host=dbserver1…`), with the
//! collection's parameters read through the argument spec generated from the lab's pglift
//! (`argspec.json`, `scripts/pglift-argspec`). An instance on this host gets its exporter from
//! pglift itself, with the instance (site setting `prometheus`): pglift refuses this module's
//! name for it, and so does the plan.
//!
//! pglift 3.3 has no command that shows a service, so the plan runs a short script with
//! pglift's own Python (`read.py`): pglift's paths, pglift's template and the comparison
//! pglift's `setup` makes (the file it would write against the one there), the pid file's
//! process, and whether the password in the file is the one given (never the password itself).
//! `apply` gives the manifest to `pglift postgres_exporter apply -f -` on stdin (the command
//! is deprecated in pglift 3.3 but is the collection module's own call, `prometheus.apply`),
//! then waits until the exporter answers `/metrics` with `pg_up 1`.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::common::argspec::{Options, SpecFile};
use super::common::exec;
use super::common::shell::quote;
use super::pglift_role::add_pgdeploy_options;
use super::pglift_site::as_user;
use pgdeploy_core::diag::FieldPath;
use pgdeploy_core::module::{
    Action, Change, Diff, HostContext, Module, ModuleError, ParseContext, Parsed, Plan,
};
use pgdeploy_core::secrets::MASK;
use pgdeploy_core::transport::ExecRequest;
use pgdeploy_core::yaml::{DeError, Node};

const DEFAULT_EXECUTABLE: &str = "/opt/pglift/bin/pglift";

/// The spec generated from pglift (`pglift postgres_exporter --ansible-argspec`), with
/// pgdeploy's `executable` and `system_user`.
pub(crate) static SPEC: LazyLock<(String, Options)> = LazyLock::new(|| {
    let file = SpecFile::parse(include_str!("argspec.json"));
    let mut o = file.options;
    add_pgdeploy_options(&mut o);
    (file.pglift, o)
});

/// The read script, run with pglift's Python.
const READ: &str = include_str!("read.py");
const MARK_MISSING: &str = "==missing";
/// How long `apply` waits for `pg_up 1`.
const READY_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    Started,
    Stopped,
    Absent,
}

#[derive(Debug, Clone)]
pub(crate) struct PgliftExporter {
    executable: String,
    system_user: String,
    name: String,
    dsn: String,
    password: Option<String>,
    port: u16,
    state: Run,
}

/// What `read.py` prints.
#[derive(Debug, Clone, Default, Deserialize)]
struct Read {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    local_instance: bool,
    #[serde(default)]
    configpath: String,
    #[serde(default)]
    want_dsn: Option<BTreeMap<String, String>>,
    #[serde(default)]
    exists: bool,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    dsn: BTreeMap<String, String>,
    #[serde(default)]
    has_password: bool,
    #[serde(default)]
    same_password: bool,
    #[serde(default)]
    same_config: bool,
    #[serde(default)]
    running: bool,
    #[serde(default)]
    unreadable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
    /// The manifest goes to `pglift postgres_exporter apply`.
    Apply,
    /// Planned before pglift was installed: read and decide again when applying.
    Later,
}

fn conninfo(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl PgliftExporter {
    fn python(&self) -> String {
        let dir = self
            .executable
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or("");
        format!("{dir}/python")
    }

    fn read_request(&self, cx: &HostContext<'_>) -> ExecRequest {
        let py = quote(&self.python());
        let script = format!(
            "if [ ! -x {py} ]; then echo {MARK_MISSING}; exit 0; fi; {py} -c {} {}",
            quote(READ),
            quote(&self.name)
        );
        let want = json!({"dsn": self.dsn, "password": self.password, "port": self.port});
        ExecRequest {
            command: as_user(&self.system_user, &script),
            stdin: Some(want.to_string().into_bytes()),
            become_: cx.become_.clone(),
            ..ExecRequest::default()
        }
    }

    /// `None`: pglift is not installed yet.
    async fn read(&self, cx: &HostContext<'_>) -> Result<Option<Read>, ModuleError> {
        let out = cx.transport.exec(&self.read_request(cx)).await?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if stdout.trim() == MARK_MISSING {
            return Ok(None);
        }
        let line = stdout.lines().rev().find(|l| l.starts_with('{'));
        match (out.status, line.map(serde_json::from_str::<Read>)) {
            (0, Some(Ok(r))) => match &r.error {
                Some(e) => Err(ModuleError::Failed(format!(
                    "reading postgres_exporter `{}` on `{}`: {e}",
                    self.name, cx.host
                ))),
                None => Ok(Some(r)),
            },
            // The script prints no secret: its error is safe to show.
            _ => Err(exec::failure(
                &format!("reading postgres_exporter `{}` with pglift", self.name),
                &out,
            )),
        }
    }

    /// The service as the diff shows it; `password` is how the password line reads.
    fn text(port: Option<u16>, dsn: &str, password: &str) -> String {
        let port = port.map_or_else(|| "unknown".to_string(), |p| p.to_string());
        format!("port: {port}\ndsn: {dsn}\npassword: {password}\n")
    }

    fn wanted_text(&self, want_dsn: &str, changed_password: bool) -> String {
        let password = match (&self.password, changed_password) {
            (None, _) => "none".to_string(),
            (Some(_), true) => format!("{MASK} (changed)"),
            (Some(_), false) => MASK.to_string(),
        };
        Self::text(Some(self.port), want_dsn, &password)
    }

    /// What to do, from what the read found.
    fn decide(&self, r: &Read, host: &str) -> Result<Plan, ModuleError> {
        if !r.enabled {
            return Err(ModuleError::Failed(format!(
                "pglift's site settings on `{host}` have no `prometheus`: set `prometheus: {{execpath: /usr/bin/prometheus-postgres-exporter}}` in the `pglift_site` task's `settings`"
            )));
        }
        if r.local_instance {
            return Err(ModuleError::Failed(format!(
                "`{}` is a pglift instance on `{host}`: pglift sets up its exporter with the instance (its `prometheus` setting); this module is for instances elsewhere, under another name (`{}@{host}`)",
                self.name, self.name
            )));
        }
        let Some(want) = &r.want_dsn else {
            return Err(ModuleError::Failed(format!(
                "`dsn` of postgres_exporter `{}` is not a connection string libpq reads",
                self.name
            )));
        };
        let want_dsn = conninfo(want);
        let path = format!("postgres_exporter {}", self.name);
        let what = |s: String| format!("postgres_exporter `{}`: {s}", self.name);
        if self.state == Run::Absent {
            if !r.exists {
                return Ok(Plan::unchanged());
            }
            return Ok(Plan::changes(
                vec![
                    Change::new(format!("drop postgres_exporter `{}`", self.name)).with_diff(
                        Diff {
                            path,
                            before: Some(Self::text(r.port, &conninfo(&r.dsn), MASK)),
                            after: None,
                        },
                    ),
                ],
                Work::Apply,
            ));
        }
        let start = self.state == Run::Started;
        if !r.exists {
            let mut summary = format!(
                "create postgres_exporter `{}` (port {}, `{}`)",
                self.name, self.port, r.configpath
            );
            if start {
                summary.push_str(", start it and wait for `pg_up 1`");
            }
            return Ok(Plan::changes(
                vec![Change::new(summary).with_diff(Diff {
                    path,
                    before: None,
                    after: Some(self.wanted_text(&want_dsn, false)),
                })],
                Work::Apply,
            ));
        }
        let mut changes = Vec::new();
        if !r.same_config {
            let current = conninfo(&r.dsn);
            let mut parts = Vec::new();
            if r.port != Some(self.port) {
                parts.push(format!(
                    "port {} → {}",
                    r.port.map_or_else(|| "unknown".into(), |p| p.to_string()),
                    self.port
                ));
            }
            if current != want_dsn {
                parts.push(format!("dsn `{current}` → `{want_dsn}`"));
            }
            if !r.same_password {
                parts.push("password".into());
            }
            if let Some(e) = &r.unreadable {
                parts.push(format!("pglift cannot read its configuration file ({e})"));
            }
            if parts.is_empty() {
                parts.push("its configuration file differs from pglift's template".into());
            }
            let restart = if r.running { " (restarted)" } else { "" };
            let before_password = if r.has_password { MASK } else { "none" };
            changes.push(
                Change::new(what(format!("reconfigure{restart}: {}", parts.join(", ")))).with_diff(
                    Diff {
                        path,
                        before: Some(Self::text(r.port, &current, before_password)),
                        after: Some(self.wanted_text(
                            &want_dsn,
                            !r.same_password && r.has_password && self.password.is_some(),
                        )),
                    },
                ),
            );
        }
        match (start, r.running) {
            (true, false) => changes.push(Change::new(what(
                "start it and wait for `pg_up 1`".to_string(),
            ))),
            (false, true) => changes.push(Change::new(what("stop it".to_string()))),
            _ => {}
        }
        if changes.is_empty() {
            return Ok(Plan::unchanged());
        }
        Ok(Plan::changes(changes, Work::Apply))
    }

    /// The manifest pglift validates (`PostgresExporter`).
    fn manifest(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("dsn".into(), json!(self.dsn));
        if let Some(p) = &self.password {
            m.insert("password".into(), json!(p));
        }
        m.insert("port".into(), json!(self.port));
        let state = match self.state {
            Run::Started => "started",
            Run::Stopped => "stopped",
            Run::Absent => "absent",
        };
        m.insert("state".into(), json!(state));
        Value::Object(m)
    }

    async fn pglift_apply(&self, cx: &HostContext<'_>) -> Result<(), ModuleError> {
        let cmd = format!(
            "{} --non-interactive postgres_exporter apply -f - -o json",
            quote(&self.executable)
        );
        let req = ExecRequest {
            command: as_user(&self.system_user, &cmd),
            stdin: Some(self.manifest().to_string().into_bytes()),
            become_: cx.become_.clone(),
            timeout: Some(Duration::from_secs(300)),
        };
        let out = cx.transport.exec(&req).await?;
        if out.status != 0 {
            return Err(exec::failure(
                &format!("pglift postgres_exporter apply (`{}`)", self.name),
                &out,
            ));
        }
        Ok(())
    }

    /// Waits until `/metrics` on this host's port says `pg_up 1`; the error says whether the
    /// exporter answered at all.
    async fn wait_ready(&self, cx: &HostContext<'_>, within: Duration) -> Result<(), ModuleError> {
        let cmd = format!(
            "curl -sS --max-time 5 http://127.0.0.1:{}/metrics | grep -E '^pg_up ' || true",
            self.port
        );
        let started = Instant::now();
        let mut last = None;
        loop {
            let out = exec::run(cx, &cmd).await?;
            let text = String::from_utf8_lossy(&out.stdout);
            let up = text
                .lines()
                .find_map(|l| l.strip_prefix("pg_up "))
                .map(|v| v.trim().to_string());
            if up.as_deref() == Some("1") {
                return Ok(());
            }
            last = up.or(last);
            if started.elapsed() >= within {
                let why = match last {
                    Some(v) => format!(
                        "it answers with `pg_up {v}`: it cannot connect with its `dsn` (the role, its password, pg_hba, or `sslmode`: postgres_exporter's driver defaults to `require`)"
                    ),
                    None => "nothing answers on that port (see pglift's log)".to_string(),
                };
                return Err(ModuleError::Failed(format!(
                    "postgres_exporter `{}` on `{}` port {}: no `pg_up 1` after {:.0} s: {why}",
                    self.name,
                    cx.host,
                    self.port,
                    within.as_secs_f64()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[async_trait::async_trait]
impl Action for PgliftExporter {
    async fn plan(&self, cx: &HostContext<'_>) -> Result<Plan, ModuleError> {
        match self.read(cx).await? {
            Some(r) => self.decide(&r, cx.host),
            None => Ok(Plan::changes(
                vec![Change::new(format!(
                    "postgres_exporter `{}`: decided once pglift is installed (`{}` is not there yet)",
                    self.name,
                    self.python()
                ))],
                Work::Later,
            )),
        }
    }

    async fn apply(&self, cx: &HostContext<'_>, plan: &Plan) -> Result<(), ModuleError> {
        match plan.work::<Work>() {
            None => return Ok(()),
            Some(Work::Later) => {
                let r = self.read(cx).await?.ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "pglift is still not installed at `{}`",
                        self.executable
                    ))
                })?;
                if !self.decide(&r, cx.host)?.is_changed() {
                    return Ok(());
                }
            }
            Some(Work::Apply) => {}
        }
        self.pglift_apply(cx).await?;
        if self.state == Run::Started {
            self.wait_ready(cx, READY_WITHIN).await?;
        }
        Ok(())
    }
}

/// A password as pglift writes it into the exporter's URI (`urllib.parse.quote`: letters,
/// digits, `_.-~/` kept, every other byte `%XX`), recorded as a secret too, so that form is
/// masked wherever it might appear.
fn uri_quoted(password: &str) -> String {
    password
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The module, under its own name or the collection's.
pub(crate) struct ExporterModule(pub &'static str);

impl Module for ExporterModule {
    fn name(&self) -> &'static str {
        self.0
    }
    fn summary(&self) -> &'static str {
        if self.0 == "pglift_postgres_exporter" {
            "a postgres_exporter pglift runs here for an instance elsewhere (the collection's parameters), answering `pg_up 1`"
        } else {
            "the Ansible collection's name for `pglift_postgres_exporter`"
        }
    }
    fn parse(
        &self,
        params: &Node,
        path: &FieldPath,
        _cx: &ParseContext<'_>,
    ) -> Result<Parsed, Vec<DeError>> {
        let m = SPEC.1.read(params, path)?;
        let at = |field: &str, msg: String| {
            let node = params.get(field).unwrap_or(params);
            DeError::new(msg).at(node.mark, &path.key(field))
        };
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        let mut errors = Vec::new();
        let name = text("name").unwrap_or_default();
        if name.is_empty() || name.contains('/') {
            errors.push(at(
                "name",
                format!("`{name}` is not a service name (not empty, no `/`: `main@dbserver1`)"),
            ));
        }
        let dsn = text("dsn").unwrap_or_default();
        if dsn.trim().is_empty() {
            errors.push(at("dsn", "the exporter needs the instance's connection string (`host=dbserver1 port=5432 dbname=postgres user=prometheus`)".into()));
        } else if dsn.contains("password") {
            errors.push(at(
                "dsn",
                "give the password as `password` (a secret, masked in every output), not in `dsn`"
                    .into(),
            ));
        }
        let port = m.get("port").and_then(Value::as_u64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            errors.push(at(
                "port",
                format!("`{port}` is not a TCP port (1 to 65535)"),
            ));
        }
        let password = text("password");
        if let Some(p) = &password {
            if p.chars().any(char::is_whitespace) {
                errors.push(at(
                    "password",
                    "postgres_exporter cannot use a password with a blank or a line break".into(),
                ));
            }
            let quoted = uri_quoted(p);
            if quoted != *p {
                pgdeploy_core::secrets::record_from(
                    "the exporter's password as pglift writes it in its URI",
                    &quoted,
                );
            }
        }
        let state = match text("state").as_deref() {
            Some("stopped") => Run::Stopped,
            Some("absent") => Run::Absent,
            _ => Run::Started,
        };
        let executable = text("executable").unwrap_or_else(|| DEFAULT_EXECUTABLE.into());
        if !executable.starts_with('/') {
            errors.push(at(
                "executable",
                format!("`{executable}` is not an absolute path"),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Parsed {
            action: Arc::new(PgliftExporter {
                system_user: text("system_user").unwrap_or_else(|| "postgres".into()),
                executable,
                name,
                dsn,
                password,
                port: port as u16,
                state,
            }),
            warnings: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests;
