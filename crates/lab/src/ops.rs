//! The lab's operations (`up`, `down`, `status`, `kill`, `start`, `partition`, `exec`), as a
//! library so the CLI and the engine's tests share them.
//!
//! Every operation that changes a lab holds a lock on the labs directory, so two commands never
//! race on one lab; `status` and `exec` only read

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::host::{self, Running};
use super::image::{self, ImageInfo};
use super::mirror::{self, MirrorInfo, MirrorUrls};
use super::network::{self, Attachment};
use super::state::{self, HostPaths, HostState, LabPaths, LabState};
use super::subnet::{Role, Subnet, MAX_PER_ROLE};
use super::{http, identity, inventory, lock, mounts, prereq, procs, recipe};

/// Default lab name
pub const DEFAULT_NAME: &str = "pgd";
/// Default subnet
pub const DEFAULT_SUBNET: &str = "10.213.7.0/24";
/// Default inventory path, relative to the current directory
pub const DEFAULT_INVENTORY: &str = "inventories/lab.yml";
/// How long `down` waits for hosts to shut down cleanly before cutting their power
pub const GRACEFUL_TIMEOUT: Duration = Duration::from_secs(15);

/// What `lab up` should bring up
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub name: String,
    /// PostgreSQL hosts `pg1..pgN`
    pub nodes: u32,
    /// HAProxy/keepalived hosts `lb1..lbM`
    pub balancers: u32,
    pub subnet: Subnet,
    /// Where to write the inventory
    pub inventory: PathBuf,
}

impl UpOptions {
    /// Defaults of the CLI with `name`, `nodes` and `balancers`
    pub fn new(name: &str, nodes: u32, balancers: u32) -> Self {
        UpOptions {
            name: name.to_string(),
            nodes,
            balancers,
            subnet: DEFAULT_SUBNET.parse().expect("default subnet is valid"),
            inventory: PathBuf::from(DEFAULT_INVENTORY),
        }
    }
}

/// A lab after `up`: everything a client needs to reach its hosts
#[derive(Debug, Clone)]
pub struct LabInfo {
    pub name: String,
    pub subnet: Subnet,
    pub vip: Ipv4Addr,
    /// Private key for `root@HOST`
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    /// Absolute path of the inventory written
    pub inventory: PathBuf,
    pub hosts: Vec<HostInfo>,
    pub image: ImageInfo,
    /// The package mirror the lab serves, and where
    pub mirror: MirrorInfo,
    pub mirror_urls: MirrorUrls,
    /// Seconds from the first nspawn start to the last sshd answering (0 when all were running)
    pub boot_seconds: f64,
}

/// One host of a lab
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub name: String,
    pub role: Role,
    pub ip: Ipv4Addr,
    pub init_pid: i32,
    /// False when `up` found it running and left it alone
    pub booted: bool,
}

/// The state `lab status` reports
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRunState {
    Running,
    Stopped,
    Partitioned,
}

/// One row of `lab status`
#[derive(Debug, Clone, serde::Serialize)]
pub struct HostStatus {
    pub name: String,
    pub role: Role,
    pub ip: Ipv4Addr,
    pub state: HostRunState,
    pub init_pid: Option<i32>,
    /// Proportional set size of all the host's processes
    pub memory_kib: Option<u64>,
}

fn check_counts(opts: &UpOptions) -> anyhow::Result<()> {
    if !(1..=MAX_PER_ROLE).contains(&opts.nodes) {
        bail!(
            "`--nodes {}` is out of range: 1 to {MAX_PER_ROLE}",
            opts.nodes
        );
    }
    if opts.balancers > MAX_PER_ROLE {
        bail!(
            "`--balancers {}` is out of range: 0 to {MAX_PER_ROLE}",
            opts.balancers
        );
    }
    Ok(())
}

