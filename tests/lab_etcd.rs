//! `certificates` + `etcd` on real hosts: one lab (`etcdt`) driven through every check in
//! order, from fresh hosts to a healthy 3-member cluster with mutual TLS, an idempotent second
//! apply, a restart that keeps the member and cluster IDs, a fourth and a fifth host that join
//! one at a time, an address added to one host's certificate (only that member restarts), and
//! a SAN change on every host that restarts the members one at a time.
//!
//! The checks report by name and all run even when one fails.

#[path = "support/checks.rs"]
mod checks;
#[path = "support/lab.rs"]
mod lab_support;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use checks::Checks;
use lab_support::LabFixture;
use pgdeploy_lab::{self as lab, UpOptions};

const NAME: &str = "etcdt";
const SUBNET: &str = "10.213.21.0/24";

/// `pgdeploy ARGS -i INVENTORY PLAYBOOK`.
fn pgdeploy(cmd: &str, inventory: &Path, playbook: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args([cmd, "--no-color", "-i"])
        .arg(inventory)
        .arg(playbook)
        .output()
        .expect("cannot run pgdeploy")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `changed=N` counts of the recap.
fn changed_counts(output: &str) -> Vec<u32> {
    let re = regex_lite::Regex::new(r"changed=(\d+)").unwrap();
    re.captures_iter(output)
        .map(|c| c[1].parse().unwrap())
        .collect()
}

fn etcdctl(host: &str, endpoints: &[Ipv4Addr], args: &str) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|ip| format!("https://{ip}:2379"))
        .collect();
    format!(
        "ETCDCTL_API=3 etcdctl --endpoints={} --cacert=/etc/etcd/pki/ca.crt \
         --cert=/etc/etcd/pki/{host}.crt --key=/etc/etcd/pki/{host}.key --dial-timeout=3s {args} 2>&1",
        eps.join(",")
    )
}

fn start_time(lab: &LabFixture, host: &str) -> String {
    lab.ssh_ok(
        lab.ip(host),
        "systemctl show -p ActiveEnterTimestampMonotonic --value etcd",
    )
}

