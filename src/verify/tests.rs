//! The checks judged on text as the hosts print it (each probe's output as read on the lab),
//! and every probe's shell syntax.

use super::*;
use pgdeploy_core::exit::Exit;

const LIST: &str = r#"[{"Cluster": "pgcluster", "Member": "pg1", "Host": "10.213.47.11", "Role": "Leader", "State": "running", "TL": 1},
{"Cluster": "pgcluster", "Member": "pg2", "Host": "10.213.47.12", "Role": "Sync Standby", "State": "streaming", "TL": 1, "Lag in MB": 0},
{"Cluster": "pgcluster", "Member": "pg3", "Host": "10.213.47.13", "Role": "Replica", "State": "streaming", "TL": 1, "Lag in MB": 0}]
==config
loop_wait: 10
synchronous_mode: true
"#;

const ETCD: &str = r#"[{"endpoint":"https://10.213.47.11:2379","health":true},{"endpoint":"https://10.213.47.12:2379","health":true},{"endpoint":"https://10.213.47.13:2379","health":true}]"#;

const NOW: i64 = 1_764_633_600;

fn certs(days: i64) -> String {
    format!(
        "cert\t/etc/patroni/pki/ca.crt\t{}\ncert\t/etc/patroni/pki/pg1.crt\t{}\nnow\t{NOW}\n",
        NOW + 3650 * 86_400,
        NOW + days * 86_400 + 10
    )
}

const HBA: &str = "address=10.213.47.11:5432\nplain_lines=0\n==attempt\npsql: error: connection to server at \"10.213.47.11\", port 5432 failed: FATAL:  no pg_hba.conf entry for host \"10.213.47.11\", user \"postgres\", database \"postgres\", no encryption\n";

const VIP_LB1: &str = "==vip\nVIP=10.213.47.100\n\n==addresses\n2: host0    inet 10.213.47.21/24 brd 10.213.47.255 scope global host0\n2: host0    inet 10.213.47.100/24 scope global secondary host0\n==end-addresses\ntcp=open\n";

fn stats(writer: &str) -> String {
    let mut s = "config=/etc/haproxy/haproxy.cfg\nstats=http://127.0.0.1:7000/\n# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n".to_string();
    for (px, up) in [("postgres_writer", writer), ("postgres_readers", "pg2 pg3")] {
        s.push_str(&format!("{px},FRONTEND,,,0,0,0,0,0,0,0,0,0,,,,,OPEN,\n"));
        for m in ["pg1", "pg2", "pg3"] {
            let st = if up.split(' ').any(|u| u == m) {
                "UP"
            } else {
                "DOWN"
            };
            s.push_str(&format!("{px},{m},0,0,0,0,,0,0,0,,0,,0,0,0,0,{st},1\n"));
        }
    }
    s
}

