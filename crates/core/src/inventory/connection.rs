//! The typed connection variables of a host, read from its merged variables.
//!
//! Ansible reads these loosely at connection time; reading them at load time turns a typo in
//! a port or a connection type into an error before any host is touched. An error points at
//! the place that set the winning value ([`Var::origin`]) and names the variable.

use serde_json::Value;

use super::{Connection, ConnectionKind, Var, Vars};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};

/// The names Ansible reads the become password from, in its order of preference.
pub const BECOME_PASSWORD_VARS: &[&str] = &[
    "ansible_become_password",
    "ansible_become_pass",
    "ansible_sudo_pass",
    "ansible_sudo_password",
    "ansible_su_pass",
    "ansible_su_password",
];

/// The accepted `ansible_connection` values: `paramiko` and `smart` are Ansible's other ssh
/// connections and mean ssh here.
pub const CONNECTION_KINDS: &[&str] = &["ssh", "local", "paramiko", "smart"];

/// Reads the connection variables of `host` (its merged variables), reporting every bad
/// value. String values are taken verbatim, templates included.
pub fn connection_from_vars(host: &str, vars: &Vars) -> Result<Connection, Diagnostics> {
    let mut diags = Diagnostics::new();
    let mut r = Reader {
        vars,
        diags: &mut diags,
    };
    let mut c = Connection::default_for(host);
    if let Some(address) = r.string(&["ansible_host", "ansible_ssh_host"]) {
        c.address = address;
    }
    c.port = r.port(&["ansible_port", "ansible_ssh_port"]);
    c.user = r.string(&["ansible_user", "ansible_ssh_user"]);
    c.private_key_file = r.string(&["ansible_ssh_private_key_file", "ansible_private_key_file"]);
    c.known_hosts_file = r.string(&["pgdeploy_known_hosts_file"]);
    c.become_ = r.boolean("ansible_become").unwrap_or(false);
    c.become_user = r.string(&["ansible_become_user"]);
    if let Some(method) = r.become_method() {
        c.escalation.method = method;
    }
    c.escalation.password = r.string(BECOME_PASSWORD_VARS);
    if let Some(kind) = r.kind() {
        c.kind = kind;
    }
    c.ssh = r.ssh_options();
    r.unsupported();
    diags.into_result(c)
}

/// Ansible connection variables that mean nothing to pgdeploy (no Python and no module files
/// reach the hosts): a warning where they are set, so that nobody believes they did something.
const NO_EFFECT: &[(&str, &str)] = &[
    (
        "ansible_python_interpreter",
        "pgdeploy runs no Python on the hosts",
    ),
    (
        "ansible_pipelining",
        "pgdeploy copies no module files: every command already runs in one SSH exec",
    ),
    (
        "ansible_ssh_pipelining",
        "pgdeploy copies no module files: every command already runs in one SSH exec",
    ),
    (
        "ansible_ssh_retries",
        "pgdeploy connects once per host per run; an unreachable host is reported (exit 4)",
    ),
];

/// Warnings for the variables of [`NO_EFFECT`] set in `vars`.
pub(super) fn no_effect_warnings(vars: &Vars) -> Diagnostics {
    let mut diags = Diagnostics::new();
    for (name, why) in NO_EFFECT {
        if let Some(var) = vars.get(*name) {
            diags.push(Diagnostic::warning(
                Some(var.origin.clone()),
                *name,
                format!("`{name}` has no effect: {why}"),
            ));
        }
    }
    diags
}

/// The `become_method` values pgdeploy runs. `doas`, `pbrun`, `pfexec`, `dzdo`, `ksu`,
/// `runas`, `machinectl` and `enable` are Ansible's others and are refused by name.
pub(super) const BECOME_METHODS: &[&str] = &["sudo", "su"];

