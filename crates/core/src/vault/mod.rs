//! Ansible Vault: whole encrypted files (inventories, `group_vars/`, `host_vars/`, playbooks)
//! and inline `!vault` values, decrypted as they are loaded.
//!
//! The password and the values decrypted with it are process-wide, like Ansible's vault
//! secrets: the YAML loader meets vault text wherever a file is read (inventory, vars files,
//! playbooks, facts), and threading a key through every loader would change every signature
//! for one value given at start. Every decrypted value is recorded ([`revealed`]) so that
//! the [`Redactor`](crate::secrets::Redactor) masks it whatever its variable's name; so are the
//! files decrypted whole ([`is_decrypted_file`]), whose variables are all secrets.

pub mod cipher;
pub mod password;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub use cipher::{is_vault, VaultError};

use crate::diag::{Diagnostic, Diagnostics, Location, SourceFile};

#[derive(Default)]
struct State {
    password: Option<Vec<u8>>,
    revealed: Vec<String>,
    files: BTreeSet<PathBuf>,
}

static STATE: RwLock<Option<State>> = RwLock::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> T {
    let mut slot = STATE.write().unwrap_or_else(|e| e.into_inner());
    f(slot.get_or_insert_with(State::default))
}

/// Reads the password from `file` (`--vault-password-file`) for the rest of the process; with
/// `None`, vault content is an error that says how to give one.
pub fn use_password_file(file: Option<&Path>) -> Result<(), Diagnostics> {
    let password = match file {
        None => None,
        Some(path) => Some(password::read(path).map_err(|e| {
            Diagnostics::from(Diagnostic::error(
                Some(Location::file(&SourceFile::new(path))),
                "",
                e.to_string(),
            ))
        })?),
    };
    with_state(|s| s.password = password);
    Ok(())
}

/// Sets the password directly (tests).
pub fn use_password(password: Option<&[u8]>) {
    with_state(|s| s.password = password.map(<[u8]>::to_vec));
}

/// Why vault text could not be opened. The messages never hold the vault text or the
/// plaintext.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0} is encrypted with Ansible Vault: give `--vault-password-file` (or `PGDEPLOY_VAULT_PASSWORD_FILE`)")]
    NoPassword(String),
    #[error("cannot decrypt {0}: {1}")]
    Vault(String, VaultError),
    #[error("{0} decrypts to text that is not UTF-8")]
    NotUtf8(String),
}

/// Decrypts `text` with the process's password; `what` names it in errors ("this file",
/// "this `!vault` value").
fn open(text: &str, what: String) -> Result<String, OpenError> {
    let password =
        with_state(|s| s.password.clone()).ok_or_else(|| OpenError::NoPassword(what.clone()))?;
    let plain = cipher::decrypt(text, &password).map_err(|e| OpenError::Vault(what.clone(), e))?;
    String::from_utf8(plain).map_err(|_| OpenError::NotUtf8(what))
}

/// The plaintext of a file's content if it is a vault (`None` if it is not): the file is
/// then recorded as decrypted, so its variables are masked. Errors name the file.
pub fn open_file(text: &str, file: &SourceFile) -> Result<Option<String>, Diagnostics> {
    if !is_vault(text) {
        return Ok(None);
    }
    // The diagnostic's location names the file.
    match open(text, "this file".to_string()) {
        Ok(plain) => {
            with_state(|s| s.files.insert(file.path().to_path_buf()));
            Ok(Some(plain))
        }
        Err(e) => Err(Diagnostic::error(Some(Location::file(file)), "", e.to_string()).into()),
    }
}

/// The plaintext of an inline `!vault` value, recorded as a secret.
pub fn open_value(text: &str) -> Result<String, OpenError> {
    let plain = open(text, "this `!vault` value".to_string())?;
    reveal(&plain);
    Ok(plain)
}

/// Records a decrypted value, to be masked in all output (by every redactor, also those made
/// before it was decrypted: [`crate::secrets::record`]).
pub fn reveal(value: &str) {
    crate::secrets::record_from("decrypted with Ansible Vault", value);
    with_state(|s| {
        if !s.revealed.iter().any(|v| v == value) {
            s.revealed.push(value.to_string());
        }
    });
}

/// Every value decrypted so far (inline values, and the string values of decrypted files).
pub fn revealed() -> Vec<String> {
    with_state(|s| s.revealed.clone())
}

/// Whether `file` was decrypted whole: all its variables are secrets.
pub fn is_decrypted_file(file: &SourceFile) -> bool {
    with_state(|s| s.files.contains(file.path()))
}

