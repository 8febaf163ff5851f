//! The one table of input limits: what a hostile or broken input may cost before it is refused.
//!
//! Every input path (inventory, vars files, playbook, `-e @file`, templates) is bounded so that
//! a malformed or malicious file ends in a located error that names the limit, never in a
//! stack overflow, an exhausted memory or a hang. The defaults are far above real sites
//! (10,000 hosts, 1 MB vars files, configuration templates with loops over every host).

use std::path::Path;

/// Largest input file read (inventory, vars file, playbook, `-e @file`): 32 MiB. A 100,000-host
/// generated inventory is 8 MB.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Deepest nesting of YAML sequences and mappings. Real files nest a dozen levels; the limit
/// keeps every recursive walk of the tree (typed reading, rendering, dropping) far from the
/// stack's end.
pub const MAX_YAML_DEPTH: usize = 256;

/// Nodes a file's aliases (`*name`) may copy in all: a few aliased defaults cost hundreds, a
/// "billion laughs" of nested aliases costs billions.
pub const MAX_ALIAS_NODES: usize = 250_000;

/// Template instructions one render may execute (minijinja's fuel): a loop over 10,000 hosts
/// uses about 100,000. A render that runs out is reported for its first host only.
pub const TEMPLATE_FUEL: u64 = 2_000_000;

/// Largest text one render may produce: 4 MiB (a configuration listing 10,000 servers is about
/// 1 MB). Values built inside a render are not bounded by it: minijinja itself refuses a string
/// repetition (`'a' * n`) over 100,000,000 bytes (its `MAX_REPEATED_STRING_LEN`, fixed), but
/// has no hook on operators for a lower bound, so `'a' * 99999999` costs about 100 MB before
/// this limit refuses the output.
pub const MAX_RENDER_BYTES: usize = 4 * 1024 * 1024;

/// Variables rendered in all while rendering one template (each templated variable it reads,
/// and theirs): chains of variables that each use the previous one twice would otherwise
/// grow exponentially.
pub const MAX_LAZY_RENDERS: u32 = 10_000;

/// Why an input file is refused before it is read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file ({0}): only regular files are read")]
    NotRegular(&'static str),
    #[error(
        "file is {size} bytes, over the limit of {} bytes (`MAX_FILE_BYTES`)",
        MAX_FILE_BYTES
    )]
    TooLarge { size: u64 },
    #[error("file is not valid UTF-8 text")]
    NotUtf8,
}

/// Reads an input file as text: a regular file (symbolic links followed; a loop of links, a
/// FIFO, a device or a directory is refused without blocking), at most [`MAX_FILE_BYTES`],
/// UTF-8, with a leading byte-order mark removed (as PyYAML and Ansible's INI reader do).
pub fn read_input(path: &Path) -> Result<String, ReadError> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(describe_kind(&kind)));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge { size: meta.len() });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the check and the read: read one byte more than the limit.
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
        });
    }
    let text = String::from_utf8(bytes).map_err(|_| ReadError::NotUtf8)?;
    Ok(strip_bom(text))
}

/// Removes a leading UTF-8 byte-order mark.
pub fn strip_bom(text: String) -> String {
    match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

fn describe_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_loops_and_large_files_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(
            read_input(&fifo),
            Err(ReadError::NotRegular("a named pipe"))
        ));
        let (a, b) = (dir.path().join("a.yml"), dir.path().join("b.yml"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = read_input(&a).unwrap_err().to_string();
        assert!(e.contains("symbolic links"), "{e}");
        let big = dir.path().join("big.yml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_FILE_BYTES + 1)
            .unwrap();
        assert!(matches!(read_input(&big), Err(ReadError::TooLarge { .. })));
    }

    #[test]
    fn removes_a_byte_order_mark() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bom.yml");
        std::fs::write(&p, "\u{feff}a: 1\n").unwrap();
        assert_eq!(read_input(&p).unwrap(), "a: 1\n");
    }
}
