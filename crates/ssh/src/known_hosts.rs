//! Host key verification against an OpenSSH known_hosts file (OpenSSH `accept-new` policy).
//!
//! A key that differs from the recorded one is always a hard error naming the file and line,
//! so the user can inspect and fix exactly that entry; an unknown host is refused unless the
//! user explicitly asked to record new keys. There is deliberately no "accept anything" mode.

use std::path::Path;
use std::sync::Mutex;

use russh::keys::{HashAlg, PublicKey};

/// What verification concluded for an accepted key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The key is recorded for this host.
    Known,
    /// The host was unknown and its key has just been recorded.
    Learned,
}

/// Serialises appends to known_hosts: many hosts connecting at once with
/// `--accept-new-host-keys` must not interleave their lines.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// How known_hosts names a host: `host`, or `[host]:port` when the port is not 22.
pub fn host_pattern(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_owned()
    } else {
        format!("[{address}]:{port}")
    }
}

/// Checks `key`, offered by `address:port`, against the known_hosts file at `path`.
///
/// `Err` carries the full, user-facing reason for refusing the key.
pub(crate) fn verify(
    address: &str,
    port: u16,
    key: &PublicKey,
    path: &Path,
    accept_new: bool,
) -> Result<Verdict, String> {
    let pattern = host_pattern(address, port);
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    let algorithm = key.algorithm();
    let file = path.display();
    match russh::keys::check_known_hosts_path(address, port, key, path) {
        Ok(true) => return Ok(Verdict::Known),
        Ok(false) => {}
        Err(russh::keys::Error::KeyChanged { line }) => {
            let line = real_line_number(path, line);
            return Err(format!(
                "host key for `{pattern}` has CHANGED: `{file}` line {line} records a different \
                 {algorithm} key, the host offered {fingerprint}; this may be a \
                 man-in-the-middle attack. If the host was reinstalled, remove that line \
                 (`ssh-keygen -R '{pattern}' -f {file}`) and connect again"
            ));
        }
        Err(e) => return Err(format!("cannot check host key in `{file}`: {e}")),
    }
    // Known with other key types only: OpenSSH would not silently add a second identity either.
    let others = russh::keys::known_hosts::known_host_keys_path(address, port, path)
        .map_err(|e| format!("cannot check host key in `{file}`: {e}"))?;
    if let Some((line, recorded)) = others.first() {
        let line = real_line_number(path, *line);
        return Err(format!(
            "host `{pattern}` offered a {algorithm} key ({fingerprint}) but `{file}` line {line} \
             records a {} key for it; refusing an unverified key type",
            recorded.algorithm()
        ));
    }
    if !accept_new {
        return Err(format!(
            "host `{pattern}` is not in `{file}` (it offered {algorithm} key {fingerprint}); \
             verify the fingerprint and rerun with `--accept-new-host-keys` to record it"
        ));
    }
    let _guard = LEARN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // Another task may have learned it while we waited for the lock.
    if matches!(
        russh::keys::check_known_hosts_path(address, port, key, path),
        Ok(true)
    ) {
        return Ok(Verdict::Known);
    }
    russh::keys::known_hosts::learn_known_hosts_path(address, port, key, path)
        .map_err(|e| format!("cannot record host key of `{pattern}` in `{file}`: {e}"))?;
    tracing::info!(host = %pattern, %fingerprint, known_hosts = %file, "recorded new host key");
    Ok(Verdict::Learned)
}

/// russh numbers known_hosts entries without counting `#` comment lines; this maps its number
/// back to the line a user sees in an editor.
fn real_line_number(path: &Path, russh_line: usize) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return russh_line;
    };
    let mut counted = 0;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        counted += 1;
        if counted == russh_line {
            return index + 1;
        }
    }
    russh_line
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two distinct ed25519 public keys (generated with ssh-keygen for these tests only).
    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGN2dNpEguHY9y5KhAsaXt1H39jDses93ipYRURoo1mi";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO/ik7j/cO8WbANAQm2Fwy0tSoed1V72k0EmtZtsUBxs";

    fn key(s: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(s.split(' ').nth(1).unwrap()).unwrap()
    }

    #[test]
    fn known_changed_unknown_learned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(
            &path,
            format!("# comment\n# another\nother {KEY_B}\n[10.0.0.1]:2222 {KEY_A}\n"),
        )
        .unwrap();
        assert_eq!(
            verify("10.0.0.1", 2222, &key(KEY_A), &path, false),
            Ok(Verdict::Known)
        );
        let err = verify("10.0.0.1", 2222, &key(KEY_B), &path, true).unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("CHANGED"), "{err}");
        assert!(err.contains("SHA256:"), "{err}");
        let err = verify("10.0.0.2", 22, &key(KEY_A), &path, false).unwrap_err();
        assert!(err.contains("--accept-new-host-keys"), "{err}");
        assert_eq!(
            verify("10.0.0.2", 22, &key(KEY_A), &path, true),
            Ok(Verdict::Learned)
        );
        assert_eq!(
            verify("10.0.0.2", 22, &key(KEY_A), &path, false),
            Ok(Verdict::Known)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with(&format!("10.0.0.2 {KEY_A}\n")), "{text}");
    }
}
