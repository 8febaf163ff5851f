//! `pgdeploy inventory`: the resolved inventory, like `ansible-inventory`.

use crate::cli::InventoryArgs;
use crate::exit::Exit;
use crate::inventory::list;

pub fn run(args: &InventoryArgs) -> anyhow::Result<Exit> {
    let inventory = match crate::inventory::load(&args.inventory) {
        Ok(i) => i,
        Err(diags) => {
            super::report(&diags.sorted());
            return Ok(Exit::Error);
        }
    };
    if args.graph {
        crate::out!("{}", list::to_graph_text(&inventory));
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
        crate::outln!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&list::to_ansible_list_json(&inventory))?
        );
    }
    Ok(Exit::Success)
}
