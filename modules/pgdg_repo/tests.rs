use serde_json::json;

use super::*;
use crate::common::fake::*;
use pgdeploy_core::diag::{FieldPath, SourceFile};
use pgdeploy_core::module::{Module, Typed};
use pgdeploy_core::template::Facts;
use pgdeploy_core::yaml::{from_node, load_str};

fn params(yaml: &str) -> PgdgRepo {
    let file = SourceFile::new("playbook.yml");
    let node = load_str(yaml, &file).expect("YAML");
    from_node(&node, &FieldPath::root().key("pgdg_repo")).expect("valid parameters")
}

/// The errors of `parse` as `path: message`.
fn refused(yaml: &str) -> Vec<String> {
    let file = SourceFile::new("playbook.yml");
    let node = load_str(yaml, &file).expect("YAML");
    let cx = ParseContext {
        playbook_dir: std::path::Path::new("/nonexistent"),
        inventory: None,
    };
    match Typed::<PgdgRepo>::new().parse(&node, &FieldPath::root().key("pgdg_repo"), &cx) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| {
                let path = e.path.as_ref().map(|p| p.to_string()).unwrap_or_default();
                format!("{path}: {e}")
            })
            .collect(),
    }
}

fn facts(family: &str, dist: &str, codename: &str, major: &str, arch: &str) -> Facts {
    let mut f = Facts::new();
    f.insert("ansible_os_family".into(), json!(family));
    f.insert("ansible_distribution".into(), json!(dist));
    f.insert("ansible_distribution_release".into(), json!(codename));
    f.insert("ansible_distribution_major_version".into(), json!(major));
    f.insert("ansible_architecture".into(), json!(arch));
    f
}

fn debian12() -> Facts {
    facts("Debian", "Debian", "bookworm", "12", "x86_64")
}
fn ubuntu2404() -> Facts {
    facts("Debian", "Ubuntu", "noble", "24", "aarch64")
}
fn rocky9() -> Facts {
    facts("RedHat", "Rocky", "", "9", "x86_64")
}

fn platform(f: Facts) -> Platform {
    let h = Harness::new(MemoryTransport::default(), f);
    Platform::from_facts(&h.cx()).expect("a supported family")
}

/// What the probe prints: the key, the module state, then the file's `stat` probe.
fn probe(key: bool, module: &str, file: Option<&str>) -> String {
    let key = if key { "present" } else { "missing" };
    let file = match file {
        Some(content) => probe_file("644", content),
        None => "missing\nnolink\n".to_string(),
    };
    format!("key={key}\nmodule={module}\n{file}")
}

fn harness(f: Facts, stdout: &str) -> Harness {
    Harness::new(
        applies(MemoryTransport::default().answer("key=present", output(0, stdout))),
        f,
    )
}

/// `fake` also answering, with success, what apply runs: the key download, the index
/// refresh (as `apt-get update` prints it), the module stream switch.
fn applies(fake: MemoryTransport) -> MemoryTransport {
    fake.answer("curl -fsSL --retry 3", output(0, ""))
        .answer(
            "Error-Mode=any update",
            output(
                0,
                "Hit:1 http://apt.postgresql.org/pub/repos/apt bookworm-pgdg InRelease\n\
                 Reading package lists...\n",
            ),
        )
        .answer_exact("dnf -qy module disable postgresql", output(0, ""))
        .answer_exact(
            "rm -f -- /etc/apt/sources.list.d/pgdg.sources",
            output(0, ""),
        )
}

fn summaries(plan: &Plan) -> Vec<String> {
    plan.changes.iter().map(|c| c.summary.clone()).collect()
}

#[test]
fn renders_debian_12() {
    let p = params("{}");
    insta::assert_snapshot!(
        "pgdg_repo_debian12",
        p.render(&platform(debian12())).unwrap()
    );
}

#[test]
fn renders_ubuntu_24_04() {
    let p = params("{}");
    insta::assert_snapshot!(
        "pgdg_repo_ubuntu2404",
        p.render(&platform(ubuntu2404())).unwrap()
    );
}

#[test]
fn renders_el9_with_two_versions_and_a_mirror() {
    let p = params("{versions: [16, 17], mirror: 'https://mirror.example.com/pgdg/yum/'}");
    insta::assert_snapshot!("pgdg_repo_el9", p.render(&platform(rocky9())).unwrap());
}

