//! The vault password, from `--vault-password-file FILE` (or `PGDEPLOY_VAULT_PASSWORD_FILE`),
//! read as Ansible's `FileVaultSecret` and `ScriptVaultSecret` read it, so that a password file
//! that works with `ansible-vault` works here: a file's content without surrounding whitespace
//! (Python's `strip()`); an executable file is run (no arguments, standard input and error
//! left to the terminal, so it may prompt) and its output without surrounding `\r`/`\n` is the
//! password.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot read the vault password file `{0}`: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("cannot run the vault password script `{0}`: {1}")]
    Run(PathBuf, std::io::Error),
    #[error("the vault password script `{0}` failed ({1})")]
    Failed(PathBuf, std::process::ExitStatus),
    #[error("the vault password file `{0}` gives an empty password")]
    Empty(PathBuf),
}

/// The password that `path` holds, or prints when it is executable.
pub fn read(path: &Path) -> Result<Vec<u8>, PasswordError> {
    let meta = std::fs::metadata(path).map_err(|e| PasswordError::Read(path.into(), e))?;
    let password = if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
        let out = Command::new(path)
            .stdin(Stdio::inherit())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| PasswordError::Run(path.into(), e))?;
        if !out.status.success() {
            return Err(PasswordError::Failed(path.into(), out.status));
        }
        trim(&out.stdout, |b| b == b'\r' || b == b'\n')
    } else {
        let data = std::fs::read(path).map_err(|e| PasswordError::Read(path.into(), e))?;
        trim(&data, |b| b.is_ascii_whitespace() || b == 0x0b)
    };
    if password.is_empty() {
        return Err(PasswordError::Empty(path.into()));
    }
    Ok(password)
}

fn trim(data: &[u8], strip: impl Fn(u8) -> bool) -> Vec<u8> {
    let start = data.iter().position(|b| !strip(*b)).unwrap_or(data.len());
    let end = data
        .iter()
        .rposition(|b| !strip(*b))
        .map_or(start, |i| i + 1);
    data[start..end].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_file_gives_its_content_without_surrounding_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "pw", "  s3cret pass\r\n\n", 0o600);
        assert_eq!(read(&p).unwrap(), b"s3cret pass");
    }

    #[test]
    fn an_executable_file_is_run_and_its_output_used() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "pw.sh",
            "#!/bin/sh\necho 'from script'\n",
            0o700,
        );
        assert_eq!(read(&p).unwrap(), b"from script");
        let failing = write(dir.path(), "bad.sh", "#!/bin/sh\nexit 3\n", 0o700);
        let err = read(&failing).unwrap_err().to_string();
        assert!(err.contains("bad.sh` failed (exit status: 3)"), "{err}");
    }

    #[test]
    fn missing_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(&dir.path().join("none")).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read the vault password file `"),
            "{err}"
        );
        let empty = write(dir.path(), "empty", "\n", 0o600);
        assert!(matches!(read(&empty), Err(PasswordError::Empty(_))));
    }
}
