use super::*;

fn params(yaml: &str) -> Etcd {
    serde_yaml_ng::from_str(yaml).unwrap()
}

fn members() -> Vec<Member> {
    (1..=3)
        .map(|i| Member {
            name: format!("pg{i}"),
            address: format!("10.0.0.{i}"),
        })
        .collect()
}

fn peer(m: &Member) -> String {
    url(&m.address, 2380)
}

fn listed(id: u64, name: &str, ip: &str) -> Listed {
    Listed {
        id,
        name: name.into(),
        peer_urls: vec![format!("https://{ip}:2380")],
        client_urls: if name.is_empty() {
            vec![]
        } else {
            vec![format!("https://{ip}:2379")]
        },
    }
}

#[test]
fn env_file_snapshot() {
    let p = params("members: [pg1, pg2, pg3]");
    let ms = members();
    let cluster: Vec<(String, String)> = ms.iter().map(|m| (m.name.clone(), peer(m))).collect();
    insta::assert_snapshot!(p.render(&ms[0], &cluster, ClusterState::New));
}

#[test]
fn fresh_cluster_is_new_with_the_inventory_members() {
    let ms = members();
    let d = decide(&ms, &ms[0], false, None, peer);
    assert_eq!(d.state, ClusterState::New);
    assert!(!d.add && !d.join && d.stale.is_empty());
    assert_eq!(d.initial_cluster.len(), 3);
    assert_eq!(
        d.initial_cluster[1],
        ("pg2".to_string(), "https://10.0.0.2:2380".to_string())
    );
}

#[test]
fn a_member_with_data_is_existing_and_never_added() {
    let ms = members();
    let d = decide(&ms, &ms[0], true, None, peer);
    assert_eq!(d.state, ClusterState::Existing);
    assert!(!d.add && !d.join);
    let l = [listed(1, "pg1", "10.0.0.1"), listed(2, "pg2", "10.0.0.2")];
    let d = decide(&ms, &ms[0], true, Some(&l), peer);
    assert_eq!(d.state, ClusterState::Existing);
    assert!(!d.add && !d.join);
}

#[test]
fn a_new_host_joins_the_running_cluster() {
    let mut ms = members();
    ms.push(Member {
        name: "pg4".into(),
        address: "10.0.0.4".into(),
    });
    let l = [
        listed(3, "pg3", "10.0.0.3"),
        listed(1, "pg1", "10.0.0.1"),
        listed(2, "pg2", "10.0.0.2"),
    ];
    let d = decide(&ms, &ms[3], false, Some(&l), peer);
    assert_eq!(d.state, ClusterState::Existing);
    assert!(d.add && d.join);
    let names: Vec<&str> = d.initial_cluster.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pg1", "pg2", "pg3", "pg4"]);
    // Added by an earlier run that stopped before starting it: not added twice.
    let mut l2 = l.to_vec();
    l2.push(listed(4, "", "10.0.0.4"));
    let d = decide(&ms, &ms[3], false, Some(&l2), peer);
    assert!(!d.add && d.join);
    assert_eq!(
        d.initial_cluster[3],
        ("pg4".into(), "https://10.0.0.4:2380".into())
    );
}

#[test]
fn members_missing_from_the_inventory_are_reported() {
    let ms = members();
    let l = [
        listed(1, "pg1", "10.0.0.1"),
        listed(2, "pg2", "10.0.0.2"),
        listed(3, "pg3", "10.0.0.3"),
        listed(9, "old", "10.0.0.9"),
    ];
    let d = decide(&ms, &ms[0], true, Some(&l), peer);
    assert_eq!(d.stale.len(), 1);
    assert_eq!(d.stale[0].name, "old");
}

#[test]
fn member_list_json() {
    let json = br#"{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"raft_term":2},"members":[{"ID":10276657743932975437,"name":"pg1","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]},{"ID":5,"peerURLs":["https://10.0.0.4:2380"]}]}"#;
    let l = parse_member_list(json).unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0].id, 10276657743932975437);
    assert_eq!(l[1].name, "");
    assert!(parse_member_list(b"not json").is_none());
}

