//! The `haproxy` and `keepalived` modules on real hosts: a lab of 2 "PostgreSQL" hosts (with a
//! stand-in for Patroni's REST API: `/primary` and `/replica` answered from a role file) and 2
//! balancers, driven through `pgdeploy apply` like a user would.
//!
//! One lab for the whole binary, one test running named checks in order (booting is the
//! expensive part, and the checks build on each other); every check runs even when one fails.

#[path = "support/checks.rs"]
mod checks;
#[path = "support/lab.rs"]
mod lab_support;
#[path = "support/poll.rs"]
mod poll;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use checks::Checks;
use lab_support::LabFixture;

const NAME: &str = "lbt";
const SUBNET: &str = "10.213.22.0/24";
const VIP: &str = "10.213.22.100";
/// The VIP of the `patroni` topology (keepalived on the PostgreSQL hosts).
const PG_VIP: &str = "10.213.22.101";

fn pgdeploy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args(args)
        .arg("--no-color")
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

/// `apply` of `playbook`; returns (exit code, output).
fn apply(lab: &LabFixture, playbook: &str) -> (i32, String) {
    let inv = lab.inventory();
    let out = pgdeploy(&["apply", "-i", inv.to_str().unwrap(), playbook]);
    (out.status.code().unwrap_or(-1), text(&out))
}

/// The RECAP's `changed=` count of every host.
fn changed_counts(output: &str) -> Vec<(String, u32)> {
    output
        .lines()
        .skip_while(|l| !l.starts_with("RECAP"))
        .filter_map(|l| {
            let host = l.split_whitespace().next()?.to_string();
            let changed = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("changed="))?;
            Some((host, changed.parse().ok()?))
        })
        .collect()
}

/// The hosts among `hosts` that have `vip` on an interface.
fn holders(lab: &LabFixture, hosts: &[&str], vip: &str) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| {
            let out = lab.ssh(lab.ip(h), "ip -o -4 addr show");
            String::from_utf8_lossy(&out.stdout).contains(&format!("inet {vip}/"))
        })
        .map(|h| h.to_string())
        .collect()
}

/// Polls until exactly one of `hosts` holds `vip` (and it satisfies `ok`); the holder and the
/// time it took.
fn wait_for_single_holder(
    lab: &LabFixture,
    hosts: &[&str],
    vip: &str,
    ok: impl Fn(&str) -> bool,
    timeout: Duration,
) -> (String, Duration) {
    let t = Instant::now();
    loop {
        let h = holders(lab, hosts, vip);
        if h.len() == 1 && ok(&h[0]) {
            return (h[0].clone(), t.elapsed());
        }
        assert!(
            t.elapsed() < timeout,
            "after {timeout:?}, `{vip}` is on {h:?} (wanted exactly one host)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn write_playbook(lab: &LabFixture, name: &str, text: &str) -> String {
    let path = lab.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A stand-in for Patroni's REST API on port 8008: `/primary` is 200 when `/run/fake-role`
/// says `primary`, `/replica` when it says `replica`, else 503. With arguments `CERT_KEY_PEM
/// CA_PEM`, it serves TLS and requires a client certificate signed by the CA.
const FAKE_PATRONI: &str = r#"import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            role = open("/run/fake-role").read().strip()
        except OSError:
            role = ""
        self.send_response(200 if self.path == "/" + role else 503)
        self.end_headers()
    do_HEAD = do_GET
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 8008), H)
if len(sys.argv) > 2:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1])
    ctx.load_verify_locations(sys.argv[2])
    ctx.verify_mode = ssl.CERT_REQUIRED
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"#;