/// Ansible connection variables that would change how a host is reached or commands are run,
/// and that pgdeploy does not implement: an error where they are set, never ignored. Each
/// with what to do instead.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "ansible_password",
        "pgdeploy logs in with keys (ssh-agent or `ansible_ssh_private_key_file`), not passwords",
    ),
    (
        "ansible_ssh_pass",
        "pgdeploy logs in with keys (ssh-agent or `ansible_ssh_private_key_file`), not passwords",
    ),
    (
        "ansible_ssh_password",
        "pgdeploy logs in with keys (ssh-agent or `ansible_ssh_private_key_file`), not passwords",
    ),
    (
        "ansible_become_exe",
        "pgdeploy runs `sudo` or `su` from the host's PATH",
    ),
    (
        "ansible_become_flags",
        "pgdeploy runs `sudo`/`su` with its own flags; configure sudoers instead",
    ),
    (
        "ansible_sudo_exe",
        "pgdeploy runs `sudo` from the host's PATH",
    ),
    (
        "ansible_sudo_flags",
        "pgdeploy runs `sudo` with its own flags; configure sudoers instead",
    ),
    (
        "ansible_ssh_executable",
        "pgdeploy speaks SSH itself (no `ssh` binary); use `--ssh-config`",
    ),
    (
        "ansible_ssh_args",
        "set the options in an ssh config file (`--ssh-config`) or `ansible_ssh_common_args`",
    ),
    (
        "ansible_sftp_extra_args",
        "pgdeploy transfers files over its SSH session, not sftp",
    ),
    (
        "ansible_scp_extra_args",
        "pgdeploy transfers files over its SSH session, not scp",
    ),
    ("ansible_shell_type", "commands run with `/bin/sh`"),
    ("ansible_shell_executable", "commands run with `/bin/sh`"),
    (
        "ansible_ssh_host_key_checking",
        "host keys are always checked; use `--accept-new-host-keys` for new hosts",
    ),
    (
        "ansible_host_key_checking",
        "host keys are always checked; use `--accept-new-host-keys` for new hosts",
    ),
];

struct Reader<'a> {
    vars: &'a Vars,
    diags: &'a mut Diagnostics,
}

