//! Shell command lines shared by the SSH and local transports.
//!
//! Both transports run everything through `/bin/sh`, so quoting, privilege changes (become) and
//! the read/atomic-write scripts are built here once, as plain strings, and unit-tested without
//! any host. Nothing here ever embeds file contents or stdin: contents travel on stdin only, so
//! command lines are safe to log.

use std::path::Path;

use super::{Become, BecomeMethod, Escalation, ExecOutput, FileAttrs, TransportError};

/// Exit status the read script uses to say "the file does not exist". `cat` never exits with it.
pub const MISSING_STATUS: i32 = 100;

/// Quotes one word for a POSIX shell: `'...'`, with each `'` written as `'\''`.
///
/// Words made only of characters that are never special (`[A-Za-z0-9_./:=@%+,-]`) are left bare
/// so command lines stay readable in logs.
pub fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
    if plain {
        return word.to_owned();
    }
    let mut out = String::with_capacity(word.len() + 2);
    out.push('\'');
    for c in word.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Joins words into one command line, quoting each.
pub fn join(argv: &[String]) -> String {
    argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The argument vector that runs `command` with `/bin/sh -c`, as the `become_` user.
///
/// `login_user` is the user the transport already runs as: becoming that same user needs no
/// privilege change, so no sudo (which may be absent or unconfigured). When the login user is
/// `root`, becoming another user uses `runuser` (util-linux, present on every systemd
/// distribution) rather than `sudo`, so root logins work on hosts without sudo installed.
/// Everyone else goes through `sudo -n` (never prompts: a missing sudoers rule is an error, not
/// a hang).
pub fn argv(command: &str, become_: &Become, login_user: &str) -> Vec<String> {
    let sh = ["/bin/sh".to_owned(), "-c".to_owned(), command.to_owned()];
    let mut out: Vec<String> = match become_ {
        Become::No => Vec::new(),
        Become::Root if login_user == "root" => Vec::new(),
        Become::Root => vec!["sudo".into(), "-n".into(), "--".into()],
        Become::User(u) if u == login_user => Vec::new(),
        Become::User(u) if login_user == "root" => {
            vec!["runuser".into(), "-u".into(), u.clone(), "--".into()]
        }
        Become::User(u) => vec![
            "sudo".into(),
            "-n".into(),
            "-u".into(),
            u.clone(),
            "--".into(),
        ],
    };
    out.extend(sh);
    out
}

/// A command ready to start: its argument vector and what goes on its stdin before the
/// request's own input (the become password and a marker line, see [`escalated`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Prepared {
    pub argv: Vec<String>,
    pub stdin_prefix: Option<Vec<u8>>,
}

impl Prepared {
    /// The stdin to send: the prefix, then `stdin`; `None` when there is neither.
    pub fn stdin(&self, stdin: Option<&[u8]>) -> Option<Vec<u8>> {
        match (&self.stdin_prefix, stdin) {
            (None, None) => None,
            (prefix, data) => {
                let mut out = prefix.clone().unwrap_or_default();
                out.extend_from_slice(data.unwrap_or_default());
                Some(out)
            }
        }
    }
}

