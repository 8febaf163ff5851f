use super::*;
use crate::common::fake::*;

const PASSWORD: &str = "it's a \"pw\" \\ x";

fn exporter(yaml: &str) -> PostgresExporter {
    serde_yaml_ng::from_str(yaml).unwrap()
}

/// A host with the exporter's package installed and nothing of pgdeploy's: no files, no unit
/// yet, PostgreSQL answering `psql` with `psql`.
fn bare(psql: &str) -> MemoryTransport {
    installed(MemoryTransport::default())
        .answer(
            "is-active",
            output(0, "active=inactive\nenabled=\nLoadState=not-found\n"),
        )
        .answer("runuser -u postgres", output(0, psql))
        // apply: the unit started, then its `/metrics` says `pg_up 1`
        .answer_exact("systemctl daemon-reload", output(0, ""))
        .answer(
            "systemctl enable -- pgdeploy-postgres-exporter@main.service && systemctl start",
            output(0, ""),
        )
        .answer(":9187/metrics", output(0, ""))
}

/// `fake` answering the package's binary, the missing files, and apply's directories.
fn installed(fake: MemoryTransport) -> MemoryTransport {
    fake.answer_exact(
        "test -x /usr/bin/prometheus-postgres-exporter",
        output(0, ""),
    )
    .answer("if [ -e", output(0, "missing\nnolink\n"))
    .answer(
        "install -d -o root -g prometheus -m 0750 -- /etc/prometheus-postgres-exporter",
        output(0, ""),
    )
    .answer_exact("mkdir -p -- /var/lib/pgdeploy", output(0, ""))
}

fn plan_and_apply(e: &PostgresExporter, t: MemoryTransport) -> (Plan, Harness) {
    let h = Harness::new(t, Default::default());
    let plan = block_on(e.plan(&h.cx())).unwrap();
    block_on(e.apply(&h.cx(), &plan)).unwrap();
    (plan, h)
}

fn summaries(p: &Plan) -> Vec<String> {
    p.changes.iter().map(|c| c.summary.clone()).collect()
}

#[test]
fn on_the_leader_a_bare_host_gets_files_role_grant_and_a_started_unit() {
    let e = exporter(&format!(
        "{{password: {}, listen_address: 10.0.0.1}}",
        serde_json::to_string(PASSWORD).unwrap()
    ));
    let (plan, h) = plan_and_apply(&e, bare("f\n==role\n==member\n0\n"));
    let s = summaries(&plan);
    assert!(
        s.iter()
            .any(|c| c.starts_with("create `/etc/prometheus-postgres-exporter/main.password`")),
        "{s:?}"
    );
    assert!(s.contains(&"create role `prometheus`".to_string()), "{s:?}");
    assert!(
        s.contains(&"grant `pg_monitor` to `prometheus`".to_string()),
        "{s:?}"
    );
    assert!(
        s.iter()
            .any(|c| c.starts_with("start `pgdeploy-postgres-exporter@main.service`")),
        "{s:?}"
    );
    // the password is in no change, and its file has no diff
    let shown = format!("{:?}", plan.changes);
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("a \\\"pw"),
        "{shown}"
    );
    let written = h.transport.written();
    let (bytes, attrs) = &written["/etc/prometheus-postgres-exporter/main.password"];
    assert_eq!(bytes, PASSWORD.as_bytes());
    assert_eq!(
        (attrs.owner.as_deref(), attrs.mode),
        (Some("prometheus"), Some(0o600))
    );
    let env = String::from_utf8(
        written["/etc/prometheus-postgres-exporter/main.env"]
            .0
            .clone(),
    )
    .unwrap();
    assert!(!env.contains("pw"), "{env}");
    assert!(
        env.contains("DATA_SOURCE_URI=127.0.0.1:5432/postgres?sslmode=require\n"),
        "{env}"
    );
    assert!(
        env.contains("PG_EXPORTER_WEB_LISTEN_ADDRESS=10.0.0.1:9187\n"),
        "{env}"
    );
    let loc = String::from_utf8(
        written["/var/lib/pgdeploy/postgres_exporter-main.env"]
            .0
            .clone(),
    )
    .unwrap();
    assert!(
        loc.contains("EXPORTER_URL=http://10.0.0.1:9187/metrics\n"),
        "{loc}"
    );
    let cmds = h.transport.commands().join("\n");
    assert!(cmds.contains("systemctl daemon-reload"), "{cmds}");
    assert!(cmds.contains("grep -q '^pg_up 1$'"), "{cmds}");
    assert!(!cmds.contains(PASSWORD), "{cmds}");
}

