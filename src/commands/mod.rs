//! One file per command. Each takes its parsed arguments and returns an exit code; errors
//! about the input are printed as diagnostics, other errors travel as `anyhow::Error`.

pub mod bench;
pub mod connect_all;
pub mod docs;
pub mod graph;
pub mod inventory;
pub mod run;
pub mod status;
pub mod validate;
pub mod verify;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::cli::PlaybookArgs;
use crate::compile::{compile, CompileOptions, Compiled};
use crate::diag::{Diagnostic, Diagnostics, Location, SourceFile};
use crate::inventory::Inventory;
use crate::playbook::tags::TagSelection;
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
    let inventory = load_inventory(&args.inventory);
    let playbook = crate::playbook::load(&args.playbook);
    let facts = args.facts.as_deref().map(load_facts).transpose();
    let extra = crate::inventory::extra_vars::parse_all(&args.extra_vars);
    let (inventory, mut playbook, facts, extra) = match (inventory, playbook, facts, extra) {
        (Ok(i), Ok(p), Ok(f), Ok(e)) => (i, p, f, e),
        (i, p, f, e) => {
            // The playbook's errors are printed with their source lines, which may hold the
            // inventory's secrets: mask them even though nothing compiles.
            if let Ok(inventory) = &i {
                crate::secrets::mask_logs_with(&crate::secrets::Redactor::from_inventory(
                    inventory,
                ));
            }
            let mut all = Diagnostics::new();
            for d in [i.err(), p.err(), f.err(), e.err()].into_iter().flatten() {
                all.extend(d);
            }
            return Err(all);
        }
    };
    let mut inventory = inventory;
    let mut warnings = Diagnostics::new();
    let origins: Vec<Location> = extra.values().map(|v| v.origin.clone()).collect();
    let found = if extra.is_empty() {
        Diagnostics::new()
    } else {
        inventory.set_extra_vars(extra)
    };
    // Before any error is returned or anything compiled: messages may quote a secret's value
    // (one used where a file mode is expected, a bad `-e` value), and `report` masks with the
    // redactor installed here. Extra vars are in every host's variables by now, so
    // secret-named ones are masked too. Secrets found while compiling (rendered values,
    // lookups) are recorded, and it masks them too.
    let redactor = crate::secrets::Redactor::from_inventory(&inventory);
    crate::secrets::mask_logs_with(&redactor);
    if found.has_errors() {
        return Err(found);
    }
    crate::template::connection::render_connections(&mut inventory)?;
    // The inventory's own warnings were printed as it loaded; those of `-e` values are new.
    for w in found {
        if w.location.as_ref().is_some_and(|l| origins.contains(l)) {
            warnings.push(w);
        }
    }
    let selection = TagSelection::new(&args.tags, &args.skip_tags);
    warnings.extend(crate::playbook::tags::select(&mut playbook, &selection));
    let inventory = Arc::new(inventory);
    let mut compiled = match compile(
        &playbook,
        inventory.clone(),
        CompileOptions {
            limit: args.limit.as_deref(),
            facts,
        },
    ) {
        Ok(c) => c,
        Err(errors) => {
            warnings.extend(errors);
            return Err(warnings);
        }
    };
    warnings.extend(std::mem::take(&mut compiled.warnings));
    compiled.warnings = warnings;
    Ok(Loaded {
        inventory,
        playbook,
        compiled,
        redactor,
    })
}

/// Loads an inventory and prints its warnings (a `group_vars/` file for no group, …) on
/// stderr: every command that reads an inventory goes through here, once.
pub fn load_inventory(path: &Path) -> Result<Inventory, Diagnostics> {
    let (inventory, warnings) = crate::inventory::load_with_warnings(path)?;
    report(&warnings);
    Ok(inventory)
}

/// [`load_inventory`], then every templated connection variable rendered per host: what the
/// commands that connect without a playbook (`status`, `verify`, the day-2 commands) read.
pub fn load_connected_inventory(path: &Path) -> Result<Inventory, Diagnostics> {
    let mut inventory = load_inventory(path)?;
    crate::template::connection::render_connections(&mut inventory)?;
    Ok(inventory)
}

/// The privilege a host's connection variables ask for (`ansible_become`,
/// `ansible_become_user`), for the commands that run without a playbook.
pub fn become_of(conn: &crate::inventory::Connection) -> crate::transport::Become {
    use crate::transport::Become;
    match (conn.become_, &conn.become_user) {
        (false, _) => Become::No,
        (true, None) => Become::Root,
        (true, Some(u)) if u == "root" => Become::Root,
        (true, Some(u)) => Become::User(u.clone()),
    }
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
