//! The inventory as `ansible-inventory --list` (JSON) and `--graph` (text) show it, so that
//! the two tools' outputs can be compared, with secrets masked.

use serde_json::{Map, Value};

use super::build::ALL;
use super::Inventory;

use crate::secrets::{is_secret_name, MASK};

/// Replaces the values of secret variables, at any depth of nested mappings.
fn masked(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mask_var(k, v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

fn mask_var(name: &str, value: &Value) -> Value {
    if is_secret_name(name) && !value.is_null() {
        Value::String(MASK.to_string())
    } else {
        masked(value)
    }
}

/// Keys sorted at every depth, as `ansible-inventory` prints them (`sort_keys=True`).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// `ansible-inventory --list`: each group with its direct `hosts` and its `children`
/// (empty keys and empty groups left out, `all` without hosts), and `_meta.hostvars` with
/// each host's merged variables, secrets masked.
pub fn to_ansible_list_json(inv: &Inventory) -> Value {
    let mut out = Map::new();
    for g in inv.groups.values() {
        let mut entry = Map::new();
        if g.name != ALL && !g.hosts.is_empty() {
            entry.insert("hosts".into(), g.hosts.clone().into());
        }
        if !g.children.is_empty() {
            entry.insert("children".into(), g.children.clone().into());
        }
        if !entry.is_empty() {
            out.insert(g.name.clone(), Value::Object(entry));
        }
    }
    let mut hostvars = Map::new();
    for h in inv.hosts.values() {
        if h.vars.is_empty() {
            continue;
        }
        let vars: Map<String, Value> = h
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), mask_var(k, &v.value)))
            .collect();
        hostvars.insert(h.name.clone(), Value::Object(vars));
    }
    let mut meta = Map::new();
    meta.insert("hostvars".into(), Value::Object(hostvars));
    out.insert("_meta".into(), Value::Object(meta));
    sorted(Value::Object(out))
}

/// `ansible-inventory --graph`: the group tree from `all`, children then hosts, each sorted
/// by name.
pub fn to_graph_text(inv: &Inventory) -> String {
    let mut out = String::new();
    graph_group(inv, ALL, 0, &mut out);
    out
}

fn graph_group(inv: &Inventory, name: &str, depth: usize, out: &mut String) {
    let Some(g) = inv.groups.get(name) else {
        return;
    };
    line(out, depth, &format!("@{name}:"));
    let mut children: Vec<&str> = g.children.iter().map(String::as_str).collect();
    children.sort_unstable();
    for c in children {
        graph_group(inv, c, depth + 1, out);
    }
    if name != ALL {
        let mut hosts: Vec<&str> = g.hosts.iter().map(String::as_str).collect();
        hosts.sort_unstable();
        for h in hosts {
            line(out, depth + 1, h);
        }
    }
}

fn line(out: &mut String, depth: usize, text: &str) {
    if depth > 0 {
        out.push_str(&"  |".repeat(depth));
        out.push_str("--");
    }
    out.push_str(text);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::build::Builder;
    use crate::inventory::{merge, structure};
    use serde_json::json;

    fn inv() -> Inventory {
        let mut b = Builder::new();
        crate::inventory::ini::parse(
            &crate::diag::SourceFile::new("hosts"),
            "bastion\n[primary]\npg1 ansible_host=10.0.0.1 db_password=hunter2\n[replica]\npg3\npg2\n\
             [pg:children]\nprimary\nreplica\n[pg:vars]\napi_token=abc\nconf={'superuser_passwd': 'x', 'port': 5432}\n",
            &mut b,
        );
        let (mut inv, diags) = structure::finish(b);
        assert!(diags.is_empty(), "{diags}");
        assert!(merge::resolve(&mut inv).is_empty());
        inv
    }

    #[test]
    fn secret_names() {
        for name in [
            "db_password",
            "PGPASSWD",
            "vault_secret",
            "api_token",
            "ssh_passphrase",
            "aws_api_key",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "ansible_ssh_private_key_file",
            "ansible_user",
            "become_user",
            "port",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn list_json_like_ansible_inventory() {
        let masked_pg =
            json!({"api_token": MASK, "conf": {"port": 5432, "superuser_passwd": MASK}});
        assert_eq!(
            to_ansible_list_json(&inv()),
            json!({
                "_meta": {"hostvars": {
                    "pg1": {"ansible_host": "10.0.0.1", "api_token": MASK,
                            "conf": masked_pg["conf"], "db_password": MASK},
                    "pg2": masked_pg,
                    "pg3": masked_pg,
                }},
                "all": {"children": ["ungrouped", "pg"]},
                "pg": {"children": ["primary", "replica"]},
                "primary": {"hosts": ["pg1"]},
                "replica": {"hosts": ["pg3", "pg2"]},
                "ungrouped": {"hosts": ["bastion"]},
            })
        );
        let keys: Vec<String> = to_ansible_list_json(&inv())
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            ["_meta", "all", "pg", "primary", "replica", "ungrouped"]
        );
    }

    #[test]
    fn graph_like_ansible_inventory() {
        assert_eq!(
            to_graph_text(&inv()),
            "@all:\n  |--@pg:\n  |  |--@primary:\n  |  |  |--pg1\n  |  |--@replica:\n  |  |  |--pg2\n  |  |  |--pg3\n  \
             |--@ungrouped:\n  |  |--bastion\n"
        );
    }
}