#[test]
fn a_replica_makes_no_role() {
    let e = exporter("{password: secret-pw}");
    let (plan, _) = plan_and_apply(&e, bare("t\n==role\n==member\n0\n"));
    let s = summaries(&plan);
    assert!(
        !s.iter().any(|c| c.contains("role") || c.contains("grant")),
        "{s:?}"
    );
    assert!(matches!(
        plan.work::<Work>().unwrap().role,
        RoleWork::Nothing
    ));
}

#[test]
fn postgres_down_at_plan_is_a_note_and_read_again_at_apply() {
    let e = exporter("{password: secret-pw}");
    let t = installed(MemoryTransport::default())
        .answer(
            "is-active",
            output(0, "active=inactive\nenabled=\nLoadState=not-found\n"),
        )
        .answer("runuser -u postgres", output(2, ""));
    let h = Harness::new(t, Default::default());
    let plan = block_on(e.plan(&h.cx())).unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("PostgreSQL does not answer")),
        "{:?}",
        plan.notes
    );
    let err = block_on(e.apply(&h.cx(), &plan)).unwrap_err().to_string();
    // read again at apply, and still down: the read's own error, not a later step's
    assert!(err.contains("failed with exit status 2"), "{err}");
}

#[test]
fn reads_are_parsed() {
    let r = parse_read("f\n==role\nt|f|f|t|f|t|SCRAM\n==member\n1\n").unwrap();
    assert!(!r.in_recovery && r.member_of_monitor);
    assert_eq!(r.role, "t|f|f|t|f|t|SCRAM\n");
    assert!(parse_read("f\n").is_err());
}

#[test]
fn a_converged_role_plans_nothing() {
    let e = exporter("{password: secret-pw}");
    let v = crate::postgresql_role::password::verifier("secret-pw").unwrap();
    let read = parse_read(&format!("f\n==role\nf|f|f|t|f|t|{v}\n==member\n1\n")).unwrap();
    let (changes, work) = e.decide_role(&read).unwrap();
    assert!(changes.is_empty() && matches!(work, RoleWork::Nothing));
    let read = parse_read(&format!("f\n==role\nf|f|f|t|f|t|{v}\n==member\n0\n")).unwrap();
    let (changes, _) = e.decide_role(&read).unwrap();
    assert_eq!(changes[0].summary, "grant `pg_monitor` to `prometheus`");
}

#[test]
fn bad_parameters_are_refused() {
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("."),
        inventory: None,
    };
    let fields = |yaml: &str| -> Vec<&'static str> {
        exporter(yaml)
            .check(&cx)
            .into_iter()
            .filter_map(|p| p.field)
            .collect()
    };
    assert!(fields("{password: ok-pass}").is_empty());
    assert_eq!(fields("{password: ' padded'}"), ["password"]);
    assert_eq!(fields("{password: ok-pass, name: 'a b'}"), ["name"]);
    assert_eq!(fields("{password: ok-pass, user: \"x'y\"}"), ["user"]);
    assert_eq!(fields("{password: ok-pass, sslmode: maybe}"), ["sslmode"]);
    assert_eq!(
        fields("{password: ok-pass, listen_address: 'a b'}"),
        ["listen_address"]
    );
}

#[test]
fn a_multi_line_password_is_written_as_is_and_shown_nowhere() {
    let pw = "li'ne\\one\nline\"two";
    let e = exporter(&format!(
        "{{password: {}}}",
        serde_json::to_string(pw).unwrap()
    ));
    let (plan, h) = plan_and_apply(&e, bare("f\n==role\n==member\n1\n"));
    let shown = format!("{:?} {:?}", plan.changes, plan.notes);
    assert!(
        !shown.contains("line\\\"two") && !shown.contains("li'ne"),
        "{shown}"
    );
    let written = h.transport.written();
    assert_eq!(
        written["/etc/prometheus-postgres-exporter/main.password"].0,
        pw.as_bytes()
    );
    assert!(!h.transport.commands().iter().any(|c| c.contains("line")));
}
