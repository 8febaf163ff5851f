//! PostgreSQL's SCRAM-SHA-256 password verifiers (`pg_authid.rolpassword`), computed and
//! checked here so that a rotated password never reaches the server in clear: `ALTER ROLE …
//! PASSWORD 'SCRAM-SHA-256$…'` stores the verifier as given, and even `log_statement = all`
//! logs only the verifier.
//!
//! The format (PostgreSQL's `scram_build_secret`, RFC 5802/7677):
//! `SCRAM-SHA-256$ITERATIONS:BASE64(SALT)$BASE64(STORED_KEY):BASE64(SERVER_KEY)`, where
//! `SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations)`,
//! `StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key"))` and
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`. The salt and iteration count are in the
//! verifier, so whether it was made from a given password is checked exactly, without state.
//!
//! PostgreSQL prepares the password with SASLprep first. For an ASCII password the result is
//! the password itself (printable characters are unchanged; one with a control character is
//! refused by SASLprep, and PostgreSQL then uses the raw bytes): here the raw bytes are used,
//! and [`needs_saslprep`] tells the passwords for which that could differ.

use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::{Digest, Sha256};

/// What PostgreSQL uses by default (`scram_iterations`, PostgreSQL 16+; fixed before).
pub const ITERATIONS: u32 = 4096;
const PREFIX: &str = "SCRAM-SHA-256$";

/// A stored SCRAM-SHA-256 verifier, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

/// Whether PostgreSQL's SASLprep could change `password` (it has non-ASCII characters), so
/// that a verifier computed from its raw bytes could differ from the server's.
pub fn needs_saslprep(password: &str) -> bool {
    !password.is_ascii()
}

impl Verifier {
    /// Reads `rolpassword`; `None` for anything else (an MD5 hash, no password).
    pub fn parse(text: &str) -> Option<Verifier> {
        let rest = text.strip_prefix(PREFIX)?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(Verifier {
            iterations: iterations.parse().ok().filter(|n| *n > 0)?,
            salt: base64_decode(salt)?,
            stored_key: base64_decode(stored).filter(|k| k.len() == 32)?,
            server_key: base64_decode(server).filter(|k| k.len() == 32)?,
        })
    }

    /// The verifier of `password` with `salt` and `iterations`.
    pub fn new(password: &str, salt: &[u8], iterations: u32) -> Verifier {
        let (stored_key, server_key) = keys(password.as_bytes(), salt, iterations);
        Verifier {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        }
    }

    /// Whether this verifier was made from `password`.
    pub fn matches(&self, password: &str) -> bool {
        let (stored, server) = keys(password.as_bytes(), &self.salt, self.iterations);
        // Not secret-dependent timing worth guarding: both sides are the caller's own.
        stored == self.stored_key && server == self.server_key
    }

    /// As `pg_authid.rolpassword` holds it.
    pub fn text(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            base64_encode(&self.salt),
            base64_encode(&self.stored_key),
            base64_encode(&self.server_key)
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn keys(password: &[u8], salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>) {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key).to_vec();
    (stored_key, hmac(&salted, b"Server Key"))
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as PostgreSQL writes verifiers.
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let body = text.trim_end_matches('=');
    if text.len() % 4 != 0 || text.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in body.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let text = base64_encode(data);
            assert_eq!(base64_decode(&text).as_deref(), Some(data), "{text}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64_decode("Zm9v!mFy"), None);
        assert_eq!(base64_decode("Zm9"), None);
    }

    /// Made by PostgreSQL 15.18 (Debian 12's; `SET password_encryption = 'scram-sha-256'; CREATE ROLE x
    /// PASSWORD 'it''s a \ $secret'`) and read back from `pg_authid`.
    const FROM_POSTGRES: &str = "SCRAM-SHA-256$4096:2bUIDIjO5pN70leSVpp5Nw==$zwaNaz9wKvdFz6eW67p3xLzx2krqdQbiroJAMQ04qAQ=:HeMDLMQTbp3suMBt4WymMJWildXiSXqYsN1qd2s4cTM=";

    #[test]
    fn a_verifier_made_by_postgres_matches_its_password_only() {
        let v = Verifier::parse(FROM_POSTGRES).expect("a SCRAM verifier");
        assert!(v.matches("it's a \\ $secret"));
        assert!(!v.matches("it's a \\ $secreT"));
        assert_eq!(v.text(), FROM_POSTGRES);
    }

    #[test]
    fn a_computed_verifier_reads_back_and_matches() {
        let v = Verifier::new("n'ew \\ $pw", b"0123456789abcdef", ITERATIONS);
        let back = Verifier::parse(&v.text()).unwrap();
        assert_eq!(back, v);
        assert!(back.matches("n'ew \\ $pw"));
        assert!(!back.matches("n'ew \\ $pW"));
    }

    #[test]
    fn other_stored_passwords_are_no_verifier() {
        assert_eq!(Verifier::parse("md5a3556571e93b0d20722ba62be61e8c2d"), None);
        assert_eq!(Verifier::parse(""), None);
        assert_eq!(Verifier::parse("SCRAM-SHA-256$0:AAAA$AAAA:AAAA"), None);
        assert!(needs_saslprep("pässword"));
        assert!(!needs_saslprep("it's a \\ $secret"));
    }
}
