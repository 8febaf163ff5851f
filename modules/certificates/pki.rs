//! The engine side of `certificates`: the CA kept on this machine (created on first use, key
//! mode 0600, never uploaded), leaf certificates signed by it, and reading a certificate found
//! on a host (SANs, issuer, expiry) to decide whether it must be reissued.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// Why the local PKI could not be read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PkiError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write `{path}`: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("`{path}` is not a usable CA certificate or key: {reason}")]
    BadCa { path: String, reason: String },
    #[error("cannot create a certificate for `{subject}`: {reason}")]
    Sign { subject: String, reason: String },
}

/// Where the CA's certificate and key are on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Created by pgdeploy when missing (false for a CA the user provides).
    pub generated: bool,
}

impl CaPaths {
    pub(crate) fn exists(&self) -> bool {
        self.cert.is_file() && self.key.is_file()
    }
}

/// A loaded CA: its certificate (public, installed on hosts) and what signs leaves.
pub(crate) struct Ca {
    pub cert_pem: String,
    /// The CA's subject, as certificates it issued name their issuer.
    pub subject: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Loads the CA at `paths`.
pub(crate) fn load_ca(paths: &CaPaths) -> Result<Ca, PkiError> {
    let cert_pem = read(&paths.cert)?;
    let key_pem = read(&paths.key)?;
    // The key's own error could quote it: say only that it is unusable.
    let key = KeyPair::from_pem(&key_pem).map_err(|_| PkiError::BadCa {
        path: paths.key.display().to_string(),
        reason: "not a PEM private key rcgen can use (PKCS#8 ECDSA, Ed25519 or RSA)".into(),
    })?;
    let info = inspect(cert_pem.as_bytes()).map_err(|reason| PkiError::BadCa {
        path: paths.cert.display().to_string(),
        reason,
    })?;
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| PkiError::BadCa {
        path: paths.cert.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(Ca {
        cert_pem,
        subject: info.subject,
        issuer,
    })
}

/// Writes `bytes` to `path` atomically, created with `mode` ([`pgdeploy_core::atomic_file`]).
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    pgdeploy_core::atomic_file::write(path, bytes, mode).map_err(|e| PkiError::Write {
        path: path.display().to_string(),
        source: e.source,
    })
}

/// Creates a CA at `paths` (directory 0700, key 0600), valid for `days`.
pub(crate) fn create_ca(paths: &CaPaths, common_name: &str, days: u32) -> Result<Ca, PkiError> {
    let sign_err = |e: rcgen::Error| PkiError::Sign {
        subject: common_name.to_string(),
        reason: e.to_string(),
    };
    if let Some(dir) = paths.cert.parent() {
        let existed = dir.is_dir();
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        if !existed {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(sign_err)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
    let key = KeyPair::generate().map_err(sign_err)?;
    params.serial_number = Some(serial(&key));
    let cert = params.self_signed(&key).map_err(sign_err)?;
    // The key first: a certificate without its key would look like a user-provided CA.
    write_atomic(&paths.key, key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&paths.cert, cert.pem().as_bytes(), 0o644)?;
    load_ca(paths)
}

/// A random-looking positive serial number.
fn serial(key: &KeyPair) -> SerialNumber {
    let mut h = Sha256::new();
    h.update(key.public_key_raw());
    h.update(
        OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_le_bytes(),
    );
    let mut bytes: Vec<u8> = h.finalize()[..16].to_vec();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// A leaf certificate and its private key, in PEM.
pub(crate) struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leaf { .. }")
    }
}

/// Issues a leaf for `common_name` with `sans` (IP addresses or DNS names), serverAuth and
/// clientAuth, valid for `days`.
pub(crate) fn issue(
    ca: &Ca,
    common_name: &str,
    sans: &[String],
    days: u32,
) -> Result<Leaf, PkiError> {
    let sign_err = |e: rcgen::Error| PkiError::Sign {
        subject: common_name.to_string(),
        reason: e.to_string(),
    };
    let mut params = CertificateParams::new(sans.to_vec()).map_err(sign_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(i64::from(days));
    let key = KeyPair::generate().map_err(sign_err)?;
    params.serial_number = Some(serial(&key));
    let cert = params.signed_by(&key, &ca.issuer).map_err(sign_err)?;
    Ok(Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// What matters of a certificate found on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// SANs as text: IP addresses and DNS names.
    pub sans: BTreeSet<String>,
    /// Expiry, seconds since the epoch.
    pub not_after: i64,
    /// The subject public key's bits, to check that a key on the host belongs to it.
    pub public_key: Vec<u8>,
}

impl CertInfo {
    /// A readable description, used as a diff's sides (a certificate's PEM says nothing).
    pub(crate) fn describe(&self) -> String {
        format!(
            "subject: {}\nissuer: {}\nSANs: {}\nnot after: {}\n",
            self.subject,
            self.issuer,
            self.sans.iter().cloned().collect::<Vec<_>>().join(", "),
            date(self.not_after)
        )
    }
}

/// `2026-11-22` for a time in seconds since the epoch.
pub(crate) fn date(secs: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => secs.to_string(),
    }
}

/// Reads a PEM certificate.
pub(crate) fn inspect(pem: &[u8]) -> Result<CertInfo, String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let mut sans = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    sans.insert(d.to_string());
                }
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        sans.insert(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_after: cert.validity().not_after.timestamp(),
        public_key: cert.public_key().subject_public_key.data.to_vec(),
    })
}

