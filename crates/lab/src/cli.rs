//! `pgdeploy lab …`: the command line of the lab, a thin layer over [`super::ops`]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::ops::{self, HostRunState, UpOptions};
use super::subnet::Subnet;
use super::{image, mirror};

/// The lab to act on
#[derive(Debug, Clone, clap::Args)]
pub struct LabName {
    /// Lab name (1–7 characters `a-z0-9`); several labs can run side by side
    #[arg(long, default_value = ops::DEFAULT_NAME, env = "PGDEPLOY_LAB")]
    pub name: String,
}

/// `pgdeploy lab`: real Debian 12 hosts as systemd-nspawn containers on a private bridge
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LabCommand {
    /// Build or reuse the image, boot the hosts, write known_hosts and the inventory
    Up {
        #[command(flatten)]
        lab: LabName,
        /// PostgreSQL hosts `pg1..pgN`
        #[arg(long, default_value_t = 3)]
        nodes: u32,
        /// HAProxy/keepalived hosts `lb1..lbM`
        #[arg(long, default_value_t = 0)]
        balancers: u32,
        /// IPv4 subnet of the bridge (/24 or larger): `.1` the bridge, `.11`+ pg, `.21`+ lb, `.100` VIP
        #[arg(long, default_value = ops::DEFAULT_SUBNET)]
        subnet: String,
        /// Where to write the inventory
        #[arg(long, short = 'i', default_value = ops::DEFAULT_INVENTORY)]
        inventory: PathBuf,
    },
    /// Remove everything of the lab: processes, overlays, veths, bridge, state
    Down {
        #[command(flatten)]
        lab: LabName,
    },
    /// Hosts with address, state, PID and memory
    Status {
        #[command(flatten)]
        lab: LabName,
        /// One JSON object per host instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Power loss: SIGKILL the host's init (every process on it dies at once)
    Kill {
        #[command(flatten)]
        lab: LabName,
        node: String,
    },
    /// Boot a stopped host again on its own disk
    Start {
        #[command(flatten)]
        lab: LabName,
        node: String,
    },
    /// Cut the host off the network (`--heal` to plug it back)
    Partition {
        #[command(flatten)]
        lab: LabName,
        node: String,
        #[arg(long)]
        heal: bool,
    },
    /// Run a command on a host as root: `lab exec pg1 -- systemctl status`
    Exec {
        #[command(flatten)]
        lab: LabName,
        node: String,
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Build the image if its recipe changed (CI calls this), or always with `--rebuild`
    Image {
        #[arg(long)]
        rebuild: bool,
    },
    /// Build the package mirror (APT repository + Python wheels) if its recipe or the image
    /// changed (CI calls this), or always with `--rebuild`
    Mirror {
        #[arg(long)]
        rebuild: bool,
    },
}

/// Runs a lab command; blocking (call it from `spawn_blocking` inside an async runtime)
pub fn run(cmd: LabCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LabCommand::Up {
            lab,
            nodes,
            balancers,
            subnet,
            inventory,
        } => {
            let subnet: Subnet = subnet.parse()?;
            let info = ops::up(&UpOptions {
                name: lab.name,
                nodes,
                balancers,
                subnet,
                inventory,
            })?;
            let booted = info.hosts.iter().filter(|h| h.booted).count();
            for h in &info.hosts {
                pgdeploy_core::outln!(
                    "{:<5} {:<15} {}",
                    h.name,
                    h.ip,
                    if h.booted {
                        "booted"
                    } else {
                        "already running"
                    }
                );
            }
            if booted > 0 {
                pgdeploy_core::outln!("{booted} hosts ready for SSH in {:.1} s", info.boot_seconds);
            }
            pgdeploy_core::outln!(
                "package mirror: {} (APT `{}`, wheels `{}`)",
                info.mirror_urls.base,
                info.mirror_urls.apt,
                info.mirror_urls.python
            );
            pgdeploy_core::outln!("inventory: {}", info.inventory.display());
            pgdeploy_core::outln!("known_hosts: {}", info.known_hosts.display());
            pgdeploy_core::outln!(
                "ssh: ssh -i {} -o UserKnownHostsFile={} root@{}",
                info.key.display(),
                info.known_hosts.display(),
                info.hosts[0].ip
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Down { lab } => {
            ops::down(&lab.name)?;
            pgdeploy_core::outln!("lab `{}` is down", lab.name);
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Status { lab, json } => {
            let rows = ops::status(&lab.name)?;
            let server = ops::mirror_status(&lab.name)?;
            let mut out = std::io::stdout().lock();
            if json {
                for r in &rows {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                }
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"mirror": server, "running": server.is_some()})
                )?;
            } else {
                writeln!(
                    out,
                    "{:<6}{:<16}{:<13}{:>8}{:>10}",
                    "HOST", "IP", "STATE", "PID", "MEMORY"
                )?;
                for r in &rows {
                    let state = match r.state {
                        HostRunState::Running => "running",
                        HostRunState::Stopped => "stopped",
                        HostRunState::Partitioned => "partitioned",
                    };
                    writeln!(
                        out,
                        "{:<6}{:<16}{:<13}{:>8}{:>10}",
                        r.name,
                        r.ip.to_string(),
                        state,
                        r.init_pid
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "-".into()),
                        r.memory_kib
                            .map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                            .unwrap_or_else(|| "-".into())
                    )?;
                }
                match &server {
                    Some(m) => writeln!(
                        out,
                        "mirror {} running (nginx, PID {}), serving `{}`",
                        m.url,
                        m.pid,
                        m.root.display()
                    )?,
                    None => writeln!(
                        out,
                        "mirror not running (`pgdeploy lab up --name {}` starts it)",
                        lab.name
                    )?,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Kill { lab, node } => {
            ops::kill(&lab.name, &node)?;
            pgdeploy_core::outln!("{node}: powered off");
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Start { lab, node } => {
            ops::start(&lab.name, &node)?;
            pgdeploy_core::outln!("{node}: running");
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Partition { lab, node, heal } => {
            ops::partition(&lab.name, &node, heal)?;
            pgdeploy_core::outln!("{node}: {}", if heal { "healed" } else { "partitioned" });
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Exec { lab, node, command } => {
            let status = ops::exec(&lab.name, &node, &command)?;
            Ok(exit_code(status))
        }
        LabCommand::Image { rebuild } => {
            super::prereq::check_runtime()?;
            let info = image::ensure(rebuild)?;
            pgdeploy_core::outln!(
                "image {} {} ({:.1} s): {}",
                info.hash,
                if info.built { "built" } else { "cached" },
                info.seconds,
                info.rootfs.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Mirror { rebuild } => {
            super::prereq::check_runtime()?;
            let image = image::ensure(false)?;
            let info = mirror::ensure(&image, rebuild)?;
            pgdeploy_core::outln!(
                "package mirror {} {} ({:.1} s): {}",
                info.hash,
                if info.built { "built" } else { "cached" },
                info.seconds,
                info.root.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The command's exit code, or 128 + signal like a shell
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
