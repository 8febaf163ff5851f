//! Seed 004's shape on a lab made by `lab up --nodes 3` (no balancers), with its inventory
//! unedited: `playbooks/site.yml` then `playbooks/vip-on-leader.yml` from bare hosts, with
//! Patroni from the distribution's `patroni` package (the other install method; `lab_site`
//! proves the pip venv). Before that, a broken package source on one host and a package
//! missing from the mirror on another fail those hosts only, with errors that name the URL
//! and the package, and the next run finishes the job.
//!
//! One lab, one cluster, checks in order (each builds on the previous ones).

#[path = "support/checks.rs"]
mod checks;
#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/lab.rs"]
mod lab_support;

use std::time::{Duration, Instant};

use checks::Checks;
use cluster::{
    apt_activity, assert_bare, changed, eventually, holder_of, inventory_var, members_on, pgdeploy,
    playbook, sql, sql_ok,
};
use lab_support::LabFixture;

const NAME: &str = "pgdsf";
const SUBNET: &str = "10.213.24.0/24";
const NODES: [&str; 3] = ["pg1", "pg2", "pg3"];

/// A playbook of the packages play alone, beside the inventory
const PACKAGES_ONLY: &str = r#"
- name: packages from the lab mirror
  hosts: postgres
  tasks:
    - name: package source
      pgdg_repo:
        mirror: "{{ pgdg_mirror }}"
        key_url: "{{ pgdg_key_url }}"
    - name: packages
      packages:
        name: "{{ test_packages | default(['pgbackrest']) }}"
        start_services: false
"#;

