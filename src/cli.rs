//! The command line: argument types only. Each command's work is in `commands/`.

use std::path::PathBuf;

use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pgdeploy",
    // With the commit when built from a git checkout (`build.rs`).
    version = env!("PGDEPLOY_VERSION"),
    about = "Deploy and operate highly-available PostgreSQL over SSH"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// One JSON event per line on stdout, for CI (input errors too: `validate --json`).
    #[arg(long, global = true)]
    pub json: bool,
    /// More output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No colours (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and type-check an inventory and a playbook; no network.
    Validate(PlaybookArgs),
    /// Show the resolved inventory.
    Inventory(InventoryArgs),
    /// Show the compiled DAG of steps (module on host; edges say why).
    Graph(GraphArgs),
    /// Gather facts, plan and apply: converge the hosts; or apply a plan saved by `plan --out`.
    Apply(ApplyArgs),
    /// Everything but the changes: what would change, as diffs.
    Plan(PlanArgs),
    /// Drift check for CI: exit 0 = no drift, 2 = drift, 1 = error.
    Check(ConnectArgs),
    /// Measure the engine's speed and memory.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The cluster as Patroni and etcd see it (like `patronictl list`), read over SSH.
    Status(StatusArgs),
    /// Read-only health checks of a deployed cluster: members, replication, etcd, the VIP,
    /// HAProxy's backends, certificates, pg_hba (exit 0 all pass, 2 failed or warned, 4
    /// unreachable).
    #[command(after_long_help = crate::verify::kinds_help())]
    Verify(VerifyArgs),
    /// Hand the leadership to a healthy streaming replica (now, or at `--at`), and wait.
    Switchover(SwitchoverArgs),
    /// Promote a replica when the cluster has no healthy leader, and wait.
    Failover(FailoverArgs),
    /// Restart PostgreSQL through Patroni, replicas first and the leader last.
    Restart(RestartArgs),
    /// Erase a replica's data and copy it again from the leader (never the leader).
    Reinit(ReinitArgs),
    /// Take a pgBackRest backup of the cluster's leader into its repository, and wait.
    Backup(BackupArgs),
    /// Bring the whole cluster back to a point in time from the pgBackRest repository.
    Restore(RestoreArgs),
    /// Maintenance mode: Patroni stops managing PostgreSQL (no automatic failover).
    Pause(OpsArgs),
    /// End maintenance mode: Patroni manages PostgreSQL again.
    Resume(OpsArgs),
    /// A local lab of real Debian hosts (systemd-nspawn containers on a private bridge).
    #[command(subcommand)]
    Lab(pgdeploy_lab::LabCommand),
    /// Shell completions on stdout (`pgdeploy completions bash > …/completions/pgdeploy`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on stdout (`pgdeploy man > pgdeploy.1`).
    Man,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load and compile a generated playbook over a generated inventory (no network).
    Compile {
        /// Host counts to measure (comma-separated); with several, a last row shows how the
        /// time per host scales.
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        hosts: Vec<usize>,
        #[arg(long, default_value_t = 20)]
        tasks: usize,
        /// Repetitions; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Write the generated `inventory.yml` and `playbook.yml` into this directory and
        /// measure nothing: for timing or profiling `pgdeploy validate` on them.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
    /// Re-apply a small generic playbook to converged hosts over real SSH (needs root and
    /// OpenSSH: starts one local sshd on 127.0.0.1 per host).
    Noop {
        /// Host counts to measure, each with its own servers (comma-separated); with several,
        /// a last row shows how the time per host scales.
        #[arg(long, value_delimiter = ',', default_value = "1,10,50",
              value_parser = clap::value_parser!(u16).range(1..=500))]
        hosts: Vec<u16>,
        /// Measured re-applies per host count; the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The login user on the servers (root's shell startup files run on every command;
        /// a user with a cheap shell measures the engine rather than them).
        #[arg(long, default_value = "root")]
        user: String,
    },
}

/// Options of the commands that connect to hosts.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub run: PlaybookArgs,
    /// At most this many hosts worked on at once (default: all hosts, at most 64).
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: Option<u16>,
    #[command(flatten)]
    pub ssh: SshArgs,
}