/// Brings the lab up: builds or reuses the image, starts missing hosts in parallel, waits for
/// their sshd, and writes known_hosts and the inventory. Idempotent: running hosts are kept
pub fn up(opts: &UpOptions) -> anyhow::Result<LabInfo> {
    prereq::check_runtime()?;
    prereq::check_mirror_server()?;
    state::check_name(&opts.name)?;
    check_counts(opts)?;
    let paths = LabPaths::new(&opts.name);
    let _lock = lock::lock_dir(&state::labs_dir())?;
    let existing = state::load(&paths)?;
    if let Some(st) = &existing {
        if st.subnet != opts.subnet.to_string() {
            bail!(
                "lab `{}` exists with subnet `{}`, not `{}`; run `pgdeploy lab down --name {}` first",
                opts.name,
                st.subnet,
                opts.subnet,
                opts.name
            );
        }
    }
    network::check_no_overlap(&opts.subnet, &paths.bridge())?;
    let image = match &existing {
        Some(st) if st.image.is_dir() => ImageInfo {
            hash: recipe::hash_of(&st.image),
            rootfs: st.image.clone(),
            built: false,
            seconds: 0.0,
        },
        _ => image::ensure(false)?,
    };
    let mirror = match existing.as_ref().and_then(|st| st.mirror.clone()) {
        Some(root) if root.is_dir() => MirrorInfo {
            hash: recipe::hash_of(&root),
            root,
            built: false,
            seconds: 0.0,
        },
        _ => mirror::ensure(&image, false)?,
    };
    std::fs::create_dir_all(&paths.dir)
        .with_context(|| format!("cannot create `{}`", paths.dir.display()))?;
    let public_key = identity::ensure_lab_key(&paths.key())?;

    let mut st = existing.unwrap_or_else(|| LabState {
        name: opts.name.clone(),
        subnet: opts.subnet.to_string(),
        bridge: paths.bridge(),
        image: image.rootfs.clone(),
        hosts: Vec::new(),
        inventory: None,
        mirror: None,
    });
    st.mirror = Some(mirror.root.clone());
    let before = st.hosts.len();
    for (role, count) in [
        (Role::Postgres, opts.nodes),
        (Role::Balancer, opts.balancers),
    ] {
        for i in 1..=count {
            let name = format!("{}{i}", role.prefix());
            if st.host(&name).is_none() {
                st.hosts.push(HostState {
                    ip: opts
                        .subnet
                        .host(role, i)
                        .context("host index out of range")?,
                    name,
                    role,
                    nspawn_pid: None,
                    init_pid: None,
                    pid_ns: None,
                });
            }
        }
    }
    let grew = st.hosts.len() != before;
    // recorded first, so that `down` cleans up after a failed `up`
    state::save(&paths, &st)?;
    network::ensure_bridge(&st.bridge, &opts.subnet)?;
    http::start(&paths, opts.subnet.gateway(), &mirror.root)?;
    let mirror_urls = MirrorUrls::new(opts.subnet.gateway());

    let table: Vec<(String, Ipv4Addr)> = st.hosts.iter().map(|h| (h.name.clone(), h.ip)).collect();
    let mut todo = Vec::new();
    let mut infos = Vec::new();
    for h in &st.hosts {
        match host::running(&paths.machine(&h.name)) {
            Some(r) => {
                if grew {
                    let hp = host_paths(&paths, &h.name);
                    identity::write_hosts(&hp.merged(), &table)?;
                }
                infos.push((h.name.clone(), r, false));
            }
            None => todo.push(h.clone()),
        }
    }
    let started = Instant::now();
    let results: Vec<anyhow::Result<(String, Running)>> = std::thread::scope(|s| {
        let handles: Vec<_> = todo
            .iter()
            .map(|h| {
                let (paths, table, key, rootfs, bridge) =
                    (&paths, &table, &public_key, &st.image, &st.bridge);
                s.spawn(move || {
                    start_host(paths, h, rootfs, bridge, &opts.subnet, table, key, grew)
                        .with_context(|| format!("cannot start host `{}`", h.name))
                        .map(|r| (h.name.clone(), r))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("host thread panicked")))
            })
            .collect()
    });
    let boot_seconds = if todo.is_empty() {
        0.0
    } else {
        started.elapsed().as_secs_f64()
    };
    let mut errors = Vec::new();
    for res in results {
        match res {
            Ok((name, r)) => infos.push((name, r, true)),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    for (name, r, _) in &infos {
        record(&mut st, name, Some(r));
    }
    state::save(&paths, &st)?;
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }

    write_known_hosts(&paths, &st)?;
    let inventory = absolute(&opts.inventory)?;
    let passwords = inventory::passwords(&paths.dir)?;
    let text = inventory::render(
        &paths.key(),
        &paths.known_hosts(),
        &opts.subnet,
        &mirror_urls,
        &st.hosts,
        &passwords,
    );
    state::write_atomic(&inventory, text.as_bytes(), 0o644)?;
    st.inventory = Some(inventory.clone());
    state::save(&paths, &st)?;

    let hosts = st
        .hosts
        .iter()
        .map(|h| {
            let (_, r, booted) = infos
                .iter()
                .find(|(n, _, _)| *n == h.name)
                .expect("every host is running");
            HostInfo {
                name: h.name.clone(),
                role: h.role,
                ip: h.ip,
                init_pid: r.init_pid,
                booted: *booted,
            }
        })
        .collect();
    Ok(LabInfo {
        name: opts.name.clone(),
        subnet: opts.subnet,
        vip: opts.subnet.vip(),
        key: paths.key(),
        known_hosts: paths.known_hosts(),
        inventory,
        hosts,
        image,
        mirror,
        mirror_urls,
        boot_seconds,
    })
}

fn host_paths(paths: &LabPaths, name: &str) -> HostPaths {
    HostPaths {
        dir: paths.host_dir(name),
    }
}

fn record(st: &mut LabState, name: &str, r: Option<&Running>) {
    if let Some(h) = st.host_mut(name) {
        h.nspawn_pid = r.map(|r| r.nspawn_pid);
        h.init_pid = r.map(|r| r.init_pid);
        if let Some(r) = r {
            h.pid_ns = Some(r.pid_ns);
        }
    }
}

/// Mounts, provisions on first boot (or only rewrites `/etc/hosts` when the lab grew), boots,
/// and waits for sshd
#[allow(clippy::too_many_arguments)]
fn start_host(
    paths: &LabPaths,
    h: &HostState,
    rootfs: &Path,
    bridge: &str,
    subnet: &Subnet,
    table: &[(String, Ipv4Addr)],
    public_key: &str,
    rewrite_hosts: bool,
) -> anyhow::Result<Running> {
    let hp = host_paths(paths, &h.name);
    host::ensure_overlay(&hp, rootfs)?;
    let merged = hp.merged();
    if !hp.upper().join("etc/ssh/ssh_host_ed25519_key").exists() {
        identity::provision(&merged, &h.name, h.ip, subnet, table, public_key)?;
    } else if rewrite_hosts {
        identity::write_hosts(&merged, table)?;
    }
    let machine = paths.machine(&h.name);
    let r = host::boot(&hp, &machine, &h.name, bridge)?;
    host::wait_ssh(h.ip, &machine, &r, &hp.log())?;
    Ok(r)
}

fn write_known_hosts(paths: &LabPaths, st: &LabState) -> anyhow::Result<()> {
    let mut entries = Vec::new();
    for h in &st.hosts {
        let merged = host_paths(paths, &h.name).merged();
        let mut keys = vec![identity::host_key(&merged, "ed25519")?];
        for kind in ["ecdsa", "rsa"] {
            if let Ok(k) = identity::host_key(&merged, kind) {
                keys.push(k);
            }
        }
        entries.push((h.name.clone(), h.ip, keys));
    }
    state::write_atomic(
        &paths.known_hosts(),
        inventory::known_hosts(&entries).as_bytes(),
        0o644,
    )
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current directory")?
        .join(path))
}