#[test]
fn a_fresh_debian_host_gets_key_source_and_update() {
    let p = params("{}");
    let h = harness(debian12(), &probe(false, "", None));
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert_eq!(
        summaries(&plan),
        [
            "download the signing key `/etc/apt/keyrings/pgdg.asc` from `https://www.postgresql.org/media/keys/ACCC4CF8.asc`",
            "create `/etc/apt/sources.list.d/pgdg.sources` (owner `root`, group `root`, mode `0644`)",
            "refresh the package index (`apt-get update`)",
        ]
    );
    assert_eq!(h.transport.commands().len(), 1, "one probe");
    block_on(p.apply(&h.cx(), &plan)).unwrap();
    let commands = h.transport.commands();
    assert!(commands[1].contains(
        "curl -fsSL --retry 3 -o \"$tmp\" -- https://www.postgresql.org/media/keys/ACCC4CF8.asc"
    ));
    assert!(commands[1].contains("BEGIN PGP PUBLIC KEY BLOCK"));
    assert!(commands[2].contains("apt-get -q -o APT::Update::Error-Mode=any update"));
    assert_eq!(commands.len(), 3);
    let written = h.transport.written();
    let (bytes, attrs) = &written[APT_SOURCE];
    assert_eq!(
        String::from_utf8_lossy(bytes),
        p.render(&platform(debian12())).unwrap()
    );
    assert_eq!(attrs.mode, Some(0o644));
    assert_eq!(attrs.owner.as_deref(), Some("root"));
}

#[test]
fn converged_hosts_plan_nothing() {
    for f in [debian12(), ubuntu2404(), rocky9()] {
        let p = params("{}");
        let rendered = p.render(&platform(f.clone())).unwrap();
        let h = harness(f, &probe(true, "disabled", Some(&rendered)));
        let plan = block_on(p.plan(&h.cx())).unwrap();
        assert!(!plan.needs_apply(), "{:?}", plan.changes);
        assert_eq!(h.transport.commands().len(), 1, "one probe, no write");
    }
}

#[test]
fn a_changed_mirror_updates_the_file_and_runs_apt_get_update() {
    let old = params("{}").render(&platform(debian12())).unwrap();
    let p = params("{mirror: 'http://mirror.lan/apt'}");
    let h = harness(debian12(), &probe(true, "", Some(&old)));
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert_eq!(
        summaries(&plan),
        [
            "update `/etc/apt/sources.list.d/pgdg.sources`",
            "refresh the package index (`apt-get update`)",
        ]
    );
    let diff = plan.changes[0].diff.as_ref().unwrap().unified();
    assert!(
        diff.contains("-URIs: https://apt.postgresql.org/pub/repos/apt"),
        "{diff}"
    );
    assert!(diff.contains("+URIs: http://mirror.lan/apt"), "{diff}");
    block_on(p.apply(&h.cx(), &plan)).unwrap();
    let commands = h.transport.commands();
    assert_eq!(commands.len(), 2, "{commands:?}");
    assert!(commands[1].contains("Error-Mode=any update"));
    assert!(!commands.iter().any(|c| c.contains("curl")));
}

#[test]
fn el9_disables_the_module_stream_once() {
    let p = params("{}");
    let rendered = p.render(&platform(rocky9())).unwrap();
    let h = harness(rocky9(), &probe(true, "enabled", Some(&rendered)));
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert_eq!(
        summaries(&plan),
        ["disable the `postgresql` module stream of dnf (`dnf -qy module disable postgresql`)"]
    );
    block_on(p.apply(&h.cx(), &plan)).unwrap();
    let commands = h.transport.commands();
    assert_eq!(commands[1], "dnf -qy module disable postgresql");
    assert!(!commands.iter().any(|c| c.contains("apt-get")));
}

#[test]
fn a_fresh_el9_host_gets_key_repo_and_module_disable() {
    let p = params("{key_url: 'https://mirror.lan/keys/PGDG'}");
    let h = harness(rocky9(), &probe(false, "", None));
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert_eq!(
        summaries(&plan),
        [
            "download the signing key `/etc/pki/rpm-gpg/PGDG-RPM-GPG-KEY-RHEL` from `https://mirror.lan/keys/PGDG`",
            "create `/etc/yum.repos.d/pgdg.repo` (owner `root`, group `root`, mode `0644`)",
            "disable the `postgresql` module stream of dnf (`dnf -qy module disable postgresql`)",
        ]
    );
}