#[test]
fn checks_name_the_field() {
    let p = params("members: [pg1, pg1, 'a b']\npeer_port: 2379\ndata_dir: var/lib/etcd");
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("/nonexistent"),
        inventory: None,
    };
    let problems: Vec<String> = p
        .check(&cx)
        .into_iter()
        .map(|p| format!("{}: {}", p.field.unwrap_or("-"), p.message))
        .collect();
    assert_eq!(
        problems,
        [
            "members: member `pg1` is listed twice: etcd member names must be unique",
            "members: `a b` cannot be an etcd member name",
            "peer_port: `peer_port` and `client_port` are both `2379`",
            "data_dir: `var/lib/etcd` is not an absolute path",
        ]
    );
    let e = serde_yaml_ng::from_str::<Etcd>("members: [a]\nstate: running").unwrap_err();
    assert!(e.to_string().contains("unknown variant `running`"), "{e}");
}

#[test]
fn certificate_coverage_is_checked_as_tls_clients_do() {
    let sans: std::collections::BTreeSet<String> =
        ["*.db.example", "Pg1.Lab", "10.0.0.1", "fd00::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for covered in [
        "10.0.0.1",
        "fd00:0::1",
        "pg1.lab",
        "PG1.LAB.",
        "pg2.db.example",
    ] {
        assert!(covers(&sans, covered), "{covered}");
    }
    for not in ["10.0.0.2", "pg2.lab", "db.example", "a.b.db.example", "pg1"] {
        assert!(!covers(&sans, not), "{not}");
    }
}

#[test]
fn urls_bracket_ipv6() {
    assert_eq!(url("fd00::1", 2379), "https://[fd00::1]:2379");
    assert_eq!(url("pg1", 2380), "https://pg1:2380");
}

mod with_a_fake_host {
    use super::*;
    use crate::common::fake::*;
    use pgdeploy_core::template::Facts;
    use pgdeploy_core::transport::ExecOutput;

    fn family(name: &str) -> Facts {
        let mut f = Facts::new();
        f.insert("ansible_os_family".into(), serde_json::json!(name));
        f
    }

    /// What the `configured` probe prints on a host with etcd's package installed and
    /// started once by pgdeploy, beside `extra` lines.
    fn installed(extra: &str) -> ExecOutput {
        output(
            0,
            &format!("{extra}executable\netcdctl\nuser\ndata_dir\nstamped\nunit=/lib/systemd/system/etcd.service\n"),
        )
    }

    fn started(probe: &str) -> Plan {
        let fake = MemoryTransport::default().answer("systemctl is-active", output(0, probe));
        let h = Harness::new(fake, family("Debian"));
        let p = params("members: [h1, h2, h3]");
        block_on(p.plan(&h.cx())).unwrap()
    }

    #[test]
    fn converged_member_only_waits_for_health() {
        let plan = started("active=active\nenabled=enabled\nfingerprint=ab\nstamp=ab\n");
        assert!(!plan.is_changed() && plan.needs_apply());
    }

    #[test]
    fn changed_configuration_restarts_and_fresh_cluster_flips_to_existing() {
        let plan = started("active=active\nenabled=enabled\nfingerprint=ab\nstamp=cd\nfresh=yes\n");
        let s: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(
            s,
            [
                "restart `etcd`: `/etc/default/etcd` or its certificates changed since it started",
                "set `ETCD_INITIAL_CLUSTER_STATE` to `existing` in `/etc/default/etcd` once the cluster is healthy",
            ]
        );
        let plan = started("active=inactive\nenabled=disabled\nfingerprint=ab\nstamp=\n");
        let s: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(s, ["enable `etcd`", "start `etcd`"]);
    }