/// A CA and, for each (name, IP), a certificate with the IP (and 127.0.0.1) as SANs, usable
/// as server and client, made with the workstation's `openssl`: `NAME.pem`, `NAME.key` and
/// `ca.pem` in `dir`.
fn make_certs(dir: &std::path::Path, ca_name: &str, hosts: &[(&str, String)]) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("cannot run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let subj = format!("/CN={ca_name}");
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", &subj,
    ]);
    run(&a);
    for (name, ip) in hosts {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        let subj = format!("/CN={name}");
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        run(&a);
        let ext = format!("{name}.ext");
        std::fs::write(
            dir.join(&ext),
            format!(
                "subjectAltName=IP:{ip},IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ]);
    }
}

/// Writes `content` to `path` (mode 0600) on `host`.
fn put(lab: &LabFixture, host: &str, path: &str, content: &str) {
    lab.ssh_ok(
        lab.ip(host),
        &format!(
            "mkdir -p \"$(dirname {path})\" && umask 077 && cat > {path} <<'EOF'\n{content}EOF"
        ),
    );
}

/// Server states of HAProxy's backends on `host`, from the stats page: `backend/server UP`.
fn haproxy_states(lab: &LabFixture, host: &str) -> Vec<String> {
    let csv = lab.ssh_ok(lab.ip(host), "curl -s 'http://127.0.0.1:7000/;csv'");
    csv.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() > 17 && f[0].starts_with("postgres_") && f[1].starts_with("pg"))
                .then(|| format!("{}/{} {}", f[0], f[1], f[17]))
        })
        .collect()
}

