//! Loading whole inventories from files: fixtures under `tests/fixtures/inventory/`, the
//! example inventories, exact error output, and the load time of a large inventory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};

use super::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(rel)
}

/// Loads, failing the test on errors; returns the inventory and the warnings as text with
/// the machine-specific directory removed.
fn load_ok(rel: &str) -> (Inventory, String) {
    match load_with_warnings(&fixture(rel)) {
        Ok((inv, warnings)) => (inv, relative(&warnings.to_string())),
        Err(e) => panic!("{rel}:\n{e}"),
    }
}

fn load_err(rel: &str) -> String {
    match load(&fixture(rel)) {
        Ok(_) => panic!("{rel} loaded without errors"),
        Err(e) => relative(&e.to_string()),
    }
}

fn relative(text: &str) -> String {
    text.replace(
        &format!("{}/", concat!(env!("CARGO_MANIFEST_DIR"), "/../..")),
        "",
    )
}

fn var(inv: &Inventory, host: &str, name: &str) -> Value {
    inv.hosts[host]
        .vars
        .get(name)
        .map_or(Value::Null, |v| v.value.clone())
}

#[test]
fn yaml_nested_groups_with_group_vars_and_host_vars() {
    let (inv, warnings) = load_ok("tests/fixtures/inventory/nested/hosts.yml");
    assert_eq!(
        warnings,
        "warning: tests/fixtures/inventory/nested/group_vars/postgress.yml: group `postgress` is not in the \
         inventory; these variables are not used\n  help: did you mean `postgres`?\n"
    );
    assert_eq!(inv.hosts.keys().collect::<Vec<_>>(), ["pg1", "pg2", "pg3"]);
    assert_eq!(
        inv.hosts["pg1"].groups,
        ["all", "postgres", "primary", "etcd"]
    );
    assert_eq!(
        inv.groups["all"].children,
        ["ungrouped", "postgres", "etcd"]
    );

    // group_vars/ files beat every inventory group variable; the deepest group's file wins.
    assert_eq!(var(&inv, "pg1", "level"), json!("postgres-file"));
    assert_eq!(var(&inv, "pg2", "level"), json!("replica-file"));
    // host_vars/ beats everything.
    assert_eq!(var(&inv, "pg3", "level"), json!("host-file"));
    // group_vars/all.yml beats the inventory's `all` vars; the inventory's vars remain below.
    assert_eq!(var(&inv, "pg1", "site"), json!("group_vars"));
    assert_eq!(var(&inv, "pg1", "ansible_user"), json!("deploy"));
    // A directory of files, merged in sorted order.
    assert_eq!(var(&inv, "pg1", "pg_version"), json!(17));
    // Nested mappings replace, not merge.
    assert_eq!(
        var(&inv, "pg1", "patroni"),
        json!({"ttl": 30, "loop_wait": 10})
    );
    assert_eq!(var(&inv, "pg2", "patroni"), json!({"ttl": 40}));

    let pg1 = &inv.hosts["pg1"].connection;
    assert_eq!(
        (pg1.address.as_str(), pg1.port, pg1.user.as_deref()),
        ("10.0.0.1", None, Some("deploy"))
    );
    assert_eq!(inv.hosts["pg2"].connection.port, Some(2222));
    assert!(inv.hosts["pg3"].connection.become_);
    // A variable's origin is where the winning value was written.
    let origin = inv.hosts["pg3"].vars["level"].origin.to_string();
    assert_eq!(
        relative(&origin),
        "tests/fixtures/inventory/nested/host_vars/pg3:1:8"
    );
}

#[test]
fn ini_with_ranges_children_and_vars() {
    let (inv, warnings) = load_ok("tests/fixtures/inventory/ranges.ini");
    assert_eq!(warnings, "");
    assert_eq!(
        inv.groups["replica"].hosts,
        [
            "pg02",
            "pg03",
            "pg04",
            "db-a.example.com",
            "db-b.example.com",
            "db-c.example.com",
            "n1",
            "n5",
            "n9"
        ]
    );
    assert_eq!(inv.groups["ungrouped"].hosts, ["bastion"]);
    assert_eq!(inv.groups["pg"].children, ["primary", "replica"]);
    assert_eq!(var(&inv, "pg03", "note"), json!("replica node"));
    assert_eq!(var(&inv, "pg03", "max_connections"), json!(200));
    assert_eq!(inv.hosts["pg03"].connection.port, Some(2222));
    assert_eq!(inv.hosts["pg01"].connection.port, Some(2200));
    assert_eq!(inv.hosts["pg01"].connection.address, "10.0.1.1");
    assert_eq!(inv.hosts["n5"].connection.user.as_deref(), Some("postgres"));
    assert!(inv.hosts["n5"].connection.become_);
    assert_eq!(inv.hosts["bastion"].connection.user, None);
    assert_eq!(
        pattern::select(&inv, "pg:!db-*:&replica[0:1]").unwrap(),
        ["pg02", "pg03"]
    );
}

