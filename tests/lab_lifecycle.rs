//! The lab end to end on one 3-host lab: SSH with verified host keys, systemd as PID 1, the
//! network between hosts, bare daemons, CAP_NET_ADMIN, idempotent `up`, power loss and restart,
//! partition and heal, and a `down` that leaves nothing behind.
//!
//! One test drives one lab (booting it is the expensive part) through every check in order; the
//! checks report by name and all run even when one fails

#[path = "support/checks.rs"]
mod checks;
#[path = "support/lab.rs"]
mod lab_support;
#[path = "support/poll.rs"]
mod poll;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use checks::Checks;
use clap::Parser;
use lab_support::{port22_open, LabFixture};
use pgdeploy_lab::{self as lab, HostRunState, LabCommand, UpOptions};

const NAME: &str = "pgdt1";
const SUBNET: &str = "10.213.201.0/24";

#[test]
fn lab_lifecycle() {
    let started = Instant::now();
    let Some(mut lab) = LabFixture::up(NAME, SUBNET, 3, 0) else {
        return;
    };
    eprintln!(
        "lab up: image {} ({:.0} s), 3 hosts ready in {:.1} s",
        if lab.info.image.built {
            "built"
        } else {
            "cached"
        },
        lab.info.image.seconds,
        lab.info.boot_seconds
    );
    let names = ["pg1", "pg2", "pg3"];
    let mut c = Checks::new();

    c.run("ssh_reaches_every_host_as_itself", || {
        for n in names {
            assert_eq!(lab.ssh_ok(lab.ip(n), "hostname"), n);
        }
    });
    c.run("inventory_lists_hosts_and_key", || {
        let text = std::fs::read_to_string(lab.inventory()).unwrap();
        let inv: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        let vars = &inv["all"]["vars"];
        assert_eq!(vars["ansible_user"].as_str(), Some("root"));
        assert_eq!(vars["lab_vip"].as_str(), Some("10.213.201.100"));
        assert_eq!(
            vars["ansible_ssh_private_key_file"].as_str(),
            Some(lab.info.key.to_str().unwrap())
        );
        for n in names {
            let ip = &inv["all"]["children"]["postgres"]["hosts"][n]["ansible_host"];
            assert_eq!(ip.as_str(), Some(lab.ip(n).to_string().as_str()));
        }
    });
    c.run("host_keys_are_distinct", || {
        let text = std::fs::read_to_string(&lab.info.known_hosts).unwrap();
        let keys: HashSet<&str> = text
            .lines()
            .filter(|l| l.contains("ssh-ed25519"))
            .filter_map(|l| l.split_whitespace().nth(2))
            .collect();
        assert_eq!(keys.len(), 3, "known_hosts:\n{text}");
        let served: HashSet<String> = names
            .iter()
            .map(|n| lab.ssh_ok(lab.ip(n), "cat /etc/ssh/ssh_host_ed25519_key.pub"))
            .collect();
        assert_eq!(served.len(), 3);
    });
    c.run("systemd_is_pid1", || {
        for n in names {
            assert_eq!(lab.ssh_ok(lab.ip(n), "ps -p 1 -o comm="), "systemd");
        }
    });
    c.run("hosts_reach_each_other", || {
        let pg2 = lab.ip("pg2");
        lab.ssh_ok(
            lab.ip("pg1"),
            &format!("ping -c1 -W2 {pg2} && ping -c1 -W2 pg3"),
        );
        let banner = lab.ssh_ok(
            lab.ip("pg1"),
            &format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{pg2}/22; head -c 4 <&3'"),
        );
        assert_eq!(banner, "SSH-");
    });
    c.run("hosts_start_bare_and_air_gapped", || {
        for n in names {
            let ip = lab.ip(n);
            // a freshly provisioned server: none of the stack, no apt source
            lab.ssh_ok(
                ip,
                "test ! -e /usr/lib/postgresql && ! command -v etcd && ! command -v patroni \
                 && ! command -v haproxy && ! command -v keepalived && ! command -v pgbackrest \
                 && ! command -v pglift && test ! -e /opt/patroni \
                 && ! grep -rqs '^[^#]' /etc/apt/sources.list /etc/apt/sources.list.d",
            );
            let versions = lab.ssh_ok(ip, "python3 --version && curl --version | head -1");
            assert!(versions.contains("Python 3.11"), "{versions}");
        }
    });
    c.run("the_mirror_serves_a_signed_repository_and_wheels", || {
        let urls = &lab.info.mirror_urls;
        let server = lab::mirror_status(NAME).unwrap().expect("the mirror runs");
        assert_eq!(server.url, urls.base);
        let inv = std::fs::read_to_string(lab.inventory()).unwrap();
        for url in [&urls.apt, &urls.apt_key, &urls.python] {
            assert!(inv.contains(url.as_str()), "{url} not in the inventory:\n{inv}");
        }
        // from a host: the key and the repository over HTTP
        let ip = lab.ip("pg1");
        let key = lab.ssh_ok(ip, &format!("curl -fsS {}", urls.apt_key));
        assert!(key.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"), "{key}");
        let release = lab.ssh_ok(
            ip,
            &format!("curl -fsS {}/dists/bookworm-pgdg/InRelease", urls.apt),
        );
        assert!(release.contains("\nCodename: bookworm-pgdg\n"), "{release}");
        // signed by that key (checked here with gpgv: the bare hosts have no gpg to dearmor)
        let dir = lab.dir.path();
        std::fs::write(dir.join("InRelease"), format!("{release}\n")).unwrap();
        std::fs::write(dir.join("key.asc"), format!("{key}\n")).unwrap();
        let verify = std::process::Command::new("sh")
            .arg("-c")
            .arg("gpg --batch --yes --dearmor -o key.gpg key.asc && gpgv --keyring ./key.gpg InRelease")
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let wheels = lab.ssh_ok(ip, &format!("curl -fsS {}", urls.python));
        assert!(wheels.contains("patroni-4."), "{wheels}");
        assert!(wheels.contains("pglift"), "{wheels}");
        // the bridge only: the server listens on the bridge's address, never on all of them
        // (other labs' servers listen on their own bridges)
        let listen = std::process::Command::new("ss")
            .args(["-Hltn", "sport = :8480"])
            .output()
            .unwrap();
        let listen = String::from_utf8_lossy(&listen.stdout);
        let ours = format!("{}:8480 ", lab.info.subnet.gateway());
        assert!(listen.lines().any(|l| l.contains(&ours)), "{listen}");
        assert!(
            !listen.lines().any(|l| l.contains(" 0.0.0.0:8480 ") || l.contains(" *:8480 ") || l.contains("[::]:8480")),
            "{listen}"
        );
    });
    c.run("vip_can_be_added_inside", || {
        let vip = lab.info.vip;
        lab.ssh_ok(
            lab.ip("pg1"),
            &format!(
                "ip addr add {vip}/24 dev host0 && ip -4 -o addr show dev host0 | grep -q {vip} \
                 && ip addr del {vip}/24 dev host0"
            ),
        );
    });
    c.run("exec_runs_inside_and_returns_status", || {
        let out = lab::exec_output(
            NAME,
            "pg3",
            &["sh".into(), "-c".into(), "hostname; exit 3".into()],
        )
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pg3");
        assert_eq!(out.status.code(), Some(3));
    });
    c.run("second_up_is_idempotent", || {
        let before: Vec<i32> = lab.info.hosts.iter().map(|h| h.init_pid).collect();
        let mut opts = UpOptions::new(NAME, 3, 0);
        opts.subnet = SUBNET.parse().unwrap();
        opts.inventory = lab.inventory();
        let again = lab::up(&opts).unwrap();
        let after: Vec<i32> = again.hosts.iter().map(|h| h.init_pid).collect();
        assert_eq!(before, after);
        assert!(again.hosts.iter().all(|h| !h.booted));
    });
    c.run("overlapping_subnet_is_refused", || {
        let mut opts = UpOptions::new("pgdt9", 1, 0);
        opts.subnet = "10.213.0.0/16".parse().unwrap();
        let err = format!("{:#}", lab::up(&opts).unwrap_err());
        assert!(err.contains("overlaps"), "{err}");
        assert!(!std::path::Path::new("/var/lib/pgdeploy/lab/pgdt9").exists());
    });
    c.run("apply_converges_every_host_over_ssh", || {
        let (code, recap) = apply(&lab);
        assert_eq!(code, 0, "first apply");
        assert!(
            recap.iter().all(|h| h["changed"].as_u64() > Some(0)),
            "{recap:?}"
        );
        for n in names {
            let ip = lab.ip(n);
            let conf = lab.ssh_ok(ip, "cat /etc/pgdeploy/host.conf");
            assert!(conf.contains(&format!("name={n}\n")), "{conf}");
            assert!(conf.contains(&format!("address={ip}\n")), "{conf}");
            assert!(conf.contains("os=Debian 12"), "{conf}");
            assert_eq!(
                lab.ssh_ok(
                    ip,
                    "stat -c '%U %G %a' /etc/pgdeploy /etc/pgdeploy/host.conf"
                ),
                "root root 755\nroot root 644"
            );
            let members = lab.ssh_ok(ip, "cat /etc/pgdeploy/members");
            for m in names {
                assert!(members.contains(&format!("{m} {}", lab.ip(m))), "{members}");
            }
            // the handler ran once, notified by the new host description
            lab.ssh_ok(ip, "test -s /var/lib/pgdeploy-host-conf-changed");
        }
    });
    c.run("second_apply_changes_nothing", || {
        let stamp = |n| {
            lab.ssh_ok(
                lab.ip(n),
                "stat -c %Y.%N /var/lib/pgdeploy-host-conf-changed /etc/pgdeploy/host.conf",
            )
        };
        let before: Vec<String> = names.iter().map(|n| stamp(*n)).collect();
        let (code, recap) = apply(&lab);
        assert_eq!(code, 0);
        assert_eq!(recap.len(), 3);
        for h in &recap {
            assert_eq!(h["changed"], 0, "{h}");
            assert_eq!(h["failed"], 0, "{h}");
        }
        let after: Vec<String> = names.iter().map(|n| stamp(*n)).collect();
        assert_eq!(
            before, after,
            "a no-op apply rewrote files or ran the handler"
        );
    });
    c.run("unreachable_host_exits_4_while_others_converge", || {
        lab::kill(NAME, "pg2").unwrap();
        for n in ["pg1", "pg3"] {
            lab.ssh_ok(lab.ip(n), "rm /etc/pgdeploy/host.conf");
        }
        let (code, recap) = apply(&lab);
        lab::start(NAME, "pg2").unwrap();
        assert_eq!(code, 4, "{recap:?}");
        let by_host = |n: &str| recap.iter().find(|h| h["host"] == n).cloned().unwrap();
        assert_eq!(by_host("pg2")["unreachable"], true);
        for n in ["pg1", "pg3"] {
            assert_eq!(by_host(n)["failed"], 0);
            assert_eq!(by_host(n)["unreachable"], false);
            lab.ssh_ok(lab.ip(n), "test -s /etc/pgdeploy/host.conf");
        }
        let (code, _) = apply(&lab);
        assert_eq!(code, 0, "pg2 back: everything converged");
    });
    c.run("kill_mid_run_is_unreachable_and_start_converges", || {
        let slow = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lab/slow.yml");
        let pg2 = lab.ip("pg2");
        let (code, recap) = std::thread::scope(|s| {
            let killer = s.spawn(|| {
                // The power goes while pg2 is connected and inside its 8 s step.
                poll::until(
                    "pg2 inside the slow step (`sleep 8` running)",
                    Duration::from_secs(60),
                    Duration::from_millis(200),
                    || lab.ssh(pg2, "pgrep -x -f 'sleep 8'").status.success(),
                    |running| *running,
                );
                lab::kill(NAME, "pg2").unwrap();
            });
            let run = apply_playbook(&lab, slow);
            killer.join().unwrap();
            run
        });
        lab::start(NAME, "pg2").unwrap();
        assert_eq!(code, 4, "{recap:?}");
        let by_host = |n: &str| recap.iter().find(|h| h["host"] == n).cloned().unwrap();
        assert_eq!(by_host("pg2")["unreachable"], true, "{recap:?}");
        for n in ["pg1", "pg3"] {
            assert_eq!(by_host(n)["failed"], 0);
            lab.ssh_ok(lab.ip(n), "test -d /var/lib/pgdeploy-mid-run");
        }
        let (code, recap) = apply_playbook(&lab, slow);
        assert_eq!(code, 0, "pg2 back: {recap:?}");
        lab.ssh_ok(lab.ip("pg2"), "test -d /var/lib/pgdeploy-mid-run");
    });
    c.run("kill_is_power_loss_and_start_boots_again", || {
        let pg2 = lab.ip("pg2");
        let key_before = lab.ssh_ok(pg2, "cat /etc/ssh/ssh_host_ed25519_key.pub");
        lab.ssh_ok(pg2, "echo survives > /root/disk-state && sync");
        let t = Instant::now();
        lab::kill(NAME, "pg2").unwrap();
        assert!(
            !port22_open(pg2, Duration::from_secs(2)),
            "pg2 still answers"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
        for n in ["pg1", "pg3"] {
            assert_eq!(lab.ssh_ok(lab.ip(n), "hostname"), n);
        }
        let status = lab::status(NAME).unwrap();
        assert_eq!(status[1].state, HostRunState::Stopped);
        lab::start(NAME, "pg2").unwrap();
        // same known_hosts, strict checking: the host key did not change
        assert_eq!(
            lab.ssh_ok(pg2, "cat /etc/ssh/ssh_host_ed25519_key.pub"),
            key_before
        );
        assert_eq!(lab.ssh_ok(pg2, "cat /root/disk-state"), "survives");
    });
    c.run("partition_and_heal", || {
        let pg3 = lab.ip("pg3");
        lab::partition(NAME, "pg3", false).unwrap();
        assert!(!port22_open(pg3, Duration::from_secs(2)));
        assert!(!lab
            .ssh(lab.ip("pg1"), &format!("ping -c1 -W1 {pg3}"))
            .status
            .success());
        assert_eq!(
            lab::status(NAME).unwrap()[2].state,
            HostRunState::Partitioned
        );
        lab::partition(NAME, "pg3", true).unwrap();
        assert_eq!(lab.ssh_ok(pg3, "hostname"), "pg3");
        lab.ssh_ok(lab.ip("pg1"), &format!("ping -c1 -W2 {pg3}"));
    });
    c.run("status_reports_memory", || {
        let rows = lab::status(NAME).unwrap();
        for r in &rows {
            assert_eq!(r.state, HostRunState::Running);
            let mib = r.memory_kib.unwrap() / 1024;
            eprintln!("  {} idle memory {mib} MiB", r.name);
            assert!((1..512).contains(&mib));
        }
    });
    c.run("down_leaves_nothing", || {
        let namespaces: Vec<u64> = namespaces_of(NAME);
        assert_eq!(namespaces.len(), 3);
        let inventory = lab.inventory();
        let server = lab::mirror_status(NAME).unwrap().expect("the mirror runs");
        lab.down();
        // gone, or a zombie its new parent has not reaped yet (nginx daemonized)
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", server.pid)).unwrap_or_default();
        assert!(
            stat.is_empty()
                || stat
                    .rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z')),
            "the mirror server {} is still running: {stat}",
            server.pid
        );
        let links = String::from_utf8(
            std::process::Command::new("ip")
                .args(["-o", "link"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(!links.contains(&format!("vb-{NAME}-")), "{links}");
        assert!(!links.contains(&format!("pgdbr-{NAME}")), "{links}");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        assert!(!mounts.contains(&format!("/lab/{NAME}/")), "{mounts}");
        for pid in all_pids() {
            let ns = pid_ns(pid);
            assert!(
                ns.is_none_or(|ns| !namespaces.contains(&ns)),
                "process {pid} of the lab is still alive"
            );
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            });
            assert!(
                zombie || !cmdline.contains(&format!("{NAME}-pg")),
                "nspawn {pid} of the lab is still alive: {cmdline}"
            );
        }
        assert!(!std::path::Path::new(&format!("/var/lib/pgdeploy/lab/{NAME}")).exists());
        assert!(!inventory.exists());
        lab::down(NAME).expect("second down is a no-op");
    });

    eprintln!(
        "lab lifecycle took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    c.finish();
}

/// `pgdeploy apply --json` of the README's playbook on the lab: exit code and recap rows.
fn apply(lab: &LabFixture) -> (i32, Vec<serde_json::Value>) {
    apply_playbook(
        lab,
        concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/hosts.yml"),
    )
}

fn apply_playbook(lab: &LabFixture, playbook: &str) -> (i32, Vec<serde_json::Value>) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .args(["apply", "--json", "-i"])
        .arg(lab.inventory())
        .arg(playbook)
        .output()
        .expect("pgdeploy runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let recap = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "recap")
        .unwrap_or_else(|| {
            panic!(
                "no recap; stdout:\n{stdout}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let hosts = recap["hosts"].as_array().cloned().unwrap_or_default();
    (out.status.code().unwrap_or(-1), hosts)
}

fn namespaces_of(name: &str) -> Vec<u64> {
    lab::status(name)
        .unwrap()
        .iter()
        .filter_map(|r| r.init_pid)
        .filter_map(pid_ns)
        .collect()
}

fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn pid_ns(pid: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
    link.to_str()?
        .strip_prefix("pid:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The CLI parses as documented (no root needed)
#[test]
fn cli_parses() {
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        lab: LabCommand,
    }
    let cli = Cli::try_parse_from(["lab", "exec", "--name", "x", "pg1", "--", "ls", "-l"]).unwrap();
    match cli.lab {
        LabCommand::Exec { lab, node, command } => {
            assert_eq!((lab.name.as_str(), node.as_str()), ("x", "pg1"));
            assert_eq!(command, ["ls", "-l"]);
        }
        other => panic!("parsed as {other:?}"),
    }
    let cli = Cli::try_parse_from(["lab", "up", "--nodes", "6", "--balancers", "2"]).unwrap();
    match cli.lab {
        LabCommand::Up {
            lab,
            nodes,
            balancers,
            subnet,
            ..
        } => {
            assert_eq!((lab.name.as_str(), nodes, balancers), ("pgd", 6, 2));
            assert_eq!(subnet, "10.213.7.0/24");
        }
        other => panic!("parsed as {other:?}"),
    }
    assert!(Cli::try_parse_from(["lab", "partition", "pg1", "--heal"]).is_ok());
}
