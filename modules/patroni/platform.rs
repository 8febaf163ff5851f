//! Where an OS family keeps PostgreSQL: Debian/Ubuntu (`postgresql-common` layout) and EL
//! (PGDG's `/usr/pgsql-N`). Everything the module derives from the family is here, so the
//! rest of the module never names a distribution path.

use pgdeploy_core::module::{HostContext, ModuleError};
use pgdeploy_core::template::Facts;

use super::super::packages::Manager;

/// The OS family, from the `ansible_os_family` fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// Debian and Ubuntu.
    Debian,
    /// RHEL, Rocky, Alma, Oracle Linux (EL 8/9), with PGDG's packages.
    RedHat,
}

impl Family {
    /// The family of a host, from its facts; `None` without a supported `ansible_os_family`.
    pub(crate) fn of(facts: &Facts) -> Option<Family> {
        match facts.get("ansible_os_family").and_then(|v| v.as_str()) {
            Some("Debian") => Some(Family::Debian),
            Some("RedHat") => Some(Family::RedHat),
            _ => None,
        }
    }

    /// [`Family::of`], or an error naming the host and what it is.
    pub(crate) fn from_facts(cx: &HostContext<'_>) -> Result<Family, ModuleError> {
        Family::of(cx.facts).ok_or_else(|| {
            match cx.facts.get("ansible_os_family").and_then(|v| v.as_str()) {
                None | Some("") => ModuleError::Failed(format!(
                    "`{}` has no `ansible_os_family` fact; patroni needs the facts of the host",
                    cx.host
                )),
                Some(other) => ModuleError::Failed(format!(
                    "`{}` is of OS family `{other}`; patroni supports `Debian` (Debian, Ubuntu) and `RedHat` (EL 8/9)",
                    cx.host
                )),
            }
        })
    }

    pub(crate) fn manager(self) -> Manager {
        match self {
            Family::Debian => Manager::Apt,
            Family::RedHat => Manager::Dnf,
        }
    }

    /// Where the installed major versions are found, as messages name it.
    pub(crate) fn versions_path(self) -> &'static str {
        match self {
            Family::Debian => "/usr/lib/postgresql",
            Family::RedHat => "/usr/pgsql-*",
        }
    }

    /// A shell command printing the installed major versions, separated by blanks.
    pub(crate) fn versions_command(self) -> &'static str {
        match self {
            Family::Debian => "ls /usr/lib/postgresql 2>/dev/null | tr '\\n' ' '",
            Family::RedHat => {
                "cd /usr && ls -d pgsql-* 2>/dev/null | sed 's/^pgsql-//' | tr '\\n' ' '"
            }
        }
    }

    pub(crate) fn bin_dir(self, version: u32) -> String {
        match self {
            Family::Debian => format!("/usr/lib/postgresql/{version}/bin"),
            Family::RedHat => format!("/usr/pgsql-{version}/bin"),
        }
    }

    pub(crate) fn data_dir(self, version: u32, scope: &str) -> String {
        format!("{}/{version}/{scope}", self.postgres_home())
    }

    /// The `postgres` user's home, where its `.pgpass` files go.
    pub(crate) fn postgres_home(self) -> &'static str {
        match self {
            Family::Debian => "/var/lib/postgresql",
            Family::RedHat => "/var/lib/pgsql",
        }
    }

    /// The distribution's own service for `version`, kept off: Patroni runs PostgreSQL.
    pub(crate) fn dist_service(self, version: u32) -> String {
        match self {
            Family::Debian => "postgresql".into(),
            Family::RedHat => format!("postgresql-{version}"),
        }
    }

    /// How the plan names that service.
    pub(crate) fn dist_service_shown(self, version: u32) -> String {
        match self {
            Family::Debian => "Debian's `postgresql` service".into(),
            Family::RedHat => format!("the `postgresql-{version}` service"),
        }
    }

    /// The server package of `version` (what to install when none is).
    pub(crate) fn server_package(self, version: &str) -> String {
        match self {
            Family::Debian => format!("postgresql-{version}"),
            Family::RedHat => format!("postgresql{version}-server"),
        }
    }

    /// The default packages of `install.method: package` (PGDG's EL package keeps the etcd
    /// client in `patroni-etcd`).
    pub(crate) fn patroni_packages(self) -> Vec<String> {
        match self {
            Family::Debian => vec!["patroni".into()],
            Family::RedHat => vec!["patroni".into(), "patroni-etcd".into()],
        }
    }

    /// The package that gives `python3` its `venv` module (EL's python3 has it built in).
    pub(crate) fn venv_package(self) -> Option<&'static str> {
        match self {
            Family::Debian => Some("python3-venv"),
            Family::RedHat => None,
        }
    }
}
