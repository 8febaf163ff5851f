//! Secrets: which values are secret, and masking them in everything pgdeploy prints.
//!
//! Masking is by value: a secret copied into a rendered file (and so into a diff), an error
//! message or a command line is still never shown. Structured output is masked before it is
//! serialized ([`Redactor::mask_json`], [`Redactor::mask_change`]), text at the output
//! boundary ([`Redactor::mask`]).
//!
//! # Where the secrets come from
//!
//! Every source of secret values, in one place (each feeds the same [`Redactor`]):
//!
//! | source | how it reaches the redactor |
//! |---|---|
//! | variables with a secret name ([`is_secret_name`]), at any depth, on inventory hosts and groups (`group_vars/`, `host_vars/` included) | [`Redactor::from_inventory`] |
//! | play `vars:` with a secret name, at any depth, and task parameters written in the playbook with a secret name | the playbook loader calls [`record_secret_values`], so errors of the load itself are masked |
//! | extra vars (`-e`) | their loader calls [`record_secret_values`] for each variable ([`collect_secret_values`] then [`record`]) |
//! | templated values of those variables, rendered for each host | the compiler ([`crate::template::Scope::secret_values`]) calls [`record`] |
//! | module parameters with a secret name at any depth, as rendered for each host, and parameters typed as a secret (`modules/common/secret.rs`) | the compiler (`compile/params.rs`) and `Secret`'s deserializer call [`record`] |
//! | values decrypted with Ansible Vault (inline values whole, the string values of files decrypted whole) | `vault::reveal` calls [`record`] |
//! | values read by `lookup('env', …)` and `lookup('file', …)` | the lookup calls [`record`] |
//!
//! Values [`record`]ed are process-wide and every [`Redactor`], made before or after, masks
//! them: templates are rendered (and vaults opened) after the redactor that prints their
//! errors is made.
//!
//! Each value is masked as written, as JSON escapes it (text that quotes JSON), as shell
//! single-quoting writes it, once and twice (`-v` logs of `sh -c '…'` lines), and each line of
//! a multi-line value on its own (a PEM key in a diff).
//!
//! # Diffs
//!
//! Both sides of a diff are masked line by line before the diff is computed
//! ([`Redactor::mask_diff`]), so a secret line that did not change is context; a line whose
//! secret changed reads the same once masked and is marked [`SECRET_CHANGED`]. Old values are
//! not known (only current ones are), so they are masked by shape: an old line shaped like its
//! new line around the secret ([`Redactor::mask_replaced`], and pairwise in replaced blocks),
//! the extra old lines of a replaced block that held a secret, and any line assigning to a
//! key with a secret name (`password = x`, `"api_token": "x"`).
//!
//! # Secrets too short to mask safely
//!
//! A secret of fewer than [`MIN_FREE_TEXT_LEN`] characters cannot be masked wherever it
//! occurs (a password `a` would mask every `a`). Such a value is masked where it stands alone:
//! as a whole word (not preceded or followed by a letter, digit or `_`: `pw=a` and `'a'` are
//! masked, `alpha` is not), which includes a whole JSON string value or a whole line of a diff.
//! The first time one is found, a warning on stderr names its variable (never its value).
//! The recap (host names and counts) is not masked, so a secret `1` does not hide the counts.
//!
//! # `no_log`
//!
//! A `no_log` task's result shows counts, not its changes, notes or errors (the executor), and
//! its step runs in [`without_logs`], so `-v` shows nothing of it either.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::change::{Change, Diff};
use crate::inventory::Inventory;

/// What a masked secret is shown as.
pub const MASK: &str = "********";

/// Shown after a masked diff line whose secret changed, since both sides read [`MASK`].
pub const SECRET_CHANGED: &str = "(secret changed)";

/// Secrets with at least this many characters are masked wherever they occur; shorter ones
/// only where they stand alone (see the module's documentation).
pub const MIN_FREE_TEXT_LEN: usize = 4;