/// How hosts are reached over SSH: the same options for every command that connects.
#[derive(Debug, Args)]
pub struct SshArgs {
    /// Record the keys of hosts missing from known_hosts instead of refusing them
    /// (OpenSSH's `accept-new`). A changed key is always refused.
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// The OpenSSH client config to read instead of `~/.ssh/config` (like `ssh -F`).
    #[arg(long, value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
}

impl SshArgs {
    pub fn settings(&self) -> pgdeploy_engine::run::connect::ConnectSettings {
        pgdeploy_engine::run::connect::ConnectSettings {
            accept_new_host_keys: self.accept_new_host_keys,
            ssh_config: self.ssh_config.clone(),
        }
    }
}

/// The Ansible Vault password, for every command that reads an inventory or a playbook.
#[derive(Debug, Args)]
pub struct VaultArgs {
    /// The Ansible Vault password: this file's content, or its output when it is executable
    /// (as `ansible --vault-password-file`).
    #[arg(long, value_name = "FILE", env = "PGDEPLOY_VAULT_PASSWORD_FILE")]
    pub vault_password_file: Option<PathBuf>,
}

impl VaultArgs {
    /// Reads the password for the rest of the process (see [`pgdeploy_core::vault`]).
    pub fn install(&self) -> Result<(), pgdeploy_core::diag::Diagnostics> {
        pgdeploy_core::vault::use_password_file(self.vault_password_file.as_deref())
    }
}

/// `apply -i INVENTORY PLAYBOOK`: converge the hosts (see [`ApplyArgs`] for the other form).
#[derive(Debug, Args)]
pub struct ApplyPlaybookArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Show unified diffs of the files changed.
    #[arg(long)]
    pub diff: bool,
    /// Change nothing: the same as `plan` (Ansible's `--check`).
    #[arg(long)]
    pub check: bool,
    /// Remove the cluster members that the inventory no longer lists (etcd members, Patroni
    /// members and their services), one at a time, never below quorum; without it they are
    /// only reported.
    #[arg(long)]
    pub allow_removal: bool,
    /// When another `pgdeploy apply` holds a host, wait up to SECS for it to end (default 0:
    /// stop at once, changing nothing, exit 75).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        env = "PGDEPLOY_LOCK_WAIT"
    )]
    pub lock_wait: u64,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Exit 2 when something would change (terraform's `-detailed-exitcode`).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to FILE (JSON, mode 0600, secrets masked), for `apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Show the removals `apply --allow-removal` would make as changes (without it, they are
    /// notes).
    #[arg(long)]
    pub allow_removal: bool,
}

/// Options shared by the commands that read an inventory and a playbook.
#[derive(Debug, Args)]
pub struct PlaybookArgs {
    /// Inventory file or directory (YAML or INI, Ansible format).
    #[arg(short, long)]
    pub inventory: PathBuf,
    pub playbook: PathBuf,
    /// Only run on hosts matching this pattern.
    #[arg(short, long)]
    pub limit: Option<String>,
    /// Facts to use instead of gathering them (YAML: host name → facts); for tests and
    /// offline checks of templates that use facts.
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    /// Variables above every other source (as `ansible-playbook -e`): `name=value` (space-
    /// separated pairs, values are strings), a YAML/JSON mapping, or `@FILE`. Repeatable;
    /// later ones win.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS", action = clap::ArgAction::Append)]
    pub extra_vars: Vec<String>,
    /// Only run plays and tasks tagged with these (comma-separated, repeatable; Ansible's
    /// special tags `all`, `always`, `never`, `tagged`, `untagged` included).
    #[arg(short = 't', long = "tags", value_name = "TAGS", action = clap::ArgAction::Append)]
    pub tags: Vec<String>,
    /// Skip plays and tasks tagged with these (comma-separated, repeatable).
    #[arg(long = "skip-tags", value_name = "TAGS", action = clap::ArgAction::Append)]
    pub skip_tags: Vec<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
}

