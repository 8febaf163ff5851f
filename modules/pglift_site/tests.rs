use super::*;
use pgdeploy_core::diag::{FieldPath, SourceFile};
use pgdeploy_core::yaml::{from_node, load_str};

fn params(yaml: &str) -> Result<PgliftSite, String> {
    let file = SourceFile::new("playbook.yml");
    let node = load_str(yaml, &file).expect("YAML");
    from_node(&node, &FieldPath::root().key("pglift_site")).map_err(|e| e.to_string())
}

const SEED: &str = r#"
install: {find_links: "http://10.213.40.1:8480/python/", version: 3.3.0, extra: ["patroni[etcd3]"]}
settings:
  prefix: /pgdata/pglift
  service_manager: null
  postgresql:
    bindir: /usr/lib/postgresql/{version}/bin
    default_version: 15
    datadir: /pgdata/{version}/{name}/data
    auth: {local: peer, host: scram-sha-256}
    backuprole: {name: backup}
    replrole: replication
  pgbackrest:
    repository: {mode: path, path: /pgdata/backup/pgbackrest}
  patroni:
    execpath: /opt/pglift/bin/patroni
    etcd:
      hosts: "10.0.0.1:2379, 10.0.0.2:2379"
      protocol: https
    restapi: {verify_client: required}
    postgresql: {use_pg_rewind: true}
pg_hba: |
  local all {surole} {auth.local}
"#;

#[test]
fn seed_settings_render_with_only_the_keys_given() {
    let p = params(SEED).unwrap();
    let text = p.settings.render();
    assert!(text.contains("service_manager: null"), "{text}");
    assert!(text.contains("default_version: '15'"), "{text}");
    assert!(text.contains("- 10.0.0.1:2379"), "{text}");
    assert!(text.contains("use_pg_rewind: true"), "{text}");
    assert!(!text.contains("systemd"), "{text}");
    assert!(!text.contains("scheduler"), "{text}");
    // read back, the same settings
    let again: Settings = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(again, p.settings);
}

#[test]
fn a_typo_in_the_settings_is_an_error() {
    let e = params("settings: {patroni: {etcd: {hots: []}}}").unwrap_err();
    assert!(e.contains("hots"), "{e}");
    // pglift 3.3 has no `patroni.watchdog` setting: refused rather than ignored
    let e = params("settings: {patroni: {watchdog: {mode: 'off'}}}").unwrap_err();
    assert!(e.contains("watchdog"), "{e}");
}

#[test]
fn pip_script_trusts_an_http_mirror_and_stamps_only_on_success() {
    let p = params(SEED).unwrap();
    let s = p.install.pip_script();
    assert!(s.contains("--no-index --find-links http://10.213.40.1:8480/python/ --trusted-host 10.213.40.1:8480"), "{s}");
    assert!(
        s.contains("pglift==3.3.0 pglift-cli==3.3.0 'patroni[etcd3]'"),
        "{s}"
    );
    assert!(s.ends_with("> /opt/pglift/.pgdeploy-pip"), "{s}");
    assert_eq!(p.install.executable(), "/opt/pglift/bin/pglift");
}

#[test]
fn install_fields_belong_to_their_method() {
    let p = params("install: {method: none, find_links: /x}").unwrap();
    assert_eq!(p.install.check().len(), 1);
    let p = params("install: {executable: /usr/bin/pglift}").unwrap();
    assert_eq!(p.install.check().len(), 1);
}

#[test]
fn site_configure_runs_as_the_system_user() {
    let c = as_user("postgres", "/opt/pglift/bin/pglift site-configure install");
    assert!(
        c.starts_with("cd / && if [ \"$(id -un)\" = postgres ]"),
        "{c}"
    );
    assert!(c.contains("runuser -u postgres -- sh -c"), "{c}");
}
