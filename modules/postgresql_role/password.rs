//! A role's password as PostgreSQL keeps it: a SCRAM-SHA-256 verifier
//! (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5803), computed here so
//! the clear password never reaches the server (nor its logs), and compared here against
//! `pg_authid.rolpassword` so a plan knows whether the password changes without keeping any
//! state. The one boundary the role module uses: [`matches`] and [`verifier`].
//!
//! SASLprep is not applied: for an ASCII password it changes nothing (libpq and the server
//! use the raw bytes when a password has prohibited characters such as control characters),
//! and the module refuses other passwords.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::sha2::{Digest, Sha256};

/// PostgreSQL's default `scram_iterations`.
const ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;

/// `(StoredKey, ServerKey)` of `password` with `salt` and `iterations`.
fn keys(password: &str, salt: &[u8], iterations: u32) -> ([u8; 32], [u8; 32]) {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
    let hmac = |msg: &[u8]| -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&salted).expect("any key length");
        mac.update(msg);
        mac.finalize().into_bytes().into()
    };
    let client_key = hmac(b"Client Key");
    let stored: [u8; 32] = Sha256::digest(client_key).into();
    (stored, hmac(b"Server Key"))
}

fn with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let (stored, server) = keys(password, salt, iterations);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored),
        STANDARD.encode(server)
    )
}

/// A new verifier of `password`, with a random salt from the kernel.
pub fn verifier(password: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut salt = [0u8; SALT_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut salt)?;
    Ok(with_salt(password, &salt, ITERATIONS))
}

/// Whether `stored` (a `rolpassword`) is a SCRAM-SHA-256 verifier of `password`. An MD5 hash,
/// a clear-text value or no password never matches: the password is then set again, as a
/// SCRAM verifier.
pub fn matches(password: &str, stored: &str) -> bool {
    let parse = || -> Option<bool> {
        let rest = stored.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys_part) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored_key, server_key) = keys_part.split_once(':')?;
        let iterations: u32 = iterations.parse().ok().filter(|i| *i > 0)?;
        let salt = STANDARD.decode(salt).ok()?;
        let (s, k) = keys(password, &salt, iterations);
        Some(STANDARD.decode(stored_key).ok()? == s && STANDARD.decode(server_key).ok()? == k)
    };
    parse().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example (password `pencil`, its salt, 4096 iterations) written as a
    /// PostgreSQL verifier.
    #[test]
    fn known_verifier_is_recomputed_and_matched() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = with_salt("pencil", &salt, 4096);
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
        assert!(matches("pencil", &v));
        assert!(!matches("pencil2", &v));
    }

    #[test]
    fn quotes_backslashes_and_newlines_round_trip() {
        let p = "it's \\ a\nnew \"one\"";
        let v = verifier(p).unwrap();
        assert!(matches(p, &v));
        assert!(!matches("it's \\ a", &v));
        assert!(!v.contains(p));
    }

    #[test]
    fn other_forms_never_match() {
        assert!(!matches("x", ""));
        assert!(!matches("x", "md5abcdef"));
        assert!(!matches("x", "SCRAM-SHA-256$0:AA==$AA==:AA=="));
        assert!(!matches("x", "SCRAM-SHA-256$4096:!!$AA==:AA=="));
    }
}