fn host(name: &str, member: bool, outputs: &[(&str, String)]) -> HostRead {
    HostRead {
        name: name.into(),
        address: None,
        member,
        balancer: !member,
        outputs: outputs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn healthy() -> Gathered {
    let mut hosts: Vec<HostRead> = ["pg1", "pg2", "pg3"]
        .iter()
        .map(|n| {
            host(
                n,
                true,
                &[
                    ("etcd", ETCD.to_string()),
                    ("certificates", certs(3650).replace("pg1", n)),
                    ("pg_hba", HBA.replace("47.11", &format!("47.1{}", &n[2..]))),
                    (
                        "postgres_exporter",
                        format!(
                            "exporter\tmain\thttp://10.213.47.1{}:9187/metrics\t1\n",
                            &n[2..]
                        ),
                    ),
                ],
            )
        })
        .collect();
    let vip_lb2 = VIP_LB1
        .replace("inet 10.213.47.100/24", "inet6 x")
        .replace(".21/", ".22/");
    for (n, vip) in [("lb1", VIP_LB1.to_string()), ("lb2", vip_lb2)] {
        hosts.push(host(
            n,
            false,
            &[
                ("vip", vip),
                ("haproxy", stats("pg1")),
                (
                    "certificates",
                    format!(
                        "cert\t/etc/haproxy/pki/ca.crt\t{}\nnow\t{NOW}\n",
                        NOW + 3650 * 86_400
                    ),
                ),
            ],
        ));
    }
    Gathered {
        state: Some(pgdeploy_modules::patroni_state::parse("pg1", LIST).unwrap()),
        state_error: None,
        hosts,
        unreachable: Vec::new(),
    }
}

fn failed(f: &[Finding]) -> Vec<String> {
    f.iter()
        .filter(|f| f.outcome != Outcome::Pass)
        .map(|f| format!("{} {:?} {}: {}", f.check, f.outcome, f.subject, f.message))
        .collect()
}

#[test]
fn a_healthy_cluster_passes_every_check() {
    let g = healthy();
    let f = evaluate(&g, &Options::default());
    assert_eq!(failed(&f), Vec::<String>::new());
    assert_eq!(exit(&g, &f), Exit::Success);
    for k in KINDS {
        assert!(f.iter().any(|x| x.check == k.name), "{} listed", k.name);
    }
    insta::assert_snapshot!(report::to_text(&f));
}

#[test]
fn a_member_whose_patroni_stopped_is_named() {
    let mut g = healthy();
    let list = LIST.replace(
        ",\n{\"Cluster\": \"pgcluster\", \"Member\": \"pg3\", \"Host\": \"10.213.47.13\", \"Role\": \"Replica\", \"State\": \"streaming\", \"TL\": 1, \"Lag in MB\": 0}",
        "",
    );
    g.state = Some(pgdeploy_modules::patroni_state::parse("pg1", &list).unwrap());
    let f = evaluate(&g, &Options::default());
    assert_eq!(
        failed(&f),
        ["members Fail pg3: not a member of the cluster (is Patroni running? `systemctl status patroni`)"]
    );
    assert_eq!(exit(&g, &f), Exit::Changes);
}

#[test]
fn replication_lag_sync_standby_and_timelines() {
    let mut g = healthy();
    let list = LIST
        .replace("\"Role\": \"Sync Standby\"", "\"Role\": \"Replica\"")
        .replace(
            "\"TL\": 1, \"Lag in MB\": 0}]",
            "\"TL\": 1, \"Lag in MB\": 40}]",
        )
        .replace(
            "\"State\": \"streaming\", \"TL\": 1, \"Lag in MB\": 0},",
            "\"State\": \"stopped\", \"TL\": 1, \"Lag in MB\": 0},",
        );
    g.state = Some(pgdeploy_modules::patroni_state::parse("pg1", &list).unwrap());
    let f: Vec<String> = failed(&evaluate(&g, &Options::default()))
        .into_iter()
        .filter(|l| l.starts_with("replication") || l.starts_with("members"))
        .collect();
    assert_eq!(
        f,
        [
            "members Fail pg2: Replica `stopped`: PostgreSQL does not run",
            "replication Fail pg2: `stopped`, not streaming, lag 0 MB",
            "replication Warn pg3: streaming, lag 40 MB: over the limit of 16 MB",
            "replication Fail pgcluster: synchronous mode without a synchronous standby: commits wait or are not synchronous",
        ]
    );
}

#[test]
fn etcd_endpoints_and_quorum() {
    let mut g = healthy();
    // as etcdctl prints it with one endpoint down: its warning and error on stderr, merged
    let one_down = ETCD.replacen(
        "\"health\":true}",
        "\"health\":false,\"error\":\"context deadline exceeded\"}",
        1,
    ) + "\n{\"level\":\"warn\",\"msg\":\"retrying of unary invoker failed\"}\nError: unhealthy cluster\n";
    for h in g.hosts.iter_mut().filter(|h| h.member) {
        h.outputs.insert("etcd".into(), one_down.clone());
        h.address = Some(format!("10.213.47.1{}", &h.name[2..]));
    }
    let f = failed(&evaluate(&g, &Options::default()));
    assert_eq!(
        f,
        ["etcd Fail https://10.213.47.11:2379: unhealthy (member `pg1`): context deadline exceeded (read on `pg1`)"]
    );
    let all = evaluate(&g, &Options::default());
    assert!(
        all.iter()
            .any(|f| f.subject == "quorum" && f.message == "2 of 3 members healthy: quorum"),
        "{all:?}"
    );
    let two_down = one_down.replacen("\"health\":true}", "\"health\":false}", 1);
    for h in g.hosts.iter_mut().filter(|h| h.member) {
        h.outputs.insert("etcd".into(), two_down.clone());
    }
    let f = failed(&evaluate(&g, &Options::default()));
    assert!(
        f.contains(&"etcd Fail quorum: 1 of 3 members healthy: NO quorum".to_string()),
        "{f:?}"
    );
}

#[test]
fn the_vip_on_no_host_or_not_answering() {
    let mut g = healthy();
    let lb1 = g.hosts.iter_mut().find(|h| h.name == "lb1").unwrap();
    lb1.outputs
        .insert("vip".into(), VIP_LB1.replace("tcp=open", "tcp=closed"));
    assert_eq!(
        failed(&evaluate(&g, &Options::default())),
        ["vip Fail 10.213.47.100:5432: does not answer (from `lb1`)"]
    );
    let lb1 = g.hosts.iter_mut().find(|h| h.name == "lb1").unwrap();
    lb1.outputs.insert(
        "vip".into(),
        VIP_LB1.replace("inet 10.213.47.100/24", "inet6 x"),
    );
    assert_eq!(
        failed(&evaluate(&g, &Options::default())),
        ["vip Fail 10.213.47.100: on no host"]
    );
}

#[test]
fn haproxy_backends_follow_the_leader() {
    let mut g = healthy();
    let lb2 = g.hosts.iter_mut().find(|h| h.name == "lb2").unwrap();
    lb2.outputs.insert("haproxy".into(), stats("pg1 pg2"));
    let lb1 = g.hosts.iter_mut().find(|h| h.name == "lb1").unwrap();
    lb1.outputs.insert(
        "haproxy".into(),
        "config=/etc/haproxy/haproxy.cfg\nstats=none\n".into(),
    );
    assert_eq!(
        failed(&evaluate(&g, &Options::default())),
        [
            "haproxy Fail lb1: `/etc/haproxy/haproxy.cfg` has no `listen stats` to read the backends from (the `haproxy` module's `stats:`)",
            "haproxy Fail lb2:postgres_writer: up: `pg1`, `pg2`; the leader: `pg1`",
        ]
    );
}

#[test]
fn certificates_warn_before_they_expire() {
    let mut g = healthy();
    let pg2 = g.hosts.iter_mut().find(|h| h.name == "pg2").unwrap();
    pg2.outputs
        .insert("certificates".into(), certs(12).replace("pg1", "pg2"));
    let pg3 = g.hosts.iter_mut().find(|h| h.name == "pg3").unwrap();
    pg3.outputs.insert(
        "certificates".into(),
        certs(-2).replace("pg1", "pg3") + "cert\t/etc/etcd/pki/gone.crt\tunreadable\n",
    );
    let f = evaluate(&g, &Options::default());
    assert_eq!(
        failed(&f),
        [
            "certificates Warn pg2:/etc/patroni/pki/pg2.crt: 12 days left (under 30)",
            "certificates Fail pg3:/etc/patroni/pki/pg3.crt: expired",
            "certificates Fail pg3:/etc/etcd/pki/gone.crt: unreadable (missing, or not a PEM certificate)",
        ]
    );
    assert_eq!(exit(&g, &f), Exit::Changes);
    let o = Options {
        cert_warn_days: 10,
        ..Options::default()
    };
    let pg3 = g.hosts.iter_mut().find(|h| h.name == "pg3").unwrap();
    pg3.outputs.insert("certificates".into(), certs(3650));
    let f = evaluate(&g, &o);
    assert_eq!(exit(&g, &f), Exit::Success, "{:?}", failed(&f));
}

#[test]
fn pg_hba_must_refuse_plain_connections() {
    let mut g = healthy();
    let pg1 = g.hosts.iter_mut().find(|h| h.name == "pg1").unwrap();
    pg1.outputs.insert(
        "pg_hba".into(),
        "address=10.213.47.11:5432\nplain_lines=0\n==attempt\npsql: error: connection to server at \"10.213.47.11\", port 5432 failed: fe_sendauth: no password supplied\n".into(),
    );
    let pg2 = g.hosts.iter_mut().find(|h| h.name == "pg2").unwrap();
    pg2.outputs.insert(
        "pg_hba".into(),
        "address=10.213.47.12:5432\nplain_lines=2\n==attempt\nfe_sendauth: no password supplied\n"
            .into(),
    );
    let f = evaluate(&g, &Options::default());
    assert_eq!(
        failed(&f),
        ["pg_hba Fail pg1: a plain connection to `10.213.47.11:5432` was not refused by pg_hba: psql: error: connection to server at \"10.213.47.11\", port 5432 failed: fe_sendauth: no password supplied"]
    );
    assert!(f.iter().any(|x| x.subject == "pg2"
        && x.outcome == Outcome::Pass
        && x.message == "TLS not required: `pg_hba.conf` has 2 `host` line(s)"));
}

#[test]
fn exporters_answer_with_pg_up_1_or_are_named() {
    let mut g = healthy();
    g.hosts[1].outputs.insert(
        "postgres_exporter".into(),
        "exporter\tmain\thttp://10.213.47.12:9187/metrics\t0\n".into(),
    );
    g.hosts[2]
        .outputs
        .insert("postgres_exporter".into(), String::new());
    let f = evaluate(&g, &Options::default());
    assert_eq!(
        failed(&f),
        [
            "postgres_exporter Fail pg2:main: `http://10.213.47.12:9187/metrics` answers with pg_up 0: the exporter cannot connect to PostgreSQL (see `journalctl -u pgdeploy-postgres-exporter@main`)",
            "postgres_exporter Fail pg3: no postgres_exporter here (2 other member(s) have one)",
        ]
    );
    // none answering at all
    g.hosts[1].outputs.insert(
        "postgres_exporter".into(),
        "exporter\tmain\thttp://10.213.47.12:9187/metrics\tnone\n".into(),
    );
    let f = evaluate(&g, &Options::default());
    assert!(
        failed(&f)[0].ends_with("does not answer with metrics"),
        "{:?}",
        failed(&f)
    );
    // a cluster without exporters: nothing to check
    for h in &mut g.hosts {
        h.outputs.remove("postgres_exporter");
    }
    let f = evaluate(&g, &Options::default());
    assert!(f
        .iter()
        .any(|x| x.check == "postgres_exporter" && x.outcome == Outcome::Skip));
}

#[test]
fn unreachable_hosts() {
    let mut g = healthy();
    g.hosts.retain(|h| h.name != "lb2");
    g.unreachable
        .push(("lb2".into(), "connection refused".into()));
    let f = evaluate(&g, &Options::default());
    assert_eq!(
        failed(&f),
        ["reach Fail lb2: unreachable: connection refused"]
    );
    assert_eq!(exit(&g, &f), Exit::Changes);
    let g = Gathered {
        state: None,
        state_error: Some("no member could be reached".into()),
        hosts: Vec::new(),
        unreachable: vec![("pg1".into(), "timeout".into())],
    };
    let f = evaluate(&g, &Options::default());
    assert_eq!(exit(&g, &f), Exit::Unreachable);
    assert!(f
        .iter()
        .any(|x| x.check == "members" && x.message == "not checked: no member could be reached"));
}

#[test]
fn a_hosts_command_holds_its_probes_and_is_shell() {
    let member = script(true, false);
    let balancer = script(false, true);
    for (k, on_member, on_balancer) in [
        ("etcd", true, false),
        ("vip", false, true),
        ("haproxy", false, true),
        ("certificates", true, true),
        ("pg_hba", true, false),
        ("postgres_exporter", true, false),
    ] {
        let mark = format!("{MARK}{k}'");
        assert_eq!(member.contains(&mark), on_member, "{k} on a member");
        assert_eq!(balancer.contains(&mark), on_balancer, "{k} on a balancer");
    }
    for s in [&member, &balancer] {
        let out = std::process::Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(s)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // run here: every probe ends, each output under its marker
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&member)
        .output()
        .unwrap();
    let read = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        read.keys().collect::<Vec<_>>(),
        ["certificates", "etcd", "pg_hba", "postgres_exporter"]
    );
    assert!(
        read["certificates"].starts_with("now\t"),
        "{}",
        read["certificates"]
    );
}
