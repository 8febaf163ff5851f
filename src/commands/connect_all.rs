//! Reaching a running cluster, for the commands that read or act on one (`status`, `verify`,
//! the day-2 `ops` commands): the inventory loaded with its secrets masking every log line,
//! the hosts a `--hosts` pattern selects, and every host connected at once.
//!
//! One place, so that these commands mask the same secrets, word a bad pattern the same way
//! and connect with the same concurrency; what each does with an unreachable host (a warning,
//! a finding, an error) stays its own.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::cli::VaultArgs;
use pgdeploy_core::diag::Diagnostics;
use pgdeploy_core::inventory::{pattern, Inventory};
use pgdeploy_core::transport::{Transport, TransportError};
use pgdeploy_engine::run::connect::ConnectionTarget;

/// Installs the vault password, loads the inventory (connection variables rendered) and masks
/// its secrets in every later log line and message.
pub(crate) fn load_masked(vault: &VaultArgs, inventory: &Path) -> Result<Inventory, Diagnostics> {
    let inventory = vault
        .install()
        .and_then(|()| super::load_connected_inventory(inventory))?;
    pgdeploy_core::secrets::mask_logs_with(&pgdeploy_core::secrets::Redactor::from_inventory(
        &inventory,
    ));
    Ok(inventory)
}

/// The inventory hosts `--hosts` pattern `p` selects, in inventory order, or the message
/// (with its help) for a pattern that selects nothing.
pub(crate) fn select_hosts(inventory: &Inventory, p: &str) -> Result<Vec<String>, String> {
    match pattern::select(inventory, p) {
        Ok(h) => Ok(h.into_iter().map(str::to_string).collect()),
        Err(e) => {
            let help = e
                .help()
                .map(|h| format!("\n  help: {h}"))
                .unwrap_or_default();
            Err(format!("--hosts: {e}{help}"))
        }
    }
}

/// The hosts of [`connect_all`]: those connected and those that could not be, each in the
/// order asked.
pub(crate) struct Connections {
    pub up: Vec<(String, Arc<dyn Transport>)>,
    pub failed: Vec<(String, TransportError)>,
}

/// Connects to every one of `hosts` at once, each with its resolved target (from
/// [`pgdeploy_engine::run::connect::resolve_targets`] over at least these hosts).
pub(crate) async fn connect_all(
    hosts: &[String],
    targets: &HashMap<String, ConnectionTarget>,
) -> Connections {
    let connected = futures::future::join_all(hosts.iter().map(|h| async {
        (
            h.clone(),
            pgdeploy_engine::run::connect::connect(&targets[h.as_str()]).await,
        )
    }))
    .await;
    let mut all = Connections {
        up: Vec::with_capacity(connected.len()),
        failed: Vec::new(),
    };
    for (h, t) in connected {
        match t {
            Ok(t) => all.up.push((h, t)),
            Err(e) => all.failed.push((h, e)),
        }
    }
    all
}