/// Whether a variable of this name holds a secret (a password, a token, a key's content).
///
/// Matched on the lowercased name: anywhere in it `password`, `passwd`, `passphrase`,
/// `secret`, `token`, `credential`, `api_key`/`apikey`, `private_key`; or one of its words
/// (split at `_`, `-`, `.` and camelCase humps) is `pw` or `pwd` (`db_pw`, `dbPw`), or its last
/// word is `pass` (`db_pass`, `ansible_ssh_pass`, `vrrp_auth_pass`, not
/// `patroni_pass_through`). A name whose last word says it is about a secret rather than the
/// secret is not one: where it is (`ansible_ssh_private_key_file`, `vault_password_file`,
/// `_path`, `_dir`), how it is made or checked (`password_encryption: scram-sha-256`,
/// `_method`, `_policy`, `_algorithm`), its limits (`password_min_length`, `token_ttl`) or its
/// name (`secret_name`). Without that, `scram-sha-256` or `8` would be masked everywhere.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_lowercase();
    let words = words(name);
    const ABOUT_A_SECRET: &[&str] = &[
        "file",
        "files",
        "path",
        "dir",
        "encryption",
        "method",
        "policy",
        "algorithm",
        "hash",
        "length",
        "len",
        "min",
        "max",
        "ttl",
        "timeout",
        "expiry",
        "expires",
        "lifetime",
        "age",
        "count",
        "size",
        "enabled",
        "name",
    ];
    if words
        .last()
        .is_some_and(|w| ABOUT_A_SECRET.contains(&w.as_str()))
    {
        return false;
    }
    const ANYWHERE: &[&str] = &[
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "credential",
        "api_key",
        "apikey",
        "private_key",
    ];
    ANYWHERE.iter().any(|w| n.contains(w))
        || words.iter().any(|w| matches!(w.as_str(), "pw" | "pwd"))
        || words.last().is_some_and(|w| w == "pass")
}

/// The lowercased words of a name: split at anything not a letter or digit, and where a
/// lowercase letter or digit is followed by an uppercase one (`dbPw` is `db`, `pw`).
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Adds to `out` the secret values of a variable `name` holding `value`: every string and
/// number inside it, at any depth, when `name` is a secret name; otherwise those under keys
/// with secret names at any depth (`nested: {deep_password: x}` gives `x`; a list under a
/// secret name gives each element). Templates are left out: their rendered values are
/// recorded for each host where they are rendered. Call it for each variable of a source
/// (extra vars: `collect_secret_values("app_password", &value, &mut out)`, then [`record`]).
pub fn collect_secret_values(name: &str, value: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    if is_secret_name(name) {
        collect_leaves(name, value, out);
        return;
    }
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| collect_secret_values(k, v, out)),
        Value::Array(items) => items
            .iter()
            .for_each(|v| collect_secret_values(name, v, out)),
        _ => {}
    }
}

/// Records, for every redactor, the secret values of a variable `name` holding `value`
/// ([`collect_secret_values`] then [`record`]): for sources read after the redactor is made,
/// such as extra vars (`-e app_password=…`).
pub fn record_secret_values(name: &str, value: &serde_json::Value) {
    let mut values = Vec::new();
    collect_secret_values(name, value, &mut values);
    values.iter().for_each(|v| record(v));
}

/// Whether `value`, held by a variable `name`, holds a secret at some depth (by name).
pub fn has_secret_name(name: &str, value: &serde_json::Value) -> bool {
    use serde_json::Value;
    is_secret_name(name)
        || match value {
            Value::Object(map) => map.iter().any(|(k, v)| has_secret_name(k, v)),
            Value::Array(items) => items.iter().any(|v| has_secret_name(name, v)),
            _ => false,
        }
}

fn collect_leaves(name: &str, v: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value;
    match v {
        Value::String(s) if s.is_empty() || crate::template::is_template(s) => {}
        Value::String(s) => {
            warn_if_short(&format!("`{name}`"), s);
            out.push(s.clone());
        }
        Value::Number(n) => {
            let s = n.to_string();
            warn_if_short(&format!("`{name}`"), &s);
            out.push(s);
        }
        Value::Array(items) => items.iter().for_each(|i| collect_leaves(name, i, out)),
        Value::Object(m) => m.values().for_each(|i| collect_leaves(name, i, out)),
        _ => {}
    }
}

