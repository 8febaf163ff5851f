//! Reads `/proc` to find a container's processes: nspawn itself, the container's init (PID 1
//! of its PID namespace) and everything else in that namespace.
//!
//! Why not trust recorded PIDs: a PID can be reused after a crash, so every lookup checks the
//! command line or the PID namespace before the lab signals anything

use std::fs;
use std::path::Path;

/// All numeric entries of `/proc`
pub(crate) fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The process's arguments, `None` when it is gone
pub(crate) fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

/// State letter and parent PID from `/proc/PID/stat` (the fields after the command name)
fn stat(pid: i32) -> Option<(char, i32)> {
    let raw = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &raw[raw.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// The processes whose parent is `pid`
pub(crate) fn children(pid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&c| stat(c).is_some_and(|(_, ppid)| ppid == pid))
        .collect()
}

/// True when the process exists and is not a zombie
pub(crate) fn alive(pid: i32) -> bool {
    matches!(stat(pid), Some((s, _)) if s != 'Z' && s != 'X')
}

/// The inode of the process's PID namespace
pub(crate) fn pid_ns(pid: i32) -> Option<u64> {
    namespace_inode(&format!("/proc/{pid}/ns/pid"))
}

fn namespace_inode(path: &str) -> Option<u64> {
    let link = fs::read_link(Path::new(path)).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// The running `systemd-nspawn` started for `machine` (`-M MACHINE` on its command line)
pub(crate) fn find_nspawn(machine: &str) -> Option<i32> {
    all_pids().into_iter().find(|&pid| {
        alive(pid) && cmdline(pid).is_some_and(|args| is_nspawn_for(&args, |m| m == machine))
    })
}

/// Every running `systemd-nspawn` whose machine name starts with `prefix`
pub(crate) fn find_nspawn_prefixed(prefix: &str) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            alive(pid)
                && cmdline(pid).is_some_and(|args| is_nspawn_for(&args, |m| m.starts_with(prefix)))
        })
        .collect()
}

fn is_nspawn_for(args: &[String], want: impl Fn(&str) -> bool) -> bool {
    let Some(prog) = args.first() else {
        return false;
    };
    if !prog.ends_with("systemd-nspawn") {
        return false;
    }
    args.windows(2).any(|w| w[0] == "-M" && want(&w[1]))
        || args
            .iter()
            .any(|a| a.strip_prefix("--machine=").is_some_and(&want))
}

/// The container's init: the child of `nspawn` that lives in another PID namespace
pub(crate) fn container_init(nspawn: i32) -> Option<i32> {
    let own = pid_ns(std::process::id() as i32)?;
    all_pids().into_iter().find(|&pid| {
        matches!(stat(pid), Some((s, ppid)) if ppid == nspawn && s != 'Z')
            && pid_ns(pid).is_some_and(|ns| ns != own)
    })
}

/// Every live process whose PID namespace is `ns`
pub(crate) fn pids_in_ns(ns: u64) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| alive(pid) && pid_ns(pid) == Some(ns))
        .collect()
}

/// Proportional set size of a process in KiB (shared pages split among their users)
pub(crate) fn pss_kib(pid: i32) -> Option<u64> {
    let raw = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    raw.lines()
        .find_map(|l| l.strip_prefix("Pss:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Sends `signal` to `pid`; a process that is already gone is not an error
pub(crate) fn signal(pid: i32, signal: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory effects; the PID was checked by the caller
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_nspawn_command_lines() {
        let args: Vec<String> = ["/usr/bin/systemd-nspawn", "-D", "/x", "-M", "pgd-pg1"]
            .map(String::from)
            .to_vec();
        assert!(is_nspawn_for(&args, |m| m == "pgd-pg1"));
        assert!(!is_nspawn_for(&args, |m| m == "pgd-pg2"));
        assert!(is_nspawn_for(&args, |m| m.starts_with("pgd-")));
        let other: Vec<String> = ["/bin/sleep", "-M", "pgd-pg1"].map(String::from).to_vec();
        assert!(!is_nspawn_for(&other, |_| true));
    }

    #[test]
    fn reads_own_process() {
        let me = std::process::id() as i32;
        assert!(alive(me));
        assert!(pid_ns(me).is_some());
        assert!(pss_kib(me).is_some());
    }
}
