//! The files of one exporter, rendered from the parameters: the template unit (shared by every
//! instance of the host), the instance's environment file (no secret in it: the password is
//! in its own file, read by the exporter through `DATA_SOURCE_PASS_FILE`), and the locator
//! that `pgdeploy verify` reads.

use super::PostgresExporter;

/// The template unit: one service per instance, `pgdeploy-postgres-exporter@NAME`.
pub(crate) const UNIT_PATH: &str = "/etc/systemd/system/pgdeploy-postgres-exporter@.service";
/// Where each instance's environment and password files are.
pub(crate) const CONFIG_DIR: &str = "/etc/prometheus-postgres-exporter";

/// The unit of instance `name`.
pub(crate) fn unit_name(name: &str) -> String {
    format!("pgdeploy-postgres-exporter@{name}.service")
}

pub(crate) fn env_path(name: &str) -> String {
    format!("{CONFIG_DIR}/{name}.env")
}

pub(crate) fn password_path(name: &str) -> String {
    format!("{CONFIG_DIR}/{name}.password")
}

/// `ADDRESS:PORT` as Go's listener reads it (an IPv6 address in brackets).
pub(crate) fn listen(address: &str, port: u16) -> String {
    if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// The URL that answers from the host itself: a wildcard listener is reached on loopback.
pub(crate) fn local_url(address: &str, port: u16) -> String {
    let reach = match address {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "[::1]",
        a => a,
    };
    format!("http://{}/metrics", listen(reach, port))
}

impl PostgresExporter {
    /// The template unit; `%i` is the instance name.
    pub(crate) fn render_unit(&self) -> String {
        format!(
            "# Managed by pgdeploy (module `postgres_exporter`): one Prometheus postgres_exporter per\n\
             # PostgreSQL instance, configured by {CONFIG_DIR}/INSTANCE.env\n\
             [Unit]\n\
             Description=Prometheus postgres_exporter for PostgreSQL instance %i\n\
             Documentation=https://github.com/prometheus-community/postgres_exporter\n\
             After=network.target\n\
             \n\
             [Service]\n\
             User={user}\n\
             Group={user}\n\
             EnvironmentFile={CONFIG_DIR}/%i.env\n\
             ExecStart={binary}\n\
             Restart=on-failure\n\
             RestartSec=5\n\
             NoNewPrivileges=yes\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            user = self.run_as,
            binary = self.binary,
        )
    }

    /// The instance's environment: where PostgreSQL is, who connects, the password's file,
    /// where to listen. Values are checked at load (no quote, space or backslash), so they
    /// need no quoting for systemd.
    pub(crate) fn render_env(&self) -> String {
        format!(
            "# Managed by pgdeploy (module `postgres_exporter`): instance `{name}`\n\
             DATA_SOURCE_URI={host}:{port}/{db}?sslmode={ssl}\n\
             DATA_SOURCE_USER={user}\n\
             DATA_SOURCE_PASS_FILE={pass}\n\
             PG_EXPORTER_WEB_LISTEN_ADDRESS={listen}\n",
            name = self.name,
            host = listen_host(&self.pg_host),
            port = self.pg_port,
            db = self.dbname,
            ssl = self.sslmode,
            user = self.user,
            pass = password_path(&self.name),
            listen = listen(&self.listen_address, self.port),
        )
    }

    pub(crate) fn render_locator(&self) -> String {
        pgdeploy_core::locator::render(
            "postgres_exporter",
            "the exporter",
            &[
                ("EXPORTER_NAME", &self.name),
                ("EXPORTER_UNIT", &unit_name(&self.name)),
                ("EXPORTER_URL", &local_url(&self.listen_address, self.port)),
            ],
        )
    }
}

/// A host in a URI's authority: an IPv6 address in brackets.
fn listen_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(listen("10.0.0.1", 9187), "10.0.0.1:9187");
        assert_eq!(listen("::1", 9187), "[::1]:9187");
        assert_eq!(local_url("0.0.0.0", 9187), "http://127.0.0.1:9187/metrics");
        assert_eq!(local_url("::", 1), "http://[::1]:1/metrics");
        assert_eq!(local_url("10.0.0.1", 2), "http://10.0.0.1:2/metrics");
    }
}
