//! A role's password as PostgreSQL keeps it: a SCRAM-SHA-256 verifier, computed here
//! ([`crate::common::scram`]) so the clear password never reaches the server (nor
//! its logs), and compared here against `pg_authid.rolpassword` so a plan knows whether the
//! password changes without keeping any state. The one boundary the role module uses:
//! [`matches`] and [`verifier`].
//!
//! SASLprep is not applied: for an ASCII password it changes nothing, and the module refuses
//! other passwords.

use crate::common::scram::Verifier;

/// A new verifier of `password`, with a random salt from the kernel.
pub(crate) fn verifier(password: &str) -> std::io::Result<String> {
    Ok(Verifier::random(password)?.text())
}

/// Whether `stored` (a `rolpassword`) is a SCRAM-SHA-256 verifier of `password`. An MD5 hash,
/// a clear-text value or no password never matches: the password is then set again, as a
/// SCRAM verifier.
pub(crate) fn matches(password: &str, stored: &str) -> bool {
    Verifier::parse(stored).is_some_and(|v| v.matches(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_verifier_matches_its_password_only() {
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