    #[test]
    fn configured_host_with_member_data_is_existing_and_not_added() {
        let fake = MemoryTransport::default()
            .answer("/member ]", installed("member\ncerts\n"))
            .answer("if [ -e", output(0, "missing\nnolink\n"));
        let h = Harness::new(fake, family("Debian"));
        let p = params("state: configured\nmembers: [h1, h2, h3]");
        let plan = block_on(p.plan(&h.cx())).unwrap();
        let diff = plan.changes[0]
            .diff
            .as_ref()
            .unwrap()
            .after
            .clone()
            .unwrap();
        assert!(
            diff.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n"),
            "{diff}"
        );
        assert!(plan
            .changes
            .iter()
            .all(|c| !c.summary.contains("member add")));
        // No member answered the TCP probe: etcdctl was not run.
        assert!(h
            .transport
            .commands()
            .iter()
            .all(|c| !c.contains("ETCDCTL_API=3")));
    }

    #[test]
    fn dry_run_without_certificate_plans_the_addition_from_the_members_that_answer() {
        // No member data, no certificates yet; h2, h3 (and h1 itself) answer on the client port.
        let fake = MemoryTransport::default()
            .answer("/member ]", installed("open=0\nopen=1\nopen=2\n"))
            .answer("if [ -e", output(0, "missing\nnolink\n"));
        let h = Harness::new(fake, family("Debian"));
        let p = params("state: configured\nmembers: [h2, h3, h1]");
        let plan = block_on(p.plan(&h.cx())).unwrap();
        let s: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert!(
            s[0].starts_with("add etcd member `h1` (`https://h1:2380`) to the cluster through `https://h2:2379`, `https://h3:2379`"),
            "{s:?}"
        );
        assert!(
            s.last().unwrap().starts_with("start `etcd` to join"),
            "{s:?}"
        );
        let after = plan.changes[1]
            .diff
            .as_ref()
            .unwrap()
            .after
            .clone()
            .unwrap();
        assert!(
            after.contains("ETCD_INITIAL_CLUSTER_STATE=\"existing\""),
            "{after}"
        );
        assert!(
            plan.notes[0].contains("is not installed yet"),
            "{:?}",
            plan.notes
        );
        // The cluster was not asked (no certificate to ask with).
        assert!(h
            .transport
            .commands()
            .iter()
            .all(|c| !c.contains("ETCDCTL_API=3")));
    }

