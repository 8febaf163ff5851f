//! Installing Patroni and the OS families, over the fake transport: each method on a fresh
//! host, a converged host, a wrong version, a failed pip run; and snapshots of what a fresh
//! apply writes and runs on Debian 12 (pip), Ubuntu 24.04 (package) and Rocky 9 (package).

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::common::fake::*;
use crate::common::scram;
use pgdeploy_core::diag::{FieldPath, SourceFile};
use pgdeploy_core::template::Facts;
use pgdeploy_core::transport::{
    Become, ExecOutput, ExecRequest, FileAttrs, Transport, TransportError,
};
use pgdeploy_core::yaml::{from_node, load_str};

const BASE: &str = r#"
scope: pgcluster
etcd:
  hosts: 10.213.7.11:2379,10.213.7.12:2379
authentication:
  superuser: {password: "Su-secret-1"}
  replication: {password: "Repl-secret-2"}
"#;

const FIND_LINKS: &str = "http://10.213.7.1:8480/python/";

pub(super) fn params(install: &str) -> Patroni {
    let yaml = format!("{BASE}{install}");
    let file = SourceFile::new("playbook.yml");
    let node = load_str(&yaml, &file).expect("YAML");
    let p: Patroni = from_node(&node, &FieldPath::root().key("patroni")).expect("valid parameters");
    assert!(p.check().is_empty(), "{:?}", p.check());
    p
}

pub(super) fn pip() -> Patroni {
    params(&format!(
        "install: {{method: pip, version: \"4.1.5\", find_links: \"{FIND_LINKS}\"}}\n"
    ))
}

fn platform(family: &str, dist: &str, codename: &str, major: &str) -> Facts {
    let mut f = host0_facts("10.213.7.11");
    f.insert("ansible_os_family".into(), json!(family));
    f.insert("ansible_distribution".into(), json!(dist));
    f.insert("ansible_distribution_release".into(), json!(codename));
    f.insert("ansible_distribution_major_version".into(), json!(major));
    f
}
pub(super) fn debian12() -> Facts {
    platform("Debian", "Debian", "bookworm", "12")
}
fn ubuntu2404() -> Facts {
    platform("Debian", "Ubuntu", "noble", "24")
}
fn rocky9() -> Facts {
    platform("RedHat", "Rocky", "", "9")
}

/// The probe's output on a bare host with PostgreSQL `version` (nothing of Patroni).
fn fresh_probe(family: Family, version: u32, pip: bool) -> String {
    let mut s =
        format!("confdir=\nversions={version} \npatroni_active=inactive\npatroni_enabled=\n");
    match family {
        Family::Debian => s.push_str("dist_active=active\ndist_enabled=enabled\n"),
        Family::RedHat => s.push_str(&format!(
            "dist_active_{version}=inactive\ndist_enabled_{version}=disabled\n"
        )),
    }
    s.push_str("patroni_version=\n");
    if pip {
        s.push_str("venv=\npip_stamp=\n");
    }
    let manager = if family == Family::Debian {
        "apt"
    } else {
        "dnf"
    };
    if pip && family == Family::RedHat {
        // EL's python3 has venv: no package is asked about.
    } else {
        s.push_str(&format!(
            "==patroni-packages\n{manager}\n--candidates--\n==patroni-packages-end\n"
        ));
    }
    s.push_str("==done\n");
    s
}

/// Records writes in the same log as commands, so their order shows.
struct Recording(MemoryTransport);

#[async_trait]
impl Transport for Recording {
    fn host(&self) -> &str {
        "h1"
    }
    async fn exec(&self, req: &ExecRequest) -> Result<ExecOutput, TransportError> {
        self.0.exec(req).await
    }
    async fn read_file(&self, path: &str, b: &Become) -> Result<Option<Vec<u8>>, TransportError> {
        self.0.read_file(path, b).await
    }
    async fn write_file(
        &self,
        path: &str,
        content: &[u8],
        attrs: &FileAttrs,
        b: &Become,
    ) -> Result<(), TransportError> {
        self.0.note(format!(
            "(write {} owner {} mode {:o})",
            stable(path),
            attrs.owner.as_deref().unwrap_or("-"),
            attrs.mode.unwrap_or(0)
        ));
        self.0.write_file(path, content, attrs, b).await
    }
}