/// [`argv`] with the host's escalation: `become_method: su`, or a become password.
///
/// With a password, `sudo -S -p ''` (or `su`) reads it from the first line of stdin. The
/// command's own input follows a marker line: the wrapped shell reads lines up to the marker,
/// so the command gets exactly its input whether the password was asked for or not (sudo with
/// a cached credential or `NOPASSWD` does not read it). A wrong password ends the command
/// (stdin runs out; sudo says "incorrect password attempts", su "Authentication failure"):
/// never a prompt waiting for an answer. `tag` becomes the command's `$0`, as in
/// [`tagged_command_line`].
pub fn escalated(
    command: &str,
    become_: &Become,
    login_user: &str,
    escalation: &Escalation,
    tag: Option<&str>,
) -> Prepared {
    let target = match become_ {
        Become::No => None,
        Become::Root if login_user == "root" => None,
        Become::Root => Some("root"),
        Become::User(u) if u == login_user => None,
        // root changes user without a password or a tool's configuration (see [`argv`]).
        Become::User(_) if login_user == "root" => None,
        Become::User(u) => Some(u.as_str()),
    };
    let plain = |tag: Option<&str>| {
        let mut argv = argv(command, become_, login_user);
        argv.extend(tag.map(str::to_owned));
        Prepared {
            argv,
            stdin_prefix: None,
        }
    };
    let Some(user) = target else {
        return plain(tag);
    };
    let zero = tag.unwrap_or("sh").to_owned();
    match (&escalation.password, escalation.method) {
        (None, BecomeMethod::Sudo) => plain(tag),
        (None, BecomeMethod::Su) => {
            // su asks for the target's password; with none given it finds stdin closed and
            // fails at once ("Authentication failure"), unless PAM lets the login user in.
            let argv = vec![
                "su".into(),
                "-s".into(),
                "/bin/sh".into(),
                "-c".into(),
                command.to_owned(),
                user.to_owned(),
                zero,
            ];
            Prepared {
                argv,
                stdin_prefix: None,
            }
        }
        (Some(password), method) => {
            let marker = format!("--{}-stdin--", new_tag());
            let wrapper = format!(
                "IFS= read -r l; [ \"$l\" = {m} ] || IFS= read -r l; exec /bin/sh -c \"$1\" \"$0\"",
                m = quote(&marker)
            );
            let mut argv: Vec<String> = match method {
                BecomeMethod::Sudo => {
                    let mut a: Vec<String> =
                        vec!["sudo".into(), "-S".into(), "-p".into(), "".into()];
                    if user != "root" {
                        a.extend(["-u".into(), user.to_owned()]);
                    }
                    a.extend(["--".into(), "/bin/sh".into(), "-c".into(), wrapper]);
                    a
                }
                BecomeMethod::Su => vec![
                    "su".into(),
                    "-s".into(),
                    "/bin/sh".into(),
                    "-c".into(),
                    wrapper,
                    user.to_owned(),
                ],
            };
            argv.extend([zero, command.to_owned()]);
            let mut prefix = Vec::with_capacity(password.len() + marker.len() + 2);
            prefix.extend_from_slice(password.as_bytes());
            prefix.push(b'\n');
            prefix.extend_from_slice(marker.as_bytes());
            prefix.push(b'\n');
            Prepared {
                argv,
                stdin_prefix: Some(prefix),
            }
        }
    }
}

/// When a command failed because the become password was refused (or missing), the message
/// to report instead of the command's own failure.
pub fn become_refused(out: &ExecOutput, escalation: &Escalation) -> Option<String> {
    if out.status == 0 {
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // Most telling first: after wrong passwords sudo also says "no password was provided"
    // (stdin ran out), but the attempts are what the user must hear about.
    let line = [
        "incorrect password attempt",
        "su: Authentication failure",
        "a password is required",
        "a terminal is required",
        "no password was provided",
    ]
    .iter()
    .find_map(|p| err.lines().find(|l| l.contains(p)))?;
    // su's prompt (`Password: `) is on the same line as its verdict.
    let line = ["sudo:", "su:"]
        .iter()
        .find_map(|tool| line.find(tool).map(|at| &line[at..]))
        .unwrap_or(line)
        .trim()
        .to_owned();
    let method = escalation.method.name();
    Some(match escalation.password {
        Some(_) => format!(
            "become with `{method}` failed: the become password was refused (`{line}`); check `ansible_become_password`"
        ),
        None => format!(
            "become with `{method}` needs a password (`{line}`): set `ansible_become_password`, or allow the login user without one"
        ),
    })
}

/// The one-line form of [`argv`], for an SSH `exec` request (the remote login shell parses it).
pub fn command_line(command: &str, become_: &Become, login_user: &str) -> String {
    join(&argv(command, become_, login_user))
}

/// Like [`command_line`], with `tag` as the shell's `$0`, so that the command's processes can
/// be found again by [`kill_script`] (a timed-out command must not keep running on the host).
/// `tag` must be a plain word (letters, digits, `-`).
pub fn tagged_command_line(command: &str, become_: &Become, login_user: &str, tag: &str) -> String {
    let mut argv = argv(command, become_, login_user);
    argv.push(tag.to_owned());
    join(&argv)
}

/// A unique tag for [`tagged_command_line`]: `pgdeploy-` and 16 hex digits.
pub fn new_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // RandomState is seeded randomly per process; the counter makes tags distinct within it.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    format!("pgdeploy-{:016x}", h.finish())
}

