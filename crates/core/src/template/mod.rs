//! Templating: minijinja in strict-undefined mode, with Ansible's variable names.
//!
//! A template sees, for one host: the magic variables (`inventory_hostname`, `groups`,
//! `hostvars`, `group_names`, `play_hosts`), `-e` extra vars, the play's `vars`, the host's
//! facts (`ansible_*`, once gathered) and the host's inventory variables, in that order of
//! precedence. Variables
//! whose values are templates themselves are rendered when read, like Ansible's lazy vars.

pub mod connection;
mod filters;
pub mod lookup;
mod missing_key;
mod render;
mod scope;

pub use render::{precompile, render_node, render_str, RenderError};
pub use scope::{Facts, Scope, ScopeShared};

use minijinja::{Environment, UndefinedBehavior};

/// Whether `text` holds template syntax.
pub fn is_template(text: &str) -> bool {
    // A byte scan: asked for every field of every host, two substring searches cost more.
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'{' && (w[1] == b'{' || w[1] == b'%'))
}

/// The environment templates are rendered with, `lookup('file', …)` relative to the
/// current directory (module checks, tests); a run uses [`environment_for`].
pub fn environment() -> Environment<'static> {
    environment_for(std::path::Path::new(""))
}

/// The environment every template of a run is rendered with: `lookup('file', …)` finds
/// relative paths from the playbook's directory ([`lookup`]).
pub fn environment_for(playbook_dir: &std::path::Path) -> Environment<'static> {
    let mut env = Environment::new();
    lookup::register(&mut env, playbook_dir.to_path_buf());
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_fuel(Some(crate::limits::TEMPLATE_FUEL));
    filters::register(&mut env);
    env
}

/// Fact names a template may use before facts are gathered: `ansible_` followed by anything
/// that is not a connection variable. Validation defers templates that need them.
pub fn is_fact_name(name: &str) -> bool {
    const CONNECTION_VARS: &[&str] = &[
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_connection",
        "ansible_become",
        "ansible_become_user",
        "ansible_ssh_private_key_file",
        "ansible_python_interpreter",
    ];
    (name.starts_with("ansible_") && !CONNECTION_VARS.contains(&name)) || name == "ansible_facts"
}