/// Temporary names (`.config.yml.pgdeploy-PID-NANOS`) made stable for snapshots.
fn stable(text: &str) -> String {
    let re = regex_lite::Regex::new(r"\.pgdeploy-[0-9]+-[0-9]+").expect("regex");
    re.replace_all(text, ".pgdeploy-TEMP").into_owned()
}

pub(super) struct Run {
    pub(super) plan: Plan,
    pub(super) plan_commands: Vec<String>,
    pub(super) apply_commands: Vec<String>,
    pub(super) written: std::collections::HashMap<String, Vec<u8>>,
    pub(super) error: Option<String>,
}

fn transport(probe: &str) -> MemoryTransport {
    installs(
        MemoryTransport::default()
            .answer("printf 'confdir=", output(0, probe))
            .answer(
                "127.0.0.1:8008/patroni",
                output(0, r#"{"role": "primary", "state": "running"}"#),
            )
            .answer("if [ -e /", output(0, "missing\nnolink\n")),
    )
}

/// `fake` also answering, with success, what a fresh install runs: the packages or the venv
/// and pip, the configuration directory, the validated config, then the units.
fn installs(fake: MemoryTransport) -> MemoryTransport {
    let ok = || output(0, "");
    fake.answer("install --no-install-recommends --", ok())
        .answer("dnf -y install -- patroni patroni-etcd", ok())
        .answer_exact("python3 -m venv /opt/patroni", ok())
        .answer("/opt/patroni/bin/pip install", ok())
        .answer(
            "install -d -m 0750 -o postgres -g postgres -- /etc/patroni",
            ok(),
        )
        .answer_exact("mkdir -p -- /var/lib/pgdeploy", ok())
        .answer("--validate-config", ok())
        .answer_exact("systemctl daemon-reload", ok())
        .answer("systemctl disable --now postgresql", ok())
        .answer_exact("systemctl enable patroni", ok())
        .answer_exact("systemctl start patroni", ok())
}

/// Plans (and, with `apply`, applies) `p` on a host answered by `fake`.
pub(super) fn run(p: &Patroni, facts: Facts, fake: MemoryTransport, apply: bool) -> Run {
    let h = Harness::new(MemoryTransport::default(), facts);
    let rec = Recording(fake);
    let cx = context("h1", &rec, &h.facts, &h.scope);
    block_on(async {
        let plan = p.plan(&cx).await.expect("plan");
        let plan_commands = rec.0.commands();
        let mut error = None;
        if apply {
            if let Err(e) = p.apply(&cx, &plan).await {
                error = Some(e.to_string());
            }
        }
        let apply_commands = rec.0.commands()[plan_commands.len()..].to_vec();
        let written = rec
            .0
            .written()
            .iter()
            .map(|(k, (c, _))| (stable(k), c.clone()))
            .collect();
        Run {
            plan,
            plan_commands,
            apply_commands,
            written,
            error,
        }
    })
}

pub(super) fn summaries(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(|c| c.summary.clone()).collect()
}

pub(super) fn position(commands: &[String], needle: &str) -> usize {
    commands
        .iter()
        .position(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in {commands:#?}"))
}

/// What a fresh apply writes and runs, as one text for a snapshot.
fn report(r: &Run) -> String {
    let file = |suffix: &str| {
        r.written
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, c)| mask_passwords(&String::from_utf8_lossy(c)))
            .unwrap_or_else(|| format!("(no file ending in `{suffix}` written)\n"))
    };
    let mut s = String::from("## plan\n");
    for c in summaries(&r.plan) {
        s.push_str(&format!("- {c}\n"));
    }
    s.push_str("\n## commands of the apply, in order\n");
    for c in &r.apply_commands {
        s.push_str(&format!("$ {}\n", stable(c)));
    }
    s.push_str("\n## /etc/patroni/config.yml\n");
    s.push_str(&file(".config.yml.pgdeploy-TEMP"));
    s.push_str("\n## /etc/systemd/system/patroni.service\n");
    s.push_str(&file("/patroni.service"));
    s.push_str("\n## /var/lib/pgdeploy/patroni.env\n");
    s.push_str(&file("/patroni.env"));
    s
}

#[test]
fn debian12_pip_fresh_apply() {
    let r = run(
        &pip(),
        debian12(),
        transport(&fresh_probe(Family::Debian, 15, true)),
        true,
    );
    assert_eq!(r.error, None);
    // One probe plus the unit's and the locator's states (the config's directory is missing).
    assert_eq!(r.plan_commands.len(), 3, "{:#?}", r.plan_commands);
    let c = &r.apply_commands;
    let venv_pkg = position(c, "install --no-install-recommends -- python3-venv");
    let venv = position(c, "python3 -m venv /opt/patroni");
    let pip = position(c, "/opt/patroni/bin/pip install");
    let validate = position(c, "--validate-config");
    let start = position(c, "systemctl start patroni");
    assert!(venv_pkg < venv && venv < pip && pip < validate && validate < start);
    assert!(c[pip].contains(
        "--no-index --find-links http://10.213.7.1:8480/python/ --trusted-host 10.213.7.1:8480 \
         'patroni[etcd3,psycopg3]==4.1.5'"
    ));
    // The exact version is known: Patroni 4's flag, no guessing.
    assert!(c[validate]
        .starts_with("( /opt/patroni/bin/patroni --validate-config --ignore-listen-port "));
    insta::assert_snapshot!("patroni_debian12_pip_fresh", report(&r));
}

#[test]
fn ubuntu2404_package_fresh_apply() {
    let r = run(
        &params(""),
        ubuntu2404(),
        transport(&fresh_probe(Family::Debian, 16, false)),
        true,
    );
    assert_eq!(r.error, None);
    let c = &r.apply_commands;
    let install = position(c, "install --no-install-recommends -- patroni");
    // The package's maintainer scripts start nothing: the config is not written yet.
    assert!(c[install].contains("exit 101"), "{}", c[install]);
    let unit = position(c, "(write /etc/systemd/system/patroni.service");
    let validate = position(c, "--validate-config");
    let reload = position(c, "systemctl daemon-reload");
    let start = position(c, "systemctl start patroni");
    assert!(install < unit && unit < validate && validate < reload && reload < start);
    // The packaged version is only known once installed: the binary's help decides.
    assert!(
        c[validate].contains("/usr/bin/patroni --help"),
        "{}",
        c[validate]
    );
    assert!(summaries(&r.plan).contains(&"install package `patroni`".to_string()));
    insta::assert_snapshot!("patroni_ubuntu2404_package_fresh", report(&r));
}

#[test]
fn rocky9_package_fresh_apply() {
    let r = run(
        &params(""),
        rocky9(),
        transport(&fresh_probe(Family::RedHat, 16, false)),
        true,
    );
    assert_eq!(r.error, None);
    let c = &r.apply_commands;
    assert!(
        c[0].starts_with("dnf -y install -- patroni patroni-etcd"),
        "{}",
        c[0]
    );
    assert!(!c.iter().any(|c| c.contains("policy-rc.d")));
    assert!(!c.iter().any(|c| c.contains("disable --now")), "{c:#?}");
    let written = report(&r);
    assert!(written.contains("data_dir: /var/lib/pgsql/16/pgcluster"));
    assert!(written.contains("bin_dir: /usr/pgsql-16/bin"));
    assert!(written.contains("pgpass: /var/lib/pgsql/.pgpass_pgcluster"));
    insta::assert_snapshot!("patroni_rocky9_package_fresh", written);
}

#[test]
fn rocky9_keeps_postgresql_n_off() {
    let probe = fresh_probe(Family::RedHat, 16, false).replace(
        "dist_active_16=inactive\ndist_enabled_16=disabled",
        "dist_active_16=active\ndist_enabled_16=enabled",
    );
    let r = run(&params(""), rocky9(), transport(&probe), true);
    assert!(summaries(&r.plan).contains(
        &"stop and disable the `postgresql-16` service (Patroni runs PostgreSQL)".into()
    ));
    position(&r.apply_commands, "systemctl disable --now postgresql-16");
}

/// `pg_authid`'s lines for the roles with these passwords (the read of `rotate.rs`).
pub(super) fn stored_roles(superuser: &str, replication: &str) -> String {
    let v = |pw: &str| scram::Verifier::new(pw, b"fixed-test-salt!", scram::ITERATIONS).text();
    format!("postgres {}\nreplicator {}\n", v(superuser), v(replication))
}

/// The files as a converged host has them, for `p` on Debian with PostgreSQL 15, and the
/// database holding the passwords of `BASE`.
pub(super) fn converged(p: &Patroni, install_lines: &str) -> MemoryTransport {
    converged_with(
        p,
        install_lines,
        r#"{"members": []}"#,
        output(0, &stored_roles("Su-secret-1", "Repl-secret-2")),
    )
}

/// [`converged`] with this `GET /cluster` answer and these `pg_authid` lines.
pub(super) fn converged_with(
    p: &Patroni,
    install_lines: &str,
    cluster: &str,
    stored: ExecOutput,
) -> MemoryTransport {
    let member = Member {
        name: "h1".into(),
        address: "10.213.7.11".into(),
        version: 15,
        family: Family::Debian,
    };
    let bins = p.install.binaries();
    let probe = format!(
        "confdir=yes\nversions=15 \npatroni_active=active\npatroni_enabled=enabled\n\
         dist_active=inactive\ndist_enabled=disabled\n{install_lines}==done\n"
    );
    let owned = |owner: &str, mode: &str, content: &str| {
        format!("regular file\t{owner}\t{owner}\t0\t0\t{mode}\nnolink\n{content}")
    };
    MemoryTransport::default()
        .answer("printf 'confdir=", output(0, &probe))
        .answer(
            "if [ -e /etc/systemd/system/patroni.service ]",
            output(
                0,
                &owned("root", "644", &unit(&bins.patroni, &p.config_file)),
            ),
        )
        .answer(
            "if [ -e /etc/patroni/config.yml ]",
            output(0, &owned("postgres", "600", &p.render(&member, false))),
        )
        .answer(
            "if [ -e /var/lib/pgdeploy/patroni.env ]",
            output(
                0,
                &owned("root", "644", &locator(&p.config_file, &bins.patronictl)),
            ),
        )
        .answer("8008/config", output(0, &p.dcs().to_string()))
        .answer("8008/cluster", output(0, cluster))
        .answer("FROM pg_authid", stored)
        // What apply may run on a converged host: pip again, the passwords' script on the
        // leader (it only reports its status), the validated config and the reload.
        .answer("/opt/patroni/bin/pip install", output(0, ""))
        .answer_exact("/bin/sh -s", output(0, ""))
        .answer("--validate-config", output(0, ""))
        .answer_exact("systemctl reload patroni", output(0, ""))
}

pub(super) const PIP_CONVERGED: &str = "patroni_version=patroni 4.1.5\nvenv=yes\n\
     pip_stamp=patroni[etcd3,psycopg3]==4.1.5\n==patroni-packages\napt\n\
     python3-venv\tinstall ok installed\t3.11.2-1+b1\n--candidates--\n==patroni-packages-end\n";

#[test]
fn a_converged_pip_host_plans_nothing_and_runs_no_extra_command() {
    let p = pip();
    let r = run(&p, debian12(), converged(&p, PIP_CONVERGED), false);
    assert!(!r.plan.is_changed(), "{:?}", summaries(&r.plan));
    // The probe (which also asks `patroni --version`), three file states, the REST API, the
    // roles' passwords.
    assert_eq!(r.plan_commands.len(), 7, "{:#?}", r.plan_commands);
    assert_eq!(
        r.plan_commands
            .iter()
            .filter(|c| c.contains("--version"))
            .count(),
        1
    );
}

#[test]
fn without_a_version_any_4x_is_kept() {
    let p = params(&format!(
        "install: {{method: pip, find_links: \"{FIND_LINKS}\"}}\n"
    ));
    let lines = PIP_CONVERGED.replace("4.1.5", "4.0.6");
    let r = run(&p, debian12(), converged(&p, &lines), false);
    assert!(!r.plan.is_changed(), "{:?}", summaries(&r.plan));
    let r = run(
        &p,
        debian12(),
        converged(&p, &PIP_CONVERGED.replace("4.1.5", "3.3.2")),
        false,
    );
    assert_eq!(
        summaries(&r.plan),
        [format!(
            "install Patroni (pip `patroni[etcd3,psycopg3]>=4,<5` into `/opt/patroni` from `{FIND_LINKS}`; `3.3.2` installed)"
        )]
    );
}

pub(super) const PACKAGE_CONVERGED: &str =
    "patroni_version=patroni 3.0.2\n==patroni-packages\napt\n\
     patroni\tinstall ok installed\t3.0.2-1\n--candidates--\n==patroni-packages-end\n";

#[test]
fn a_converged_package_host_plans_nothing() {
    let p = params("");
    let lines = "patroni_version=patroni 3.0.2\n==patroni-packages\napt\n\
                 patroni\tinstall ok installed\t3.0.2-1\n--candidates--\n==patroni-packages-end\n";
    let r = run(&p, debian12(), converged(&p, lines), false);
    assert!(!r.plan.is_changed(), "{:?}", summaries(&r.plan));
    assert_eq!(r.plan_commands.len(), 7, "{:#?}", r.plan_commands);
}

#[test]
fn a_wrong_version_is_reinstalled_in_the_existing_venv() {
    let p = pip();
    let lines = PIP_CONVERGED.replace("4.1.5", "4.0.6");
    let r = run(&p, debian12(), converged(&p, &lines), true);
    assert_eq!(r.error, None);
    assert_eq!(
        summaries(&r.plan),
        [format!(
            "install Patroni (pip `patroni[etcd3,psycopg3]==4.1.5` into `/opt/patroni` from `{FIND_LINKS}`; `4.0.6` installed)"
        )]
    );
    assert_eq!(r.apply_commands.len(), 1, "{:#?}", r.apply_commands);
    assert!(r.apply_commands[0].contains("'patroni[etcd3,psycopg3]==4.1.5'"));
    // No stamp (an interrupted run): installed again, whatever the version says.
    let lines = PIP_CONVERGED.replace("pip_stamp=patroni[etcd3,psycopg3]==4.1.5", "pip_stamp=");
    let r = run(&p, debian12(), converged(&p, &lines), false);
    assert!(r.plan.is_changed());
}

#[test]
fn a_failed_pip_run_names_the_host_and_the_source() {
    // The fake answers the first matching rule: put the failing one first.
    let fake = MemoryTransport::default()
        .answer(
            "bin/pip install",
            ExecOutput {
                status: 1,
                stdout: Vec::new(),
                stderr: b"ERROR: Could not find a version that satisfies the requirement patroni==4.1.5 (from versions: 4.0.6)\n\
                          ERROR: No matching distribution found for patroni==4.1.5\n"
                    .to_vec(),
            },
        )
        .answer("printf 'confdir=", output(0, &fresh_probe(Family::Debian, 15, true)))
        .answer("if [ -e /", output(0, "missing\nnolink\n"));
    let r = run(&pip(), debian12(), installs(fake), true);
    let e = r.error.expect("an error");
    assert!(
        e.starts_with(&format!(
            "cannot install Patroni on `h1` from `{FIND_LINKS}`: pip exited with status 1: "
        )),
        "{e}"
    );
    assert!(
        e.contains("No matching distribution found for patroni==4.1.5"),
        "{e}"
    );
    // Nothing after the failed install ran: no config, no unit, no start.
    let last = r.apply_commands.last().expect("commands");
    assert!(last.contains("bin/pip install"), "{:#?}", r.apply_commands);
    assert!(r.written.is_empty());
}

#[test]
fn method_none_needs_its_executable() {
    let p = params("install: {method: none}\n");
    let probe = fresh_probe(Family::Debian, 15, false)
        .replace(
            "==patroni-packages\napt\n--candidates--\n==patroni-packages-end\n",
            "",
        )
        .replace("patroni_version=\n", "patroni_version=\nexecutable=\n");
    let h = Harness::new(transport(&probe), debian12());
    let e = block_on(p.plan(&h.cx()))
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("`/usr/local/bin/patroni` is not an executable on `h1`"),
        "{e}"
    );
    let r = run(
        &p,
        debian12(),
        transport(&probe.replace("executable=\n", "executable=yes\n")),
        true,
    );
    assert_eq!(r.error, None);
    assert!(!summaries(&r.plan).iter().any(|s| s.contains("install")));
    let unit =
        String::from_utf8_lossy(&r.written["/etc/systemd/system/patroni.service"]).into_owned();
    assert!(unit.contains("ExecStart=/usr/local/bin/patroni /etc/patroni/config.yml"));
    let loc = String::from_utf8_lossy(&r.written["/var/lib/pgdeploy/patroni.env"]).into_owned();
    assert!(loc.contains("PATRONICTL=/usr/local/bin/patronictl\n"));
}

