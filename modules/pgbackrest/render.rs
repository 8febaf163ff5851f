//! The files the `pgbackrest` module writes: `pgbackrest.conf` (a member's, the repository
//! host's), the units of the TLS server and of the scheduled backups, and the locator.

use std::fmt::Write as _;

use super::params::Pgbackrest;

/// pgBackRest reads this before `/etc/pgbackrest.conf` (the package's example).
pub(crate) const CONFIG: &str = "/etc/pgbackrest/pgbackrest.conf";
pub(crate) const BINARY: &str = "/usr/bin/pgbackrest";
pub(crate) const SERVER_UNIT: &str = "pgbackrest-server.service";
/// The backup types a timer runs on the repository host.
pub(crate) const TIMED: [&str; 2] = ["full", "diff"];

/// A member of the cluster as the repository reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Peer {
    /// The inventory name: the CN of its certificate.
    pub name: String,
    pub address: String,
}

const HEADER: &str = "# Managed by pgdeploy (module `pgbackrest`): changes here are overwritten.\n";

impl Pgbackrest {
    fn common(&self, out: &mut String, clients: &[&str]) {
        let t = self.tls();
        let _ = write!(
            out,
            "log-level-console=warn\nlog-level-file=info\nlog-path=/var/log/pgbackrest\n\
             tls-server-address=*\ntls-server-port={}\ntls-server-cert-file={}\n\
             tls-server-key-file={}\ntls-server-ca-file={}\n",
            self.tls_port, t.cert_file, t.key_file, t.ca_file
        );
        for c in clients {
            let _ = writeln!(out, "tls-server-auth={c}={}", self.stanza);
        }
    }

    /// A member's configuration: the repository is remote (TLS), the data directory local;
    /// the repository host alone may connect to its server.
    pub(crate) fn member_config(&self, repo_address: &str) -> String {
        let t = self.tls();
        let mut out = format!(
            "{HEADER}[global]\nrepo1-host={repo_address}\nrepo1-host-type=tls\nrepo1-host-port={}\n\
             repo1-host-cert-file={}\nrepo1-host-key-file={}\nrepo1-host-ca-file={}\n",
            self.tls_port, t.cert_file, t.key_file, t.ca_file
        );
        self.common(&mut out, &[self.repo_host.as_str()]);
        let _ = write!(
            out,
            "\n[{}]\npg1-path={}\npg1-port={}\n",
            self.stanza,
            self.pg_path(),
            self.pg_port
        );
        out
    }

    /// The repository host's configuration: the repository, its retention and cipher, and
    /// every member (pgBackRest backs up from whichever is the primary).
    pub(crate) fn repo_config(&self, members: &[Peer]) -> String {
        let mut out = format!(
            "{HEADER}[global]\nrepo1-path={}\nrepo1-retention-full={}\nrepo1-retention-diff={}\n",
            self.repo_path, self.retention.full, self.retention.diff
        );
        if let Some(p) = &self.cipher_pass {
            let _ = write!(
                out,
                "repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={}\n",
                p.expose()
            );
        }
        out.push_str("start-fast=y\n");
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        self.common(&mut out, &names);
        let _ = write!(out, "\n[{}]\n", self.stanza);
        let t = self.tls();
        for (i, m) in members.iter().enumerate() {
            let n = i + 1;
            let _ = write!(
                out,
                "pg{n}-host={}\npg{n}-host-type=tls\npg{n}-host-port={}\n\
                 pg{n}-host-cert-file={}\npg{n}-host-key-file={}\npg{n}-host-ca-file={}\n\
                 pg{n}-path={}\npg{n}-port={}\n",
                m.address,
                self.tls_port,
                t.cert_file,
                t.key_file,
                t.ca_file,
                self.pg_path(),
                self.pg_port
            );
        }
        out
    }

    /// The TLS server, as `user`: members serve their data directory to the repository
    /// host, the repository host serves the repository to the members' `archive-push`,
    /// `archive-get` and `restore`.
    pub(crate) fn server_unit(&self, user: &str) -> String {
        format!(
            "# Managed by pgdeploy (module `pgbackrest`)\n\
             [Unit]\n\
             Description=pgBackRest TLS server (stanza `{stanza}`)\n\
             After=network-online.target\n\
             Wants=network-online.target\n\
             \n\
             [Service]\n\
             Type=simple\n\
             User={user}\n\
             Group={user}\n\
             ExecStart={BINARY} server\n\
             Restart=on-failure\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            stanza = self.stanza
        )
    }

    /// The oneshot service a timer starts: one backup of `kind`.
    pub(crate) fn backup_service(&self, kind: &str) -> String {
        format!(
            "# Managed by pgdeploy (module `pgbackrest`)\n\
             [Unit]\n\
             Description=pgBackRest {kind} backup of stanza `{stanza}`\n\
             After=network-online.target {SERVER_UNIT}\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             User={user}\n\
             Group={user}\n\
             ExecStart={BINARY} --stanza={stanza} --type={kind} backup\n",
            stanza = self.stanza,
            user = self.repo_user
        )
    }

    /// The timer of the `kind` backups; `Persistent`: a run missed while the host was down
    /// happens at the next boot.
    pub(crate) fn backup_timer(&self, kind: &str, calendar: &str) -> String {
        format!(
            "# Managed by pgdeploy (module `pgbackrest`)\n\
             [Unit]\n\
             Description=Scheduled pgBackRest {kind} backup of stanza `{stanza}`\n\
             \n\
             [Timer]\n\
             OnCalendar={calendar}\n\
             Persistent=true\n\
             RandomizedDelaySec=300\n\
             \n\
             [Install]\n\
             WantedBy=timers.target\n",
            stanza = self.stanza
        )
    }

    /// The calendar of the `kind` timer ("" for none).
    pub(crate) fn calendar(&self, kind: &str) -> &str {
        match kind {
            "full" => &self.schedule.full,
            _ => &self.schedule.diff,
        }
    }

    /// The locator `pgdeploy backup`, `restore` and `status` read: the stanza, the
    /// repository host (inventory name) and the user pgBackRest runs as there.
    pub(crate) fn locator(&self) -> String {
        pgdeploy_core::locator::render(
            "pgbackrest",
            "the stanza and its repository",
            &[
                ("PGBACKREST_STANZA", &self.stanza),
                ("PGBACKREST_REPO_HOST", &self.repo_host),
                ("PGBACKREST_REPO_USER", &self.repo_user),
                ("PGBACKREST_CONFIG", CONFIG),
                ("PGBACKREST", BINARY),
            ],
        )
    }
}

/// Systemd unit file name of the `kind` backup service or timer.
pub(crate) fn backup_unit(kind: &str, suffix: &str) -> String {
    format!("pgbackrest-backup-{kind}.{suffix}")
}