/// Removes everything of the lab: hosts (shut down cleanly, then killed after
/// [`GRACEFUL_TIMEOUT`]), overlays, veths, the bridge and the lab's directory. Idempotent
pub fn down(name: &str) -> anyhow::Result<()> {
    prereq::check_runtime()?;
    state::check_name(name)?;
    let paths = LabPaths::new(name);
    let _lock = lock::lock_dir(&state::labs_dir())?;
    let st = state::load(&paths)?;
    let prefix = format!("{name}-");

    // every container of this lab, found by machine name whatever the state file says
    let mut victims: Vec<Running> = procs::find_nspawn_prefixed(&prefix)
        .into_iter()
        .filter_map(|pid| {
            let init = procs::container_init(pid)?;
            Some(Running {
                nspawn_pid: pid,
                init_pid: init,
                pid_ns: procs::pid_ns(init)?,
            })
        })
        .collect();
    for pid in procs::find_nspawn_prefixed(&prefix) {
        let _ = procs::signal(pid, libc::SIGTERM);
    }
    // containers whose nspawn died: their processes still sit in the recorded namespaces
    if let Some(st) = &st {
        for h in &st.hosts {
            if let Some(ns) = h.pid_ns {
                if !victims.iter().any(|v| v.pid_ns == ns) && !procs::pids_in_ns(ns).is_empty() {
                    victims.push(Running {
                        nspawn_pid: h.nspawn_pid.unwrap_or(0),
                        init_pid: h.init_pid.unwrap_or(0),
                        pid_ns: ns,
                    });
                }
            }
        }
    }
    let deadline = Instant::now() + GRACEFUL_TIMEOUT;
    while Instant::now() < deadline
        && victims
            .iter()
            .any(|v| !procs::pids_in_ns(v.pid_ns).is_empty())
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for v in &victims {
        for pid in procs::pids_in_ns(v.pid_ns) {
            let _ = procs::signal(pid, libc::SIGKILL);
        }
    }
    for v in &victims {
        host::wait_gone(v, Duration::from_secs(5))?;
    }

    http::stop(&paths)?;
    mounts::unmount_under(&paths.dir)?;
    for veth in network::links_with_prefix(&format!("vb-{prefix}"))? {
        network::delete_link(&veth)?;
    }
    network::delete_link(&paths.bridge())?;
    if let Some(inv) = st.as_ref().and_then(|s| s.inventory.as_ref()) {
        remove_inventory(inv, &paths.key());
    }
    mounts::remove_tree(&paths.dir)?;
    Ok(())
}