/// A script that kills every process of the session(s) holding a process tagged `tag`.
///
/// sshd starts each command in a session of its own (so does `sudo` with `use_pty`), so killing
/// the tagged shell's session takes its whole process tree, pipelines and children included.
/// It reads `/proc` directly (no procps on minimal hosts), and never spells the tag out in its
/// own command line, so it cannot match itself.
pub fn kill_script(tag: &str) -> Result<String, String> {
    let Some(suffix) = tag.strip_prefix("pgdeploy-") else {
        return Err(format!("`{tag}` is not a pgdeploy tag"));
    };
    if !suffix.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!("`{tag}` is not a pgdeploy tag"));
    }
    Ok(format!(
        "a=pgdeploy-; tag=\"$a\"{suffix}; sids=; \
         for d in /proc/[0-9]*; do \
           c=$(tr '\\000' ' ' < \"$d/cmdline\" 2>/dev/null) || continue; \
           case $c in *\"$tag\"*) s=$(cat \"$d/stat\" 2>/dev/null) || continue; \
             s=${{s##*) }}; set -- $s; sids=\"$sids $4\";; esac; \
         done; \
         [ -n \"$sids\" ] || exit 0; \
         for d in /proc/[0-9]*; do \
           s=$(cat \"$d/stat\" 2>/dev/null) || continue; p=${{d#/proc/}}; \
           s=${{s##*) }}; set -- $s; \
           for x in $sids; do [ \"$4\" = \"$x\" ] && kill -KILL \"$p\" 2>/dev/null; done; \
         done; exit 0"
    ))
}

/// The directory a file lives in, as the shell scripts need it (`.` for a bare name).
fn parent_dir(path: &str) -> Result<String, String> {
    if path.is_empty() || path.ends_with('/') {
        return Err(format!("`{path}` is not a file path"));
    }
    let parent = Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(if parent.is_empty() {
        ".".to_owned()
    } else {
        parent
    })
}

/// A script that prints the file on stdout, or exits with [`MISSING_STATUS`] when it does not
/// exist.
///
/// "Missing" is only claimed when the parent directory is visibly searchable: a file hidden
/// behind an unreadable directory gives `cat`'s own error instead, so permission problems are
/// never mistaken for absence.
pub fn read_script(path: &str) -> Result<String, String> {
    let p = quote(path);
    let d = quote(&parent_dir(path)?);
    Ok(format!(
        "if [ -e {p} ]; then exec cat -- {p}; \
         elif [ -d {d} ] && [ -x {d} ]; then exit {MISSING_STATUS}; \
         else exec cat -- {p}; fi"
    ))
}

/// Turns the result of [`read_script`] into the trait's answer.
pub fn read_result(
    host: &str,
    path: &str,
    out: ExecOutput,
) -> Result<Option<Vec<u8>>, TransportError> {
    match out.status {
        0 => Ok(Some(out.stdout)),
        MISSING_STATUS => Ok(None),
        status => Err(TransportError::Remote {
            host: host.to_owned(),
            message: format!(
                "cannot read `{path}` (exit status {status}): {}",
                stderr_text(&out.stderr)
            ),
        }),
    }
}

