//! What the module writes besides the environment file: the systemd unit when no package
//! ships one (an upstream release tarball), and the locator that `pgdeploy status` reads.

use super::super::common::shell::quote;

/// Where `pgdeploy status` finds the environment file and `etcdctl` of a member.
pub use pgdeploy_core::locator::ETCD as LOCATOR;

/// The first line of a unit the module wrote: a unit with it is the module's to rewrite; any
/// other unit is left as it is.
pub const UNIT_HEADER: &str =
    "# Managed by pgdeploy (module `etcd`): no package provides this unit";

/// Where the module writes its unit for `service`.
pub fn unit_path(service: &str) -> String {
    format!("/etc/systemd/system/{}", unit_name(service))
}

/// `etcd` → `etcd.service`; a name with a suffix is kept.
pub fn unit_name(service: &str) -> String {
    if service.contains('.') {
        service.to_string()
    } else {
        format!("{service}.service")
    }
}

/// Where systemd looks for units, most specific first (`/lib` is `/usr/lib` on merged-/usr
/// systems, but not on every host).
pub const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// The unit, as upstream's `contrib/systemd/etcd.service` and Debian's `etcd-server` write it:
/// `Type=notify` (etcd says when it has joined), run as `user`, every setting from the
/// environment file. No flag on `ExecStart`: etcd refuses to start when a flag shadows an
/// `ETCD_*` variable it was also given.
pub fn render_unit(executable: &str, config: &str, user: &str) -> String {
    format!(
        "{UNIT_HEADER}\n\
         [Unit]\n\
         Description=etcd key-value store\n\
         Documentation=https://etcd.io/docs\n\
         After=network-online.target local-fs.target remote-fs.target time-sync.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         User={user}\n\
         Group={user}\n\
         EnvironmentFile={config}\n\
         ExecStart={executable}\n\
         Restart=on-failure\n\
         RestartSec=5s\n\
         LimitNOFILE=65536\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The locator: shell-sourceable, one variable a line.
pub fn render_locator(config: &str, etcdctl: &str) -> String {
    pgdeploy_core::locator::render(
        "etcd",
        "etcd",
        &[("ETCD_CONFIG", config), ("ETCDCTL", etcdctl)],
    )
}

/// Creates the system user and group `user` (no login, home `home`).
pub fn user_script(user: &str, home: &str) -> String {
    let u = quote(user);
    format!(
        "{{ getent group {u} >/dev/null || groupadd --system {u}; }} && \
         useradd --system --gid {u} --home-dir {h} --no-create-home --shell /usr/sbin/nologin {u}",
        h = quote(home)
    )
}

/// Creates the data directory, owned by `user`, mode 0700 (etcd warns about anything wider).
pub fn data_dir_script(user: &str, dir: &str) -> String {
    let u = quote(user);
    format!(
        "install -d -o {u} -g \"$(id -gn {u})\" -m 0700 -- {}",
        quote(dir)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(unit_path("etcd"), "/etc/systemd/system/etcd.service");
        assert_eq!(unit_name("etcd2.service"), "etcd2.service");
    }

    #[test]
    fn the_locator_quotes_only_when_needed() {
        assert_eq!(
            render_locator("/etc/my etcd.conf", "/usr/bin/etcdctl"),
            "# Managed by pgdeploy (module `etcd`): where `pgdeploy status` finds etcd\n\
             ETCD_CONFIG='/etc/my etcd.conf'\nETCDCTL=/usr/bin/etcdctl\n"
        );
    }
}