/// Removes the inventory `up` wrote, unless someone has since made it about something else
fn remove_inventory(path: &Path, key: &Path) {
    let ours = std::fs::read_to_string(path).is_ok_and(|t| t.contains(&key.display().to_string()));
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

fn find_host<'a>(st: &'a LabState, node: &str) -> anyhow::Result<&'a HostState> {
    st.host(node).with_context(|| {
        let names: Vec<&str> = st.hosts.iter().map(|h| h.name.as_str()).collect();
        format!(
            "lab `{}` has no host `{node}`; its hosts are `{}`",
            st.name,
            names.join("`, `")
        )
    })
}

fn running_host(paths: &LabPaths, st: &LabState, node: &str) -> anyhow::Result<Running> {
    let h = find_host(st, node)?;
    host::running(&paths.machine(&h.name)).with_context(|| {
        format!(
            "host `{node}` of lab `{}` is not running; start it with `pgdeploy lab start --name {} {node}`",
            st.name, st.name
        )
    })
}

/// Status of every host of the lab
pub fn status(name: &str) -> anyhow::Result<Vec<HostStatus>> {
    state::check_name(name)?;
    let paths = LabPaths::new(name);
    let st = state::load_existing(&paths)?;
    st.hosts
        .iter()
        .map(|h| {
            let r = host::running(&paths.machine(&h.name));
            let state = match r {
                None => HostRunState::Stopped,
                Some(_) => match network::attachment(&paths.veth(&h.name), &st.bridge)? {
                    Attachment::Bridged => HostRunState::Running,
                    Attachment::Detached | Attachment::Absent => HostRunState::Partitioned,
                },
            };
            Ok(HostStatus {
                name: h.name.clone(),
                role: h.role,
                ip: h.ip,
                state,
                init_pid: r.map(|r| r.init_pid),
                memory_kib: r.map(|r| host::memory_kib(&r)),
            })
        })
        .collect()
}