/// Whether the PEM private key `key_pem` is the key of the certificate `info`. The key is
/// only parsed here, never shown.
pub(crate) fn key_matches(key_pem: &[u8], info: &CertInfo) -> bool {
    let Ok(text) = std::str::from_utf8(key_pem) else {
        return false;
    };
    KeyPair::from_pem(text).is_ok_and(|k| k.public_key_raw() == info.public_key.as_slice())
}

/// SANs normalised as [`inspect`] reports them (IP addresses in canonical form).
pub(crate) fn normalise_sans(sans: &[String]) -> BTreeSet<String> {
    sans.iter()
        .map(|s| match s.parse::<IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => s.clone(),
        })
        .collect()
}

/// Whether `name` can be a SAN: an IP address or a DNS name.
pub(crate) fn valid_san(name: &str) -> bool {
    if name.parse::<IpAddr>().is_ok() {
        return true;
    }
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_then_leaf_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let paths = CaPaths {
            cert: dir.path().join("pki/ca.crt"),
            key: dir.path().join("pki/ca.key"),
            generated: true,
        };
        let ca = create_ca(&paths, "pgdeploy CA", 3650).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&paths.key), 0o600);
        assert_eq!(mode(paths.key.parent().unwrap()), 0o700);
        let again = load_ca(&paths).unwrap();
        assert_eq!(again.cert_pem, ca.cert_pem);
        let sans = vec!["pg1".to_string(), "10.0.0.1".into(), "127.0.0.1".into()];
        let leaf = issue(&again, "pg1", &sans, 365).unwrap();
        let info = inspect(leaf.cert_pem.as_bytes()).unwrap();
        assert_eq!(info.subject, "CN=pg1");
        assert_eq!(info.issuer, ca.subject);
        assert_eq!(info.sans, normalise_sans(&sans));
        let days = (info.not_after - OffsetDateTime::now_utc().unix_timestamp()) / 86400;
        assert!((363..=365).contains(&days), "{days}");
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        assert!(key_matches(leaf.key_pem.as_bytes(), &info));
        let other = issue(&again, "pg1", &sans, 365).unwrap();
        assert!(!key_matches(other.key_pem.as_bytes(), &info));
        assert!(!key_matches(b"garbage", &info));
        assert_eq!(format!("{leaf:?}"), "Leaf { .. }");
    }

    #[test]
    fn san_names() {
        assert!(valid_san("10.0.0.1") && valid_san("::1") && valid_san("pg-1.example.com"));
        assert!(!valid_san("") && !valid_san("a b") && !valid_san("a..b"));
    }
}