impl PlaybookArgs {
    /// What the engine loads for these arguments, with pgdeploy's module table.
    pub fn to_load(&self) -> pgdeploy_engine::load::LoadArgs {
        pgdeploy_engine::load::LoadArgs {
            inventory: self.inventory.clone(),
            playbook: self.playbook.clone(),
            limit: self.limit.clone(),
            facts: self.facts.clone(),
            extra_vars: self.extra_vars.clone(),
            tags: self.tags.clone(),
            skip_tags: self.skip_tags.clone(),
            vault_password_file: self.vault.vault_password_file.clone(),
            catalogue: &pgdeploy_modules::CATALOGUE,
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Inventory file or directory (YAML or INI, Ansible format).
    #[arg(short, long)]
    pub inventory: PathBuf,
    /// The cluster's hosts (a pattern); the first that answers is asked.
    #[arg(long, default_value = "postgres")]
    pub hosts: String,
    /// Patroni's configuration file on the hosts; default: the one the `patroni` module
    /// recorded in `/var/lib/pgdeploy/patroni.env`.
    #[arg(long)]
    pub config_file: Option<String>,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub vault: VaultArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Inventory file or directory (YAML or INI, Ansible format).
    #[arg(short, long)]
    pub inventory: PathBuf,
    /// The cluster's database hosts (a pattern).
    #[arg(long, default_value = "postgres")]
    pub hosts: String,
    /// The balancers (HAProxy + keepalived; a pattern); none when the default group is
    /// not in the inventory.
    #[arg(long, default_value = "balancers")]
    pub balancers: String,
    /// A certificate expiring in fewer days is a warning.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub cert_warn_days: u64,
    /// A replica further behind (in MB) is a warning.
    #[arg(long, value_name = "MB", default_value_t = 16.0)]
    pub max_lag_mb: f64,
    /// Instead of the checks alone: a drill under a write load through the VIP (RTO, RPO,
    /// two writable primaries or not, the old leader's return), then the checks. Changes the
    /// cluster: needs `--yes`.
    #[arg(long, value_enum, value_name = "EVENT")]
    pub drill: Option<DrillKind>,
    /// Do not ask for confirmation before a drill (refused with exit 64 without a terminal).
    #[arg(short = 'y', long, requires = "drill")]
    pub yes: bool,
    /// The CA that signed the members' certificates, for the drill's TLS connections
    /// (`playbooks/site.yml` makes it in `pki/ca.crt` beside itself).
    #[arg(long, value_name = "FILE", requires = "drill")]
    pub ca: Option<PathBuf>,
    /// The hosts are the machines of this `pgdeploy lab`: the drill may cut power
    /// (`--power-cut`) and network (`leader-partition`) with the lab's commands.
    #[arg(long, value_name = "NAME", requires = "drill")]
    pub lab: Option<String>,
    /// On a lab, `failover` and `balancer-loss` cut the host's power (`lab kill`) instead of
    /// killing its daemons with SIGKILL.
    #[arg(long, requires = "lab")]
    pub power_cut: bool,
    /// How long a drill waits for the cluster to recover, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 180, requires = "drill")]
    pub timeout: u64,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub vault: VaultArgs,
}

/// The event of `verify --drill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DrillKind {
    /// A switchover through Patroni's REST API (`patronictl switchover`).
    Switchover,
    /// The leader's Patroni and PostgreSQL killed with SIGKILL (or its power cut on a lab).
    Failover,
    /// The leader's network cut (a lab only).
    LeaderPartition,
    /// The balancer holding the VIP loses HAProxy and keepalived (SIGKILL, or power on a lab).
    BalancerLoss,
}

impl DrillKind {
    pub fn name(self) -> &'static str {
        match self {
            DrillKind::Switchover => "switchover",
            DrillKind::Failover => "failover",
            DrillKind::LeaderPartition => "leader-partition",
            DrillKind::BalancerLoss => "balancer-loss",
        }
    }
}

