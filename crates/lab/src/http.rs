//! The HTTP server of a lab's package mirror: a real nginx (Debian's `nginx-light`), one per
//! lab, listening only on the lab bridge's address and serving the cached mirror read-only.
//! Started by `lab up` (kept when it already runs with the same configuration), stopped by
//! `lab down`, shown by `lab status`. Its files live in `lab/NAME/mirror/`

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::mirror::PORT;
use super::state::{self, LabPaths};
use super::{cmd, procs};

/// How long nginx may take to listen after it daemonized
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's files
struct ServerPaths {
    dir: PathBuf,
}

impl ServerPaths {
    fn new(lab: &LabPaths) -> Self {
        ServerPaths {
            dir: lab.dir.join("mirror"),
        }
    }
    fn config(&self) -> PathBuf {
        self.dir.join("nginx.conf")
    }
    fn pid(&self) -> PathBuf {
        self.dir.join("nginx.pid")
    }
    fn error_log(&self) -> PathBuf {
        self.dir.join("error.log")
    }
    fn access_log(&self) -> PathBuf {
        self.dir.join("access.log")
    }
}

/// A running mirror server
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Server {
    pub pid: i32,
    pub url: String,
    pub root: PathBuf,
}

/// nginx's configuration: one server on `address`, static files from `root`, no other port
fn config(p: &ServerPaths, address: Ipv4Addr, root: &Path) -> String {
    format!(
        "# written by `pgdeploy lab up`: the lab's package mirror\n\
         daemon on;\n\
         user root;\n\
         worker_processes 1;\n\
         pid {pid};\n\
         error_log {err} warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n\
         \x20   access_log {access};\n\
         \x20   sendfile on;\n\
         \x20   default_type application/octet-stream;\n\
         \x20   types {{ text/html html; text/plain asc; }}\n\
         \x20   server {{\n\
         \x20       listen {address}:{PORT};\n\
         \x20       root {root};\n\
         \x20       autoindex on;\n\
         \x20   }}\n\
         }}\n",
        pid = p.pid().display(),
        err = p.error_log().display(),
        access = p.access_log().display(),
        root = root.display(),
    )
}

/// The nginx master of this lab, if it runs
fn running_pid(p: &ServerPaths) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(p.pid()).ok()?.trim().parse().ok()?;
    let line = procs::cmdline(pid)?;
    let conf = p.config().display().to_string();
    // nginx rewrites its title (`nginx: master process /usr/sbin/nginx … -c CONF …`)
    let line = line.join(" ");
    (line.contains("nginx") && line.contains(&conf)).then_some(pid)
}

/// The server of lab `lab`, if it runs
pub fn status(lab: &LabPaths, address: Ipv4Addr) -> Option<Server> {
    let p = ServerPaths::new(lab);
    let pid = running_pid(&p)?;
    let text = std::fs::read_to_string(p.config()).ok()?;
    let root = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("root "))
        .map(|r| PathBuf::from(r.trim_end_matches(';')))?;
    Some(Server {
        pid,
        url: format!("http://{address}:{PORT}"),
        root,
    })
}

/// Serves `root` on `address` (the bridge's, which must exist): keeps a server that runs with
/// the same configuration, replaces one that serves something else
pub fn start(lab: &LabPaths, address: Ipv4Addr, root: &Path) -> anyhow::Result<Server> {
    let p = ServerPaths::new(lab);
    let text = config(&p, address, root);
    if let Some(pid) = running_pid(&p) {
        if std::fs::read_to_string(p.config()).ok().as_deref() == Some(text.as_str()) {
            return Ok(Server {
                pid,
                url: format!("http://{address}:{PORT}"),
                root: root.to_path_buf(),
            });
        }
        stop(lab)?;
    }
    let nginx = super::prereq::which("nginx").context(
        "`nginx` not found (Debian package `nginx-light`); run `scripts/install-lab-prereqs` as root",
    )?;
    state::write_atomic(&p.config(), text.as_bytes(), 0o644)?;
    let _ = std::fs::remove_file(p.pid());
    cmd::run(
        Command::new(&nginx)
            .arg("-e")
            .arg(p.error_log())
            .arg("-c")
            .arg(p.config())
            .arg("-p")
            .arg(&p.dir),
    )
    .with_context(|| format!("cannot start the lab mirror on `{address}:{PORT}`"))?;
    let addr = SocketAddr::from((address, PORT));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pid) = running_pid(&p) {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(Server {
                    pid,
                    url: format!("http://{address}:{PORT}"),
                    root: root.to_path_buf(),
                });
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the lab mirror (nginx, `{}`) does not answer on `{addr}` after {} s; last lines of `{}`:\n{}",
                p.config().display(),
                START_TIMEOUT.as_secs(),
                p.error_log().display(),
                super::recipe::tail(&p.error_log(), 10)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the lab's server (its master and workers); nothing to do when none runs
pub fn stop(lab: &LabPaths) -> anyhow::Result<()> {
    let p = ServerPaths::new(lab);
    let Some(pid) = running_pid(&p) else {
        return Ok(());
    };
    let workers = procs::children(pid);
    // SIGTERM: nginx's fast shutdown, workers included
    let _ = procs::signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs::alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if procs::alive(pid) {
        let _ = procs::signal(pid, libc::SIGKILL);
    }
    // workers a killed master left behind
    for w in workers {
        if procs::alive(w) {
            let _ = procs::signal(w, libc::SIGKILL);
        }
    }
    let _ = std::fs::remove_file(p.pid());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_listens_on_the_bridge_only() {
        let p = ServerPaths {
            dir: PathBuf::from("/var/lib/pgdeploy/lab/pgd/mirror"),
        };
        let text = config(
            &p,
            Ipv4Addr::new(10, 213, 7, 1),
            Path::new("/var/lib/pgdeploy/mirrors/abc/www"),
        );
        assert!(text.contains("listen 10.213.7.1:8480;"));
        assert_eq!(text.matches("listen").count(), 1);
        assert!(text.contains("root /var/lib/pgdeploy/mirrors/abc/www;"));
        assert!(text.contains("pid /var/lib/pgdeploy/lab/pgd/mirror/nginx.pid;"));
    }
}