/// Records the string values (not the keys) of a decrypted document as secrets; numbers,
/// booleans and nulls are left, since masking `5432` or `true` everywhere hides too much.
pub fn reveal_strings(value: &serde_json::Value) {
    match value {
        serde_json::Value::String(s) => reveal(s),
        serde_json::Value::Array(items) => items.iter().for_each(reveal_strings),
        serde_json::Value::Object(map) => map.values().for_each(reveal_strings),
        _ => {}
    }
}

/// Serialises the unit tests that set the process-wide password.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{Redactor, MASK};

    fn fixture(rel: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("tests/fixtures/vault")
            .join(rel)
    }

    fn with_password<T>(password: Option<&[u8]>, f: impl FnOnce() -> T) -> T {
        let _guard = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        use_password(password);
        let out = f();
        use_password(None);
        out
    }

    const PASSWORD: &[u8] = b"pgdeploy-vault-fixture";

    #[test]
    fn encrypted_vars_files_and_inline_values_load_and_are_masked() {
        let inv = with_password(Some(PASSWORD), || {
            crate::inventory::load(&fixture("inventory.yml")).unwrap()
        });
        let pg1 = &inv.hosts["pg1"].vars;
        assert_eq!(pg1["admin_word"].value, "Vault11-Admin-Word");
        assert_eq!(pg1["pg_port"].value, 5432);
        assert_eq!(pg1["cluster_note"].value, "Vault12-Labelled-Note");
        assert_eq!(pg1["app_word"].value, "Vault-Inline-Token");
        assert_eq!(pg1["odd_word"].value, "q\"uo\\te\nsecond-line");
        // Positions inside a decrypted file are in its plaintext.
        assert!(pg1["admin_word"]
            .origin
            .to_string()
            .ends_with("group_vars/all.yml:2:13"));
        let r = Redactor::from_inventory(&inv);
        let text =
            "Vault11-Admin-Word Vault12-Labelled-Note Vault-Inline-Token q\"uo\\te\nsecond-line";
        assert_eq!(r.mask(text), [MASK; 4].join(" "));
        let json =
            serde_json::to_string(&serde_json::json!({"v": "q\"uo\\te\nsecond-line"})).unwrap();
        assert_eq!(r.mask(&json), format!("{{\"v\":\"{MASK}\"}}"));
        // Numbers of a decrypted file are not masked everywhere.
        assert_eq!(r.mask("port 5432"), "port 5432");
    }

    #[test]
    fn an_inventory_encrypted_whole_is_decrypted_before_its_format_is_told() {
        let inv = with_password(Some(PASSWORD), || {
            crate::inventory::load(&fixture("ini/hosts")).unwrap()
        });
        let pg1 = &inv.hosts["pg1"].vars;
        assert_eq!(pg1["ini_word"].value, "Vault-Ini-Host-Word");
        assert_eq!(pg1["ini_port"].value, 5433);
        let r = Redactor::from_inventory(&inv);
        assert_eq!(r.mask("x Vault-Ini-Host-Word"), format!("x {MASK}"));
    }

    #[test]
    fn without_a_password_each_vault_is_a_located_error() {
        let err = with_password(None, || {
            crate::inventory::load(&fixture("inventory.yml")).unwrap_err()
        })
        .to_string();
        assert!(
            err.contains("group_vars/all.yml: this file is encrypted with Ansible Vault: give `--vault-password-file`"),
            "{err}"
        );
        assert!(
            err.contains("inventory.yml:5:15: this `!vault` value is encrypted with Ansible Vault"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_password_names_the_file_and_shows_no_data() {
        let err = with_password(Some(b"wrong"), || {
            crate::inventory::load(&fixture("ini/hosts")).unwrap_err()
        })
        .to_string();
        assert!(
            err.contains("ini/hosts: cannot decrypt this file: wrong vault password, or the data was altered (HMAC mismatch)"),
            "{err}"
        );
        let vault = std::fs::read_to_string(fixture("ini/hosts")).unwrap();
        let first_hex = vault.lines().nth(1).unwrap();
        assert!(!err.contains(&first_hex[..12]), "{err}");
    }

    #[test]
    fn inline_values_in_any_yaml_document() {
        let text = std::fs::read_to_string(fixture("playbook.yml")).unwrap();
        let file = SourceFile::new("playbook.yml");
        let node = with_password(Some(PASSWORD), || {
            crate::yaml::load_str(&text, &file).unwrap()
        });
        let play = &node.as_seq().unwrap()[0];
        let value = play.get("vars").unwrap().get("play_word").unwrap();
        assert_eq!(value.as_str(), Some("Vault-Play-Var"));
        assert!(revealed().iter().any(|v| v == "Vault-Play-Var"));
    }
}