#[test]
fn a_directory_merges_its_inventory_files() {
    let (inv, warnings) = load_ok("tests/fixtures/inventory/dir");
    assert_eq!(warnings, "");
    assert_eq!(inv.groups["pg"].hosts, ["pg1", "pg2", "pg3"]);
    assert_eq!(var(&inv, "pg1", "from_yaml"), json!(true));
    assert_eq!(var(&inv, "pg3", "role"), json!("database"));
}

#[test]
fn yaml_errors_are_all_reported_with_position_and_path() {
    assert_eq!(
        load_err("tests/fixtures/inventory/errors/bad.yml"),
        "error: tests/fixtures/inventory/errors/bad.yml:5:9: all.children.postgres.hosts: must be a mapping of \
         host names, found a list\n  help: write each host as a key, with its variables or nothing: `hosts: \
         {pg1: , pg2: {ansible_port: 2222}}`\n\
         error: tests/fixtures/inventory/errors/bad.yml:7:7: all.children.etcd.host: unknown key `host` in group \
         `etcd`: a group has only `hosts`, `children` and `vars`\n  help: did you mean `hosts`?\n\
         error: tests/fixtures/inventory/errors/bad.yml:10:9: group `etcd` is its own ancestor: `etcd` -> `etcd`\n  \
         help: remove `etcd` from the children of `etcd`\n\
         error: tests/fixtures/inventory/errors/bad.yml:14:25: ansible_port: `ansible_port` must be a port number \
         from 1 to 65535, found `70000`\n\
         error: tests/fixtures/inventory/errors/bad.yml:15:31: ansible_connection: `ansible_connection` must be one \
         of `ssh`, `local`, `paramiko`, `smart`, found `winrm`\n"
    );
}

#[test]
fn ini_errors_are_all_reported_with_line_and_column() {
    assert_eq!(
        load_err("tests/fixtures/inventory/errors/bad.ini"),
        "error: tests/fixtures/inventory/errors/bad.ini:1:5: unknown section type `child` in `[pg:child]`\n  \
         help: did you mean `children`?\n\
         error: tests/fixtures/inventory/errors/bad.ini:5:21: expected `key=value` after the host name, found \
         `oops`\n  help: quote values that contain spaces: key=\"a value\"\n\
         error: tests/fixtures/inventory/errors/bad.ini:6:3: host range `[3:1]` begins after its end\n\
         error: tests/fixtures/inventory/errors/bad.ini:7:10: unclosed quote `\"`\n\
         error: tests/fixtures/inventory/errors/bad.ini:10:5: ansible_become: `ansible_become` must be a boolean \
         (`true`/`false`, `yes`/`no`), found `maybe`\n"
    );
}

#[test]
fn missing_inventory() {
    assert_eq!(
        load_err("tests/fixtures/inventory/nope.yml"),
        "error: tests/fixtures/inventory/nope.yml: the inventory does not exist\n"
    );
}

#[test]
fn playbook_vars_dirs_override_the_inventory_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("group_vars")).unwrap();
    std::fs::write(
        dir.path().join("group_vars/replica.yml"),
        "level: playbook\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("host_vars")).unwrap();
    std::fs::write(dir.path().join("host_vars/pg1.yml"), "ansible_port: nope\n").unwrap();
    let (mut inv, _) = load_ok("tests/fixtures/inventory/nested/hosts.yml");
    let err = add_vars_dirs(&mut inv, dir.path()).unwrap_err();
    assert!(err.to_string().ends_with("host_vars/pg1.yml:1:15: ansible_port: `ansible_port` must be a port number from 1 to 65535, found `nope`\n"), "{err}");
    std::fs::write(dir.path().join("host_vars/pg1.yml"), "ansible_port: 22\n").unwrap();
    let warnings = add_vars_dirs(&mut inv, dir.path()).unwrap();
    assert!(warnings.is_empty(), "{warnings}");
    assert_eq!(var(&inv, "pg2", "level"), json!("playbook"));
    assert_eq!(inv.hosts["pg1"].connection.port, Some(22));
}

#[test]
fn vars_files_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts"), "[pg]\npg1\n").unwrap();
    std::fs::create_dir(dir.path().join("group_vars")).unwrap();
    std::fs::write(dir.path().join("group_vars/pg.yml"), "a: [1\n").unwrap();
    std::fs::write(dir.path().join("group_vars/all"), "- just\n- a list\n").unwrap();
    std::fs::write(dir.path().join("group_vars/all.yml"), "ignored: true\n").unwrap();
    let err = load(&dir.path().join("hosts")).unwrap_err().to_string();
    let err = err.replace(&format!("{}/", dir.path().display()), "");
    assert!(err.contains("error: group_vars/all:1:1: a variables file must be a mapping of variable names, found a list\n"), "{err}");
    assert!(
        err.contains("warning: group_vars/all.yml: ignored: `"),
        "{err}"
    );
    assert!(err.contains("error: group_vars/pg.yml:"), "{err}");
}