#[test]
fn seed_004_from_bare_hosts() {
    let Some(lab) = LabFixture::up(NAME, SUBNET, 3, 0) else {
        return;
    };
    let inventory = lab.inventory();
    let dir = inventory.parent().unwrap().to_path_buf();
    // Patroni from the distribution's package on this lab (the inventory says `pip`)
    std::fs::create_dir_all(dir.join("group_vars")).unwrap();
    std::fs::write(
        dir.join("group_vars/postgres.yml"),
        "patroni_install: package\n",
    )
    .unwrap();
    let mut c = Checks::new();

    c.run("hosts_start_bare", || {
        for n in NODES {
            assert_bare(&lab, n);
        }
    });
    c.run("a_broken_source_or_package_fails_only_its_host", || {
        let gateway = lab.info.subnet.gateway();
        let host_vars = dir.join("host_vars");
        std::fs::create_dir_all(&host_vars).unwrap();
        // nothing listens on port 9 of the bridge: the mirror is unreachable for pg2
        let bad_mirror = format!("http://{gateway}:9/apt");
        std::fs::write(
            host_vars.join("pg2.yml"),
            format!("pgdg_mirror: {bad_mirror}\n"),
        )
        .unwrap();
        std::fs::write(
            host_vars.join("pg3.yml"),
            "test_packages: [pgbackrest, pgdeploy-no-such-package]\n",
        )
        .unwrap();
        let pb = dir.join("packages.yml");
        std::fs::write(&pb, PACKAGES_ONLY).unwrap();
        let pb = pb.to_str().unwrap();
        let (code, stdout, stderr) = pgdeploy("apply", &["--no-color"], &inventory, pb);
        let all = format!("{stdout}{stderr}");
        assert_eq!(code, 1, "{all}");
        assert!(all.contains(&bad_mirror), "the error names the URL: {all}");
        assert!(
            all.contains("pgdeploy-no-such-package"),
            "the error names the package: {all}"
        );
        let recap: Vec<&str> = stdout
            .lines()
            .skip_while(|l| !l.starts_with("RECAP"))
            .collect();
        let row = |h: &str| {
            recap
                .iter()
                .find(|l| l.starts_with(h))
                .unwrap_or_else(|| panic!("no recap row for {h}: {stdout}"))
                .to_string()
        };
        assert!(row("pg1").contains("failed=0"), "{stdout}");
        assert!(row("pg2").contains("failed=1"), "{stdout}");
        assert!(row("pg3").contains("failed=1"), "{stdout}");
        lab.ssh_ok(lab.ip("pg1"), "command -v pgbackrest");
        // fixed inventory: the next run finishes what the failed one left
        std::fs::remove_dir_all(&host_vars).unwrap();
        let (code, stdout, stderr) = pgdeploy("apply", &["--no-color"], &inventory, pb);
        assert_eq!(code, 0, "{stdout}{stderr}");
        for n in NODES {
            lab.ssh_ok(
                lab.ip(n),
                "command -v pgbackrest && dpkg --audit | grep -c . | grep -qx 0",
            );
        }
    });
    c.run(
        "site_and_leader_vip_deploy_with_the_patroni_package",
        || {
            let started = Instant::now();
            let (code, stdout, stderr) = pgdeploy("apply", &[], &inventory, &playbook("site.yml"));
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            let (code, stdout, stderr) =
                pgdeploy("apply", &[], &inventory, &playbook("vip-on-leader.yml"));
            assert_eq!(code, 0, "{stderr}\n{stdout}");
            eprintln!(
                "  bare hosts to seed 004 behind its leader VIP: {:.1} s",
                started.elapsed().as_secs_f64()
            );
            // Patroni 3.0.2 calls a streaming replica `running` (`streaming` came with 3.0.4):
            // the leader's pg_stat_replication says whether both stream.
            let mut rows = Vec::new();
            let mut streaming = String::new();
            assert!(
                eventually(Duration::from_secs(60), || {
                    rows = members_on(&lab, "pg1");
                    streaming = sql_ok(
                        &lab,
                        "pg1",
                        "127.0.0.1",
                        5432,
                        "SELECT string_agg(application_name, ',' ORDER BY application_name) \
                         FROM pg_stat_replication WHERE state = 'streaming'",
                    );
                    rows.len() == 3
                        && rows.iter().filter(|r| r["Role"] == "Leader").count() == 1
                        && rows.iter().all(|r| r["TL"] == 1)
                        && streaming == "pg2,pg3"
                }),
                "{rows:?}; streaming: {streaming}"
            );
            for n in NODES {
                let v = lab.ssh_ok(
                    lab.ip(n),
                    "/usr/bin/patroni --version; systemctl show -p ExecStart --value patroni; \
                 dpkg-query -W -f='${Status}' patroni; test ! -e /opt/patroni && echo no-venv",
                );
                assert!(v.contains("patroni 3.0.2"), "{n}: {v}");
                assert!(v.contains("path=/usr/bin/patroni"), "{n}: {v}");
                assert!(v.contains("install ok installed"), "{n}: {v}");
                assert!(v.contains("no-venv"), "{n}: {v}");
            }
        },
    );
    c.run(
        "the_leader_vip_reaches_the_primary_and_rows_reach_replicas",
        || {
            let vip = inventory_var(&lab, "leader_vip");
            assert!(
                eventually(Duration::from_secs(20), || holder_of(&lab, &vip, &NODES)
                    == Some("pg1")),
                "the VIP is not on the leader pg1"
            );
            sql_ok(
                &lab,
                "pg2",
                &vip,
                5432,
                "CREATE TABLE t (v int); INSERT INTO t VALUES (7)",
            );
            for n in ["pg2", "pg3"] {
                assert!(
                    eventually(Duration::from_secs(20), || {
                        sql(&lab, n, "127.0.0.1", 5432, "SELECT v FROM t").stdout == b"7\n"
                    }),
                    "row not replicated to {n}"
                );
            }
        },
    );
    c.run("status_shows_the_cluster_and_the_vip", || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
            .args(["status", "-i"])
            .arg(&inventory)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vip = inventory_var(&lab, "leader_vip");
        assert!(text.contains(&vip) && text.contains("pg1"), "{text}");
    });
    c.run("second_apply_changes_nothing_and_runs_no_apt", || {
        let before: Vec<String> = NODES.iter().map(|h| apt_activity(&lab, h)).collect();
        for pb in ["site.yml", "vip-on-leader.yml"] {
            let started = Instant::now();
            let (code, stdout, stderr) = pgdeploy("apply", &["--json"], &inventory, &playbook(pb));
            eprintln!(
                "  no-op re-apply of {pb}: {:.2} s",
                started.elapsed().as_secs_f64()
            );
            assert_eq!((code, changed(&stdout)), (0, 0), "{pb}: {stderr}{stdout}");
            let (code, _, stderr) = pgdeploy("check", &[], &inventory, &playbook(pb));
            assert_eq!(code, 0, "{pb}: {stderr}");
        }
        let after: Vec<String> = NODES.iter().map(|h| apt_activity(&lab, h)).collect();
        assert_eq!(before, after, "apt ran during a no-op apply");
    });
    c.finish();
}
