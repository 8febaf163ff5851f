//! What a path is on the host, read with one small shell script (`stat`, `readlink` and, for
//! content modules, `cat`) so a no-op plan costs one round trip.
//!
//! The script prints two lines, then optionally the file's bytes:
//! 1. `missing`, or `KIND\tOWNER\tGROUP\tUID\tGID\tMODE` of the path with links followed;
//! 2. `nolink`, or `link\tOWNER\tGROUP\tUID\tGID\tTARGET` when the path itself is a symlink.

use super::shell::quote;
use crate::module::ModuleError;

/// Exit status the probe uses when `stat`/`readlink`/`cat` failed (permissions, mostly).
const PROBE_FAILED: &str = "97";

/// What a path points to (links followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Directory,
    /// Anything else, with `stat`'s name for it (`fifo`, `socket`, …).
    Other(String),
}

impl Kind {
    /// How messages name it.
    pub fn describe(&self) -> &str {
        match self {
            Kind::Missing => "missing",
            Kind::File => "a regular file",
            Kind::Directory => "a directory",
            Kind::Other(s) => s,
        }
    }
}

/// Who owns a path, and its permission bits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ownership {
    pub owner: String,
    pub group: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

impl Ownership {
    /// Whether the wanted owner (a name or a numeric id) is the current one.
    pub fn owner_is(&self, wanted: &str) -> bool {
        wanted == self.owner || wanted == self.uid
    }
    pub fn group_is(&self, wanted: &str) -> bool {
        wanted == self.group || wanted == self.gid
    }
}

/// A symbolic link found at the path itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub target: String,
    /// The link's own owner (`mode` is meaningless for links on Linux and left 0).
    pub ownership: Ownership,
}

/// The state of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathState {
    pub kind: Kind,
    /// Of what the path resolves to; `None` when missing.
    pub ownership: Option<Ownership>,
    pub link: Option<Link>,
    /// The file's bytes, when asked for and the path is a regular file.
    pub content: Option<Vec<u8>>,
}

impl PathState {
    /// A path that does not exist (known without asking the host).
    pub fn missing() -> Self {
        PathState {
            kind: Kind::Missing,
            ownership: None,
            link: None,
            content: None,
        }
    }
}

/// The probe script for `path`; with `content`, a regular file's bytes follow.
pub fn probe_script(path: &str, content: bool) -> String {
    let p = quote(path);
    let mut s = format!(
        "if [ -e {p} ]; then LC_ALL=C stat -L --printf '%F\\t%U\\t%G\\t%u\\t%g\\t%a\\n' -- {p} || exit {PROBE_FAILED}; \
         else echo missing; fi; \
         if [ -L {p} ]; then LC_ALL=C stat --printf 'link\\t%U\\t%G\\t%u\\t%g\\t' -- {p} && readlink -- {p} || exit {PROBE_FAILED}; \
         else echo nolink; fi"
    );
    if content {
        s.push_str(&format!(
            "; if [ -f {p} ]; then cat -- {p} || exit {PROBE_FAILED}; fi"
        ));
    }
    s
}

/// Reads the probe's output. `content` says whether the script asked for the bytes.
pub fn parse_probe(path: &str, stdout: &[u8], content: bool) -> Result<PathState, ModuleError> {
    let bad = || ModuleError::Failed(format!("unexpected output of `stat` for `{path}`"));
    let (first, rest) = split_line(stdout).ok_or_else(bad)?;
    let (second, rest) = split_line(rest).ok_or_else(bad)?;
    let first = std::str::from_utf8(first).map_err(|_| bad())?;
    let second = std::str::from_utf8(second).map_err(|_| bad())?;

    let (kind, ownership) = if first == "missing" {
        (Kind::Missing, None)
    } else {
        let f: Vec<&str> = first.split('\t').collect();
        if f.len() != 6 {
            return Err(bad());
        }
        let kind = match f[0] {
            "regular file" | "regular empty file" => Kind::File,
            "directory" => Kind::Directory,
            other => Kind::Other(other.to_string()),
        };
        let mode = u32::from_str_radix(f[5], 8).map_err(|_| bad())?;
        let own = Ownership {
            owner: f[1].into(),
            group: f[2].into(),
            uid: f[3].into(),
            gid: f[4].into(),
            mode,
        };
        (kind, Some(own))
    };

    let link = if second == "nolink" {
        None
    } else {
        let f: Vec<&str> = second.splitn(6, '\t').collect();
        if f.len() != 6 || f[0] != "link" {
            return Err(bad());
        }
        Some(Link {
            target: f[5].to_string(),
            ownership: Ownership {
                owner: f[1].into(),
                group: f[2].into(),
                uid: f[3].into(),
                gid: f[4].into(),
                mode: 0,
            },
        })
    };
    let content = (content && kind == Kind::File).then(|| rest.to_vec());
    Ok(PathState {
        kind,
        ownership,
        link,
        content,
    })
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..i], &bytes[i + 1..]))
}

/// Runs the probe for `path` on the host: one round trip.
pub async fn probe(
    cx: &crate::module::HostContext<'_>,
    path: &str,
    content: bool,
) -> Result<PathState, ModuleError> {
    let script = probe_script(path, content);
    let out = super::exec::run(cx, &script).await?;
    if out.status != 0 {
        return Err(super::exec::failure(&format!("stat {}", quote(path)), &out));
    }
    parse_probe(path, &out.stdout, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_file_with_content() {
        let out = b"regular file\troot\troot\t0\t0\t644\nnolink\nhello\nworld";
        let s = parse_probe("/x", out, true).unwrap();
        assert_eq!(s.kind, Kind::File);
        let o = s.ownership.unwrap();
        assert_eq!((o.owner.as_str(), o.mode), ("root", 0o644));
        assert!(o.owner_is("0") && o.group_is("root") && !o.owner_is("etcd"));
        assert_eq!(s.content.as_deref(), Some(&b"hello\nworld"[..]));
        assert!(s.link.is_none());
    }

    #[test]
    fn parses_missing_and_dangling_link() {
        let s = parse_probe("/x", b"missing\nnolink\n", true).unwrap();
        assert_eq!(
            (s.kind, s.ownership, s.content),
            (Kind::Missing, None, None)
        );
        let s = parse_probe(
            "/x",
            b"missing\nlink\troot\troot\t0\t0\t/no\twhere\n",
            false,
        )
        .unwrap();
        assert_eq!(s.link.unwrap().target, "/no\twhere");
    }

    #[test]
    fn parses_a_directory_behind_a_link() {
        let out =
            b"directory\tpostgres\tpostgres\t105\t110\t2750\nlink\troot\troot\t0\t0\t/srv/pg\n";
        let s = parse_probe("/var/lib/postgresql", out, false).unwrap();
        assert_eq!(s.kind, Kind::Directory);
        assert_eq!(s.ownership.unwrap().mode, 0o2750);
        assert_eq!(s.link.unwrap().target, "/srv/pg");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_probe("/x", b"what", false).is_err());
        assert!(parse_probe("/x", b"a\tb\nnolink\n", false).is_err());
    }

    #[test]
    fn script_quotes_the_path() {
        let s = probe_script("/etc/a b", true);
        assert!(s.contains("[ -e '/etc/a b' ]") && s.contains("cat -- '/etc/a b'"));
    }
}
