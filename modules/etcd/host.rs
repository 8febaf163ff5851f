//! What the host provides for etcd, read in the `configured` step's probe: the binaries, a
//! unit, the user, the data directory, whether pgdeploy ever started etcd here; and the one
//! state that must stop the module: data that the package's own start left behind.

use super::super::common::shell::quote;
use super::unit::{unit_name, UNIT_DIRS};

/// What the probe found, beside the member data and certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Provided {
    pub executable: bool,
    pub etcdctl: bool,
    pub user: bool,
    pub data_dir: bool,
    /// `/var/lib/pgdeploy/etcd.started` exists: pgdeploy started etcd here once.
    pub stamped: bool,
    /// Unit files named like the service, in systemd's search order.
    pub units: Vec<String>,
}

/// Shell lines (`; `-separated, each printing one word when true) for [`Provided`].
pub(super) fn probe_lines(
    executable: &str,
    etcdctl: &str,
    user: &str,
    data_dir: &str,
    stamp: &str,
    service: &str,
) -> String {
    let name = unit_name(service);
    let dirs: Vec<String> = UNIT_DIRS.iter().map(|d| quote(d)).collect();
    format!(
        "if [ -x {x} ]; then echo executable; fi; if [ -x {c} ]; then echo etcdctl; fi; \
         if id -u {u} >/dev/null 2>&1; then echo user; fi; if [ -d {d} ]; then echo data_dir; fi; \
         if [ -e {s} ]; then echo stamped; fi; \
         for d in {dirs}; do if [ -e \"$d\"/{n} ]; then echo \"unit=$d/\"{n}; fi; done",
        x = quote(executable),
        c = quote(etcdctl),
        u = quote(user),
        d = quote(data_dir),
        s = quote(stamp),
        dirs = dirs.join(" "),
        n = quote(&name),
    )
}

/// Reads the lines [`probe_lines`] printed (other lines are ignored).
pub(super) fn parse(text: &str) -> Provided {
    let has = |w: &str| text.lines().any(|l| l == w);
    Provided {
        executable: has("executable"),
        etcdctl: has("etcdctl"),
        user: has("user"),
        data_dir: has("data_dir"),
        stamped: has("stamped"),
        units: text
            .lines()
            .filter_map(|l| l.strip_prefix("unit="))
            .map(str::to_string)
            .collect(),
    }
}

/// Whether the member data in the data directory is the package's, not a cluster's: on
/// Debian, installing `etcd-server` starts etcd at once with the package's defaults (a
/// single member named after the host, on localhost), which writes `member/`. Such data has
/// no `ETCD_INITIAL_CLUSTER` in the environment file (the package's file sets nothing) and
/// was never started by pgdeploy (no stamp). Taken for a member of the cluster, it would
/// make the host `existing` in a cluster it never joined, and etcd would refuse to start
/// (or run alone).
///
/// A member started by another tool (a cluster migrated from Ansible) has its cluster in the
/// file, so it is not taken for the package's.
pub(super) fn package_default_data(
    local_member: bool,
    stamped: bool,
    config: Option<&[u8]>,
) -> bool {
    let clustered = config.map(String::from_utf8_lossy).is_some_and(|t| {
        t.lines()
            .any(|l| l.trim_start().starts_with("ETCD_INITIAL_CLUSTER="))
    });
    local_member && !stamped && !clustered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_probe_prints() {
        let p = parse("member\nexecutable\nuser\nunit=/lib/systemd/system/etcd.service\nopen=0\n");
        assert!(p.executable && p.user && !p.etcdctl && !p.data_dir && !p.stamped);
        assert_eq!(p.units, ["/lib/systemd/system/etcd.service"]);
    }

    #[test]
    fn the_packages_lone_member_is_recognised_and_a_real_one_is_not() {
        let debian_default = b"## etcd(1) daemon options\n# ETCD_NAME=\"hostname\"\n#ETCD_INITIAL_CLUSTER=\"default=http://localhost:2380\"\n";
        assert!(package_default_data(true, false, Some(debian_default)));
        assert!(package_default_data(true, false, None));
        // Started by pgdeploy once, or with a cluster in the file: a real member.
        assert!(!package_default_data(true, true, None));
        let ansible = b"ETCD_INITIAL_CLUSTER=\"pg1=https://10.0.0.1:2380\"\n";
        assert!(!package_default_data(true, false, Some(ansible)));
        assert!(!package_default_data(false, false, None));
    }

    #[test]
    fn the_probe_quotes_its_paths() {
        let s = probe_lines(
            "/opt/etcd bin/etcd",
            "/usr/bin/etcdctl",
            "etcd",
            "/var/lib/etcd/default",
            "/var/lib/pgdeploy/etcd.started",
            "etcd",
        );
        assert!(
            s.starts_with("if [ -x '/opt/etcd bin/etcd' ]; then echo executable; fi"),
            "{s}"
        );
        assert!(s.contains("for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do if [ -e \"$d\"/etcd.service ]"), "{s}");
    }
}