impl<'a> Reader<'a> {
    /// The first of `names` that is set (Ansible's legacy aliases come after the main name).
    fn find(&self, names: &[&'static str]) -> Option<(&'static str, &'a Var)> {
        let vars: &'a Vars = self.vars;
        names
            .iter()
            .find_map(|n| vars.get(*n).map(|v| (*n, v)))
            .filter(|(_, v)| !v.value.is_null())
    }

    fn bad(&mut self, name: &str, var: &Var, expected: &str) {
        let mut d = Diagnostic::error(
            Some(var.origin.clone()),
            name,
            format!("`{name}` must be {expected}, found {}", shown(&var.value)),
        );
        if is_template(&var.value) {
            d = d.with_help(
                "templates are not rendered in this connection variable; set a literal value",
            );
        }
        self.diags.push(d);
    }

    fn string(&mut self, names: &[&'static str]) -> Option<String> {
        let (name, var) = self.find(names)?;
        match &var.value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => {
                self.bad(name, var, "a string");
                None
            }
        }
    }

    fn port(&mut self, names: &[&'static str]) -> Option<u16> {
        let (name, var) = self.find(names)?;
        let port = match &var.value {
            Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Value::String(s) => s.trim().parse::<u16>().ok(),
            _ => None,
        };
        match port {
            Some(p) if p > 0 => Some(p),
            _ => {
                self.bad(name, var, "a port number from 1 to 65535");
                None
            }
        }
    }

    /// A boolean the way Ansible's `boolean()` reads one: `yes`/`no`, `true`/`false`,
    /// `on`/`off`, `1`/`0`, `y`/`n`, `t`/`f`, any case.
    fn boolean(&mut self, name: &'static str) -> Option<bool> {
        let (name, var) = self.find(&[name])?;
        let b = match &var.value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_f64().map(|x| (x == 1.0, x == 0.0)) {
                Some((true, _)) => Some(true),
                Some((_, true)) => Some(false),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "yes" | "true" | "on" | "1" | "y" | "t" => Some(true),
                "no" | "false" | "off" | "0" | "n" | "f" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if b.is_none() {
            self.bad(name, var, "a boolean (`true`/`false`, `yes`/`no`)");
        }
        b
    }

    fn become_method(&mut self) -> Option<crate::transport::BecomeMethod> {
        use crate::transport::BecomeMethod;
        let (name, var) = self.find(&["ansible_become_method"])?;
        let text = var
            .value
            .as_str()
            .map(|s| s.trim().trim_start_matches("ansible.builtin."));
        match text {
            Some("sudo") => Some(BecomeMethod::Sudo),
            Some("su") => Some(BecomeMethod::Su),
            _ => {
                let valid: Vec<String> = BECOME_METHODS.iter().map(|k| format!("`{k}`")).collect();
                let mut d = Diagnostic::error(
                    Some(var.origin.clone()),
                    name,
                    format!(
                        "`{name}` must be one of {}, found {}: pgdeploy does not run other become methods",
                        valid.join(", "),
                        shown(&var.value)
                    ),
                );
                if let Some(best) =
                    text.and_then(|t| did_you_mean(t, BECOME_METHODS.iter().copied()))
                {
                    d = d.with_help(format!("did you mean `{best}`?"));
                }
                self.diags.push(d);
                None
            }
        }
    }

    /// `ansible_ssh_common_args`, `ansible_ssh_extra_args` (in that order: the first value of
    /// an option wins, as in the `ssh` command Ansible builds), and `ansible_timeout`.
    fn ssh_options(&mut self) -> super::ssh_args::SshOptions {
        let mut out = super::ssh_args::SshOptions::default();
        for name in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
            let Some(text) = self.string(&[name]) else {
                continue;
            };
            if let Err(message) = super::ssh_args::parse_into(&text, &mut out) {
                let var = &self.vars[name];
                self.diags.push(Diagnostic::error(
                    Some(var.origin.clone()),
                    name,
                    format!("`{name}`: {message}"),
                ));
            }
        }
        if out.connect_timeout.is_none() {
            if let Some((name, var)) = self.find(&["ansible_timeout", "ansible_ssh_timeout"]) {
                match var
                    .value
                    .as_u64()
                    .or_else(|| var.value.as_str()?.trim().parse().ok())
                {
                    Some(t) if t > 0 => out.connect_timeout = Some(t),
                    _ => self.bad(name, var, "a number of seconds"),
                }
            }
        }
        out
    }

    /// Reports every connection variable of [`UNSUPPORTED`] that is set.
    fn unsupported(&mut self) {
        for (name, instead) in UNSUPPORTED {
            if let Some((name, var)) = self.find(&[name]) {
                self.diags.push(
                    Diagnostic::error(
                        Some(var.origin.clone()),
                        name,
                        format!("`{name}` is not supported"),
                    )
                    .with_help(*instead),
                );
            }
        }
    }

    fn kind(&mut self) -> Option<ConnectionKind> {
        let (name, var) = self.find(&["ansible_connection"])?;
        let text = var
            .value
            .as_str()
            .map(|s| s.trim().trim_start_matches("ansible.builtin."));
        match text {
            Some("ssh" | "paramiko" | "paramiko_ssh" | "smart") => Some(ConnectionKind::Ssh),
            Some("local") => Some(ConnectionKind::Local),
            _ => {
                let valid: Vec<String> =
                    CONNECTION_KINDS.iter().map(|k| format!("`{k}`")).collect();
                let mut d = Diagnostic::error(
                    Some(var.origin.clone()),
                    name,
                    format!(
                        "`{name}` must be one of {}, found {}",
                        valid.join(", "),
                        shown(&var.value)
                    ),
                );
                if let Some(best) =
                    text.and_then(|t| did_you_mean(t, CONNECTION_KINDS.iter().copied()))
                {
                    d = d.with_help(format!("did you mean `{best}`?"));
                }
                self.diags.push(d);
                None
            }
        }
    }
}

fn is_template(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.contains("{{") || s.contains("{%"))
}

/// A value as shown in messages: the text of a string, JSON otherwise, in backticks.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "a mapping".to_string(),
        other => format!("`{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Location, Mark, SourceFile};
    use serde_json::json;

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        let file = SourceFile::new("inv.yml");
        pairs
            .iter()
            .enumerate()
            .map(|(i, (k, v))| {
                let origin = Location::new(
                    &file,
                    Mark {
                        line: i as u32 + 1,
                        col: 7,
                    },
                );
                (
                    k.to_string(),
                    Var {
                        value: v.clone(),
                        origin,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn defaults_to_ssh_to_the_inventory_name() {
        assert_eq!(
            connection_from_vars("pg1", &Vars::new()).unwrap(),
            Connection::default_for("pg1")
        );
    }

    #[test]
    fn reads_every_variable() {
        let c = connection_from_vars(
            "pg1",
            &vars(&[
                ("ansible_host", json!("10.0.0.1")),
                ("ansible_port", json!("2222")),
                ("ansible_user", json!("admin")),
                ("ansible_ssh_private_key_file", json!("~/.ssh/id")),
                ("pgdeploy_known_hosts_file", json!("kh")),
                ("ansible_become", json!("yes")),
                ("ansible_become_user", json!("postgres")),
                ("ansible_connection", json!("paramiko")),
            ]),
        )
        .unwrap();
        assert_eq!(
            c,
            Connection {
                kind: ConnectionKind::Ssh,
                address: "10.0.0.1".into(),
                port: Some(2222),
                user: Some("admin".into()),
                private_key_file: Some("~/.ssh/id".into()),
                known_hosts_file: Some("kh".into()),
                become_: true,
                become_user: Some("postgres".into()),
                escalation: Default::default(),
                ssh: Default::default(),
            }
        );
        let local =
            connection_from_vars("x", &vars(&[("ansible_connection", json!("local"))])).unwrap();
        assert_eq!(local.kind, ConnectionKind::Local);
        let legacy = connection_from_vars(
            "x",
            &vars(&[
                ("ansible_ssh_host", json!("h")),
                ("ansible_ssh_port", json!(22)),
            ]),
        );
        assert_eq!(legacy.unwrap().port, Some(22));
    }

    #[test]
    fn every_bad_value_is_reported_where_it_was_set() {
        let err = connection_from_vars(
            "pg1",
            &vars(&[
                ("ansible_port", json!(70000)),
                ("ansible_become", json!("maybe")),
                ("ansible_connection", json!("sshd")),
                ("ansible_user", json!([1])),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "error: inv.yml:1:7: ansible_port: `ansible_port` must be a port number from 1 to 65535, found `70000`\n\
             error: inv.yml:4:7: ansible_user: `ansible_user` must be a string, found a list\n\
             error: inv.yml:2:7: ansible_become: `ansible_become` must be a boolean (`true`/`false`, `yes`/`no`), found `maybe`\n\
             error: inv.yml:3:7: ansible_connection: `ansible_connection` must be one of `ssh`, `local`, `paramiko`, \
             `smart`, found `sshd`\n  help: did you mean `ssh`?\n"
        );
    }

    #[test]
    fn templated_ports_get_a_hint() {
        let err =
            connection_from_vars("pg1", &vars(&[("ansible_port", json!("{{ p }}"))])).unwrap_err();
        assert!(
            err.to_string().contains("help: templates are not rendered"),
            "{err}"
        );
    }

    #[test]
    fn become_method_and_password_are_read_and_others_refused() {
        use crate::transport::BecomeMethod;
        let c = connection_from_vars(
            "pg1",
            &vars(&[
                ("ansible_become_method", json!("su")),
                ("ansible_become_pass", json!("pw-1234")),
            ]),
        )
        .unwrap();
        assert_eq!(c.escalation.method, BecomeMethod::Su);
        assert_eq!(c.escalation.password.as_deref(), Some("pw-1234"));
        let legacy =
            connection_from_vars("pg1", &vars(&[("ansible_sudo_pass", json!("pw-5678"))])).unwrap();
        assert_eq!(legacy.escalation.password.as_deref(), Some("pw-5678"));
        let err = connection_from_vars(
            "pg1",
            &vars(&[
                ("ansible_become_method", json!("doas")),
                ("ansible_password", json!("x")),
            ]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "error: inv.yml:1:7: ansible_become_method: `ansible_become_method` must be one of `sudo`, `su`, \
             found `doas`: pgdeploy does not run other become methods\n\
             error: inv.yml:2:7: ansible_password: `ansible_password` is not supported\n  \
             help: pgdeploy logs in with keys (ssh-agent or `ansible_ssh_private_key_file`), not passwords\n"
        );
    }

    #[test]
    fn variables_without_effect_are_warnings() {
        let w = no_effect_warnings(&vars(&[
            ("ansible_host", json!("h")),
            ("ansible_python_interpreter", json!("/usr/bin/python3")),
        ]));
        assert_eq!(
            w.to_string(),
            "warning: inv.yml:2:7: ansible_python_interpreter: `ansible_python_interpreter` has no effect: \
             pgdeploy runs no Python on the hosts\n"
        );
    }
}
