//! `pgdeploy status`: the Patroni cluster and etcd health, read from the first member that
//! answers. Exit 0 when healthy (one leader, replicas streaming, etcd healthy), 2 when
//! degraded, 4 when no member could be reached.

use crate::cli::StatusArgs;
use crate::exit::Exit;
use crate::inventory::pattern;
use crate::run::connect::{connect, resolve_targets};
use crate::transport::Become;

pub fn run(args: &StatusArgs, json: bool) -> anyhow::Result<Exit> {
    let inventory = match crate::inventory::load(&args.inventory) {
        Ok(i) => i,
        Err(diags) => {
            super::report(&diags.sorted());
            return Ok(Exit::Error);
        }
    };
    let hosts: Vec<String> = match pattern::select(&inventory, &args.hosts) {
        Ok(h) => h.into_iter().map(str::to_string).collect(),
        Err(e) => {
            let help = e
                .help()
                .map(|h| format!("\n  help: {h}"))
                .unwrap_or_default();
            anyhow::bail!("--hosts: {e}{help}");
        }
    };
    let settings = args.ssh.settings();
    let targets = resolve_targets(&inventory, &hosts, &settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut problems = Vec::new();
    for host in &hosts {
        let conn = &inventory.hosts[host].connection;
        let become_ = match (conn.become_, &conn.become_user) {
            (false, _) => Become::No,
            (true, None) => Become::Root,
            (true, Some(u)) if u == "root" => Become::Root,
            (true, Some(u)) => Become::User(u.clone()),
        };
        let result = runtime.block_on(async {
            let t = connect(&targets[host]).await?;
            let s = crate::status::read(t.as_ref(), &args.config_file, become_).await;
            t.close().await;
            s
        });
        match result {
            Ok(status) => {
                if json {
                    println!("{}", serde_json::to_string(&status)?);
                } else {
                    print!("{}", crate::status::to_text(&status));
                }
                for p in problems {
                    eprintln!("warning: {p}");
                }
                return Ok(if status.healthy() {
                    Exit::Success
                } else {
                    Exit::Changes
                });
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(Exit::Unreachable)
}