/// Options shared by the day-2 commands (`switchover`, `failover`, `restart`, `reinit`,
/// `pause`, `resume`): the cluster is found from the inventory alone.
#[derive(Debug, Args)]
pub struct OpsArgs {
    /// Inventory file or directory (YAML or INI, Ansible format).
    #[arg(short, long)]
    pub inventory: PathBuf,
    /// The cluster's hosts (a pattern); `patronictl` runs on the first that answers.
    #[arg(long, default_value = "postgres")]
    pub hosts: String,
    /// Do not ask for confirmation (needed when stdin is not a terminal: refused with exit
    /// 64 otherwise).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// How long to wait for the cluster to settle, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub timeout: u64,
    #[command(flatten)]
    pub ssh: SshArgs,
    #[command(flatten)]
    pub vault: VaultArgs,
}

#[derive(Debug, Args)]
pub struct SwitchoverArgs {
    #[command(flatten)]
    pub ops: OpsArgs,
    /// The new leader: a streaming replica (default: the healthy one with the least lag).
    #[arg(long, value_name = "HOST")]
    pub to: Option<String>,
    /// When (ISO 8601 with a zone: `2026-12-01T22:00:00+00:00`); Patroni's `scheduled_at`.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
}

#[derive(Debug, Args)]
pub struct FailoverArgs {
    #[command(flatten)]
    pub ops: OpsArgs,
    /// The member to promote.
    #[arg(long, value_name = "HOST")]
    pub to: String,
    /// Fail over although a healthy leader runs (refused otherwise: use `switchover`).
    #[arg(long)]
    pub with_leader: bool,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub ops: OpsArgs,
    /// The members to restart (default: every member).
    #[arg(value_name = "HOST")]
    pub members: Vec<String>,
    /// Only the members waiting for a restart (a changed setting needs one).
    #[arg(long)]
    pub pending: bool,
}

#[derive(Debug, Args)]
pub struct ReinitArgs {
    #[command(flatten)]
    pub ops: OpsArgs,
    /// The replica to reinitialise.
    #[arg(value_name = "HOST")]
    pub host: String,
}

/// A pgBackRest backup type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackupKind {
    /// Everything.
    Full,
    /// What changed since the last full backup.
    Diff,
    /// What changed since the last backup of any type.
    Incr,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Diff => "diff",
            BackupKind::Incr => "incr",
        }
    }
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub ops: OpsArgs,
    /// The backup type.
    #[arg(long = "type", value_enum, default_value = "full")]
    pub kind: BackupKind,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["target_time", "target_lsn", "latest"])))]
pub struct RestoreArgs {
    #[command(flatten)]
    pub ops: OpsArgs,
    /// Recover to this time (as PostgreSQL reads it, with a zone: `2026-12-01 22:54:45+00`).
    #[arg(long, value_name = "TIME")]
    pub target_time: Option<String>,
    /// Recover to this WAL position (`0/3000028`).
    #[arg(long, value_name = "LSN")]
    pub target_lsn: Option<String>,
    /// Recover to the end of the archived WAL.
    #[arg(long)]
    pub latest: bool,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Inventory file or directory (YAML or INI, Ansible format).
    #[arg(short, long)]
    pub inventory: PathBuf,
    /// All groups and hosts with their merged variables, as JSON (like `ansible-inventory --list`).
    #[arg(long, conflicts_with_all = ["graph", "host"])]
    pub list: bool,
    /// The group tree.
    #[arg(long, conflicts_with = "host")]
    pub graph: bool,
    /// One host's merged variables, as JSON.
    #[arg(long)]
    pub host: Option<String>,
    #[command(flatten)]
    pub vault: VaultArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, Default)]
pub enum GraphFormat {
    #[default]
    Text,
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub run: PlaybookArgs,
    #[arg(long, value_enum, default_value_t)]
    pub format: GraphFormat,
}

/// `apply`'s two forms: `apply -i INVENTORY PLAYBOOK [OPTIONS]` converges the hosts;
/// `apply PLANFILE` applies a plan saved by `plan --out`, with the inputs and options it was
/// made with. Told apart by `-i`; options that decide what is planned (`--limit`, `--facts`,
/// every option of [`PlaybookArgs`] but the vault password) and `--check` are refused with a
/// plan file, since the plan holds its own: an apply of a plan does what the plan showed.
#[derive(Debug)]
pub enum ApplyArgs {
    Playbook(ApplyPlaybookArgs),
    Saved(ApplySavedArgs),
}

