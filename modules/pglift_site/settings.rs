//! pglift's site settings (`settings.yaml`), typed: the sections a seed-shaped site uses
//! (PostgreSQL, Patroni with etcd and TLS, pgBackRest, systemd), each read with
//! `deny_unknown_fields` so a typo is a located error, and written back as YAML with only the
//! keys given (pglift merges the file with its defaults).

use serde::{Deserialize, Serialize};

macro_rules! section {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub(crate) $field: Option<$ty>,
            )*
        }
    };
}

/// The whole document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysuser: Option<Vec<String>>,
    /// `systemd`, or `null` on purpose: pglift then runs PostgreSQL and Patroni itself.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub service_manager: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub scheduler: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub tmpfiles_manager: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgresql: Option<Postgresql>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patroni: Option<Patroni>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbackrest: Option<Pgbackrest>,
    /// A mapping, or `null` on purpose.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub systemd: Option<Option<Systemd>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli: Option<Cli>,
    /// Prometheus postgres_exporter: with it, pglift sets up an exporter for each instance it
    /// creates or applies (`prometheus` in the instance), and `pglift_postgres_exporter` can
    /// add exporters for instances elsewhere. `null` or left out: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Prometheus>,
}

/// A key given (`Some`), with a value or `null` (`Some(None)`); a key left out stays `None`
/// through `#[serde(default)]`.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

section!(
    /// pglift's `prometheus` settings.
    Prometheus {
        /// The `postgres_exporter` binary (`/usr/bin/prometheus-postgres-exporter` from Debian).
        execpath: String,
        /// The PostgreSQL role of local instances' exporters (pglift's default: `prometheus`).
        role: String,
        configpath: String,
        pid_file: String,
    }
);

section!(Cli {
    logpath: String,
    log_format: String,
    lock_file: String,
});

section!(Postgresql {
    bindir: String,
    default_version: String,
    datadir: String,
    waldir: String,
    logpath: String,
    socket_directory: String,
    dumps_directory: String,
    replrole: String,
    initdb: Initdb,
    auth: Auth,
    surole: Role,
    backuprole: Role,
});

section!(Initdb {
    data_checksums: bool,
    locale: String,
    encoding: String,
    allow_group_access: bool,
});

section!(Auth {
    local: String,
    host: String,
    hostssl: String,
    passfile: String,
});

section!(Role {
    name: String,
    pgpass: bool,
});

section!(Patroni {
    execpath: String,
    ctlpath: String,
    configpath: String,
    logpath: String,
    pid_file: String,
    enforce_config_validation: bool,
    etcd: Etcd,
    restapi: Restapi,
    ctl: Ctl,
    postgresql: PatroniPostgresql,
    configuration_mode: ConfigurationMode,
});

section!(Etcd {
    version: String,
    /// `host:port` items: a list, or one comma-separated string (what a template gives).
    hosts: Hosts,
    protocol: String,
    cacert: String,
    cert: String,
    key: String,
});

section!(Restapi {
    cafile: String,
    certfile: String,
    keyfile: String,
    verify_client: String,
});

section!(Ctl {
    certfile: String,
    keyfile: String,
});

section!(PatroniPostgresql {
    passfile: String,
    use_pg_rewind: bool,
});

section!(ConfigurationMode {
    auth: String,
    parameters: String,
});

section!(Pgbackrest {
    execpath: String,
    configpath: String,
    logpath: String,
    spoolpath: String,
    lockpath: String,
    repository: Repository,
});

section!(Repository {
    mode: String,
    path: String,
});

section!(Systemd {
    unit_path: String,
    user: bool,
    sudo: bool,
});

impl Settings {
    /// The YAML text of `settings.yaml`, with a header saying who wrote it.
    pub(crate) fn render(&self) -> String {
        let body = serde_yaml_ng::to_string(self).unwrap_or_default();
        format!("# Managed by pgdeploy (pglift_site): changes here are overwritten\n{body}")
    }
}

/// etcd's `host:port` items, read from a list or a comma-separated string, written as a list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub(crate) struct Hosts(pub Vec<String>);

impl<'de> Deserialize<'de> for Hosts {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let items = pgdeploy_core::params::OneOrMany::<String>::deserialize(d)?;
        Ok(Hosts(
            items
                .0
                .iter()
                .flat_map(|i| i.split(','))
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .collect(),
        ))
    }
}