/// `(cluster_id, member_id)` of the local member.
fn ids(lab: &LabFixture, host: &str) -> (u64, u64) {
    let json = lab.ssh_ok(
        lab.ip(host),
        &etcdctl(host, &[Ipv4Addr::LOCALHOST], "endpoint status -w json"),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let h = &v[0]["Status"]["header"];
    (
        h["cluster_id"].as_u64().unwrap(),
        h["member_id"].as_u64().unwrap(),
    )
}

#[test]
fn lab_etcd() {
    let Some(mut lab) = LabFixture::up(NAME, SUBNET, 3, 0) else {
        return;
    };
    let inventory = lab.inventory();
    // The playbook beside the inventory, so that the CA (`pki/`) is made in the test's
    // directory, never in the source tree.
    let playbook: PathBuf = lab.dir.path().join("etcd.yml");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/etcd.yml");
    std::fs::copy(&source, &playbook).unwrap();
    let hosts = ["pg1", "pg2", "pg3"];
    let ips: Vec<Ipv4Addr> = hosts.iter().map(|h| lab.ip(h)).collect();
    let mut c = Checks::new();

    let started = Instant::now();
    let first = pgdeploy("apply", &inventory, &playbook);
    let seconds = started.elapsed().as_secs_f64();
    let first_out = text(&first);
    eprintln!(
        "fresh hosts to a healthy 3-member etcd cluster: {seconds:.1} s (one `pgdeploy apply`)"
    );

    c.run("first_apply_succeeds", || {
        assert!(
            first.status.success() || first.status.code() == Some(2),
            "{first_out}"
        );
        assert!(!first_out.contains("failed=1"), "{first_out}");
        assert!(first_out.contains("create CA `"), "{first_out}");
    });
    c.run("ca_key_is_local_and_private", || {
        use std::os::unix::fs::PermissionsExt;
        let key = lab.dir.path().join("pki/ca.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!first_out.contains("PRIVATE KEY"));
        for ip in &ips {
            assert_eq!(
                lab.ssh_ok(*ip, "ls /etc/etcd/pki | grep -c ca.key || true"),
                "0"
            );
        }
    });
    c.run("installed_files_have_owner_and_mode", || {
        let out = lab.ssh_ok(
            ips[0],
            "stat -c '%n %U %G %a' /etc/etcd/pki/pg1.key /etc/etcd/pki/pg1.crt /etc/etcd/pki/ca.crt",
        );
        assert_eq!(
            out,
            "/etc/etcd/pki/pg1.key etcd etcd 600\n/etc/etcd/pki/pg1.crt etcd etcd 644\n/etc/etcd/pki/ca.crt etcd etcd 644"
        );
    });
    c.run("certificate_has_the_sans_and_ekus", || {
        let out = lab.ssh_ok(
            ips[1],
            "openssl x509 -in /etc/etcd/pki/pg2.crt -noout -text 2>/dev/null || true",
        );
        // Without openssl on the host the SANs are still checked through etcd's TLS (the
        // health checks below), but CI must read the certificate itself.
        if !lab_support::skip::require(
            !out.is_empty(),
            "certificate_has_the_sans_and_ekus",
            "`openssl` is not on the lab host",
        ) {
            return;
        }
        assert!(out.contains("IP Address:10.213.21.12"), "{out}");
        assert!(
            out.contains("DNS:pg2") && out.contains("DNS:localhost"),
            "{out}"
        );
        assert!(out.contains("IP Address:127.0.0.1"), "{out}");
        assert!(out.contains("TLS Web Server Authentication, TLS Web Client Authentication"));
    });
    c.run(
        "all_endpoints_healthy_over_https_with_a_client_cert",
        || {
            for (h, ip) in hosts.iter().zip(&ips) {
                let out = lab.ssh_ok(*ip, &etcdctl(h, &ips, "endpoint health"));
                assert_eq!(out.matches("is healthy").count(), 3, "{out}");
            }
            let list = lab.ssh_ok(ips[0], &etcdctl("pg1", &ips, "member list"));
            for h in hosts {
                assert!(
                    list.contains(&format!(", started, {h}, https://")),
                    "{list}"
                );
            }
            assert_eq!(list.lines().count(), 3, "{list}");
        },
    );
    c.run("without_a_client_cert_refused", || {
        let cmd = format!(
            "ETCDCTL_API=3 etcdctl --endpoints=https://{}:2379 --cacert=/etc/etcd/pki/ca.crt \
             --dial-timeout=2s --command-timeout=3s endpoint health",
            ips[1]
        );
        let out = lab.ssh(ips[0], &cmd);
        assert!(
            !out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    });
    c.run("plain_http_refused", || {
        for ip in &ips {
            let out = lab.ssh(ips[0], &format!("curl -s -m 3 http://{ip}:2379/health"));
            assert!(
                !out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(!String::from_utf8_lossy(&out.stdout).contains("true"));
        }
    });
    c.run("state_is_existing_after_bootstrap", || {
        for ip in &ips {
            let out = lab.ssh_ok(*ip, "grep ^ETCD_INITIAL_CLUSTER_STATE= /etc/default/etcd");
            assert_eq!(out, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"");
        }
    });
    c.run("second_apply_changes_and_restarts_nothing", || {
        let before: Vec<String> = hosts.iter().map(|h| start_time(&lab, h)).collect();
        let t = Instant::now();
        let out = pgdeploy("apply", &inventory, &playbook);
        eprintln!("second apply: {:.1} s", t.elapsed().as_secs_f64());
        let o = text(&out);
        assert!(out.status.success(), "{o}");
        assert_eq!(changed_counts(&o), vec![0, 0, 0], "{o}");
        let after: Vec<String> = hosts.iter().map(|h| start_time(&lab, h)).collect();
        assert_eq!(before, after);
        let check = pgdeploy("check", &inventory, &playbook);
        assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    });
    c.run("restart_keeps_member_and_cluster_ids", || {
        let before = ids(&lab, "pg2");
        lab.ssh_ok(ips[1], "systemctl restart etcd");
        assert_eq!(ids(&lab, "pg2"), before);
        let cluster = ids(&lab, "pg1").0;
        assert_eq!(cluster, before.0);
    });
    c.run("missing_certificate_is_reissued_and_only_its_member_restarts", || {
        let before: Vec<String> = hosts.iter().map(|h| start_time(&lab, h)).collect();
        lab.ssh_ok(ips[0], "rm /etc/etcd/pki/pg1.crt");
        let out = pgdeploy("apply", &inventory, &playbook);
        let o = text(&out);
        assert!(out.status.success(), "{o}");
        assert!(
            o.contains("issue `/etc/etcd/pki/pg1.crt` (owner `etcd`, group `etcd`, mode `0644`) (missing)"),
            "{o}"
        );
        assert!(o.contains("restart `etcd`: `/etc/default/etcd` or its certificates changed"), "{o}");
        assert_eq!(changed_counts(&o), vec![2, 0, 0], "{o}");
        let after: Vec<String> = hosts.iter().map(|h| start_time(&lab, h)).collect();
        assert_ne!(before[0], after[0]);
        assert_eq!(before[1..], after[1..]);
        let health = lab.ssh_ok(ips[2], &etcdctl("pg3", &ips, "endpoint health"));
        assert_eq!(health.matches("is healthy").count(), 3, "{health}");
    });
    c.run("a_key_that_is_not_the_certificates_is_replaced", || {
        lab.ssh_ok(ips[2], "echo garbage > /etc/etcd/pki/pg3.key");
        let out = pgdeploy("apply", &inventory, &playbook);
        let o = text(&out);
        assert!(out.status.success(), "{o}");
        assert!(
            o.contains("(its key on the host does not belong to it)"),
            "{o}"
        );
        assert!(
            o.contains("replace private key `/etc/etcd/pki/pg3.key`"),
            "{o}"
        );
        assert!(!o.contains("garbage"), "{o}");
        let health = lab.ssh_ok(ips[0], &etcdctl("pg1", &ips, "endpoint health"));
        assert_eq!(health.matches("is healthy").count(), 3, "{health}");
        let again = pgdeploy("apply", &inventory, &playbook);
        assert_eq!(changed_counts(&text(&again)), vec![0, 0, 0]);
    });
    c.run("fourth_and_fifth_hosts_join_one_at_a_time", || {
        let info = lab::up(&UpOptions {
            name: NAME.into(),
            nodes: 5,
            balancers: 0,
            subnet: SUBNET.parse().unwrap(),
            inventory: inventory.clone(),
        })
        .expect("lab grows to 5 hosts");
        lab.info = info;
        let (ip4, ip5) = (lab.ip("pg4"), lab.ip("pg5"));
        let ids_before = ids(&lab, "pg1");
        // The dry run shows both additions, before either host has a certificate.
        let plan = pgdeploy("plan", &inventory, &playbook);
        let p = text(&plan);
        for (h, ip) in [("pg4", ip4), ("pg5", ip5)] {
            assert!(
                p.contains(&format!(
                    "add etcd member `{h}` (`https://{ip}:2380`) to the cluster through `https://{}:2379`",
                    ips[0]
                )),
                "{p}"
            );
        }
        assert_eq!(p.matches("start `etcd` to join the existing cluster").count(), 2, "{p}");
        let out = pgdeploy("apply", &inventory, &playbook);
        let o = text(&out);
        assert!(out.status.success(), "{o}");
        for (h, ip) in [("pg4", ip4), ("pg5", ip5)] {
            assert!(
                o.contains(&format!(
                    "add etcd member `{h}` (`https://{ip}:2380`) to the cluster"
                )),
                "{o}"
            );
        }
        // One at a time: the second was added and started only once the first had joined
        // and was healthy (either may go first).
        let (start4, start5): (u64, u64) = (
            start_time(&lab, "pg4").parse().unwrap(),
            start_time(&lab, "pg5").parse().unwrap(),
        );
        assert!(
            start4.abs_diff(start5) > 500_000,
            "pg4 started at {start4} µs, pg5 at {start5} µs"
        );
        let mut all = ips.clone();
        all.extend([ip4, ip5]);
        let health = lab.ssh_ok(ip5, &etcdctl("pg5", &all, "endpoint health"));
        assert_eq!(health.matches("is healthy").count(), 5, "{health}");
        let list = lab.ssh_ok(ips[0], &etcdctl("pg1", &ips, "member list"));
        assert_eq!(list.lines().count(), 5, "{list}");
        for h in ["pg4", "pg5"] {
            assert!(list.contains(&format!(", started, {h}, https://")), "{list}");
            assert_eq!(ids(&lab, h).0, ids_before.0, "{h} joined the same cluster");
        }
        assert_eq!(ids(&lab, "pg1"), ids_before, "pg1 untouched");
        let again = pgdeploy("apply", &inventory, &playbook);
        let a = text(&again);
        assert_eq!(changed_counts(&a), vec![0; 5], "{a}");
    });

    c.run("an_address_added_to_one_hosts_sans_restarts_only_that_member", || {
        let names = ["pg1", "pg2", "pg3", "pg4", "pg5"];
        let ids_before = ids(&lab, "pg1");
        let before: Vec<String> = names.iter().map(|h| start_time(&lab, h)).collect();
        // An extra IP address in pg2's certificate only (a second address it may get).
        let extra = "10.213.21.222";
        let variant = lab.dir.path().join("etcd-one-san.yml");
        let yaml = std::fs::read_to_string(&playbook).unwrap().replace(
            "      certificates:\n",
            &format!(
                "      certificates:\n        extra_sans: \"{{{{ ['{extra}'] if inventory_hostname == 'pg2' else [] }}}}\"\n"
            ),
        );
        assert!(yaml.contains("extra_sans"), "{yaml}");
        std::fs::write(&variant, yaml).unwrap();
        let out = pgdeploy("apply", &inventory, &variant);
        let o = text(&out);
        assert!(out.status.success(), "{o}");
        assert_eq!(
            o.matches(&format!("SANs change: add `{extra}`")).count(),
            1,
            "{o}"
        );
        assert_eq!(o.matches("restart `etcd`").count(), 1, "{o}");
        // pg2: its certificate, then its etcd restarted; nothing anywhere else.
        assert_eq!(changed_counts(&o), vec![0, 2, 0, 0, 0], "{o}");
        let after: Vec<String> = names.iter().map(|h| start_time(&lab, h)).collect();
        for (i, h) in names.iter().enumerate() {
            if *h == "pg2" {
                assert_ne!(before[i], after[i], "pg2 restarted");
            } else {
                assert_eq!(before[i], after[i], "{h} not restarted");
            }
        }
        let cert = lab.ssh_ok(
            lab.ip("pg2"),
            "openssl x509 -in /etc/etcd/pki/pg2.crt -noout -ext subjectAltName",
        );
        assert!(cert.contains(&format!("IP Address:{extra}")), "{cert}");
        let all: Vec<Ipv4Addr> = names.iter().map(|h| lab.ip(h)).collect();
        let health = lab.ssh_ok(all[0], &etcdctl("pg1", &all, "endpoint health"));
        assert_eq!(health.matches("is healthy").count(), 5, "{health}");
        assert_eq!(ids(&lab, "pg1"), ids_before);
        let again = pgdeploy("apply", &inventory, &variant);
        assert_eq!(changed_counts(&text(&again)), vec![0; 5]);
    });

    c.run(
        "san_change_reissues_and_restarts_one_member_at_a_time",
        || {
            let names = ["pg1", "pg2", "pg3", "pg4", "pg5"];
            let ids_before = ids(&lab, "pg1");
            let before: Vec<String> = names.iter().map(|h| start_time(&lab, h)).collect();
            let variant = lab.dir.path().join("etcd-sans.yml");
            let yaml = std::fs::read_to_string(&playbook).unwrap().replace(
                "      certificates:\n",
                "      certificates:\n        extra_sans: [etcd.lab]\n",
            );
            assert!(yaml.contains("extra_sans"), "{yaml}");
            std::fs::write(&variant, yaml).unwrap();
            let out = pgdeploy("apply", &inventory, &variant);
            let o = text(&out);
            assert!(out.status.success(), "{o}");
            assert_eq!(o.matches("SANs change: add `etcd.lab`").count(), 5, "{o}");
            assert_eq!(o.matches("restart `etcd`").count(), 5, "{o}");
            let mut after: Vec<u64> = names
                .iter()
                .map(|h| start_time(&lab, h).parse().unwrap())
                .collect();
            for (b, a) in before.iter().zip(&after) {
                assert_ne!(b.parse::<u64>().unwrap(), *a);
            }
            // One at a time: each restart waited for the cluster to be healthy again.
            after.sort();
            let gaps: Vec<u64> = after.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.iter().all(|g| *g > 100_000), "{gaps:?} µs");
            assert_eq!(ids(&lab, "pg1"), ids_before);
            let out = lab.ssh_ok(
                lab.ip("pg2"),
                "openssl x509 -in /etc/etcd/pki/pg2.crt -noout -ext subjectAltName",
            );
            assert!(out.contains("DNS:etcd.lab"), "{out}");
            let again = pgdeploy("apply", &inventory, &variant);
            assert_eq!(changed_counts(&text(&again)), vec![0; 5]);
        },
    );

    lab.down();
    c.finish();
}
