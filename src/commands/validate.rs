//! `pgdeploy validate`: load, type-check and compile; never opens a connection.

use crate::cli::PlaybookArgs;
use crate::exit::Exit;

pub fn run(args: &PlaybookArgs) -> anyhow::Result<Exit> {
    match super::load(args) {
        Err(diags) => {
            super::report(&diags.sorted());
            Ok(Exit::Error)
        }
        Ok(loaded) => {
            super::report(&loaded.compiled.warnings);
            let plays = loaded.playbook.plays.len();
            let tasks: usize = loaded.playbook.plays.iter().map(|p| p.tasks.len()).sum();
            crate::outln!(
                "ok: {} is valid against {}: {plays} play{}, {tasks} task{}, {} host{}, {} steps",
                args.playbook.display(),
                args.inventory.display(),
                plural(plays),
                plural(tasks),
                loaded.compiled.hosts.len(),
                plural(loaded.compiled.hosts.len()),
                loaded.compiled.graph.node_count(),
            );
            Ok(Exit::Success)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
