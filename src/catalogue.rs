//! The catalogue: every module pgdeploy knows, registered in one table.
//!
//! Each module lives in its own folder under `modules/` (code, templates, README). Adding a
//! module means adding its folder and one line to [`MODULES`]; nothing else in the engine
//! names a module.

use crate::module::{Module, Typed};

#[path = "../modules/checks.rs"]
mod checks;
use checks::*;

#[path = "../modules/common/mod.rs"]
pub(crate) mod common;

#[path = "../modules/certificates/mod.rs"]
pub mod certificates;
#[path = "../modules/command/mod.rs"]
pub mod command;
#[path = "../modules/copy/mod.rs"]
pub mod copy;
#[path = "../modules/directory/mod.rs"]
pub mod directory;
#[path = "../modules/etcd/mod.rs"]
pub mod etcd;
#[path = "../modules/file/mod.rs"]
pub mod file;
#[path = "../modules/haproxy/mod.rs"]
pub mod haproxy;
#[path = "../modules/keepalived/mod.rs"]
pub mod keepalived;
#[path = "../modules/packages/mod.rs"]
pub mod packages;
#[path = "../modules/patroni/mod.rs"]
pub mod patroni;
#[path = "../modules/pgbackrest/mod.rs"]
pub mod pgbackrest;
#[path = "../modules/pgdg_repo/mod.rs"]
pub mod pgdg_repo;
#[path = "../modules/pglift_database/mod.rs"]
pub mod pglift_database;
#[path = "../modules/pglift_instance/mod.rs"]
pub mod pglift_instance;
#[path = "../modules/pglift_role/mod.rs"]
pub mod pglift_role;
#[path = "../modules/pglift_site/mod.rs"]
pub mod pglift_site;
#[path = "../modules/postgres_exporter/mod.rs"]
pub mod postgres_exporter;
#[path = "../modules/postgresql_database/mod.rs"]
pub mod postgresql_database;
#[path = "../modules/postgresql_extension/mod.rs"]
pub mod postgresql_extension;
#[path = "../modules/postgresql_role/mod.rs"]
pub mod postgresql_role;
#[path = "../modules/removed_member/mod.rs"]
pub mod removed_member;
#[path = "../modules/service/mod.rs"]
pub mod service;
#[path = "../modules/template/mod.rs"]
pub mod template;

/// The registered modules, by name.
pub static MODULES: &[&dyn Module] = &[
    &Typed::<certificates::Certificates>::new(),
    &Typed::<command::Command>::new(),
    &Typed::<copy::Copy>::new(),
    &Typed::<directory::Directory>::new(),
    &Typed::<etcd::Etcd>::new(),
    &Typed::<file::File>::new(),
    &Typed::<haproxy::Haproxy>::new(),
    &Typed::<keepalived::Keepalived>::new(),
    &Typed::<packages::Packages>::new(),
    &Typed::<patroni::Patroni>::new(),
    &Typed::<pgbackrest::Pgbackrest>::new(),
    &Typed::<pgdg_repo::PgdgRepo>::new(),
    &pglift_database::DatabaseModule("pglift_database"),
    &pglift_database::DatabaseModule("dalibo.pglift.database"),
    &Typed::<pglift_instance::PgliftInstance>::new(),
    &Typed::<pglift_instance::CollectionInstance>::new(),
    &pglift_role::RoleModule("pglift_role"),
    &pglift_role::RoleModule("dalibo.pglift.role"),
    &Typed::<pglift_site::PgliftSite>::new(),
    &Typed::<postgres_exporter::PostgresExporter>::new(),
    &Typed::<postgresql_database::PostgresqlDatabase>::new(),
    &Typed::<postgresql_extension::PostgresqlExtension>::new(),
    &Typed::<postgresql_role::PostgresqlRole>::new(),
    &Typed::<removed_member::RemovedMember>::new(),
    &Typed::<service::Service>::new(),
    &Typed::<template::Template>::new(),
];

/// The module registered under `name`.
pub fn find(name: &str) -> Option<&'static dyn Module> {
    MODULES.iter().copied().find(|m| m.name() == name)
}

/// Every module name, for suggestions.
pub fn names() -> Vec<&'static str> {
    MODULES.iter().map(|m| m.name()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = names();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