#[test]
fn distro_removes_a_pgdg_file_and_nothing_else() {
    let p = params("{source: distro}");
    let old = params("{}").render(&platform(debian12())).unwrap();
    let h = Harness::new(
        applies(MemoryTransport::default().answer("stat", output(0, &probe_file("644", &old)))),
        debian12(),
    );
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert_eq!(
        summaries(&plan),
        [
            "remove `/etc/apt/sources.list.d/pgdg.sources` (`source: distro` uses the distribution's packages)",
            "refresh the package index (`apt-get update`)",
        ]
    );
    let diff = plan.changes[0].diff.as_ref().unwrap();
    assert_eq!(
        (diff.before.as_deref(), diff.after.as_deref()),
        (Some(old.as_str()), None)
    );
    block_on(p.apply(&h.cx(), &plan)).unwrap();
    let commands = h.transport.commands();
    assert_eq!(commands[1], "rm -f -- /etc/apt/sources.list.d/pgdg.sources");
    assert!(commands[2].contains("apt-get -q -o APT::Update::Error-Mode=any update"));
    assert!(h.transport.written().is_empty());
}

#[test]
fn distro_without_a_pgdg_file_changes_nothing() {
    let p = params("{source: distro}");
    let h = Harness::new(
        MemoryTransport::default().answer("stat", output(0, "missing\nnolink\n")),
        debian12(),
    );
    let plan = block_on(p.plan(&h.cx())).unwrap();
    assert!(!plan.needs_apply(), "{:?}", plan.changes);
    assert_eq!(h.transport.commands().len(), 1);
}

#[test]
fn an_unknown_os_family_is_an_error() {
    let p = params("{}");
    let h = Harness::new(
        MemoryTransport::default(),
        facts("Suse", "SLES", "", "15", "x86_64"),
    );
    let e = block_on(p.plan(&h.cx())).unwrap_err().to_string();
    assert_eq!(
        e,
        "`h1` is of OS family `Suse`; pgdg_repo supports `Debian` (APT) and `RedHat` (DNF)"
    );
    assert!(h.transport.commands().is_empty());
    let h = Harness::new(MemoryTransport::default(), Facts::new());
    let e = block_on(p.plan(&h.cx())).unwrap_err().to_string();
    assert!(e.contains("no `ansible_os_family` fact"), "{e}");
}

#[test]
fn a_probe_of_a_directory_is_an_error() {
    let p = params("{}");
    let out = "key=present\nmodule=\ndirectory\troot\troot\t0\t0\t755\nnolink\n";
    let h = harness(debian12(), out);
    let e = block_on(p.plan(&h.cx())).unwrap_err().to_string();
    assert_eq!(
        e,
        "`/etc/apt/sources.list.d/pgdg.sources` is a directory, not a file"
    );
}

#[test]
fn bad_params_are_refused_with_the_field_named() {
    assert_eq!(
        refused("{mirror: 'ftp://mirror.lan/apt', key_url: 'https:// x'}"),
        [
            "pgdg_repo.mirror: `ftp://mirror.lan/apt` is not an `http://` or `https://` URL",
            "pgdg_repo.key_url: `https:// x` is not an `http://` or `https://` URL",
        ]
    );
    assert_eq!(
        refused("{versions: [9, 17, 17]}"),
        [
            "pgdg_repo.versions: `9` is not a PostgreSQL major version (10 or later)",
            "pgdg_repo.versions: version `17` is listed twice",
        ]
    );
    assert_eq!(
        refused("{source: distro, mirror: 'https://m.lan/apt'}"),
        ["pgdg_repo.mirror: `mirror` has no effect with `source: distro`"]
    );
    assert_eq!(refused("{versions: []}").len(), 1);
    let unknown = refused("{mirrors: x}");
    assert!(
        unknown[0].contains("unknown field `mirrors`"),
        "{unknown:?}"
    );
    let bad_enum = refused("{source: ubuntu}");
    assert!(bad_enum[0].starts_with("pgdg_repo.source"), "{bad_enum:?}");
    assert!(refused("{}").is_empty());
}