#[test]
fn no_postgresql_says_where_it_looked_and_what_to_install() {
    for (facts, family, looked, package) in [
        (
            debian12(),
            Family::Debian,
            "/usr/lib/postgresql",
            "postgresql-N",
        ),
        (
            rocky9(),
            Family::RedHat,
            "/usr/pgsql-*",
            "postgresqlN-server",
        ),
    ] {
        let probe = fresh_probe(family, 15, false).replace("versions=15 ", "versions=");
        let h = Harness::new(transport(&probe), facts);
        let e = block_on(params("").plan(&h.cx()))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!("no PostgreSQL under `{looked}` on `h1`: install the server package first (`{package}`)")
        );
    }
    // A version asked for but not installed: a note at plan (a dry run on a bare host plans
    // before the packages task), an error at apply if it is still missing.
    let p = params("postgresql: {version: 16}\n");
    let problem =
        "PostgreSQL 16 is not installed on `h1` (under `/usr/pgsql-*`: `15`): install `postgresql16-server`";
    let h = Harness::new(
        transport(&fresh_probe(Family::RedHat, 15, false)).answer("test -x", output(1, "")),
        rocky9(),
    );
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert!(
        plan.notes.iter().any(|n| n.starts_with(problem)),
        "{:?}",
        plan.notes
    );
    let e = block_on(p.apply(&h.cx(), &plan)).unwrap_err().to_string();
    assert_eq!(e, problem);
    assert!(h.transport.written().is_empty());
}