/// `apply PLANFILE`: how to reach the hosts and read the files; the rest is in the plan.
#[derive(Debug)]
pub struct ApplySavedArgs {
    pub plan: PathBuf,
    pub forks: Option<u16>,
    pub ssh: SshArgs,
    pub vault: VaultArgs,
    pub diff: bool,
    /// Given again to apply a plan saved with `plan --allow-removal`; the plan is made again
    /// with it and compared with the saved one.
    pub allow_removal: bool,
    /// `--lock-wait`.
    pub lock_wait: u64,
}

impl Args for ApplyArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        apply_forms(ApplyPlaybookArgs::augment_args(cmd))
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        apply_forms(ApplyPlaybookArgs::augment_args_for_update(cmd))
    }
}

fn apply_forms(cmd: clap::Command) -> clap::Command {
    cmd.mut_arg("inventory", |a| {
        a.required(false).help(
            "Inventory file or directory (YAML or INI, Ansible format); without it, the file is a saved plan",
        )
    })
    .mut_arg("playbook", |a| {
        a.value_name("PLAYBOOK|PLANFILE")
            .help("The playbook; without `-i`, a plan saved by `plan --out`")
    })
    .override_usage(
        "pgdeploy apply -i <INVENTORY> <PLAYBOOK> [OPTIONS]\n       pgdeploy apply <PLANFILE> [OPTIONS]",
    )
}

impl FromArgMatches for ApplyArgs {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Self::from_arg_matches_mut(&mut m.clone())
    }

    fn from_arg_matches_mut(m: &mut clap::ArgMatches) -> Result<Self, clap::Error> {
        // Formatted with `apply`'s own usage (both forms).
        let conflict = |text: String| {
            let mut cli = <Cli as clap::CommandFactory>::command();
            match cli.find_subcommand_mut("apply") {
                Some(apply) => apply.error(clap::error::ErrorKind::ArgumentConflict, text),
                None => clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, text),
            }
        };
        let file = m
            .get_one::<PathBuf>("playbook")
            .cloned()
            .unwrap_or_default();
        if m.value_source("inventory").is_some() {
            if is_saved_plan(&file) {
                return Err(conflict(format!(
                    "`{0}` is a saved plan: apply it without `-i` (`pgdeploy apply {0}`)",
                    file.display()
                )));
            }
            return ApplyPlaybookArgs::from_arg_matches_mut(m).map(ApplyArgs::Playbook);
        }
        if let Some(flag) = decided_by_the_plan(m) {
            return Err(conflict(format!(
                "`{flag}` cannot be used with a saved plan: `apply PLANFILE` uses the inputs and options the plan was made with (or give `-i INVENTORY PLAYBOOK`)"
            )));
        }
        Ok(ApplyArgs::Saved(ApplySavedArgs {
            plan: file,
            forks: m.remove_one::<u16>("forks"),
            ssh: SshArgs::from_arg_matches_mut(m)?,
            vault: VaultArgs::from_arg_matches_mut(m)?,
            diff: m.get_flag("diff"),
            allow_removal: m.get_flag("allow_removal"),
            lock_wait: m.get_one::<u64>("lock_wait").copied().unwrap_or(0),
        }))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

/// The first option given that a saved plan decides: any of [`PlaybookArgs`] but the files
/// and the vault password (so one added there is covered), and `--check`.
fn decided_by_the_plan(m: &clap::ArgMatches) -> Option<String> {
    let given = |id: &str| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let cmd = PlaybookArgs::augment_args(clap::Command::new("apply"));
    let flag = cmd
        .get_arguments()
        .filter(|a| {
            let id = a.get_id().as_str();
            !matches!(id, "inventory" | "playbook" | "vault_password_file") && given(id)
        })
        .map(|a| match a.get_long() {
            Some(long) => format!("--{long}"),
            None => a.get_id().to_string(),
        })
        .next();
    flag.or_else(|| given("check").then(|| "--check".to_string()))
}

/// Whether `path` holds a plan saved by `plan --out` (its `format` field says so).
fn is_saved_plan(path: &std::path::Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["format"] == pgdeploy_engine::run::saved::format::FORMAT)
}
