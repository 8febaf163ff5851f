//! `pgdeploy bench`: measured performance of the engine, reproducible on any machine.

pub mod compile;
pub mod noop;
pub mod sshd;

/// Peak resident memory of this process so far (Linux `VmHWM`), in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Median of a non-empty list of durations.
pub fn median(mut samples: Vec<std::time::Duration>) -> std::time::Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Raises this process's soft limit of open files to its hard limit (children inherit it):
/// `apply` holds a socket per host and the benchmark goes up to 500 hosts, so that a soft
/// limit of 1,024 (common, where the hard limit allows far more) is not what a larger run
/// measures. Best effort: a failure leaves the limit as it was.
pub fn raise_open_files_limit() {
    // SAFETY: an all-zero `rlimit` is a valid value, which `getrlimit` fills.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `limit` is a valid, writable `rlimit`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid `rlimit`; raising the soft limit up to the hard one is
        // allowed to any process.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
}
