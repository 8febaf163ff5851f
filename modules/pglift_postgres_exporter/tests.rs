use super::*;
use crate::common::fake::{block_on, output, Harness};
use pgdeploy_core::diag::SourceFile;
use pgdeploy_core::template::Facts;
use pgdeploy_core::yaml::load_str;
use pgdeploy_test_support::memory::MemoryTransport;

fn parse(yaml: &str) -> Result<PgliftExporter, Vec<String>> {
    let node = load_str(yaml, &SourceFile::new("playbook.yml")).expect("YAML");
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("."),
        inventory: None,
    };
    let path = FieldPath::root().key("dalibo.pglift.postgres_exporter");
    let parsed = ExporterModule("dalibo.pglift.postgres_exporter")
        .parse(&node, &path, &cx)
        .map_err(|e| e.into_iter().map(|e| e.message).collect::<Vec<_>>())?;
    assert!(format!("{:?}", parsed.action).contains("PgliftExporter"));
    // the same parameters as the struct the pure tests use
    let m = SPEC.1.read(&node, &path).unwrap();
    Ok(PgliftExporter {
        executable: DEFAULT_EXECUTABLE.into(),
        system_user: "postgres".into(),
        name: m["name"].as_str().unwrap().into(),
        dsn: m["dsn"].as_str().unwrap().into(),
        password: m
            .get("password")
            .and_then(Value::as_str)
            .map(str::to_string),
        port: m["port"].as_u64().unwrap() as u16,
        state: match m.get("state").and_then(Value::as_str) {
            Some("stopped") => Run::Stopped,
            Some("absent") => Run::Absent,
            _ => Run::Started,
        },
    })
}

const EXAMPLE: &str = "{name: 12-main@dbserver1, dsn: 'host=dbserver1.example.com port=5454 dbname=postgres user=monitoring', port: 9187}";

fn dsn(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What `read.py` prints for a service that is there as `EXAMPLE` asks (running).
fn there() -> Read {
    let d = dsn(&[
        ("dbname", "postgres"),
        ("host", "dbserver1.example.com"),
        ("port", "5454"),
        ("user", "monitoring"),
    ]);
    Read {
        enabled: true,
        configpath: "/pgdata/pglift/etc/prometheus/postgres_exporter-12-main@dbserver1.conf".into(),
        want_dsn: Some(d.clone()),
        exists: true,
        port: Some(9187),
        dsn: d,
        same_password: true,
        same_config: true,
        running: true,
        ..Read::default()
    }
}

#[test]
fn the_generated_spec_is_pglifts_and_the_collections_example_reads() {
    assert_eq!(SPEC.0, "3.3.0");
    for f in ["name", "dsn", "password", "port", "state", "executable"] {
        assert!(SPEC.1.get(f).is_some(), "{f}");
    }
    assert!(SPEC.1.get("password").unwrap().no_log);
    let e = parse(EXAMPLE).unwrap();
    assert_eq!(e.name, "12-main@dbserver1");
    assert_eq!(e.port, 9187);
    assert_eq!(e.state, Run::Started);
}

#[test]
fn bad_parameters_are_refused_with_their_field() {
    let errs = parse("{name: a/b, dsn: 'host=x password=y', port: 0, state: gone}").unwrap_err();
    let all = errs.join("\n");
    assert!(all.contains("`gone`"), "{all}");
    let errs = parse("{name: a/b, dsn: 'host=x password=y', port: 0}").unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].contains("`a/b` is not a service name"), "{errs:?}");
    assert!(
        errs[1].contains("give the password as `password`"),
        "{errs:?}"
    );
    assert!(errs[2].contains("`0` is not a TCP port"), "{errs:?}");
    let errs = parse("{name: x, dsn: host=y, port: 9187, password: 'a b'}").unwrap_err();
    assert!(errs[0].contains("blank"), "{errs:?}");
    let errs = parse("{name: x, dsn: host=y, port: 9187, passwrd: s}").unwrap_err();
    assert!(errs[0].contains("passwrd"), "{errs:?}");
}

#[test]
fn the_password_as_pglift_quotes_it_is_a_secret_too() {
    assert_eq!(uri_quoted("se'cr\\et/~"), "se%27cr%5Cet/~");
    parse("{name: x, dsn: host=y, port: 9187, password: \"q'u\\\\o\\\"te\"}").unwrap();
    assert!(pgdeploy_core::secrets::recorded()
        .iter()
        .any(|s| s.as_str() == "q%27u%5Co%22te"));
}

#[test]
fn converged_is_unchanged_and_each_difference_is_shown() {
    let e = parse(EXAMPLE).unwrap();
    assert!(!e.decide(&there(), "pg1").unwrap().is_changed());

    let mut r = there();
    r.running = false;
    let p = e.decide(&r, "pg1").unwrap();
    assert_eq!(
        p.changes[0].summary,
        "postgres_exporter `12-main@dbserver1`: start it and wait for `pg_up 1`"
    );

    let e = parse(
        "{name: 12-main@dbserver1, dsn: 'host=dbserver1.example.com port=5454 dbname=postgres user=monitoring', port: 9188, password: s3cret}",
    )
    .unwrap();
    let mut r = there();
    r.same_config = false;
    r.same_password = false;
    r.has_password = true;
    let p = e.decide(&r, "pg1").unwrap();
    assert_eq!(
        p.changes[0].summary,
        "postgres_exporter `12-main@dbserver1`: reconfigure (restarted): port 9187 → 9188, password"
    );
    let diff = p.changes[0].diff.as_ref().unwrap().unified();
    assert!(
        diff.contains("-port: 9187") && diff.contains("+port: 9188"),
        "{diff}"
    );
    assert!(diff.contains("+password: ******** (changed)"), "{diff}");
    assert!(!diff.contains("s3cret"), "{diff}");
}

