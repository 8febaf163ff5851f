//! Connection variables that are templates (`ansible_host: "{{ inventory_hostname }}.lan"`),
//! rendered per host before anything connects, as Ansible does when it connects.
//!
//! They are rendered with the host's inventory variables (and `-e`), without play variables
//! or facts: a connection is opened before either exists. A variable that fails to render is
//! an error at the place that set it, before any host is touched.

use std::sync::Arc;

use super::{is_template, render_str, RenderError, Scope, ScopeShared};
use crate::diag::{Diagnostic, Diagnostics, Mark};
use crate::inventory::{Connection, Inventory};

/// The connection fields that may be templates, by the variable names that set them.
fn fields(c: &mut Connection) -> [(&'static [&'static str], Option<&mut String>); 6] {
    [
        (&["ansible_host", "ansible_ssh_host"], Some(&mut c.address)),
        (&["ansible_user", "ansible_ssh_user"], c.user.as_mut()),
        (
            &["ansible_ssh_private_key_file", "ansible_private_key_file"],
            c.private_key_file.as_mut(),
        ),
        (&["pgdeploy_known_hosts_file"], c.known_hosts_file.as_mut()),
        (&["ansible_become_user"], c.become_user.as_mut()),
        (
            crate::inventory::BECOME_PASSWORD_VARS,
            c.escalation.password.as_mut(),
        ),
    ]
}

/// Renders every templated connection variable of every host in place.
pub fn render_connections(inventory: &mut Inventory) -> Result<(), Diagnostics> {
    let templated = inventory.hosts.values_mut().any(|h| {
        fields(&mut h.connection)
            .into_iter()
            .any(|(_, v)| v.is_some_and(|v| is_template(v)))
    });
    if !templated {
        return Ok(());
    }
    let shared = ScopeShared::new(
        Arc::new(super::environment()),
        Arc::new(inventory.clone()),
        None,
    );
    let mut diags = Diagnostics::new();
    for host in inventory.hosts.values_mut() {
        let scope = Scope::for_play(&shared, &host.name, Arc::default(), Arc::default(), false);
        let vars = &host.vars;
        for (names, value) in fields(&mut host.connection) {
            let Some(value) = value.filter(|v| is_template(v)) else {
                continue;
            };
            let (name, origin) = names
                .iter()
                .find_map(|n| vars.get(*n).map(|v| (*n, v.origin.clone())))
                .unwrap_or((names[0], host.defined_at.clone()));
            let secret = crate::secrets::is_secret_name(name);
            match render_str(
                value,
                &scope,
                origin.mark.unwrap_or(Mark { line: 1, col: 1 }),
            ) {
                Ok(v) if v.as_str().is_some() || v.is_number() => {
                    *value = v.to_string();
                    if secret {
                        crate::secrets::record(value);
                    }
                }
                Ok(v) => diags.push(Diagnostic::error(
                    Some(origin),
                    name,
                    format!(
                        "`{name}` of host `{}` must render to a string, found {}",
                        host.name,
                        v.kind()
                    ),
                )),
                Err(RenderError::NeedsFacts) => diags.push(Diagnostic::error(
                    Some(origin),
                    name,
                    format!(
                        "`{name}` of host `{}` uses facts, which are gathered only once connected",
                        host.name
                    ),
                )),
                Err(RenderError::Failed { message, .. }) => diags.push(Diagnostic::error(
                    Some(origin),
                    name,
                    format!("`{name}` of host `{}`: {message}", host.name),
                )),
            }
        }
    }
    diags.into_result(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templated_connection_variables_are_rendered_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.yml");
        std::fs::write(
            &path,
            "all:\n  vars:\n    ansible_user: \"{{ deploy_user }}\"\n    deploy_user: admin\n    \
             ansible_ssh_private_key_file: \"~/.ssh/{{ inventory_hostname }}\"\n  hosts:\n    \
             pg1: { ansible_host: \"{{ inventory_hostname }}.example.com\" }\n    pg2: {}\n",
        )
        .unwrap();
        let mut inv = crate::inventory::load(&path).unwrap();
        render_connections(&mut inv).unwrap();
        let c = &inv.hosts["pg1"].connection;
        assert_eq!(c.address, "pg1.example.com");
        assert_eq!(c.user.as_deref(), Some("admin"));
        assert_eq!(c.private_key_file.as_deref(), Some("~/.ssh/pg1"));
        assert_eq!(inv.hosts["pg2"].connection.address, "pg2");
        assert_eq!(
            inv.hosts["pg2"].connection.private_key_file.as_deref(),
            Some("~/.ssh/pg2")
        );
    }
}
