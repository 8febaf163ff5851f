//! Locator files: where a module recorded, on the host, what it installed (binaries,
//! configuration, the VIP), so that commands such as `pgdeploy status` read it instead of
//! hard-coding paths. One place for their paths and their format, shared by the modules that
//! write them and the commands that source them.

use crate::transport::shell::quote;

/// The directory of every locator file (created by the module that writes one).
pub const DIR: &str = "/var/lib/pgdeploy";
/// Written by `patroni`: `PATRONI_CONFIG`, `PATRONICTL`.
pub const PATRONI: &str = "/var/lib/pgdeploy/patroni.env";
/// Written by `etcd`: `ETCD_CONFIG`, `ETCDCTL`.
pub const ETCD: &str = "/var/lib/pgdeploy/etcd.env";
/// Written by `keepalived`: `VIP`.
pub const KEEPALIVED: &str = "/var/lib/pgdeploy/keepalived.env";
/// Written by `pgbackrest`: `PGBACKREST_STANZA`, `PGBACKREST_REPO_HOST` (an inventory name),
/// `PGBACKREST_REPO_USER`, `PGBACKREST_CONFIG`, `PGBACKREST`.
pub const PGBACKREST: &str = "/var/lib/pgdeploy/pgbackrest.env";
/// Written by `postgres_exporter`, one per instance: `EXPORTER_NAME`, `EXPORTER_UNIT`,
/// `EXPORTER_URL` (where its `/metrics` answers from the host itself).
pub const POSTGRES_EXPORTER_GLOB: &str = "/var/lib/pgdeploy/postgres_exporter-*.env";

/// The `postgres_exporter` locator of instance `name`.
pub fn postgres_exporter(name: &str) -> String {
    format!("{DIR}/postgres_exporter-{name}.env")
}

/// A locator's content: a header naming the module and what `status` finds there, then one
/// shell-sourceable `NAME=value` line per variable (values quoted only when they need it).
pub fn render(module: &str, finds: &str, vars: &[(&str, &str)]) -> String {
    let mut out = format!(
        "# Managed by pgdeploy (module `{module}`): where `pgdeploy status` finds {finds}\n"
    );
    for (name, value) in vars {
        out.push_str(&format!("{name}={}\n", quote(value)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_in_the_directory() {
        for p in [
            PATRONI,
            ETCD,
            KEEPALIVED,
            PGBACKREST,
            POSTGRES_EXPORTER_GLOB,
            &postgres_exporter("main"),
        ] {
            assert_eq!(p.rsplit_once('/').map(|(d, _)| d), Some(DIR));
        }
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        assert_eq!(
            render("m", "it", &[("A", "/usr/bin/x"), ("B", "/a b")]),
            "# Managed by pgdeploy (module `m`): where `pgdeploy status` finds it\nA=/usr/bin/x\nB='/a b'\n"
        );
    }
}