    /// `member list -w json` listing `names` (`hN` at `https://hN:2380`), as etcdctl prints it.
    fn member_list(names: &[(u64, &str)]) -> ExecOutput {
        let members: Vec<String> = names
            .iter()
            .map(|(id, n)| {
                format!(
                    r#"{{"ID":{id},"name":"{n}","peerURLs":["https://{n}:2380"],"clientURLs":["https://{n}:2379"]}}"#
                )
            })
            .collect();
        output(0, &format!(r#"{{"members":[{}]}}"#, members.join(",")))
    }

    #[test]
    fn a_removed_members_data_is_set_aside_and_it_joins_again() {
        // h1 has member data, but h2 and h3, which answer, no longer list it: it was removed.
        let fake = MemoryTransport::default()
            .answer("member list -w json", member_list(&[(2, "h2"), (3, "h3")]))
            .answer("/member ]", installed("member\ncerts\nopen=1\nopen=2\n"))
            .answer("if [ -e", output(0, "missing\nnolink\n"));
        let h = Harness::new(fake, family("Debian"));
        let p = params("state: configured\nmembers: [h1, h2, h3]");
        let plan = block_on(p.plan(&h.cx())).unwrap();
        let s: Vec<&str> = plan.changes.iter().map(|c| c.summary.as_str()).collect();
        assert!(
            s[0].starts_with("add etcd member `h1` (`https://h1:2380`) to the cluster through `https://h2:2379`, `https://h3:2379`"),
            "{s:?}"
        );
        assert!(
            s[1].starts_with("set `/var/lib/etcd/default/member` aside (`/var/lib/etcd/default/member.removed-TIME`)"),
            "{s:?}"
        );
        assert!(
            s.iter().any(|c| c.starts_with("start `etcd` to join")),
            "{s:?}"
        );
        // A member the cluster still lists keeps its data.
        let fake = MemoryTransport::default()
            .answer(
                "member list -w json",
                member_list(&[(1, "h1"), (2, "h2"), (3, "h3")]),
            )
            .answer(
                "/member ]",
                installed("member\ncerts\nopen=0\nopen=1\nopen=2\n"),
            )
            .answer("if [ -e", output(0, "missing\nnolink\n"));
        let h = Harness::new(fake, family("Debian"));
        let plan = block_on(p.plan(&h.cx())).unwrap();
        assert!(
            plan.changes
                .iter()
                .all(|c| !c.summary.contains("aside") && !c.summary.contains("add etcd member")),
            "{:?}",
            plan.changes
        );
    }

    #[test]
    fn a_member_no_inventory_host_is_removed_only_with_the_flag() {
        let fake = |healthy: &str| {
            MemoryTransport::default()
                .answer(
                    "member list -w json",
                    member_list(&[(1, "h1"), (2, "h2"), (3, "h3"), (9, "old")]),
                )
                .answer("endpoint health", output(0, healthy))
                .answer(
                    "/member ]",
                    installed("member\ncerts\nopen=0\nopen=1\nopen=2\n"),
                )
                .answer("if [ -e", output(0, "missing\nnolink\n"))
        };
        let p = params("state: configured\nmembers: [h1, h2, h3]");
        let all = "https://h1:2379\nhttps://h2:2379\nhttps://h3:2379\n";
        let h = Harness::new(fake(all), family("Debian"));
        let plan = block_on(p.plan(&h.cx())).unwrap();
        assert!(
            plan.changes.iter().all(|c| !c.summary.contains("remove")),
            "{:?}",
            plan.changes
        );
        assert!(
            plan.notes.iter().any(|n| n.starts_with(
                "etcd member `old` (https://old:2380) is not in the inventory: nothing is removed without `--allow-removal`"
            )),
            "{:?}",
            plan.notes
        );
        let h = Harness::new(fake(all), family("Debian"));
        let mut cx = h.cx();
        cx.allow_removal = true;
        let plan = block_on(p.plan(&cx)).unwrap();
        assert!(
            plan.changes.iter().any(|c| c.summary
                == "remove etcd member `old` (`9`) through `https://h1:2379`, `https://h2:2379`, `https://h3:2379`"),
            "{:?}",
            plan.changes
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.contains("pgdeploy cannot stop its daemons")),
            "{:?}",
            plan.notes
        );
        // Only one of the three that stay answers: 1 of 4 is no quorum of 4.
        let h = Harness::new(fake("https://h2:2379\n"), family("Debian"));
        let mut cx = h.cx();
        cx.allow_removal = true;
        let err = block_on(p.plan(&cx)).unwrap_err().to_string();
        assert!(
            err.contains("would leave 1 healthy member(s) of 4"),
            "{err}"
        );
    }

    /// A certificate from a throw-away CA with these SANs, as the stat probe prints it.
    fn installed_certificate(sans: &[&str]) -> ExecOutput {
        use crate::certificates::pki;
        let dir = tempfile::tempdir().unwrap();
        let paths = pki::CaPaths {
            cert: dir.path().join("ca.crt"),
            key: dir.path().join("ca.key"),
            generated: true,
        };
        let ca = pki::create_ca(&paths, "test CA", 30).unwrap();
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let leaf = pki::issue(&ca, "h1", &sans, 30).unwrap();
        output(0, &probe_file("644", &leaf.cert_pem))
    }

    fn configured_with_certificate(sans: &[&str]) -> Plan {
        let fake = MemoryTransport::default()
            .answer("/member ]", installed("certs\n"))
            .answer("/etc/etcd/pki/h1.crt ]", installed_certificate(sans))
            .answer("if [ -e", output(0, "missing\nnolink\n"));
        let h = Harness::new(fake, family("Debian"));
        let p = params("state: configured\nmembers: [h1, h2, h3]");
        block_on(p.plan(&h.cx())).unwrap()
    }

    #[test]
    fn a_certificate_without_the_advertised_address_is_reported() {
        let plan = configured_with_certificate(&["h9", "10.1.1.1"]);
        assert_eq!(
            plan.notes,
            ["`/etc/etcd/pki/h1.crt` does not cover `h1`, the address etcd advertises for `h1` (its SANs: 10.1.1.1, h9): etcd will not be started with it; the certificates task must reissue it"]
        );
        assert!(configured_with_certificate(&["h1", "localhost"])
            .notes
            .is_empty());
    }

    #[test]
    fn host_outside_members_is_an_error() {
        let h = Harness::new(MemoryTransport::default(), Facts::new());
        let p = params("state: configured\nmembers: [a, b, c]");
        let e = block_on(p.plan(&h.cx())).unwrap_err().to_string();
        assert_eq!(e, "host `h1` is not in `members` (a, b, c)");
    }
}

/// Fresh hosts of each OS family: `configured` then `started` applied on a new 3-member
/// cluster, the host asked nothing but the probes' answers below.
mod fresh_apply {
    use super::*;
    use crate::common::fake::*;
    use pgdeploy_core::template::Facts;

