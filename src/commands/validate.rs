//! `pgdeploy validate`: load, type-check and compile; never opens a connection. With
//! `--json`, the diagnostics are JSON objects on stdout (one a line) and a summary ends them,
//! for editors and CI annotations; the exit code is the same (1 on errors).

use crate::cli::PlaybookArgs;
use pgdeploy_core::exit::Exit;

pub(crate) fn run(args: &PlaybookArgs, json: bool) -> anyhow::Result<Exit> {
    match super::load(args) {
        Err(diags) => {
            super::report_as(&diags.sorted(), json);
            Ok(Exit::Error)
        }
        Ok(loaded) if json => {
            let plays = loaded.playbook.plays.len();
            let tasks: usize = loaded.playbook.plays.iter().map(|p| p.tasks.len()).sum();
            pgdeploy_core::output::diagnostics::report_json(
                &loaded.compiled.warnings,
                serde_json::json!({
                    "plays": plays,
                    "tasks": tasks,
                    "hosts": loaded.compiled.hosts.len(),
                    "steps": loaded.compiled.graph.node_count(),
                }),
            );
            Ok(Exit::Success)
        }
        Ok(loaded) => {
            super::report(&loaded.compiled.warnings);
            let plays = loaded.playbook.plays.len();
            let tasks: usize = loaded.playbook.plays.iter().map(|p| p.tasks.len()).sum();
            pgdeploy_core::outln!(
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
