//! One file per command. Each takes its parsed arguments and returns an exit code; errors
//! about the input are printed as diagnostics, other errors travel as `anyhow::Error`.

pub mod bench;
pub mod docs;
pub mod graph;
pub mod inventory;
pub mod run;
pub mod status;
pub mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::cli::PlaybookArgs;
use crate::compile::{compile, CompileOptions, Compiled};
use crate::diag::{Diagnostic, Diagnostics, Location, SourceFile};
use crate::inventory::Inventory;
use crate::playbook::Playbook;
use crate::template::Facts;

/// Inventory, playbook and their compilation, or every problem found on the way.
pub struct Loaded {
    pub inventory: Arc<Inventory>,
    pub playbook: Playbook,
    pub compiled: Compiled,
    /// The inventory's and the playbook's secrets, already masking every log line and
    /// diagnostic.
    pub redactor: crate::secrets::Redactor,
}

/// Loads and compiles; inventory and playbook errors are reported together.
pub fn load(args: &PlaybookArgs) -> Result<Loaded, Diagnostics> {
    args.vault.install()?;
    let inventory = crate::inventory::load(&args.inventory);
    let playbook = crate::playbook::load(&args.playbook);
    let facts = args.facts.as_deref().map(load_facts).transpose();
    let (inventory, playbook, facts) = match (inventory, playbook, facts) {
        (Ok(i), Ok(p), Ok(f)) => (i, p, f),
        (i, p, f) => {
            // The playbook's errors are printed with their source lines, which may hold the
            // inventory's secrets: mask them even though nothing compiles.
            if let Ok(inventory) = &i {
                crate::secrets::mask_logs_with(&crate::secrets::Redactor::from_inventory(
                    inventory,
                ));
            }
            let mut all = Diagnostics::new();
            for d in [i.err(), p.err(), f.err()].into_iter().flatten() {
                all.extend(d);
            }
            return Err(all);
        }
    };
    // Before compiling: its errors and warnings may quote a secret's value (one used where a
    // file mode is expected), and `report` masks with the redactor installed here. Secrets
    // found while compiling (rendered values, lookups) are recorded, and it masks them too.
    let redactor = crate::secrets::Redactor::from_inventory(&inventory);
    crate::secrets::mask_logs_with(&redactor);
    let inventory = Arc::new(inventory);
    let compiled = compile(
        &playbook,
        inventory.clone(),
        CompileOptions {
            limit: args.limit.as_deref(),
            facts,
        },
    )?;
    Ok(Loaded {
        inventory,
        playbook,
        compiled,
        redactor,
    })
}

/// A facts file: a mapping of host names to mappings of facts.
pub fn load_facts(path: &Path) -> Result<HashMap<String, Facts>, Diagnostics> {
    let (file, node) = crate::yaml::load_file(path)?;
    match node.to_json() {
        serde_json::Value::Object(hosts) => {
            let mut out = HashMap::new();
            for (host, facts) in hosts {
                match facts {
                    serde_json::Value::Object(f) => {
                        out.insert(host, f.into_iter().collect());
                    }
                    _ => {
                        return Err(bad_facts(&file, node.get(&host).map(|n| n.mark)));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(bad_facts(&file, Some(node.mark))),
    }
}

fn bad_facts(file: &SourceFile, mark: Option<crate::diag::Mark>) -> Diagnostics {
    let location = match mark {
        Some(m) => Location::new(file, m),
        None => Location::file(file),
    };
    Diagnostic::error(
        Some(location),
        "",
        "a facts file maps host names to mappings of facts",
    )
    .into()
}

/// Prints diagnostics on stderr, errors and warnings alike, with their source lines, secrets
/// masked (a message or a line may quote a value); see [`crate::output::diagnostics`].
pub fn report(diags: &Diagnostics) {
    crate::output::diagnostics::report(diags, false);
}

/// [`report`], or with `json` the diagnostics as JSON objects on stdout and a summary.
pub fn report_as(diags: &Diagnostics, json: bool) {
    crate::output::diagnostics::report(diags, json);
}