#[test]
fn old_patroni_passes_validation_when_only_ports_are_in_use() {
    let old =
        install::validate_command("/usr/bin/patroni", Some(&install::Version::parse("3.0.2")));
    assert!(!old.contains("--ignore-listen-port"), "{old}");
    let new =
        install::validate_command("/usr/bin/patroni", Some(&install::Version::parse("4.0.0")));
    assert_eq!(
        new,
        "/usr/bin/patroni --validate-config --ignore-listen-port %s"
    );
    // The shell logic, with a stand-in for Patroni 3 (`$1`: what it prints, `$2`: its status).
    let script = |says: &str, status: i32| {
        let fake = format!("f() {{ printf '{says}' >&2; return {status}; }}; ");
        fake + &old.replace("/usr/bin/patroni --validate-config %s", "f")
    };
    let sh = |s: String| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(s)
            .status()
            .expect("sh")
            .code()
    };
    let in_use =
        "restapi.listen 0.0.0.0:8008 didn\\047t pass validation: Port 8008 is already in use.\\n";
    assert_eq!(sh(script("", 0)), Some(0));
    assert_eq!(sh(script(in_use, 1)), Some(0));
    assert_eq!(
        sh(script(
            &format!(
                "{in_use}postgresql.bin_dir /x didn\\047t pass validation: is not a directory\\n"
            ),
            1
        )),
        Some(1)
    );
    assert_eq!(sh(script("", 1)), Some(1));
}

