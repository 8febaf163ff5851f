//! The catalogue: every module pgdeploy knows, registered in one table.
//!
//! Each module lives in its own folder under `modules/` (code, templates, README). Adding a
//! module means adding its folder and one line to [`MODULES`]; the engine gets the table as a
//! parameter ([`CATALOGUE`]) and names no module. This crate depends on `pgdeploy-core` only:
//! it has no way to open a connection, so modules reach hosts through `HostContext`'s
//! `&dyn Transport` and nothing else.

// Everything on stderr goes through `pgdeploy_core::output` (`eprintln!` panics when it is closed).
#![deny(clippy::print_stderr)]

use pgdeploy_core::module::{Catalogue, Module, Typed};

mod checks;
use checks::*;

pub(crate) mod common;

/// Patroni's cluster as `patronictl` reports it, for the day-2 commands too.
pub use common::patroni_state;

mod certificates;
pub mod command;
pub mod copy;
pub mod directory;
pub mod etcd;
pub mod file;
mod haproxy;
mod keepalived;
pub mod packages;
mod patroni;
mod pgbackrest;
mod pgdg_repo;
mod pglift_database;
mod pglift_instance;
mod pglift_postgres_exporter;
mod pglift_role;
mod pglift_site;
mod postgres_exporter;
mod postgresql_database;
mod postgresql_extension;
mod postgresql_pg_hba;
mod postgresql_role;
mod removed_member;
mod service;
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
    &pglift_postgres_exporter::ExporterModule("pglift_postgres_exporter"),
    &pglift_postgres_exporter::ExporterModule("dalibo.pglift.postgres_exporter"),
    &pglift_role::RoleModule("pglift_role"),
    &pglift_role::RoleModule("dalibo.pglift.role"),
    &Typed::<pglift_site::PgliftSite>::new(),
    &Typed::<postgres_exporter::PostgresExporter>::new(),
    &Typed::<postgresql_database::PostgresqlDatabase>::new(),
    &Typed::<postgresql_extension::PostgresqlExtension>::new(),
    &Typed::<postgresql_pg_hba::PostgresqlPgHba>::new(),
    &Typed::<postgresql_role::PostgresqlRole>::new(),
    &Typed::<removed_member::RemovedMember>::new(),
    &Typed::<service::Service>::new(),
    &Typed::<template::Template>::new(),
];

/// The table as the engine takes it.
pub static CATALOGUE: Catalogue = Catalogue::new(MODULES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names = CATALOGUE.names();
        let before = names.len();
        names.sort();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
