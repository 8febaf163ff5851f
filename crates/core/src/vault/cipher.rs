//! Ansible Vault's envelope (`1.1;AES256` and `1.2;AES256;LABEL`), decrypted; pgdeploy reads
//! vaults and never writes them (`ansible-vault` does).
//!
//! The format, as in Ansible's `lib/ansible/parsing/vault/__init__.py` (`VaultAES256`): a
//! header line `$ANSIBLE_VAULT;VERSION;CIPHER[;LABEL]`, then lines of hex. Joined and decoded,
//! the hex is three lines of hex: the salt, the HMAC-SHA256 of the ciphertext, the ciphertext.
//! PBKDF2-HMAC-SHA256 of the password and salt (10000 rounds) gives 80 bytes: the AES-256 key,
//! the HMAC key and the CTR counter's first block. The plaintext was PKCS#7-padded and
//! encrypted with AES-256-CTR. The HMAC is checked, in constant time, before anything is
//! decrypted, so a wrong password is told apart from damaged data only in that both fail it.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::Sha256;

/// How every vault text starts.
pub const HEADER: &str = "$ANSIBLE_VAULT;";

const ROUNDS: u32 = 10_000;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const BLOCK: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the first line is not an Ansible Vault header (`$ANSIBLE_VAULT;1.1;AES256`)")]
    NoHeader,
    #[error("unsupported Ansible Vault format `{0}` (supported: `1.1`, `1.2`)")]
    Version(String),
    #[error("unsupported Ansible Vault cipher `{0}` (supported: `AES256`)")]
    Cipher(String),
    #[error("malformed Ansible Vault data: {0}")]
    Malformed(&'static str),
    #[error("wrong vault password, or the data was altered (HMAC mismatch)")]
    Hmac,
    #[error("malformed Ansible Vault data: bad padding after decryption")]
    Padding,
}

/// The parts of a vault text, decoded but not decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub version: String,
    /// The vault id of format `1.2` (`--vault-id LABEL@…` when it was encrypted).
    pub label: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

/// Whether `text` is a vault text (Ansible's `is_encrypted`: it starts with the header).
pub fn is_vault(text: &str) -> bool {
    text.starts_with(HEADER)
}

/// Reads the header and decodes the hex of a vault text.
pub fn parse(text: &str) -> Result<Envelope, VaultError> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").trim();
    let fields: Vec<&str> = header.split(';').map(str::trim).collect();
    if fields.len() < 3 || format!("{};", fields[0]) != HEADER {
        return Err(VaultError::NoHeader);
    }
    let version = fields[1].to_string();
    if version != "1.1" && version != "1.2" {
        return Err(VaultError::Version(version));
    }
    if fields[2] != "AES256" {
        return Err(VaultError::Cipher(fields[2].to_string()));
    }
    let label = fields.get(3).map(|l| l.to_string());
    let body: String = lines.map(str::trim).collect();
    if body.is_empty() {
        return Err(VaultError::Malformed("no data after the header"));
    }
    let inner = hex::decode(&body).map_err(|_| VaultError::Malformed("the data is not hex"))?;
    let mut parts = inner.splitn(3, |b| *b == b'\n');
    let mut next = |what| {
        let part = parts.next().ok_or(VaultError::Malformed(what))?;
        hex::decode(part).map_err(|_| VaultError::Malformed(what))
    };
    let salt = next("the salt is missing or not hex")?;
    let hmac = next("the HMAC is missing or not hex")?;
    let ciphertext = next("the ciphertext is missing or not hex")?;
    if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
        return Err(VaultError::Malformed(
            "the ciphertext is not a whole number of AES blocks (truncated?)",
        ));
    }
    Ok(Envelope {
        version,
        label,
        salt,
        hmac,
        ciphertext,
    })
}

/// Decrypts a vault text with `password`: the plaintext bytes.
pub fn decrypt(text: &str, password: &[u8]) -> Result<Vec<u8>, VaultError> {
    parse(text)?.decrypt(password)
}