/// The lab's package mirror server: `None` when it does not run
pub fn mirror_status(name: &str) -> anyhow::Result<Option<http::Server>> {
    state::check_name(name)?;
    let paths = LabPaths::new(name);
    let st = state::load_existing(&paths)?;
    let subnet: Subnet = st.subnet.parse()?;
    Ok(http::status(&paths, subnet.gateway()))
}

/// Abrupt power loss of one host: SIGKILL of its init. Its disk (overlay) stays as it was
pub fn kill(name: &str, node: &str) -> anyhow::Result<()> {
    prereq::check_runtime()?;
    state::check_name(name)?;
    let paths = LabPaths::new(name);
    let _lock = lock::lock_dir(&state::labs_dir())?;
    let mut st = state::load_existing(&paths)?;
    let r = running_host(&paths, &st, node)?;
    host::power_off(&r)?;
    record(&mut st, node, None);
    state::save(&paths, &st)
}

/// Boots a stopped host again on its existing overlay (like a machine powered on again)
pub fn start(name: &str, node: &str) -> anyhow::Result<()> {
    prereq::check_runtime()?;
    state::check_name(name)?;
    let paths = LabPaths::new(name);
    let _lock = lock::lock_dir(&state::labs_dir())?;
    let mut st = state::load_existing(&paths)?;
    let h = find_host(&st, node)?.clone();
    let subnet: Subnet = st.subnet.parse()?;
    network::ensure_bridge(&st.bridge, &subnet)?;
    let table: Vec<(String, Ipv4Addr)> = st.hosts.iter().map(|h| (h.name.clone(), h.ip)).collect();
    let public_key = identity::ensure_lab_key(&paths.key())?;
    let r = start_host(
        &paths,
        &h,
        &st.image,
        &st.bridge,
        &subnet,
        &table,
        &public_key,
        false,
    )?;
    record(&mut st, node, Some(&r));
    state::save(&paths, &st)
}

/// Detaches the host's veth from the bridge (or attaches it back with `heal`)
pub fn partition(name: &str, node: &str, heal: bool) -> anyhow::Result<()> {
    prereq::check_runtime()?;
    state::check_name(name)?;
    let paths = LabPaths::new(name);
    let _lock = lock::lock_dir(&state::labs_dir())?;
    let st = state::load_existing(&paths)?;
    running_host(&paths, &st, node)?;
    network::set_attached(&paths.veth(node), &st.bridge, heal)
}

/// `nsenter` into every namespace of the host's init, with a clean environment
fn exec_command(name: &str, node: &str, argv: &[String]) -> anyhow::Result<Command> {
    state::check_name(name)?;
    if argv.is_empty() {
        bail!("no command given: `pgdeploy lab exec NODE -- COMMAND...`");
    }
    let paths = LabPaths::new(name);
    let st = state::load_existing(&paths)?;
    let r = running_host(&paths, &st, node)?;
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", &r.init_pid.to_string(), "-a", "-r", "-w", "--"])
        .args(["/usr/bin/env", "-i"])
        .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .args(["HOME=/root", "LANG=C.UTF-8", "USER=root", "LOGNAME=root"]);
    if let Ok(term) = std::env::var("TERM") {
        cmd.arg(format!("TERM={term}"));
    }
    cmd.args(argv);
    Ok(cmd)
}

/// Runs a command inside the host with this process's stdin, stdout and stderr
pub fn exec(name: &str, node: &str, argv: &[String]) -> anyhow::Result<ExitStatus> {
    let mut cmd = exec_command(name, node, argv)?;
    cmd.status()
        .with_context(|| format!("cannot run `{}`", super::cmd::display(&cmd)))
}

/// Runs a command inside the host and captures its output (stdin is empty)
pub fn exec_output(name: &str, node: &str, argv: &[String]) -> anyhow::Result<Output> {
    let mut cmd = exec_command(name, node, argv)?;
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", super::cmd::display(&cmd)))
}