#[test]
fn the_key_script_quotes_and_checks_the_download() {
    let s = key_script("https://m.lan/k ey.asc", APT_KEY);
    assert!(s.starts_with("install -d -m 0755 -- /etc/apt/keyrings && "));
    assert!(s.contains("-- 'https://m.lan/k ey.asc'"));
    assert!(s.contains("mv -f -- \"$tmp\" /etc/apt/keyrings/pgdg.asc"));
}

/// A fresh Debian host whose apply answers `needle` with `out`.
fn failing_apply(needle: &str, out: pgdeploy_core::transport::ExecOutput) -> String {
    let p = params("{mirror: 'http://127.0.0.1:9/pgdg', key_url: 'http://127.0.0.1:9/key.asc'}");
    let h = Harness::new(
        // The failing answer first: the first rule matching a command answers it.
        applies(
            MemoryTransport::default()
                .answer("key=present", output(0, &probe(false, "", None)))
                .answer(needle, out),
        ),
        debian12(),
    );
    let plan = block_on(p.plan(&h.cx())).unwrap();
    block_on(p.apply(&h.cx(), &plan)).unwrap_err().to_string()
}

fn failed(status: i32, stdout: &str, stderr: &str) -> pgdeploy_core::transport::ExecOutput {
    pgdeploy_core::transport::ExecOutput {
        status,
        stdout: stdout.into(),
        stderr: stderr.into(),
    }
}

#[test]
fn a_key_that_cannot_be_downloaded_names_the_url_and_curls_message() {
    let e = failing_apply(
        "curl -fsSL",
        failed(
            2,
            "",
            "curl: (7) Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server\n",
        ),
    );
    assert_eq!(
        e,
        "downloading the signing key from `http://127.0.0.1:9/key.asc` on `h1` failed: curl: (7) Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server"
    );
    let e = failing_apply("curl -fsSL", failed(3, "", ""));
    assert_eq!(
        e,
        "`http://127.0.0.1:9/key.asc` (downloaded on `h1`) is not an armored PGP public key: check `key_url`"
    );
}

#[test]
fn an_unreachable_mirror_fails_with_its_url() {
    let e = failing_apply(
        "Error-Mode=any update",
        failed(
            100,
            "Err:1 http://127.0.0.1:9/pgdg bookworm-pgdg InRelease\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n",
            "E: Failed to fetch http://127.0.0.1:9/pgdg/dists/bookworm-pgdg/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n\
             E: Some index files failed to download. They have been ignored, or old ones used instead.\n",
        ),
    );
    assert_eq!(
        e,
        "`apt-get update` on `h1` failed: `http://127.0.0.1:9/pgdg/dists/bookworm-pgdg/InRelease`: Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)"
    );
}

#[test]
fn an_unreachable_mirror_fails_even_when_apt_exits_0() {
    let e = failing_apply(
        "Error-Mode=any update",
        failed(
            0,
            "Err:1 http://127.0.0.1:9/pgdg bookworm-pgdg InRelease\n  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)\n",
            "",
        ),
    );
    assert!(
        e.starts_with("`apt-get update` on `h1` failed: `http://127.0.0.1:9/pgdg bookworm-pgdg InRelease`: Could not connect"),
        "{e}"
    );
}

#[test]
fn a_repository_signed_by_another_key_says_where_the_key_came_from() {
    let e = failing_apply(
        "Error-Mode=any update",
        failed(
            100,
            "",
            "W: GPG error: http://127.0.0.1:9/pgdg bookworm-pgdg InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 479EA7AC8F021082\n\
             E: The repository 'http://127.0.0.1:9/pgdg bookworm-pgdg InRelease' is not signed.\n",
        ),
    );
    assert_eq!(
        e,
        "`apt-get update` on `h1` failed: `http://127.0.0.1:9/pgdg bookworm-pgdg InRelease`: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 479EA7AC8F021082; `http://127.0.0.1:9/pgdg bookworm-pgdg InRelease` is not signed (the repository must be signed by the key in `/etc/apt/keyrings/pgdg.asc`, downloaded from `http://127.0.0.1:9/key.asc`; to replace that key, remove the file)"
    );
}