#[test]
fn lab_balancers() {
    let Some(lab) = LabFixture::up(NAME, SUBNET, 2, 2) else {
        return;
    };
    let balancers = ["lb1", "lb2"];
    let playbook = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/balancers.yml");
    let mut c = Checks::new();

    c.run("fake_patroni_on_the_postgres_hosts", || {
        for (h, role) in [("pg1", "primary"), ("pg2", "replica")] {
            let ip = lab.ip(h);
            std::fs::write(lab.dir.path().join("fake_patroni.py"), FAKE_PATRONI).unwrap();
            lab.ssh_ok(
                ip,
                &format!(
                    "cat > /root/fake_patroni.py <<'EOF'\n{FAKE_PATRONI}EOF\n\
                     echo {role} > /run/fake-role && \
                     systemd-run --unit=fake-patroni python3 /root/fake_patroni.py"
                ),
            );
        }
        // the fake Patroni answers once its unit is up
        poll::until(
            "the fake Patroni of pg1 answering `/primary` with 200",
            Duration::from_secs(20),
            Duration::from_millis(200),
            || {
                lab.ssh_ok(
                    lab.ip("lb1"),
                    "curl -s -o /dev/null -w '%{http_code}' http://10.213.22.11:8008/primary || true",
                )
            },
            |code| code == "200",
        );
    });

    c.run("first_apply_configures_and_starts_everything", || {
        let t = Instant::now();
        let (code, out) = apply(&lab, playbook);
        eprintln!("first apply: {:.1} s", t.elapsed().as_secs_f64());
        assert_eq!(code, 0, "{out}");
        for (host, changed) in changed_counts(&out) {
            assert!(changed > 0, "{host} changed nothing: {out}");
        }
        for h in balancers {
            let ip = lab.ip(h);
            assert_eq!(
                lab.ssh_ok(ip, "systemctl is-active haproxy keepalived; systemctl is-enabled haproxy keepalived"),
                "active\nactive\nenabled\nenabled"
            );
            lab.ssh_ok(ip, "haproxy -c -q -f /etc/haproxy/haproxy.cfg");
            assert_eq!(
                lab.ssh_ok(ip, "stat -c '%U %a' /etc/keepalived/keepalived.conf /etc/keepalived/scripts /etc/keepalived/scripts/check_haproxy.sh"),
                "root 640\nroot 755\nroot 755"
            );
        }
    });

    c.run("vip_on_exactly_one_balancer", || {
        let (holder, took) =
            wait_for_single_holder(&lab, &balancers, VIP, |_| true, Duration::from_secs(20));
        eprintln!(
            "VIP `{VIP}` on {holder} {:.1} s after the apply",
            took.as_secs_f64()
        );
        assert_eq!(holder, "lb1", "lb1 has the highest priority");
    });

    c.run(
        "haproxy_routes_writers_to_the_primary_and_readers_to_replicas",
        || {
            let want = [
                "postgres_writer/pg1 UP",
                "postgres_writer/pg2 DOWN",
                "postgres_readers/pg1 DOWN",
                "postgres_readers/pg2 UP",
            ];
            poll::until(
                &format!("lb2's servers {want:?}"),
                Duration::from_secs(20),
                Duration::from_millis(500),
                || haproxy_states(&lab, "lb2"),
                |states| *states == want,
            );
        },
    );

    c.run("second_apply_changes_nothing", || {
        let (code, out) = apply(&lab, playbook);
        assert_eq!(code, 0, "{out}");
        let counts = changed_counts(&out);
        assert_eq!(
            counts,
            [("lb1".to_string(), 0), ("lb2".to_string(), 0)],
            "{out}"
        );
    });

    c.run(
        "hand_edit_is_drift_and_diffs_never_show_the_password",
        || {
            let ip = lab.ip("lb2");
            lab.ssh_ok(
                ip,
                "sed -i 's/auth_pass .*/auth_pass handmade/' /etc/keepalived/keepalived.conf",
            );
            let inv = lab.inventory();
            let inv = inv.to_str().unwrap();
            let plan = pgdeploy(&["plan", "-i", inv, playbook]);
            let check = pgdeploy(&["check", "--json", "-i", inv, playbook]);
            assert_eq!(check.status.code(), Some(2), "{}", text(&check));
            let (plan, check) = (text(&plan), text(&check));
            assert!(
                plan.contains("update `/etc/keepalived/keepalived.conf`")
                    && plan.contains("-        auth_pass ******** (another password)")
                    && plan.contains("+        auth_pass ********"),
                "{plan}"
            );
            for out in [&plan, &check] {
                assert!(
                    !out.contains("handmade") && !out.contains("pgd-vrrp"),
                    "a password is shown: {out}"
                );
            }
            let (code, out) = apply(&lab, playbook);
            assert_eq!(code, 0, "{out}");
            assert_eq!(
                changed_counts(&out),
                [("lb1".to_string(), 0), ("lb2".to_string(), 1)],
                "{out}"
            );
            assert!(!text(&pgdeploy(&["apply", "-i", inv, playbook])).contains("handmade"));
        },
    );

    c.run(
        "invalid_haproxy_config_is_refused_and_haproxy_keeps_running",
        || {
            let ip = lab.ip("lb1");
            let before = lab.ssh_ok(ip, "md5sum /etc/haproxy/haproxy.cfg");
            let pid = lab.ssh_ok(ip, "systemctl show -p MainPID --value haproxy");
            let bad = write_playbook(
                &lab,
                "bad.yml",
                "- hosts: balancers\n  tasks:\n    - haproxy:\n        group: postgres\n        \
             stats: {port: 7000}\n        defaults_extra: [\"timeout connect never\"]\n",
            );
            let (code, out) = apply(&lab, &bad);
            assert_ne!(code, 0, "{out}");
            assert!(
                out.contains(
                    "`/etc/haproxy/haproxy.cfg` not replaced: validation `haproxy -c -q -f"
                ),
                "{out}"
            );
            assert_eq!(lab.ssh_ok(ip, "md5sum /etc/haproxy/haproxy.cfg"), before);
            assert_eq!(lab.ssh_ok(ip, "systemctl is-active haproxy"), "active");
            assert_eq!(
                lab.ssh_ok(ip, "systemctl show -p MainPID --value haproxy"),
                pid,
                "not restarted"
            );
            assert_eq!(
                lab.ssh_ok(ip, "ls -A /etc/haproxy | grep -c pgdeploy || true"),
                "0"
            );
            // and the converged playbook still has nothing to do
            let (_, out) = apply(&lab, playbook);
            assert!(changed_counts(&out).iter().all(|(_, n)| *n == 0), "{out}");
        },
    );

    c.run("vip_moves_when_its_balancer_loses_power", || {
        let (holder, _) =
            wait_for_single_holder(&lab, &balancers, VIP, |_| true, Duration::from_secs(10));
        let other = if holder == "lb1" { "lb2" } else { "lb1" };
        let t = Instant::now();
        let out = pgdeploy(&["lab", "kill", "--name", NAME, &holder]);
        assert!(out.status.success(), "{}", text(&out));
        let (now, took) =
            wait_for_single_holder(&lab, &[other], VIP, |_| true, Duration::from_secs(30));
        eprintln!(
            "VIP `{VIP}` moved from {holder} (killed) to {now} in {:.1} s",
            t.elapsed().as_secs_f64().max(took.as_secs_f64())
        );
        let out = pgdeploy(&["lab", "start", "--name", NAME, &holder]);
        assert!(out.status.success(), "{}", text(&out));
    });

    c.run("patroni_mode_vip_follows_the_primary", || {
        let pb = write_playbook(
            &lab,
            "pg_vip.yml",
            &format!(
                "- hosts: postgres\n  tasks:\n    \
                 - pgdg_repo: {{mirror: \"{{{{ pgdg_mirror }}}}\", key_url: \"{{{{ pgdg_key_url }}}}\"}}\n    \
                 - packages: {{name: keepalived, start_services: false}}\n    \
                 - keepalived:\n        mode: patroni\n        \
                 group: postgres\n        vip: {PG_VIP}\n        virtual_router_id: 52\n        \
                 auth_pass: pgvip123\n"
            ),
        );
        let (code, out) = apply(&lab, &pb);
        assert_eq!(code, 0, "{out}");
        let pgs = ["pg1", "pg2"];
        let (holder, _) =
            wait_for_single_holder(&lab, &pgs, PG_VIP, |_| true, Duration::from_secs(20));
        assert_eq!(holder, "pg1", "the primary holds the VIP");
        // switchover of the stand-in: pg2 becomes the primary
        lab.ssh_ok(lab.ip("pg1"), "echo replica > /run/fake-role");
        let t = Instant::now();
        lab.ssh_ok(lab.ip("pg2"), "echo primary > /run/fake-role");
        let (holder, _) =
            wait_for_single_holder(&lab, &pgs, PG_VIP, |h| h == "pg2", Duration::from_secs(30));
        eprintln!(
            "VIP `{PG_VIP}` followed the primary to {holder} in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (_, out) = apply(&lab, &pb);
        assert!(changed_counts(&out).iter().all(|(_, n)| *n == 0), "{out}");
    });

    c.run("tls_checks_verify_the_rest_api_certificate", || {
        let certs = lab.dir.path().join("certs");
        let other = lab.dir.path().join("other-ca");
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::create_dir_all(&other).unwrap();
        let hosts: Vec<(&str, String)> = ["pg1", "pg2", "lb1", "lb2"]
            .iter()
            .map(|h| (*h, lab.ip(h).to_string()))
            .collect();
        make_certs(&certs, "lbt-ca", &hosts);
        make_certs(&other, "other-ca", &[]);
        let read = |d: &std::path::Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
        for h in ["pg1", "pg2", "lb1", "lb2"] {
            let dir = "/etc/lbt-tls";
            put(&lab, h, &format!("{dir}/ca.pem"), &read(&certs, "ca.pem"));
            put(&lab, h, &format!("{dir}/other-ca.pem"), &read(&other, "ca.pem"));
            put(&lab, h, &format!("{dir}/{h}.pem"), &read(&certs, &format!("{h}.pem")));
            put(&lab, h, &format!("{dir}/{h}.key"), &read(&certs, &format!("{h}.key")));
            let both = read(&certs, &format!("{h}.pem")) + &read(&certs, &format!("{h}.key"));
            put(&lab, h, &format!("{dir}/{h}-both.pem"), &both);
        }
        for h in ["pg1", "pg2"] {
            lab.ssh_ok(
                lab.ip(h),
                &format!(
                    "systemctl stop fake-patroni && systemd-run --unit=fake-patroni-tls \
                     python3 /root/fake_patroni.py /etc/lbt-tls/{h}-both.pem /etc/lbt-tls/ca.pem"
                ),
            );
        }
        let playbook = |ca: &str| {
            format!(
                "- hosts: balancers\n  tasks:\n    - haproxy:\n        group: postgres\n        \
                 stats: {{port: 7000}}\n        rest_api_tls:\n          ca_file: /etc/lbt-tls/{ca}\n          \
                 crt: \"/etc/lbt-tls/{{{{ inventory_hostname }}}}-both.pem\"\n\
                 - hosts: postgres\n  tasks:\n    - keepalived:\n        mode: patroni\n        \
                 group: postgres\n        vip: {PG_VIP}\n        virtual_router_id: 52\n        \
                 auth_pass: pgvip123\n        wait_timeout: 10\n        patroni_tls:\n          ca_file: /etc/lbt-tls/{ca}\n          \
                 cert_file: \"/etc/lbt-tls/{{{{ inventory_hostname }}}}.pem\"\n          \
                 key_file: \"/etc/lbt-tls/{{{{ inventory_hostname }}}}.key\"\n"
            )
        };
        let wait_states = |want: &[&str]| {
            let t = Instant::now();
            loop {
                let states = haproxy_states(&lab, "lb1");
                if states == want {
                    return t.elapsed();
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "{states:?}, wanted {want:?}"
                );
                std::thread::sleep(Duration::from_millis(500));
            }
        };
        // A CA that did not sign the REST API's certificates: every check fails.
        let main_pid = |h: &str| lab.ssh_ok(lab.ip(h), "systemctl show -p MainPID --value haproxy");
        let pid_before = main_pid("lb1");
        let bad = write_playbook(&lab, "tls-bad.yml", &playbook("other-ca.pem"));
        let (code, out) = apply(&lab, &bad);
        // HAProxy is reloaded; keepalived too, and then no host may hold the VIP: the apply
        // that would leave clients without it fails, naming it
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains(&format!("VIP `{PG_VIP}` does not answer from `pg")),
            "{out}"
        );
        assert!(out.contains("reload `haproxy`"), "{out}");
        assert_eq!(main_pid("lb1"), pid_before, "reloaded, not restarted");
        wait_states(&[
            "postgres_writer/pg1 DOWN",
            "postgres_writer/pg2 DOWN",
            "postgres_readers/pg1 DOWN",
            "postgres_readers/pg2 DOWN",
        ]);
        poll::until(
            "no host holding the VIP",
            Duration::from_secs(15),
            Duration::from_millis(200),
            || holders(&lab, &["pg1", "pg2"], PG_VIP),
            |h| h.is_empty(),
        );
        // The right CA (and client certificates): pg2 is the primary since the switchover.
        let good = write_playbook(&lab, "tls.yml", &playbook("ca.pem"));
        let (code, out) = apply(&lab, &good);
        assert_eq!(code, 0, "{out}");
        let took = wait_states(&[
            "postgres_writer/pg1 DOWN",
            "postgres_writer/pg2 UP",
            "postgres_readers/pg1 UP",
            "postgres_readers/pg2 DOWN",
        ]);
        eprintln!(
            "TLS checks: servers up {:.1} s after the apply",
            took.as_secs_f64()
        );
        let pgs = ["pg1", "pg2"];
        let (holder, _) =
            wait_for_single_holder(&lab, &pgs, PG_VIP, |_| true, Duration::from_secs(20));
        assert_eq!(holder, "pg2");
        lab.ssh_ok(lab.ip("pg2"), "echo replica > /run/fake-role");
        let t = Instant::now();
        lab.ssh_ok(lab.ip("pg1"), "echo primary > /run/fake-role");
        wait_for_single_holder(&lab, &pgs, PG_VIP, |h| h == "pg1", Duration::from_secs(30));
        eprintln!(
            "VIP `{PG_VIP}` followed the primary to pg1 over TLS in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (_, out) = apply(&lab, &good);
        assert!(changed_counts(&out).iter().all(|(_, n)| *n == 0), "{out}");
    });

    c.finish();
}
