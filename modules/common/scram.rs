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

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::{Digest, Sha256};

/// What PostgreSQL uses by default (`scram_iterations`, PostgreSQL 16+; fixed before).
pub(crate) const ITERATIONS: u32 = 4096;
const PREFIX: &str = "SCRAM-SHA-256$";
/// The salt length PostgreSQL uses (`SCRAM_DEFAULT_SALT_LEN`).
const SALT_LEN: usize = 16;

/// A stored SCRAM-SHA-256 verifier, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

/// Whether PostgreSQL's SASLprep could change `password` (it has non-ASCII characters), so
/// that a verifier computed from its raw bytes could differ from the server's.
pub(crate) fn needs_saslprep(password: &str) -> bool {
    !password.is_ascii()
}

impl Verifier {
    /// Reads `rolpassword`; `None` for anything else (an MD5 hash, no password).
    pub(crate) fn parse(text: &str) -> Option<Verifier> {
        let rest = text.strip_prefix(PREFIX)?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some(Verifier {
            iterations: iterations.parse().ok().filter(|n| *n > 0)?,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: STANDARD.decode(stored).ok().filter(|k| k.len() == 32)?,
            server_key: STANDARD.decode(server).ok().filter(|k| k.len() == 32)?,
        })
    }

    /// The verifier of `password` with `salt` and `iterations`.
    pub(crate) fn new(password: &str, salt: &[u8], iterations: u32) -> Verifier {
        let (stored_key, server_key) = keys(password.as_bytes(), salt, iterations);
        Verifier {
            iterations,
            salt: salt.to_vec(),
            stored_key,
            server_key,
        }
    }

    /// A new verifier of `password` with a random salt from the kernel and PostgreSQL's
    /// default iterations: what `ALTER ROLE … PASSWORD` is given.
    pub(crate) fn random(password: &str) -> std::io::Result<Verifier> {
        use std::io::Read;
        let mut salt = [0u8; SALT_LEN];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
        Ok(Verifier::new(password, &salt, ITERATIONS))
    }

    /// Whether this verifier was made from `password`.
    pub(crate) fn matches(&self, password: &str) -> bool {
        let (stored, server) = keys(password.as_bytes(), &self.salt, self.iterations);
        // Not secret-dependent timing worth guarding: both sides are the caller's own.
        stored == self.stored_key && server == self.server_key
    }

    /// As `pg_authid.rolpassword` holds it.
    pub(crate) fn text(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(&self.stored_key),
            STANDARD.encode(&self.server_key)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    /// RFC 7677's example (password `pencil`, its salt, 4096 iterations) as a PostgreSQL
    /// verifier.
    #[test]
    fn the_rfc_7677_example_is_recomputed() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = Verifier::new("pencil", &salt, 4096);
        assert_eq!(
            v.text(),
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    #[test]
    fn a_random_verifier_matches_quotes_backslashes_and_newlines() {
        let p = "it's \\ a\nnew \"one\"";
        let v = Verifier::random(p).unwrap();
        assert!(Verifier::parse(&v.text()).unwrap().matches(p));
        assert!(!v.matches("it's \\ a"));
        assert!(!v.text().contains(p));
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