    fn facts(family: &str, dist: &str, major: &str) -> Facts {
        let mut f = Facts::new();
        f.insert("ansible_os_family".into(), serde_json::json!(family));
        f.insert("ansible_distribution".into(), serde_json::json!(dist));
        f.insert(
            "ansible_distribution_major_version".into(),
            serde_json::json!(major),
        );
        f
    }

    /// A host where `probe` is what the `configured` probe prints (the files it reads are
    /// missing) and etcd is stopped and disabled.
    fn fake(probe: &str) -> MemoryTransport {
        MemoryTransport::default()
            .answer("/member ]", output(0, probe))
            .answer("for p in", output(0, "missing\nmissing\nmissing\n--\n"))
            .answer(
                "systemctl is-active",
                output(
                    0,
                    "active=inactive\nenabled=disabled\nfingerprint=ab\nstamp=\nfresh=yes\n",
                ),
            )
            .answer("if [ -e", output(0, "missing\nnolink\n"))
    }

    fn scope(facts: &Facts) -> std::sync::Arc<pgdeploy_core::template::Scope> {
        let hosts: &[(&str, &str, &[&str])] = &[
            ("pg1", "10.0.0.1", &["postgres"]),
            ("pg2", "10.0.0.2", &["postgres"]),
            ("pg3", "10.0.0.3", &["postgres"]),
        ];
        let all = ["pg1", "pg2", "pg3"]
            .iter()
            .map(|h| (h.to_string(), facts.clone()))
            .collect();
        cluster_scope(hosts, all, "pg1", &["pg1", "pg2", "pg3"])
    }

    /// Plans and applies `configured` then `started` on `pg1`; the transcript and the plans'
    /// change summaries.
    fn apply(facts: Facts, probe: &str, extra: &str) -> (String, Vec<String>) {
        // What apply runs on a fresh host: the user and data directory, the unit, the start,
        // then the health check the start waits for.
        let t = fake(probe)
            .answer("install -d -o etcd -g", output(0, ""))
            .answer_exact("systemctl daemon-reload", output(0, ""))
            .answer("systemctl start --no-block etcd", output(0, ""))
            .answer(
                "endpoint health",
                output(
                    0,
                    "https://10.0.0.1:2379 is healthy: successfully committed proposal: took = 2ms\n",
                ),
            );
        let scope = scope(&facts);
        let cx = context("pg1", &t, &facts, &scope);
        let mut summaries = Vec::new();
        for state in ["configured", "started"] {
            let p = params(&format!(
                "state: {state}\nmembers: [pg1, pg2, pg3]\n{extra}"
            ));
            let plan = block_on(p.plan(&cx)).unwrap();
            summaries.extend(plan.changes.iter().map(|c| c.summary.clone()));
            block_on(p.apply(&cx, &plan)).unwrap();
        }
        (t.transcript(), summaries)
    }

