//! Secrets: which values are secret, and masking them in everything pgdeploy prints.
//!
//! Masking is by value, at the output boundary: every line, diff, JSON event and error
//! message goes through [`Redactor::mask`], so a secret that reached a rendered file (and
//! so a diff) is still never shown.

use std::io::Write;
use std::sync::{Arc, RwLock};

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

/// The redactor applied to log lines and top-level errors (see [`mask_logs_with`]).
static LOG_REDACTOR: RwLock<Option<Redactor>> = RwLock::new(None);

/// From now on, log lines ([`LogWriter`]) and [`mask_logged`] mask the secrets of `redactor`
/// (set once the inventory is loaded). Logs may hold command lines that carry secrets, such
/// as a `command` task's `cmd`.
pub fn mask_logs_with(redactor: &Redactor) {
    let mut slot = LOG_REDACTOR.write().unwrap_or_else(|e| e.into_inner());
    *slot = Some(redactor.clone());
}

/// `text` masked with the redactor given to [`mask_logs_with`], if any.
pub fn mask_logged(text: &str) -> String {
    let slot = LOG_REDACTOR.read().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some(r) => r.mask(text),
        None => text.to_owned(),
    }
}

/// A writer for log output that masks secrets (see [`mask_logs_with`]) before passing the
/// bytes on. The log formatter writes each event with one `write_all`, so a secret is never
/// split across calls.
pub struct LogWriter<W: Write>(pub W);

impl<W: Write> Write for LogWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(mask_logged(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Standard error through [`LogWriter`], for `tracing_subscriber`'s `with_writer`.
pub fn log_to_stderr() -> LogWriter<std::io::Stderr> {
    LogWriter(std::io::stderr())
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
    fn log_lines_are_masked_once_the_secrets_are_known() {
        let mut out = LogWriter(Vec::new());
        mask_logs_with(&Redactor::new(vec!["hunter2-log-secret".into()]));
        out.write_all(b"exec command=echo 'hunter2-log-secret' >&2\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "exec command=echo '********' >&2\n"
        );
        assert_eq!(mask_logged("x hunter2-log-secret"), "x ********");
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
