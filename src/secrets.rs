//! Secrets: which values are secret, and masking them in everything pgdeploy prints.
//!
//! Masking is by value, at the output boundary: every line, diff, JSON event and error
//! message goes through [`Redactor::mask`], so a secret that reached a rendered file (and
//! so a diff) is still never shown.

use std::sync::Arc;

use crate::inventory::Inventory;

/// What a masked secret is shown as.
pub const MASK: &str = "********";

/// Whether a variable of this name holds a secret (a password, a token, a key's content).
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "auth_pass",
        "secret",
        "token",
        "passphrase",
        "api_key",
        "private_key_content",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// Replaces every known secret value by [`MASK`].
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is masked whole.
    secrets: Arc<Vec<String>>,
}

impl Redactor {
    pub fn new(mut secrets: Vec<String>) -> Self {
        // Very short values would mask ordinary words; a password that short is refused
        // elsewhere anyway.
        secrets.retain(|s| s.chars().count() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    /// The secret values of an inventory: every variable with a secret name, on any host.
    pub fn from_inventory(inv: &Inventory) -> Self {
        let mut values = Vec::new();
        let mut collect = |name: &str, v: &serde_json::Value| {
            if is_secret_name(name) {
                collect_strings(v, &mut values);
            }
        };
        for host in inv.hosts.values() {
            for (k, v) in &host.vars {
                collect(k, &v.value);
            }
        }
        for group in inv.groups.values() {
            for (k, v) in &group.vars {
                collect(k, &v.value);
            }
        }
        Redactor::new(values)
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

fn collect_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Number(n) => out.push(n.to_string()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        serde_json::Value::Object(m) => m.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_longest_first() {
        let r = Redactor::new(vec!["abcd".into(), "abcdefgh".into(), "ab".into()]);
        assert_eq!(r.mask("x abcdefgh y abcd ab"), "x ******** y ******** ab");
    }

    #[test]
    fn secret_names() {
        assert!(is_secret_name("patroni_superuser_password"));
        assert!(is_secret_name("vrrp_auth_PASS"));
        assert!(!is_secret_name("patroni_pass_through"));
        assert!(is_secret_name("restapi_token"));
        assert!(!is_secret_name("ansible_ssh_private_key_file"));
    }
}