#[test]
fn install_checks_refuse_fields_of_another_method() {
    let yaml = format!("{BASE}install: {{method: package, venv: /opt/p, version: \"x y\"}}\n");
    let file = SourceFile::new("playbook.yml");
    let node = load_str(&yaml, &file).expect("YAML");
    let p: Patroni = from_node(&node, &FieldPath::root().key("patroni")).expect("parameters");
    let problems: Vec<String> = p.check().into_iter().map(|p| p.message).collect();
    assert!(
        problems.contains(&"`venv` is only for `method: pip`".to_string()),
        "{problems:?}"
    );
    assert!(problems.contains(&"`version`: `x y` is not a version (such as `4.1.5`)".to_string()));
    let node = load_str(&format!("{BASE}install: {{methd: pip}}\n"), &file).expect("YAML");
    assert!(from_node::<Patroni>(&node, &FieldPath::root().key("patroni")).is_err());
}

#[test]
fn the_version_is_read_from_version_py_without_starting_python() {
    let dir = tempfile::tempdir().unwrap();
    let venv = dir.path().join("venv");
    let site = venv.join("lib/python3.11/site-packages/patroni");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(
        site.join("version.py"),
        "\"\"\"doc\"\"\"\n__version__ = '4.1.5'\n",
    )
    .unwrap();
    // a `patroni` that would say otherwise if it were run
    let bin = venv.join("bin/patroni");
    std::fs::write(&bin, "#!/bin/sh\necho patroni 9.9.9\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let install = |yaml: &str| -> Install { serde_yaml_ng::from_str(yaml).unwrap() };
    let i = install(&format!("method: pip\nvenv: {}\n", venv.display()));
    let run = |script: String| {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(i.probe_script(Family::RedHat));
    assert!(out.contains("patroni_version=patroni 4.1.5\n"), "{out}");
    // no version.py where the method puts it: the binary is asked
    std::fs::remove_file(site.join("version.py")).unwrap();
    let out = run(i.probe_script(Family::RedHat));
    assert!(out.contains("patroni_version=patroni 9.9.9\n"), "{out}");
    // no binary: no version
    std::fs::remove_file(&bin).unwrap();
    let out = run(i.probe_script(Family::RedHat));
    assert!(out.contains("patroni_version=\n"), "{out}");
}

/// On a converged host plan reads the declared probe script and files; the REST API's
/// answers and the stored passwords are cluster state, never declared.
#[test]
fn probes_cover_plan() {
    use crate::common::probe_cover::assert_probes_cover_except;
    let p = pip();
    let h = Harness::new(converged(&p, PIP_CONVERGED), debian12());
    assert_probes_cover_except(
        &p,
        &h.cx(),
        &["8008/config", "8008/cluster", "FROM pg_authid"],
    );
}