/// Names already warned about (once per process each).
static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Warns once, on stderr, that the secret `what` (a variable's name in backticks, or where
/// the value came from) is too short to be masked inside other text. Never shows the value.
pub fn warn_if_short(what: &str, value: &str) {
    let len = value.chars().count();
    if len == 0 || len >= MIN_FREE_TEXT_LEN {
        return;
    }
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned.insert(what.to_string()) {
        crate::eoutln!(
            "warning: the secret {what} has fewer than {MIN_FREE_TEXT_LEN} characters: it is \
             masked only where it stands alone (a whole word or value), not inside other text; \
             use a longer secret"
        );
    }
}

/// Secrets found while running (rendered templates, lookups, vaults, secret parameters),
/// masked by every [`Redactor`].
static RECORDED: RwLock<Vec<String>> = RwLock::new(Vec::new());
/// Bumped by each new [`record`]: a redactor rebuilds its patterns when it changed.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// Records `value` as a secret for the rest of the process: every [`Redactor`] masks it from
/// now on, including those already made.
pub fn record(value: &str) {
    if value.is_empty() {
        return;
    }
    {
        let seen = RECORDED.read().unwrap_or_else(|e| e.into_inner());
        if seen.iter().any(|v| v == value) {
            return;
        }
    }
    let mut all = RECORDED.write().unwrap_or_else(|e| e.into_inner());
    if !all.iter().any(|v| v == value) {
        all.push(value.to_string());
        GENERATION.fetch_add(1, Ordering::SeqCst);
    }
}

/// [`record`] for a value that came from `what` (`` lookup('env', 'X') ``, a variable's
/// name), warning when it is too short to be masked in free text.
pub fn record_from(what: &str, value: &str) {
    warn_if_short(what, value);
    record(value);
}

/// Every value [`record`]ed so far.
pub fn recorded() -> Vec<String> {
    RECORDED.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// The strings a redactor replaces, in the forms output holds them.
#[derive(Default)]
struct Patterns {
    /// Masked wherever they occur; longest first, so a secret that contains another is
    /// masked whole.
    anywhere: Vec<String>,
    /// Too short for that: masked where they stand alone as a word.
    alone: Vec<String>,
}

impl Patterns {
    fn new<'a>(values: impl Iterator<Item = &'a String>) -> Self {
        let mut p = Patterns::default();
        for s in values {
            // Each secret is also masked as JSON writes it (`\"`, `\\`, `\n` escaped: text
            // that quotes JSON), and line by line when it has several lines (output is
            // often masked a line at a time, and diffs split it).
            let mut forms = vec![s.clone()];
            if let Ok(json) = serde_json::to_string(s) {
                forms.push(json[1..json.len() - 1].to_string());
            }
            // And as shell quoting writes it inside single quotes, once and twice (a quoted
            // word in a command line that `-v` logs quoted again as `sh -c '…'`).
            if s.contains('\'') {
                let once = s.replace('\'', r"'\''");
                forms.push(once.replace('\'', r"'\''"));
                forms.push(once);
            }
            if s.contains('\n') {
                forms.extend(s.lines().map(str::to_string));
            }
            let short = s.chars().count() < MIN_FREE_TEXT_LEN;
            for f in forms {
                if f.trim().is_empty() {
                    continue;
                }
                if short || f.chars().count() < MIN_FREE_TEXT_LEN {
                    p.alone.push(f);
                } else {
                    p.anywhere.push(f);
                }
            }
        }
        for list in [&mut p.anywhere, &mut p.alone] {
            list.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
            list.dedup();
        }
        p
    }

    fn is_empty(&self) -> bool {
        self.anywhere.is_empty() && self.alone.is_empty()
    }

    fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.anywhere {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        if !self.alone.is_empty() {
            out = mask_alone(&out, &self.alone);
        }
        out
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with each of `secrets` masked where it is not part of a longer word.
fn mask_alone(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let before_ok = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        let found = before_ok
            .then(|| {
                secrets.iter().find(|s| {
                    rest.starts_with(s.as_str())
                        && rest[s.len()..]
                            .chars()
                            .next()
                            .is_none_or(|c| !is_word_char(c))
                })
            })
            .flatten();
        match found {
            Some(s) => {
                out.push_str(MASK);
                i += s.len();
            }
            None => {
                let c = rest.chars().next().unwrap_or_default();
                out.push(c);
                i += c.len_utf8().max(1);
            }
        }
    }
    out
}

/// Replaces every known secret value by [`MASK`]: its own values, and every value
/// [`record`]ed in the process.
#[derive(Clone, Default)]
pub struct Redactor {
    own: Arc<Vec<String>>,
    /// The patterns of `own` and of the recorded values, with the [`GENERATION`] they were
    /// built at.
    cache: Arc<Mutex<(u64, Arc<Patterns>)>>,
}

/// Says how many secrets, never which.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets of its own)", self.own.len())
    }
}