#[test]
fn the_example_inventories_load() {
    let (inv, warnings) = load_ok("inventories/seed003.yml");
    assert_eq!(warnings, "");
    assert_eq!(
        pattern::select(&inv, "postgres").unwrap(),
        ["postgres-01", "postgres-02", "postgres-03"]
    );
    assert_eq!(
        pattern::select(&inv, "etcd:&patroni").unwrap(),
        pattern::select(&inv, "postgres").unwrap()
    );
    assert_eq!(
        pattern::select(&inv, "balancers").unwrap(),
        ["haproxy-01", "haproxy-02", "haproxy-03"]
    );
    assert_eq!(inv.hosts["postgres-03"].connection.address, "192.168.0.205");
    assert_eq!(inv.hosts["haproxy-01"].connection.address, "192.168.0.200");
    assert_eq!(var(&inv, "haproxy-02", "vip"), json!("192.168.0.210"));
    assert_eq!(var(&inv, "postgres-01", "etcd_peer_port"), json!(2380));

    let (inv, warnings) = load_ok("inventories/seed000.ini");
    assert_eq!(warnings, "");
    assert_eq!(inv.groups["primary"].hosts, ["srv-pg1"]);
    assert_eq!(inv.groups["replica"].hosts, ["srv-pg2", "srv-pg3"]);
    assert_eq!(
        pattern::select(&inv, "pg").unwrap(),
        ["srv-pg1", "srv-pg2", "srv-pg3"]
    );
    assert_eq!(inv.hosts["srv-pg2"].connection.address, "192.168.56.12");
    assert!(inv.hosts["srv-pg2"].connection.become_);
    assert_eq!(
        list::to_graph_text(&inv),
        "@all:\n  |--@pg:\n  |  |--@primary:\n  |  |  |--srv-pg1\n  |  |--@replica:\n  |  |  |--srv-pg2\n  \
         |  |  |--srv-pg3\n  |--@ungrouped:\n"
    );
}

#[test]
#[allow(clippy::print_stderr)] // its timings, for `--nocapture`
fn a_thousand_hosts_load_with_their_group_vars() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("all:\n  vars: {ansible_user: admin}\n  children:\n");
    for g in 0..10 {
        text.push_str(&format!(
            "    dc{g}:\n      vars: {{dc: {g}}}\n      children:\n"
        ));
        for r in 0..4 {
            text.push_str(&format!(
                "        dc{g}_rack{r}:\n          vars: {{rack: {r}}}\n          hosts:\n"
            ));
            for h in 0..25 {
                text.push_str(&format!(
                    "            h{g}-{r}-{h}: {{ansible_host: 10.{g}.{r}.{h}, ansible_port: 22}}\n"
                ));
            }
        }
    }
    let path = dir.path().join("big.yml");
    std::fs::write(&path, text).unwrap();
    let start = Instant::now();
    let inv = load(&path).unwrap();
    let took = start.elapsed();
    eprintln!("loaded 1000 hosts in {took:?}");
    assert_eq!(inv.hosts.len(), 1000);
    assert_eq!(var(&inv, "h3-2-7", "rack"), json!(2));

    // One flat INI group of 1000 hosts, in two groups each.
    let mut text = String::from("[pg]\n");
    text.extend((0..1000).map(|h| format!("pg{h} ansible_host=10.0.{}.{}\n", h / 250, h % 250)));
    text.push_str("[monitored:children]\npg\n[monitored:vars]\nansible_user=admin\n");
    let path = dir.path().join("big.ini");
    std::fs::write(&path, text).unwrap();
    let start = Instant::now();
    let inv = load(&path).unwrap();
    let took = start.elapsed();
    eprintln!("loaded 1000 INI hosts in {took:?}");
    assert_eq!(inv.groups["pg"].hosts.len(), 1000);
}

#[test]
fn a_bad_group_variable_is_reported_once_for_all_its_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.yml");
    std::fs::write(
        &path,
        "all:\n  hosts:\n    solo:\n  children:\n    pg:\n      vars: {ansible_become: perhaps}\n      hosts: {pg1: , pg2: }\n",
    )
    .unwrap();
    let err = load(&path).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    assert!(err.to_string().ends_with(
        "hosts.yml:6:30: ansible_become: `ansible_become` must be a boolean (`true`/`false`, `yes`/`no`), found `perhaps`\n"
    ), "{err}");

    // Hosts listed under `all` only are `ungrouped`; `--list` leaves `all`'s hosts out.
    std::fs::write(
        &path,
        "all:\n  hosts:\n    solo:\n  children:\n    pg:\n      hosts: {pg1: }\n",
    )
    .unwrap();
    let inv = load(&path).unwrap();
    assert_eq!(inv.groups["ungrouped"].hosts, ["solo"]);
    assert_eq!(
        list::to_ansible_list_json(&inv),
        json!({
            "_meta": {"hostvars": {}},
            "all": {"children": ["ungrouped", "pg"]},
            "pg": {"hosts": ["pg1"]},
            "ungrouped": {"hosts": ["solo"]},
        })
    );
}