/// A script that writes its stdin to `path` atomically.
///
/// The content goes to a `mktemp` file in the target's own directory (so the final `mv -f` is a
/// `rename(2)` on one filesystem, never a copy), which gets its owner, group and mode before
/// the rename: readers see either the old file or the complete new one, never a partial file or
/// one with loose permissions. Attributes not given are taken from the file being replaced, or
/// follow the umask for a new file, as `cp` would. Any failure removes the temporary file.
///
/// The temporary file is synced before the rename, its directory after it (coreutils `sync
/// FILE`, 8.24 and later).
///
/// `len` is the content's size in bytes, checked before the rename: when the connection drops
/// mid-transfer (the controller killed, the SSH session cut), sshd closes the command's stdin,
/// `cat` sees an ordinary end of file and succeeds with part of the content. Without the check
/// that part would be renamed over the target: a torn file.
pub fn write_script(path: &str, attrs: &FileAttrs, len: usize) -> Result<String, String> {
    let p = quote(path);
    let d = quote(&parent_dir(path)?);
    let mut steps = vec![
        "cat > \"$t\"".to_owned(),
        format!(
            "{{ n=$(wc -c < \"$t\"); [ \"$n\" -eq {len} ] || \
             {{ echo \"received $n of {len} bytes: the input ended early\" >&2; false; }}; }}"
        ),
    ];
    steps.push(format!(
        "if [ -e {p} ]; then chown --reference={p} \"$t\" 2>/dev/null; chmod --reference={p} \"$t\"; \
         else chmod \"$(printf %o $((0666 & ~$(umask))))\" \"$t\"; fi"
    ));
    if let Some(owner) = &attrs.owner {
        steps.push(format!("chown -- {} \"$t\"", quote(owner)));
    }
    if let Some(group) = &attrs.group {
        steps.push(format!("chgrp -- {} \"$t\"", quote(group)));
    }
    if let Some(mode) = attrs.mode {
        if mode > 0o7777 {
            return Err(format!("mode `{mode:o}` is not a permission mode"));
        }
        steps.push(format!("chmod {mode:04o} \"$t\""));
    }
    // The content on disk before the rename, the rename on disk after it: a power cut leaves
    // the old file or the new one, never an empty or partial new one (filesystems such as XFS
    // may write the rename before the data). The directory's sync is best effort: the content
    // is in place once renamed.
    steps.push("sync -- \"$t\"".to_owned());
    steps.push(format!("mv -f -- \"$t\" {p}"));
    steps.push(format!("{{ sync -- {d} 2>/dev/null || true; }}"));
    Ok(format!(
        "if [ ! -d {d} ]; then echo \"directory {d} does not exist\" >&2; exit 1; fi; \
         t=$(mktemp {d}/.pgdeploy.XXXXXXXX) || exit 1; \
         if {{ {}; }}; then exit 0; fi; rm -f -- \"$t\"; exit 1",
        steps.join(" && ")
    ))
}

/// Turns the result of [`write_script`] into the trait's answer.
pub fn write_result(host: &str, path: &str, out: ExecOutput) -> Result<(), TransportError> {
    if out.status == 0 {
        return Ok(());
    }
    Err(TransportError::Remote {
        host: host.to_owned(),
        message: format!(
            "cannot write `{path}` (exit status {}): {}",
            out.status,
            stderr_text(&out.stderr)
        ),
    })
}