impl Redactor {
    pub fn new(secrets: Vec<String>) -> Self {
        Redactor {
            own: Arc::new(secrets),
            cache: Arc::default(),
        }
    }

    /// The secret values of an inventory: every variable with a secret name at any depth, on
    /// any host or group, the string values of files decrypted with Ansible Vault, and every
    /// value decrypted or [`record`]ed so far.
    pub fn from_inventory(inv: &Inventory) -> Self {
        let mut values = crate::vault::revealed();
        // Every host has its groups' variables: each name is judged once, not once a host.
        let mut secret_name: std::collections::HashMap<String, bool> = Default::default();
        let mut collect = |name: &str, v: &crate::inventory::Var| {
            if crate::vault::is_decrypted_file(&v.origin.file) {
                collect_only_strings(&v.value, &mut values);
            }
            let nested = matches!(
                v.value,
                serde_json::Value::Object(_) | serde_json::Value::Array(_)
            );
            // A scalar is a secret only by its own name (as `collect_secret_values` reads it).
            let secret = match secret_name.get(name) {
                Some(&s) => s,
                None => *secret_name
                    .entry(name.to_string())
                    .or_insert_with(|| is_secret_name(name)),
            };
            if nested || secret {
                collect_secret_values(name, &v.value, &mut values);
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

    /// The secrets decrypted with Ansible Vault (and [`record`]ed) so far, for output before
    /// an inventory is loaded (errors about the input).
    pub fn from_vault() -> Self {
        Redactor::new(crate::vault::revealed())
    }

    fn patterns(&self) -> Arc<Patterns> {
        let generation = GENERATION.load(Ordering::SeqCst);
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.0 == generation {
                return cache.1.clone();
            }
        }
        // Built without a lock held: masking a panic's message (`mask_panics`) must not wait
        // for a lock its own thread holds.
        let recorded = recorded();
        let patterns = Arc::new(Patterns::new(self.own.iter().chain(recorded.iter())));
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        *cache = (generation, patterns.clone());
        patterns
    }

    /// `value` with every string masked as a value (before it is serialized, so escaping
    /// plays no part); keys are kept.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        let p = self.patterns();
        mask_json_with(&p, value)
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        self.patterns().mask(text)
    }

    /// Masks, in `before`, the old values of secrets that `after` holds: a line of `after`
    /// with a secret gives a pattern (the text before and after the secret), and a line of
    /// `before` that fits it has its middle masked. Without this, rotating a password shows
    /// the old one in the diff (`-password = OLD`), since only current values are known.
    /// Patterns need text before the secret, so a bare-secret line masks nothing extra
    /// ([`Redactor::mask_diff`] also pairs changed lines, which covers those).
    pub fn mask_replaced(&self, before: &str, after: &str) -> String {
        let p = self.patterns();
        if p.is_empty() {
            return before.to_owned();
        }
        let patterns: Vec<(String, String)> = after
            .lines()
            .filter_map(|line| {
                let masked = p.mask(line);
                // Only lines that hold a secret value: a line a module masked itself (with
                // a note such as "(another password)") is left for the diff to show.
                if masked == line {
                    return None;
                }
                let (prefix, suffix) = around_mask(&masked)?;
                (!prefix.trim().is_empty()).then(|| (prefix.to_owned(), suffix.to_owned()))
            })
            .collect();
        if patterns.is_empty() {
            return before.to_owned();
        }
        let mut out = String::with_capacity(before.len());
        for line in before.split_inclusive('\n') {
            let (body, newline) = split_newline(line);
            let fits = patterns
                .iter()
                .find(|(prefix, suffix)| fits(body, prefix, suffix));
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

    /// `diff` with both sides masked, line by line, so that the diff computed from them
    /// shows no secret and a secret line that did not change is not shown as changed. A line
    /// whose secret changed (a rotated password) would read the same on both sides once
    /// masked: its new side is marked [`SECRET_CHANGED`], so the change still shows without
    /// either value. Old values are masked by the shape of the new line (the text around the
    /// secret), see [`Redactor::mask_replaced`].
    pub fn mask_diff(&self, diff: &Diff) -> Diff {
        let p = self.patterns();
        let mask_all = |text: &str| -> String {
            text.split_inclusive('\n')
                .map(|l| mask_assignment(&p.mask(l)))
                .collect()
        };
        let (before, after) = match (&diff.before, &diff.after) {
            (Some(before), Some(after)) => {
                let replaced = self.mask_replaced(before, after);
                let (b, a) = mask_sides(&p, before, &replaced, after);
                (Some(b), Some(a))
            }
            (b, a) => (b.as_deref().map(mask_all), a.as_deref().map(mask_all)),
        };
        Diff {
            path: p.mask(&diff.path),
            before,
            after,
        }
    }

    /// `change` masked before it is shown or serialized: its summary, and its diff by
    /// [`Redactor::mask_diff`].
    pub fn mask_change(&self, change: &Change) -> Change {
        Change {
            summary: self.mask(&change.summary),
            diff: change.diff.as_ref().map(|d| self.mask_diff(d)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns().is_empty()
    }
}

fn mask_json_with(p: &Patterns, value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(p.mask(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| mask_json_with(p, v)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (p.mask(k), mask_json_with(p, v)))
                .collect(),
        ),
        // A secret-named variable's number (`pin: 4711`) is a secret too.
        Value::Number(n) if p.mask(&n.to_string()) != n.to_string() => {
            Value::String(MASK.to_string())
        }
        other => other.clone(),
    }
}

/// A line of a diff that assigns a value to a key with a secret name (`password = x`,
/// `password: x`, `auth_pass x`, `"password": "x",`, `- db_pw: x`), with the value masked.
/// Only current values are known, so this is what hides an old secret on a line that was
/// removed, or replaced by something of another shape. The same on both sides of a diff, so an
/// unchanged line stays unchanged. A YAML block (`password: |`) is left: its lines are not
/// told apart from others.
fn mask_assignment(line: &str) -> String {
    let (body, newline) = split_newline(line);
    let rest = body.trim_start();
    let rest = rest.strip_prefix("- ").unwrap_or(rest);
    let (quote, unquoted) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => (Some(q), &rest[1..]),
        _ => (None, rest),
    };
    let key_len = unquoted
        .find(|c: char| !(c.is_alphanumeric() || "_.-".contains(c)))
        .unwrap_or(unquoted.len());
    let key = &unquoted[..key_len];
    let mut after = &unquoted[key_len..];
    if let Some(q) = quote {
        match after.strip_prefix(q) {
            Some(a) => after = a,
            None => return line.to_owned(),
        }
    }
    if key.is_empty() || !is_secret_name(key) {
        return line.to_owned();
    }
    let trimmed = after.trim_start();
    let value = match trimmed.strip_prefix(['=', ':']) {
        Some(v) => v.trim_start(),
        None if trimmed.len() < after.len() => trimmed,
        None => return line.to_owned(),
    };
    let value = value.trim_end();
    let (value, comma) = match value.strip_suffix(',') {
        Some(v) => (v.trim_end(), ","),
        None => (value, ""),
    };
    if value.is_empty()
        || value.contains(MASK)
        || value.starts_with(['|', '>', '{', '['])
        || matches!(value, "\"\"" | "''" | "null" | "~")
    {
        return line.to_owned();
    }
    // `value` is a slice of `body`: what comes before it is kept as written.
    let start = value.as_ptr() as usize - body.as_ptr() as usize;
    let prefix = &body[..start];
    let masked = match value.chars().next() {
        Some(q @ ('"' | '\'')) if value.len() >= 2 && value.ends_with(q) => format!("{q}{MASK}{q}"),
        _ => MASK.to_string(),
    };
    format!("{prefix}{masked}{comma}{newline}")
}

/// The text before the first [`MASK`] of `masked` and after its last one.
fn around_mask(masked: &str) -> Option<(&str, &str)> {
    let start = masked.find(MASK)?;
    let end = masked.rfind(MASK)? + MASK.len();
    Some((&masked[..start], &masked[end..]))
}

/// Whether `body` is `prefix`, something, `suffix`.
fn fits(body: &str, prefix: &str, suffix: &str) -> bool {
    body.len() > prefix.len() + suffix.len() && body.starts_with(prefix) && body.ends_with(suffix)
}

fn split_newline(line: &str) -> (&str, &str) {
    match line.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (line, ""),
    }
}

/// Both sides of a diff masked line by line. Lines are paired as a diff of the real texts
/// pairs them: in a replaced block, an old line that has the shape of its new line around
/// the secret is masked there too (a bare secret line `OldSecret` replaced by `NewSecret`),
/// and a new line that reads as its old one once masked is marked [`SECRET_CHANGED`].
/// `replaced` is `before` with old values already masked by [`Redactor::mask_replaced`] (line
/// for line); lines are paired on the real `before`.
fn mask_sides(p: &Patterns, before: &str, replaced: &str, after: &str) -> (String, String) {
    let old: Vec<&str> = before.split_inclusive('\n').collect();
    let new: Vec<&str> = after.split_inclusive('\n').collect();
    let line_mask = |l: &str| mask_assignment(&p.mask(l));
    let mut masked_old: Vec<String> = replaced.split_inclusive('\n').map(line_mask).collect();
    if masked_old.len() != old.len() {
        // Not line for line (cannot happen): mask the real lines, pairing still works.
        masked_old = old.iter().map(|l| line_mask(l)).collect();
    }
    let mut masked_new: Vec<String> = new.iter().map(|l| line_mask(l)).collect();
    let diff = similar::TextDiff::from_lines(before, after);
    for op in diff.ops() {
        let similar::DiffOp::Replace {
            old_index,
            old_len,
            new_index,
            new_len,
        } = *op
        else {
            continue;
        };
        // Whether this block replaces a secret's old value: its extra old lines (a rotated
        // key one line longer than the new one) are then masked whole as well.
        let mut replaces_secret = false;
        for k in 0..old_len.min(new_len) {
            let (i, j) = (old_index + k, new_index + k);
            let (new_body, _) = split_newline(&masked_new[j]);
            if masked_new[j] != new[j] {
                if let Some((prefix, suffix)) = around_mask(new_body) {
                    let (old_body, newline) = split_newline(old[i]);
                    if masked_old[i] == line_mask(old[i]) && fits(old_body, prefix, suffix) {
                        masked_old[i] = format!("{prefix}{MASK}{suffix}{newline}");
                        replaces_secret = true;
                    }
                }
            }
            if masked_old[i] == masked_new[j] && old[i] != new[j] {
                let (body, newline) = split_newline(&masked_new[j]);
                masked_new[j] = format!("{body} {SECRET_CHANGED}{newline}");
            }
        }
        if replaces_secret {
            for line in &mut masked_old[old_index + new_len.min(old_len)..old_index + old_len] {
                let newline = if line.ends_with('\n') { "\n" } else { "" };
                *line = format!("{MASK}{newline}");
            }
        }
    }
    (masked_old.concat(), masked_new.concat())
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

tokio::task_local! {
    /// Set while a `no_log` task's step runs ([`without_logs`]).
    static NO_LOG: bool;
}

/// Runs `step` with its log lines dropped: a `no_log` task's commands (made of its
/// parameters) are not shown by `-v` either, as Ansible hides them at every verbosity. Log
/// events are written synchronously by the task that emits them, so the task-local flag is
/// seen by [`LogWriter`].
pub async fn without_logs<F: std::future::Future>(step: F) -> F::Output {
    NO_LOG.scope(true, step).await
}

fn logs_hidden() -> bool {
    NO_LOG.try_with(|hidden| *hidden).unwrap_or(false)
}

/// A writer for log output that masks secrets (see [`mask_logs_with`]) before passing the
/// bytes on, and drops the lines of `no_log` steps ([`without_logs`]). The log formatter
/// writes each event with one `write_all`, so a secret is never split across calls.
pub struct LogWriter<W: Write>(pub W);

impl<W: Write> Write for LogWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if logs_hidden() {
            return Ok(buf.len());
        }
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(mask_logged(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Makes panic messages go through [`mask_logged`]: the standard hook prints a panic's
/// message (which may format a value holding a secret) as it is. Like the standard hook, it
/// names the thread and place, and prints a backtrace when `RUST_BACKTRACE` asks for one.
pub fn mask_panics() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let mut text = format!("thread '{name}' {info}\n");
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
        }
        let _ = std::io::stderr().write_all(mask_logged(&text).as_bytes());
    }));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_longest_first() {
        let r = Redactor::new(vec!["abcd".into(), "abcdefgh".into(), "ab".into()]);
        assert_eq!(
            r.mask("x abcdefgh y abcd ab abc"),
            "x ******** y ******** ******** abc"
        );
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
        for name in [
            "patroni_superuser_password",
            "vrrp_auth_PASS",
            "restapi_token",
            "db_pw",
            "pw",
            "admin_pwd",
            "db_pass",
            "cloud_credentials",
            "tls_private_key",
            "private_key_content",
            "apiKey",
            "ansible_password",
            "ansible_ssh_pass",
            "ansible_become_pass",
            "ansible_become_password",
            "ansible_sudo_pass",
            "dbPw",
            "vault_secret_id",
            "PGPASSWORD",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "patroni_pass_through",
            "ansible_ssh_private_key_file",
            "vault_password_file",
            "token_path",
            "ansible_user",
            "power",
            "compass",
            "password_encryption_dir",
            "bypass_checks",
            "password_encryption",
            "password_min_length",
            "token_ttl",
            "secret_name",
            "dbPwFile",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn secret_values_at_any_depth() {
        let v = serde_json::json!({
            "port": 5432,
            "nested": {"deep_password": "Deep-Secret-1", "user": "app"},
            "users": [{"name": "a", "db_pw": "List-Secret-2"}],
            "api_tokens": ["Tok-One-3", {"x": "Tok-Two-4"}, 4711],
            "templated_password": "{{ other }}",
        });
        let mut out = Vec::new();
        collect_secret_values("cluster", &v, &mut out);
        assert_eq!(
            out,
            [
                "Deep-Secret-1",
                "List-Secret-2",
                "Tok-One-3",
                "Tok-Two-4",
                "4711"
            ]
        );
        assert!(has_secret_name("cluster", &v));
        assert!(!has_secret_name("cluster", &serde_json::json!({"a": [1]})));
    }

    #[test]
    fn short_secrets_are_masked_where_they_stand_alone() {
        let r = Redactor::new(vec!["Q".into(), "pâ".into(), "long-enough".into()]);
        assert_eq!(r.mask("pw=Q"), "pw=********");
        assert_eq!(
            r.mask("'Q' QUIT Quick Q_x xQ"),
            "'********' QUIT Quick Q_x xQ"
        );
        assert_eq!(r.mask("pâ pâss"), "******** pâss");
        assert_eq!(
            r.mask_json(&serde_json::json!({"v": "Q", "w": "Queue"})),
            serde_json::json!({"v": MASK, "w": "Queue"})
        );
        // Next to a masked secret, a short one stands alone too.
        assert_eq!(r.mask("x long-enoughQ"), format!("x {MASK}{MASK}"));
    }

    #[test]
    fn secrets_are_masked_as_shell_quoting_writes_them() {
        let r = Redactor::new(vec!["it's-a-Secret".into()]);
        let once = crate::transport::shell::quote("it's-a-Secret");
        let twice = crate::transport::shell::quote(&format!("echo {once}"));
        assert_eq!(r.mask(&once), format!("'{MASK}'"));
        assert!(!r.mask(&twice).contains("Secret"), "{}", r.mask(&twice));
    }

    #[test]
    fn recorded_values_reach_redactors_made_before() {
        let r = Redactor::new(Vec::new());
        assert_eq!(r.mask("a Recorded-Later-77"), "a Recorded-Later-77");
        record("Recorded-Later-77");
        assert_eq!(r.mask("a Recorded-Later-77"), "a ********");
    }

    #[test]
    fn diffs_are_computed_on_masked_text() {
        let r = Redactor::new(vec!["Same-Secret-1".into(), "Rotated-New-2".into()]);
        let change = Change::new("update `/x`").with_diff(Diff {
            path: "/x".into(),
            before: Some("a\nkeep = Same-Secret-1\nrot = Rotated-Old-2\nRotated-Old-2\nb\n".into()),
            after: Some("A\nkeep = Same-Secret-1\nrot = Rotated-New-2\nRotated-New-2\nb\n".into()),
        });
        let masked = r.mask_change(&change);
        let unified = masked.diff.as_ref().unwrap().unified();
        for leak in ["Same-Secret-1", "Rotated-Old-2", "Rotated-New-2"] {
            assert!(!unified.contains(leak), "{unified}");
            assert!(!format!("{masked:?}").contains(leak), "{masked:?}");
        }
        // The unchanged secret line is context, not a change.
        assert!(unified.contains("\n keep = ********\n"), "{unified}");
        assert!(!unified.contains("-keep"), "{unified}");
        // The rotated one still shows as changed, without either value.
        assert!(unified.contains("\n-rot = ********\n"), "{unified}");
        assert!(
            unified.contains("\n+rot = ******** (secret changed)\n"),
            "{unified}"
        );
        assert!(unified.contains("\n-********\n"), "{unified}");
        assert!(
            unified.contains("\n+******** (secret changed)\n"),
            "{unified}"
        );
        assert!(unified.contains("-a\n+A\n"), "{unified}");
        // A rotated key with one line more than the new one: no old line shows.
        let r = Redactor::new(vec!["NewKeyLineOne\nNewKeyLineTwo".into()]);
        let rotated = r.mask_diff(&Diff {
            path: "/k".into(),
            before: Some(
                "-----BEGIN-----\nOldKeyLineOne\nOldKeyLineTwo\nOldKeyLineThree\n-----END-----\n"
                    .into(),
            ),
            after: Some("-----BEGIN-----\nNewKeyLineOne\nNewKeyLineTwo\n-----END-----\n".into()),
        });
        let unified = rotated.unified();
        assert!(!unified.contains("OldKey"), "{unified}");
        assert!(
            unified.contains("+******** (secret changed)\n"),
            "{unified}"
        );
        let r = Redactor::new(vec!["Same-Secret-1".into()]);
        // Old secrets on lines removed or reshaped: masked by their key's name.
        let removed = r.mask_diff(&Diff {
            path: "/r".into(),
            before: Some("user = app\npassword = Gone-Old-1\n  \"api_token\": \"Gone-Old-2\",\n- db_pw: Gone-Old-3\nauth_pass Gone-Old-4\npassword_encryption = scram-sha-256\nkey: |\n".into()),
            after: Some("user = app\n".into()),
        });
        assert_eq!(
            removed.before.as_deref(),
            Some("user = app\npassword = ********\n  \"api_token\": \"********\",\n- db_pw: ********\nauth_pass ********\npassword_encryption = scram-sha-256\nkey: |\n")
        );
        // A new file: every line masked.
        let created = r.mask_diff(&Diff {
            path: "/y".into(),
            before: None,
            after: Some("x Same-Secret-1\n".into()),
        });
        assert_eq!(created.after.as_deref(), Some("x ********\n"));
    }
}