    #[test]
    fn debian_12_with_the_packages_unit() {
        let (transcript, summaries) = apply(
            facts("Debian", "Debian", "12"),
            "executable\netcdctl\nuser\nunit=/lib/systemd/system/etcd.service\n",
            "",
        );
        assert!(!transcript.contains("daemon-reload"), "{transcript}");
        assert!(!transcript.contains("> /etc/systemd/system/etcd.service"));
        insta::assert_snapshot!("fresh_debian12_summaries", summaries.join("\n"));
        insta::assert_snapshot!("fresh_debian12", transcript);
    }

    #[test]
    fn ubuntu_24_04_from_a_release_tarball() {
        let (transcript, summaries) = apply(
            facts("Debian", "Ubuntu", "24"),
            "executable\netcdctl\n",
            "executable: /usr/local/bin/etcd\netcdctl: /usr/local/bin/etcdctl\n",
        );
        assert!(
            transcript.contains("$ systemctl daemon-reload"),
            "{transcript}"
        );
        insta::assert_snapshot!("fresh_ubuntu2404_summaries", summaries.join("\n"));
        insta::assert_snapshot!("fresh_ubuntu2404", transcript);
    }

    #[test]
    fn rocky_9_from_a_release_tarball() {
        let (transcript, summaries) =
            apply(facts("RedHat", "Rocky", "9"), "executable\netcdctl\n", "");
        assert!(
            transcript.contains("> /etc/etcd/etcd.conf (root:root 0644)"),
            "{transcript}"
        );
        insta::assert_snapshot!("fresh_rocky9_summaries", summaries.join("\n"));
        insta::assert_snapshot!("fresh_rocky9", transcript);
    }

    #[test]
    fn the_unit_is_written_once_and_a_converged_host_changes_nothing() {
        let f = facts("RedHat", "Rocky", "9");
        let scope = scope(&f);
        let p = params("state: configured\nmembers: [pg1, pg2, pg3]");
        // What the module wrote on the first run, read back.
        let cluster: Vec<(String, String)> = (1..=3)
            .map(|i| (format!("pg{i}"), format!("https://10.0.0.{i}:2380")))
            .collect();
        let me = Member {
            name: "pg1".into(),
            address: "10.0.0.1".into(),
        };
        let files = [
            p.render(&me, &cluster, ClusterState::Existing),
            unit::render_unit("/usr/bin/etcd", "/etc/etcd/etcd.conf", "etcd"),
            unit::render_locator("/etc/etcd/etcd.conf", "/usr/bin/etcdctl"),
        ];
        let batch = {
            let mut s = String::from("exists\nexists\nexists\n--\n");
            for f in &files {
                s.push_str(&format!(
                    "regular file\troot\troot\t0\t0\t644\t{}\n",
                    f.len()
                ));
            }
            for f in &files {
                s.push_str(f);
            }
            for f in &files {
                s.push_str(&format!("{}\n", f.len()));
            }
            s
        };
        let t = MemoryTransport::default()
            .answer(
                "/member ]",
                output(0, "member\nexecutable\netcdctl\nuser\ndata_dir\nstamped\nunit=/etc/systemd/system/etcd.service\n"),
            )
            .answer("for p in", output(0, &batch));
        let cx = context("pg1", &t, &f, &scope);
        let plan = block_on(p.plan(&cx)).unwrap();
        assert!(!plan.needs_apply(), "{:?}", plan.changes);
        assert_eq!(t.commands().len(), 2, "the probe and the files' batch");
    }

