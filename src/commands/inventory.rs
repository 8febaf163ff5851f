//! `pgdeploy inventory`: the resolved inventory, like `ansible-inventory`.

use crate::cli::InventoryArgs;
use pgdeploy_core::exit::Exit;
use pgdeploy_core::inventory::list;
use pgdeploy_core::secrets::Redactor;

/// `json`: errors as JSON objects on stdout, as `validate --json` prints them (the
/// inventory itself is JSON already).
pub(crate) fn run(args: &InventoryArgs, json: bool) -> anyhow::Result<Exit> {
    let inventory = match args
        .vault
        .install()
        .and_then(|()| super::load_inventory(&args.inventory))
    {
        Ok(i) => i,
        Err(diags) => {
            super::report_as(&diags.sorted(), json);
            return Ok(Exit::Error);
        }
    };
    // Secret names are masked by `list`; values decrypted with Ansible Vault (and secrets
    // copied into other variables) by value here.
    let redactor = Redactor::from_inventory(&inventory);
    pgdeploy_core::secrets::mask_logs_with(&redactor);
    if args.graph {
        pgdeploy_core::out!("{}", redactor.mask(&list::to_graph_text(&inventory)));
    } else if let Some(host) = &args.host {
        let Some(value) = list::to_ansible_list_json(&inventory)
            .pointer(&format!(
                "/_meta/hostvars/{}",
                host.replace('~', "~0").replace('/', "~1")
            ))
            .cloned()
        else {
            anyhow::bail!("host `{host}` is not in the inventory");
        };
        pgdeploy_core::outln!(
            "{}",
            serde_json::to_string_pretty(&redactor.mask_json(&value))?
        );
    } else {
        let value = redactor.mask_json(&list::to_ansible_list_json(&inventory));
        pgdeploy_core::outln!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(Exit::Success)
}