impl Envelope {
    pub fn decrypt(&self, password: &[u8]) -> Result<Vec<u8>, VaultError> {
        let mut keys = [0u8; 2 * KEY_LEN + IV_LEN];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &self.salt, ROUNDS, &mut keys);
        let (cipher_key, rest) = keys.split_at(KEY_LEN);
        let (hmac_key, iv) = rest.split_at(KEY_LEN);
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(hmac_key)
            .map_err(|_| VaultError::Malformed("HMAC key"))?;
        mac.update(&self.ciphertext);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&self.hmac).map_err(|_| VaultError::Hmac)?;
        let mut data = self.ciphertext.clone();
        let mut ctr = ctr::Ctr128BE::<Aes256>::new_from_slices(cipher_key, iv)
            .map_err(|_| VaultError::Malformed("AES key"))?;
        ctr.apply_keystream(&mut data);
        let pad = usize::from(*data.last().ok_or(VaultError::Padding)?);
        let valid = (1..=BLOCK).contains(&pad)
            && pad <= data.len()
            && data[data.len() - pad..]
                .iter()
                .all(|b| usize::from(*b) == pad);
        if !valid {
            return Err(VaultError::Padding);
        }
        data.truncate(data.len() - pad);
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &[u8] = b"pgdeploy-vault-fixture";

    fn fixture(rel: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/vault/{rel}",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
        );
        std::fs::read_to_string(path).unwrap()
    }

    /// The inline value `name` of the fixture inventory, as the YAML literal block holds it.
    fn inline(name: &str) -> String {
        let text = fixture("inventory.yml");
        let start = text.find(&format!("{name}: !vault |")).unwrap();
        text[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("          "))
            .map(|l| format!("{}\n", l.trim()))
            .collect()
    }

    #[test]
    fn decrypts_a_1_1_file() {
        let plain = decrypt(&fixture("group_vars/all.yml"), PASSWORD).unwrap();
        let plain = String::from_utf8(plain).unwrap();
        assert!(
            plain.contains("admin_word: Vault11-Admin-Word\n"),
            "{plain}"
        );
    }

    #[test]
    fn decrypts_a_1_2_file_with_a_label() {
        let text = fixture("group_vars/pg.yml");
        let env = parse(&text).unwrap();
        assert_eq!(env.version, "1.2");
        assert_eq!(env.label.as_deref(), Some("prod"));
        let plain = String::from_utf8(env.decrypt(PASSWORD).unwrap()).unwrap();
        assert!(
            plain.contains("cluster_note: Vault12-Labelled-Note"),
            "{plain}"
        );
    }

    #[test]
    fn decrypts_inline_values_byte_for_byte() {
        assert_eq!(
            decrypt(&inline("app_word"), PASSWORD).unwrap(),
            b"Vault-Inline-Token"
        );
        assert_eq!(
            decrypt(&inline("odd_word"), PASSWORD).unwrap(),
            b"q\"uo\\te\nsecond-line"
        );
    }

    #[test]
    fn a_wrong_password_fails_the_hmac() {
        let err = decrypt(&fixture("group_vars/all.yml"), b"not-the-password").unwrap_err();
        assert_eq!(err, VaultError::Hmac);
        assert!(err.to_string().contains("HMAC mismatch"));
    }

    #[test]
    fn altered_data_fails_the_hmac() {
        let text = inline("app_word");
        let env = parse(&text).unwrap();
        let mut tampered = env.clone();
        tampered.hmac[0] ^= 1;
        assert_eq!(tampered.decrypt(PASSWORD), Err(VaultError::Hmac));
        let mut tampered = env;
        tampered.ciphertext[3] ^= 0x80;
        assert_eq!(tampered.decrypt(PASSWORD), Err(VaultError::Hmac));
    }

    #[test]
    fn truncated_and_malformed_texts_are_errors() {
        let text = inline("app_word");
        let cut = &text[..text.len() / 2];
        assert!(matches!(
            decrypt(cut, PASSWORD),
            Err(VaultError::Malformed(_))
        ));
        let header_only = text.lines().next().unwrap();
        assert!(matches!(
            decrypt(header_only, PASSWORD),
            Err(VaultError::Malformed(_))
        ));
        assert_eq!(
            decrypt("$ANSIBLE_VAULT;1.0;AES\nab", PASSWORD),
            Err(VaultError::Version("1.0".into()))
        );
        assert_eq!(
            decrypt("$ANSIBLE_VAULT;1.1;AES128\nab", PASSWORD),
            Err(VaultError::Cipher("AES128".into()))
        );
        assert_eq!(decrypt("secret: x", PASSWORD), Err(VaultError::NoHeader));
        assert!(matches!(
            decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz", PASSWORD),
            Err(VaultError::Malformed(_))
        ));
    }

    #[test]
    fn errors_never_show_the_data() {
        let text = inline("app_word");
        let err = decrypt(&text[..text.len() - 10], PASSWORD).unwrap_err();
        let body = text.lines().nth(1).unwrap();
        assert!(!err.to_string().contains(&body[..16]), "{err}");
    }
}