    #[test]
    fn a_missing_executable_is_a_note_at_plan_and_an_error_at_apply() {
        let f = facts("RedHat", "Rocky", "9");
        let scope = scope(&f);
        let p = params("state: configured\nmembers: [pg1, pg2, pg3]");
        // A dry run on a bare host, before the packages task: planned, with a note.
        let t = fake("etcdctl\n");
        let cx = context("pg1", &t, &f, &scope);
        let plan = block_on(p.plan(&cx)).unwrap();
        assert!(
            plan.notes.iter().any(|n| n.contains("etcd is not installed on `pg1` yet (`/usr/bin/etcd` missing)")),
            "{:?}",
            plan.notes
        );
        // Still missing when the step applies: an error naming host, path and the fix,
        // before anything is written.
        let t = fake("etcdctl\n").answer("test -x", output(1, ""));
        let cx = context("pg1", &t, &f, &scope);
        let plan = block_on(p.plan(&cx)).unwrap();
        let e = block_on(p.apply(&cx, &plan)).unwrap_err().to_string();
        assert_eq!(
            e,
            "`/usr/bin/etcd` is not an executable on `pg1`: no unit `etcd.service` is installed either: install `etcd-server` or set `executable`"
        );
        assert!(t.written().is_empty());
        // With the package's unit, its `ExecStart` is what counts.
        let t = fake("etcdctl\nunit=/usr/lib/systemd/system/etcd.service\n");
        let cx = context("pg1", &t, &f, &scope);
        assert!(block_on(p.plan(&cx)).unwrap().notes.is_empty());
        let t = fake("executable\n").answer("test -x", output(1, ""));
        let cx = context("pg1", &t, &f, &scope);
        let plan = block_on(p.plan(&cx)).unwrap();
        let e = block_on(p.apply(&cx, &plan)).unwrap_err().to_string();
        assert_eq!(
            e,
            "`/usr/bin/etcdctl` is not an executable on `pg1`: install `etcd-client` or set `etcdctl`"
        );
    }

    #[test]
    fn data_left_by_the_packages_own_start_stops_the_step() {
        let f = facts("Debian", "Debian", "12");
        let scope = scope(&f);
        let p = params("state: configured\nmembers: [pg1, pg2, pg3]");
        let debian_default =
            "# ETCD_NAME=\"hostname\"\n#ETCD_INITIAL_CLUSTER=\"default=http://localhost:2380\"\n";
        let batch = format!(
            "exists\nmissing\nmissing\n--\nregular file\troot\troot\t0\t0\t644\t{n}\n{debian_default}{n}\n",
            n = debian_default.len()
        );
        let t = MemoryTransport::default()
            .answer(
                "/member ]",
                output(0, "member\nexecutable\netcdctl\nuser\ndata_dir\nunit=/lib/systemd/system/etcd.service\n"),
            )
            .answer("for p in", output(0, &batch));
        let cx = context("pg1", &t, &f, &scope);
        let e = block_on(p.plan(&cx)).unwrap_err().to_string();
        assert_eq!(
            e,
            "`/var/lib/etcd/default/member` on `pg1` was not made by pgdeploy: etcd was started with the package's defaults (`/etc/default/etcd` has no `ETCD_INITIAL_CLUSTER` and pgdeploy never started etcd here, no `/var/lib/pgdeploy/etcd.started`), which makes a lone single-member cluster, not a member of this one; pgdeploy never deletes data: if the host holds nothing of value, run `systemctl stop etcd && rm -rf /var/lib/etcd/default/member` on it and apply again, and install etcd with `packages: {start_services: false}`"
        );
        assert!(t.written().is_empty());
    }

    /// `started` plans from its declared probe alone, stopped or running (`configured` has
    /// no probes: it first asks which members answer, which drops kept answers anyway).
    #[test]
    fn probes_cover_plan() {
        use crate::common::probe_cover::assert_probes_cover;
        let f = facts("Debian", "Debian", "12");
        let scope = scope(&f);
        let p = params("state: started\nmembers: [pg1, pg2, pg3]");
        let t = fake("etcdctl\n");
        assert_probes_cover(&p, &context("pg1", &t, &f, &scope));
        let running = "active=active\nenabled=enabled\nfingerprint=ab\nstamp=ab\n";
        let t = MemoryTransport::default().answer("systemctl is-active", output(0, running));
        assert_probes_cover(&p, &context("pg1", &t, &f, &scope));
    }
}
