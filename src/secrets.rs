//! Secrets: which values are secret, and masking them in everything pgdeploy prints.
//!
//! Masking is by value, at the output boundary: every line, diff, JSON event and error
//! message goes through [`Redactor::mask`], so a secret that reached a rendered file (and
//! so a diff) is still never shown.

use std::io::Write;
use std::sync::{Arc, RwLock};

use crate::change::Change;
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
    pub fn new(secrets: Vec<String>) -> Self {
        // Each secret is also masked as JSON writes it (`\"`, `\\`, `\n` escaped, in JSON
        // events and `inventory --list`), and line by line when it has several lines (output
        // is often masked a line at a time, and diffs split it).
        let mut secrets: Vec<String> = secrets
            .into_iter()
            .flat_map(|s| {
                let mut forms = vec![s.clone()];
                if let Ok(json) = serde_json::to_string(&s) {
                    forms.push(json[1..json.len() - 1].to_string());
                }
                if s.contains('\n') {
                    forms.extend(s.lines().map(str::to_string));
                }
                forms
            })
            .collect();
        // Very short values would mask ordinary words; a password that short is refused
        // elsewhere anyway.
        secrets.retain(|s| s.chars().count() >= 4);
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor {
            secrets: Arc::new(secrets),
        }
    }

    /// The secret values of an inventory: every variable with a secret name, on any host,
    /// the string values of files decrypted with Ansible Vault, and every value decrypted so
    /// far (inline `!vault` values, of the inventory and of playbooks).
    pub fn from_inventory(inv: &Inventory) -> Self {
        let mut values = crate::vault::revealed();
        let mut collect = |name: &str, v: &crate::inventory::Var| {
            if is_secret_name(name) {
                collect_strings(&v.value, &mut values);
            } else if crate::vault::is_decrypted_file(&v.origin.file) {
                collect_only_strings(&v.value, &mut values);
            }
        };
        for host in inv.hosts.values() {
            for (k, v) in &host.vars {
                collect(k, v);
            }
        }
        for group in inv.groups.values() {
            for (k, v) in &group.vars {
                collect(k, v);
            }
        }
        Redactor::new(values)
    }

    /// The secrets decrypted with Ansible Vault so far, for output before an inventory is
    /// loaded (errors about the input).
    pub fn from_vault() -> Self {
        Redactor::new(crate::vault::revealed())
    }

    /// `value` with every string masked (by value, like [`Redactor::mask`]); keys are kept.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.mask_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
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

    /// Masks, in `before`, the old values of secrets that `after` holds: a line of `after`
    /// with a secret gives a pattern (the text before and after the secret), and a line of
    /// `before` that fits it has its middle masked. Without this, rotating a password shows
    /// the old one in the diff (`-password = OLD`), since only current values are known.
    /// Patterns need text before the secret, so a bare-secret line masks nothing extra.
    pub fn mask_replaced(&self, before: &str, after: &str) -> String {
        if self.is_empty() {
            return before.to_owned();
        }
        let patterns: Vec<(String, String)> = after
            .lines()
            .filter_map(|line| {
                let masked = self.mask(line);
                // Only lines that hold a secret value: a line a module masked itself (with
                // a note such as "(another password)") is left for the diff to show.
                if masked == line {
                    return None;
                }
                let start = masked.find(MASK)?;
                let end = masked.rfind(MASK)? + MASK.len();
                let prefix = &masked[..start];
                (!prefix.trim().is_empty()).then(|| (prefix.to_owned(), masked[end..].to_owned()))
            })
            .collect();
        if patterns.is_empty() {
            return before.to_owned();
        }
        let mut out = String::with_capacity(before.len());
        for line in before.split_inclusive('\n') {
            let (body, newline) = match line.strip_suffix('\n') {
                Some(b) => (b, "\n"),
                None => (line, ""),
            };
            let fits = patterns.iter().find(|(prefix, suffix)| {
                body.len() > prefix.len() + suffix.len()
                    && body.starts_with(prefix.as_str())
                    && body.ends_with(suffix.as_str())
            });
            match fits {
                Some((prefix, suffix)) => {
                    out.push_str(prefix);
                    out.push_str(MASK);
                    out.push_str(suffix);
                }
                None => out.push_str(body),
            }
            out.push_str(newline);
        }
        out
    }

    /// `change` with the old values of rotated secrets masked in its diff (see
    /// [`Redactor::mask_replaced`]); printing still goes through [`Redactor::mask`].
    pub fn mask_change(&self, change: &Change) -> Change {
        let mut c = change.clone();
        if let Some(d) = c.diff.as_mut() {
            if let (Some(before), Some(after)) = (&d.before, &d.after) {
                d.before = Some(self.mask_replaced(before, after));
            }
        }
        c
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

/// `text` masked with the redactor given to [`mask_logs_with`], or before there is one, with
/// the values decrypted with Ansible Vault so far.
pub fn mask_logged(text: &str) -> String {
    let slot = LOG_REDACTOR.read().unwrap_or_else(|e| e.into_inner());
    match slot.as_ref() {
        Some(r) => r.mask(text),
        None => Redactor::from_vault().mask(text),
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

/// Strings only: a decrypted file's numbers and booleans (`5432`, `true`) are not masked.
fn collect_only_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_only_strings(i, out)),
        serde_json::Value::Object(m) => m.values().for_each(|i| collect_only_strings(i, out)),
        _ => {}
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
    fn old_values_of_rotated_secrets_are_masked_in_diffs() {
        let r = Redactor::new(vec!["NewSecret2".into()]);
        let before = "user = app\npassword = OldSecret1\nport = 5432\nh:5432:*:app:OldSecret1\n";
        let after = "user = app\npassword = NewSecret2\nport = 5432\nh:5432:*:app:NewSecret2\n";
        assert_eq!(
            r.mask_replaced(before, after),
            "user = app\npassword = ********\nport = 5432\nh:5432:*:app:********\n"
        );
        // Lines that fit no pattern, and files without secrets, are left alone.
        assert_eq!(r.mask_replaced("a\nb", "a\nc\n"), "a\nb");
        // A line a module already masked keeps its own note, so the change still shows.
        assert_eq!(
            r.mask_replaced(
                "auth_pass ******** (another password)\n",
                "auth_pass ********\n"
            ),
            "auth_pass ******** (another password)\n"
        );
        assert_eq!(
            r.mask_replaced("OldSecret1\n", "NewSecret2\n"),
            "OldSecret1\n"
        );
        let change = Change::new("update").with_diff(crate::change::Diff {
            path: "/x".into(),
            before: Some(before.into()),
            after: Some(after.into()),
        });
        let unified = r.mask(&r.mask_change(&change).diff.unwrap().unified());
        assert!(!unified.contains("OldSecret1"), "{unified}");
        assert!(unified.contains("-password = ********"), "{unified}");
        assert!(unified.contains("+password = ********"), "{unified}");
    }

    #[test]
    fn secrets_are_masked_as_json_writes_them_and_line_by_line() {
        let r = Redactor::new(vec!["q\"uo\\te\nsecond-line".into()]);
        assert_eq!(
            r.mask(r#"{"v":"q\"uo\\te\nsecond-line"}"#),
            r#"{"v":"********"}"#
        );
        assert_eq!(
            r.mask("+ second-line\n- q\"uo\\te\n"),
            "+ ********\n- ********\n"
        );
        let json = r.mask_json(&serde_json::json!({"a": ["x q\"uo\\te\nsecond-line"], "n": 1}));
        assert_eq!(json, serde_json::json!({"a": ["x ********"], "n": 1}));
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