#[test]
fn new_and_dropped_services() {
    let e = parse(EXAMPLE).unwrap();
    let r = Read {
        exists: false,
        ..there()
    };
    let p = e.decide(&r, "pg1").unwrap();
    assert!(
        p.changes[0]
            .summary
            .starts_with("create postgres_exporter `12-main@dbserver1` (port 9187, `/pgdata/"),
        "{}",
        p.changes[0].summary
    );
    let gone = parse(&EXAMPLE.replace("}", ", state: absent}")).unwrap();
    assert!(!gone.decide(&r, "pg1").unwrap().is_changed());
    let p = gone.decide(&there(), "pg1").unwrap();
    assert_eq!(
        p.changes[0].summary,
        "drop postgres_exporter `12-main@dbserver1`"
    );
    assert_eq!(gone.manifest()["state"], "absent");
}

#[test]
fn without_the_site_setting_or_for_a_local_instance_the_plan_says_why() {
    let e = parse(EXAMPLE).unwrap();
    let err = e
        .decide(
            &Read {
                enabled: false,
                ..there()
            },
            "pg1",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("have no `prometheus`"), "{err}");
    let err = e
        .decide(
            &Read {
                local_instance: true,
                ..there()
            },
            "pg1",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a pglift instance on `pg1`"), "{err}");
    let err = e
        .decide(
            &Read {
                want_dsn: None,
                ..there()
            },
            "pg1",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a connection string"), "{err}");
}

#[test]
fn plan_reads_with_pglifts_python_and_apply_waits_for_pg_up() {
    let mut r = serde_json::to_value(there_json()).unwrap();
    r["running"] = json!(false);
    let transport = MemoryTransport::new("h1")
        .answer("/opt/pglift/bin/python", output(0, &format!("{r}\n")))
        .answer("postgres_exporter apply -f - -o json", output(0, "{}"))
        .answer(
            "curl -sS --max-time 5 http://127.0.0.1:9187/metrics",
            output(0, "pg_up 1\n"),
        );
    let h = Harness::new(transport, Facts::default());
    let e = parse(&EXAMPLE.replace("}", ", password: \"p'w\"}")).unwrap();
    let plan = block_on(e.plan(&h.cx())).unwrap();
    assert!(plan.is_changed());
    block_on(e.apply(&h.cx(), &plan)).unwrap();
    let reqs = h.transport.requests();
    // the password travels on stdin only, never on a command line
    assert!(reqs.iter().all(|q| !q.command.contains("p'w")));
    let read: Value = serde_json::from_slice(reqs[0].stdin.as_ref().unwrap()).unwrap();
    assert_eq!(read["password"], "p'w");
    let apply = reqs
        .iter()
        .find(|q| q.command.contains("postgres_exporter apply"))
        .unwrap();
    let manifest: Value = serde_json::from_slice(apply.stdin.as_ref().unwrap()).unwrap();
    assert_eq!(
        manifest,
        json!({"name": "12-main@dbserver1", "dsn": "host=dbserver1.example.com port=5454 dbname=postgres user=monitoring", "password": "p'w", "port": 9187, "state": "started"})
    );
}

#[test]
fn an_exporter_that_cannot_connect_fails_the_apply_clearly() {
    let transport = MemoryTransport::new("h1").answer("curl -sS", output(0, "pg_up 0\n"));
    let h = Harness::new(transport, Facts::default());
    let e = parse(EXAMPLE).unwrap();
    let err = block_on(e.wait_ready(&h.cx(), Duration::from_millis(10)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`pg_up 0`: it cannot connect"), "{err}");
    let transport = MemoryTransport::new("h1").answer("curl -sS", output(0, ""));
    let h = Harness::new(transport, Facts::default());
    let err = block_on(e.wait_ready(&h.cx(), Duration::from_millis(10)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing answers"), "{err}");
}

#[test]
fn without_pglift_the_decision_waits_for_apply() {
    let transport =
        MemoryTransport::new("h1").answer("/opt/pglift/bin/python", output(0, "==missing\n"));
    let h = Harness::new(transport, Facts::default());
    let plan = block_on(parse(EXAMPLE).unwrap().plan(&h.cx())).unwrap();
    assert_eq!(plan.work::<Work>(), Some(&Work::Later));
}

/// [`there`] as `read.py` prints it.
fn there_json() -> Value {
    json!({"enabled": true, "local_instance": false,
        "configpath": "/pgdata/pglift/etc/prometheus/postgres_exporter-12-main@dbserver1.conf",
        "want_dsn": {"dbname": "postgres", "host": "dbserver1.example.com", "port": "5454", "user": "monitoring"},
        "exists": true, "port": 9187,
        "dsn": {"dbname": "postgres", "host": "dbserver1.example.com", "port": "5454", "user": "monitoring"},
        "has_password": true, "same_password": false, "same_config": false, "running": false})
}