/// A command's stderr as one trimmed line of text for an error message.
pub fn stderr_text(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        "no error output".to_owned()
    } else {
        text.lines().collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_plain_words_bare() {
        assert_eq!(quote("/etc/patroni/config.yml"), "/etc/patroni/config.yml");
        assert_eq!(quote("user@host:22"), "user@host:22");
    }

    #[test]
    fn quote_wraps_special_words() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$HOME"), "'$HOME'");
        assert_eq!(quote("a;rm -rf /"), "'a;rm -rf /'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("'"), "''\\'''");
        assert_eq!(quote("line\nbreak"), "'line\nbreak'");
    }

    #[test]
    fn quoted_words_survive_a_real_shell() {
        let words = [
            "it's",
            "$(id)",
            "`id`",
            "a\\b",
            "\"x\"",
            "*",
            "new\nline",
            "",
            "'",
        ];
        for w in words {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(w)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), w, "word {w:?}");
        }
    }

    #[test]
    fn argv_without_become_runs_sh() {
        assert_eq!(
            command_line("echo hi", &Become::No, "deploy"),
            "/bin/sh -c 'echo hi'"
        );
    }

    #[test]
    fn argv_become_root_uses_sudo_unless_root() {
        assert_eq!(
            command_line("id -u", &Become::Root, "deploy"),
            "sudo -n -- /bin/sh -c 'id -u'"
        );
        assert_eq!(
            command_line("id -u", &Become::Root, "root"),
            "/bin/sh -c 'id -u'"
        );
    }

    #[test]
    fn argv_become_user() {
        let pg = Become::User("postgres".into());
        assert_eq!(
            command_line("psql -c 'select 1'", &pg, "deploy"),
            "sudo -n -u postgres -- /bin/sh -c 'psql -c '\\''select 1'\\'''"
        );
        assert_eq!(
            command_line("id", &pg, "root"),
            "runuser -u postgres -- /bin/sh -c id"
        );
        assert_eq!(command_line("id", &pg, "postgres"), "/bin/sh -c id");
    }

    #[test]
    fn tagged_line_sets_dollar_zero() {
        let tag = new_tag();
        assert_ne!(tag, new_tag());
        assert_eq!(tag.len(), "pgdeploy-".len() + 16);
        let line = tagged_command_line("echo $0", &Become::No, "root", &tag);
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), tag);
    }

    #[test]
    fn kill_script_kills_the_tagged_tree_and_not_itself() {
        let tag = new_tag();
        // A tagged shell with a child, in a session of its own like sshd makes.
        let line = tagged_command_line("sleep 30 & sleep 31; wait", &Become::No, "root", &tag);
        let mut child = std::process::Command::new("setsid")
            .args(["/bin/sh", "-c", &line])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let script = kill_script(&tag).unwrap();
        assert!(!script.contains(&tag), "the script must not match itself");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let waited = child.wait().unwrap();
        assert!(!waited.success());
        assert!(kill_script("rm -rf /").is_err());
    }

    #[test]
    fn read_script_quotes_path() {
        let s = read_script("/etc/my file").unwrap();
        assert!(s.contains("cat -- '/etc/my file'"), "{s}");
        assert!(s.contains("[ -d /etc ]"), "{s}");
        assert_eq!(parent_dir("name").unwrap(), ".");
        assert!(read_script("/etc/").is_err());
    }

    /// Runs `write_script(target, len)` with `/bin/sh`, `input` on its stdin: status, stderr
    fn run_write(target: &std::path::Path, len: usize, input: &[u8]) -> (bool, String) {
        use std::io::Write;
        let script = write_script(target.to_str().unwrap(), &FileAttrs::default(), len).unwrap();
        let mut child = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // the input then its end: what sshd gives the command when the connection drops
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn write_script_refuses_a_truncated_input_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("patroni.yml");
        std::fs::write(&target, "old: complete\n").unwrap();
        let new = b"scope: pgcluster\nname: pg1\n";
        // the connection cut after 10 of the bytes: the old file stays whole
        let (ok, stderr) = run_write(&target, new.len(), &new[..10]);
        assert!(!ok);
        assert!(
            stderr.contains(&format!("received 10 of {} bytes", new.len())),
            "{stderr}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"old: complete\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["patroni.yml"], "no temporary file left");
        // the whole content: replaced
        let (ok, stderr) = run_write(&target, new.len(), new);
        assert!(ok, "{stderr}");
        assert_eq!(std::fs::read(&target).unwrap(), new);
        // an empty file is a size like any other
        let (ok, stderr) = run_write(&target, 0, b"");
        assert!(ok, "{stderr}");
        assert_eq!(std::fs::read(&target).unwrap(), b"");
    }

    #[test]
    fn write_script_sets_attrs_before_rename() {
        let attrs = FileAttrs {
            owner: Some("etcd".into()),
            group: Some("etcd".into()),
            mode: Some(0o640),
        };
        let s = write_script("/etc/etcd/etcd.conf", &attrs, 3).unwrap();
        let chown = s.find("chown -- etcd").unwrap();
        let chmod = s.find("chmod 0640").unwrap();
        let mv = s.find("mv -f").unwrap();
        assert!(chown < mv && chmod < mv, "{s}");
        let sync = s.find("sync -- \"$t\"").unwrap();
        let dir_sync = s.find("sync -- /etc/etcd").unwrap();
        assert!(chmod < sync && sync < mv && mv < dir_sync, "{s}");
        assert!(s.contains("mktemp /etc/etcd/.pgdeploy.XXXXXXXX"), "{s}");
        assert!(write_script(
            "/x",
            &FileAttrs {
                mode: Some(0o17777),
                ..Default::default()
            },
            0
        )
        .is_err());
    }

    #[test]
    fn stderr_text_is_one_line() {
        assert_eq!(stderr_text(b"a\nb\n"), "a; b");
        assert_eq!(stderr_text(b""), "no error output");
    }

    #[test]
    fn escalation_sends_the_password_on_stdin_only() {
        let sudo = Escalation {
            method: BecomeMethod::Sudo,
            password: Some("s3cr3t pw".into()),
        };
        let p = escalated("id -u", &Become::Root, "deploy", &sudo, Some("pgdeploy-t"));
        assert_eq!(&p.argv[..5], ["sudo", "-S", "-p", "", "--"]);
        assert_eq!(&p.argv[8..], ["pgdeploy-t", "id -u"]);
        assert!(p.argv.iter().all(|a| !a.contains("s3cr3t")), "{:?}", p.argv);
        let stdin = p.stdin(Some(b"data")).unwrap();
        let text = String::from_utf8(stdin).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("s3cr3t pw"));
        let marker = lines.next().unwrap();
        assert!(p.argv[7].contains(marker), "{}", p.argv[7]);
        assert_eq!(lines.next(), Some("data"));
        let user = escalated("id", &Become::User("pg".into()), "deploy", &sudo, None);
        assert_eq!(&user.argv[..7], ["sudo", "-S", "-p", "", "-u", "pg", "--"]);
        // No escalation needed: no password sent.
        for (b, login) in [
            (Become::No, "deploy"),
            (Become::Root, "root"),
            (Become::User("pg".into()), "root"),
        ] {
            assert_eq!(escalated("id", &b, login, &sudo, None).stdin_prefix, None);
        }
        let su = Escalation {
            method: BecomeMethod::Su,
            password: Some("pw".into()),
        };
        let p = escalated("id", &Become::User("pg".into()), "deploy", &su, None);
        assert_eq!(&p.argv[..4], ["su", "-s", "/bin/sh", "-c"]);
        assert_eq!(&p.argv[5..], ["pg", "sh", "id"]);
        let no_password = Escalation::default();
        assert_eq!(
            escalated("id", &Become::Root, "deploy", &no_password, None).argv,
            argv("id", &Become::Root, "deploy")
        );
        assert!(!format!("{sudo:?}").contains("s3cr3t"));
    }

    /// The wrapper reads exactly the password and marker lines, whether sudo took the
    /// password or not (run here with `sh`, as the command after sudo would be).
    #[test]
    fn the_wrapper_leaves_the_input_whole() {
        let sudo = Escalation {
            method: BecomeMethod::Sudo,
            password: Some("pw".into()),
        };
        let p = escalated("cat", &Become::Root, "deploy", &sudo, None);
        let wrapper_and_args = &p.argv[5..];
        let full = p.stdin(Some(b"one\ntwo\n")).unwrap();
        let after_sudo = full[3..].to_vec(); // as if sudo read `pw\n`
        for input in [full, after_sudo] {
            let mut child = std::process::Command::new(&wrapper_and_args[0])
                .args(&wrapper_and_args[1..])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(&input).unwrap();
            let out = child.wait_with_output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
        }
    }
}
