//! What a path is on the host, read with one small shell script (`stat`, `readlink` and, for
//! content modules, `cat`) so a no-op plan costs one round trip.
//!
//! The script prints two lines, then optionally the file's bytes:
//! 1. `missing`, or `KIND\tOWNER\tGROUP\tUID\tGID\tMODE` of the path with links followed;
//! 2. `nolink`, or `link\tOWNER\tGROUP\tUID\tGID\tTARGET` when the path itself is a symlink.

use super::shell::quote;
use pgdeploy_core::module::{Batcher, ModuleError, Probe, ProbeGroup};
use pgdeploy_core::transport::ExecOutput;

/// Exit status the probe uses when `stat`/`readlink`/`cat` failed (permissions, mostly).
const PROBE_FAILED: &str = "97";

/// What a path points to (links followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Missing,
    File,
    Directory,
    /// Anything else, with `stat`'s name for it (`fifo`, `socket`, …).
    Other(String),
}

impl Kind {
    /// How messages name it.
    pub(crate) fn describe(&self) -> &str {
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
pub(crate) struct Ownership {
    pub owner: String,
    pub group: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

impl Ownership {
    /// Whether the wanted owner (a name or a numeric id) is the current one.
    pub(crate) fn owner_is(&self, wanted: &str) -> bool {
        wanted == self.owner || wanted == self.uid
    }
    pub(crate) fn group_is(&self, wanted: &str) -> bool {
        wanted == self.group || wanted == self.gid
    }
}

/// A symbolic link found at the path itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub target: String,
    /// The link's own owner (`mode` is meaningless for links on Linux and left 0).
    pub ownership: Ownership,
}

/// The state of one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathState {
    pub kind: Kind,
    /// Of what the path resolves to; `None` when missing.
    pub ownership: Option<Ownership>,
    pub link: Option<Link>,
    /// The file's bytes, when asked for and the path is a regular file.
    pub content: Option<Vec<u8>>,
}

impl PathState {
    /// A path that does not exist (known without asking the host).
    pub(crate) fn missing() -> Self {
        PathState {
            kind: Kind::Missing,
            ownership: None,
            link: None,
            content: None,
        }
    }
}

/// The probe script for `path`; with `content`, a regular file's bytes follow.
pub(crate) fn probe_script(path: &str, content: bool) -> String {
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

/// The [`Probe`] that [`probe`] runs for `path`: answered with other paths' in one `stat`.
pub(crate) fn probe_of(path: &str, content: bool) -> Probe {
    Probe {
        command: probe_script(path, content),
        group: Some(ProbeGroup {
            batcher: &PATH_STATES,
            item: format!("{}{path}", if content { WITH_CONTENT } else { STATE_ONLY }),
        }),
    }
}

/// How a [`PathStates`] item says whether the probe wants the file's bytes.
const WITH_CONTENT: &str = "content:";
const STATE_ONLY: &str = "state:";

/// Answers many [`probe_script`]s at once: one `stat` for every path that exists, and one
/// `cat` for the regular files whose contents are wanted, where each probe alone runs a
/// subshell, a `stat` and a `cat`. A path that is a symbolic link is left to its own probe.
pub(crate) struct PathStates;

pub(crate) static PATH_STATES: PathStates = PathStates;

/// An item's path and whether its contents are wanted.
fn item(item: &str) -> (&str, bool) {
    match item.strip_prefix(WITH_CONTENT) {
        Some(path) => (path, true),
        None => (item.strip_prefix(STATE_ONLY).unwrap_or(item), false),
    }
}

impl Batcher for PathStates {
    fn name(&self) -> &'static str {
        "path states"
    }

    /// Prints a line per path (`link`, `exists` or `missing`), a line `--`, then a `stat` line
    /// (the probe's fields and the size) per existing path, then the bytes of the regular
    /// files whose contents are wanted, one after the other, then their sizes again (a file
    /// whose size changed meanwhile would hand bytes to its neighbour: nothing is answered
    /// then).
    fn script(&self, items: &[String]) -> String {
        let items: Vec<(&str, bool)> = items.iter().map(|i| item(i)).collect();
        let all: Vec<String> = items.iter().map(|(p, _)| quote(p)).collect();
        let mut s = format!(
            "set --\nfor p in {}; do if [ -L \"$p\" ]; then echo link; \
             elif [ -e \"$p\" ]; then echo exists; set -- \"$@\" \"$p\"; else echo missing; fi; done\n\
             echo --\n\
             if [ $# -gt 0 ]; then LC_ALL=C stat -L --printf '%F\\t%U\\t%G\\t%u\\t%g\\t%a\\t%s\\n' -- \"$@\" || exit {PROBE_FAILED}; fi\n",
            all.join(" ")
        );
        let contents: Vec<String> = items
            .iter()
            .filter(|(_, c)| *c)
            .map(|(p, _)| quote(p))
            .collect();
        if !contents.is_empty() {
            s.push_str(&format!(
                "set --\nfor p in {}; do if [ -f \"$p\" ] && [ ! -L \"$p\" ]; then set -- \"$@\" \"$p\"; fi; done\n\
                 if [ $# -gt 0 ]; then cat -- \"$@\" || exit {PROBE_FAILED}; \
                 LC_ALL=C stat -L --printf '%s\\n' -- \"$@\" || exit {PROBE_FAILED}; fi\n",
                contents.join(" ")
            ));
        }
        s
    }

    fn split(&self, items: &[String], out: &ExecOutput) -> Vec<Option<ExecOutput>> {
        let wants: Vec<bool> = items.iter().map(|i| item(i).1).collect();
        Self::try_split(&wants, &out.stdout)
            .filter(|_| out.status == 0)
            .unwrap_or_else(|| vec![None; items.len()])
    }
}

impl PathStates {
    /// `wants[i]`: whether item `i` wants its file's bytes.
    fn try_split(wants: &[bool], stdout: &[u8]) -> Option<Vec<Option<ExecOutput>>> {
        let count = wants.len();
        let answer = |stdout: Vec<u8>| ExecOutput {
            status: 0,
            stdout,
            stderr: Vec::new(),
        };
        let mut rest = stdout;
        let mut classes = Vec::with_capacity(count);
        for _ in 0..count {
            let (line, tail) = split_line(rest)?;
            classes.push(line);
            rest = tail;
        }
        let (sep, tail) = split_line(rest)?;
        if sep != b"--" {
            return None;
        }
        rest = tail;
        let mut outputs = Vec::with_capacity(count);
        // (index of the output, size) of each regular file whose bytes follow the lines.
        let mut contents = Vec::new();
        for (class, wants) in classes.into_iter().zip(wants) {
            match class {
                b"link" => outputs.push(None),
                b"missing" => outputs.push(Some(answer(b"missing\nnolink\n".to_vec()))),
                b"exists" => {
                    let (line, tail) = split_line(rest)?;
                    rest = tail;
                    let (fields, size) = line.rsplit_once_tab()?;
                    let mut text = fields.to_vec();
                    text.extend_from_slice(b"\nnolink\n");
                    if *wants && fields.starts_with(b"regular ") {
                        let size: usize = std::str::from_utf8(size).ok()?.parse().ok()?;
                        contents.push((outputs.len(), size));
                    }
                    outputs.push(Some(answer(text)));
                }
                _ => return None,
            }
        }
        let mut sizes_after = String::new();
        for &(i, size) in &contents {
            if rest.len() < size {
                return None;
            }
            let (bytes, tail) = rest.split_at(size);
            if let Some(out) = &mut outputs[i] {
                out.stdout.extend_from_slice(bytes);
            }
            rest = tail;
            sizes_after.push_str(&format!("{size}\n"));
        }
        // The sizes `stat` gives after `cat` must be those it gave before.
        (rest == sizes_after.as_bytes()).then_some(outputs)
    }
}

/// Splitting a `stat` line at its last tab (the size the batch adds to the probe's fields).
trait RsplitTab {
    fn rsplit_once_tab(&self) -> Option<(&[u8], &[u8])>;
}

impl RsplitTab for [u8] {
    fn rsplit_once_tab(&self) -> Option<(&[u8], &[u8])> {
        let i = self.iter().rposition(|&b| b == b'\t')?;
        Some((&self[..i], &self[i + 1..]))
    }
}

/// Reads the probe's output. `content` says whether the script asked for the bytes.
pub(crate) fn parse_probe(
    path: &str,
    stdout: &[u8],
    content: bool,
) -> Result<PathState, ModuleError> {
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
pub(crate) async fn probe(
    cx: &pgdeploy_core::module::HostContext<'_>,
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

/// The states of several files with their bytes in one round trip ([`PATH_STATES`]'s batch),
/// for a module that reads them after a command of its own (so the engine's read-ahead has
/// none kept); a path the batch cannot answer (a symbolic link) is probed alone.
pub(crate) async fn probe_files(
    cx: &pgdeploy_core::module::HostContext<'_>,
    paths: &[&str],
) -> Result<Vec<PathState>, ModuleError> {
    let items: Vec<String> = paths.iter().map(|p| format!("{WITH_CONTENT}{p}")).collect();
    let out = super::exec::run(cx, &PATH_STATES.script(&items)).await?;
    let answers = PATH_STATES.split(&items, &out);
    let mut states = Vec::with_capacity(paths.len());
    for (path, answer) in paths.iter().zip(answers) {
        states.push(match answer {
            Some(out) => parse_probe(path, &out.stdout, true)?,
            None => probe(cx, path, true).await?,
        });
    }
    Ok(states)
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

    #[tokio::test]
    async fn one_batch_answers_as_each_probe_would_alone() {
        use pgdeploy_core::transport::{ExecRequest, LocalTransport, Transport};
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(at("file"), b"a\0b\nno newline").unwrap();
        std::fs::write(at("empty"), b"").unwrap();
        std::fs::write(at("it's spaced"), b"x\n").unwrap();
        std::fs::create_dir(at("dir")).unwrap();
        std::os::unix::fs::symlink(at("file"), at("link")).unwrap();
        let paths: Vec<String> = ["file", "empty", "dir", "missing", "missing/below", "link"]
            .iter()
            .chain(&["it's spaced", "file"])
            .map(|n| at(n))
            .collect();
        let local = LocalTransport::new("here");
        let run = |command: String| {
            let local = &local;
            async move {
                local
                    .exec(&ExecRequest {
                        command,
                        ..ExecRequest::default()
                    })
                    .await
                    .unwrap()
            }
        };
        // Every path twice: its state alone, and its state with its bytes.
        let probes: Vec<Probe> = [false, true]
            .iter()
            .flat_map(|&content| paths.iter().map(move |p| probe_of(p, content)))
            .collect();
        let items: Vec<String> = probes
            .iter()
            .map(|p| p.group.as_ref().unwrap().item.clone())
            .collect();
        let out = run(PATH_STATES.script(&items)).await;
        let answers = PATH_STATES.split(&items, &out);
        assert_eq!(answers.len(), probes.len());
        for (probe, answer) in probes.iter().zip(answers) {
            if probe.command.contains("/link ]") {
                assert!(answer.is_none(), "links are probed alone");
                continue;
            }
            let alone = run(probe.command.clone()).await;
            assert_eq!(answer.as_ref(), Some(&alone), "{}", probe.command);
        }
        // Output that does not add up answers nothing: bytes left over, or a file whose size
        // `stat` gives differently after `cat`.
        let good = run(PATH_STATES.script(&items)).await;
        let mut out = good.clone();
        out.stdout.push(b'!');
        let answers = PATH_STATES.split(&items, &out);
        assert!(answers.iter().all(Option::is_none));
        let mut out = good.clone();
        // The last path is `file`, 14 bytes.
        assert!(out.stdout.ends_with(b"\n14\n"), "{:?}", out.stdout);
        out.stdout.truncate(out.stdout.len() - 3);
        out.stdout.extend_from_slice(b"15\n");
        let answers = PATH_STATES.split(&items, &out);
        assert!(answers.iter().all(Option::is_none));
    }

    #[test]
    fn script_quotes_the_path() {
        let s = probe_script("/etc/a b", true);
        assert!(s.contains("[ -e '/etc/a b' ]") && s.contains("cat -- '/etc/a b'"));
    }
}
