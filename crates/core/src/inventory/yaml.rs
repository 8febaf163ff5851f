//! Ansible's YAML inventory format.
//!
//! ```yaml
//! all:
//!   vars: {ansible_user: admin}
//!   hosts: {bastion: }
//!   children:
//!     postgres:
//!       hosts:
//!         pg[1:3]:
//!         pg4: {ansible_port: 2222}
//! ```
//!
//! Each top-level key is a group (usually only `all`). A group has only `hosts` (a mapping of
//! host patterns to their variables or nothing), `children` (a mapping of groups, nested to
//! any depth) and `vars`. A group may appear in several places; the appearances merge.
//! Problems are reported with the position and field path of the node at fault.

use super::build::{Builder, ALL};
use super::names::{expand_host_pattern, host_name_problem};
use super::Var;
use crate::diag::{did_you_mean, Diagnostic, FieldPath, Location, Mark, SourceFile};
use crate::yaml::Node;

const GROUP_KEYS: &[&str] = &["hosts", "children", "vars"];

/// Reads a YAML inventory document into `b`.
pub(crate) fn parse(file: &SourceFile, root: &Node, b: &mut Builder) {
    let mut r = Reader { file, b };
    if root.is_null() {
        return;
    }
    let Some(entries) = root.as_map() else {
        r.error(
            root.mark,
            &FieldPath::root(),
            format!(
                "an inventory must be a mapping of group names (usually `{ALL}:`), found {}",
                root.describe()
            ),
        );
        return;
    };
    for (key, value) in entries {
        let Some(name) = r.name(key, &FieldPath::root()) else {
            continue;
        };
        if name == "plugin" {
            r.error(
                key.mark,
                &FieldPath::root().key(name),
                "inventory plugins (`plugin:`) are not supported; list hosts and groups instead"
                    .to_string(),
            );
            continue;
        }
        r.group(name, value, key.mark, &FieldPath::root().key(name));
    }
}

struct Reader<'a> {
    file: &'a SourceFile,
    b: &'a mut Builder,
}

impl Reader<'_> {
    fn at(&self, mark: Mark) -> Location {
        Location::new(self.file, mark)
    }

    fn error(&mut self, mark: Mark, path: &FieldPath, message: String) {
        self.push(Diagnostic::error(
            Some(self.at(mark)),
            path.as_str(),
            message,
        ));
    }

    fn push(&mut self, d: Diagnostic) {
        self.b.diags.push(d);
    }

    /// A mapping key used as a name: any scalar (`1:` is the name `1`).
    fn name<'n>(&mut self, key: &'n Node, parent: &FieldPath) -> Option<&'n str> {
        let name = key.as_str();
        if name.is_none() {
            self.error(
                key.mark,
                parent,
                format!("expected a name as key, found {}", key.describe()),
            );
        }
        name
    }

    /// A mapping or nothing (`pg1:` with no value); anything else is reported with `expected`.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        path: &FieldPath,
        expected: &str,
        help: Option<&str>,
    ) -> Option<&'n [(Node, Node)]> {
        if node.is_null() {
            return None;
        }
        let entries = node.as_map();
        if entries.is_none() {
            let mut d = Diagnostic::error(
                Some(self.at(node.mark)),
                path.as_str(),
                format!("must be {expected}, found {}", node.describe()),
            );
            if let Some(help) = help {
                d = d.with_help(help);
            }
            self.push(d);
        }
        entries
    }

    fn group(&mut self, name: &str, node: &Node, key_mark: Mark, path: &FieldPath) {
        self.b.group(name, Some(self.at(key_mark)));
        let Some(entries) = self.entries(
            node,
            path,
            "a mapping with `hosts`, `children` or `vars`",
            None,
        ) else {
            return;
        };
        for (key, value) in entries {
            let Some(k) = self.name(key, path) else {
                continue;
            };
            let here = path.key(k);
            match k {
                "hosts" => self.hosts(name, value, &here),
                "children" => self.children(name, value, &here),
                "vars" => {
                    for (var, v) in self.vars(value, &here) {
                        self.b.group_var(name, &var, v);
                    }
                }
                _ => {
                    let mut d = Diagnostic::error(
                        Some(self.at(key.mark)),
                        here.as_str(),
                        format!("unknown key `{k}` in group `{name}`: a group has only `hosts`, `children` and `vars`"),
                    );
                    if let Some(best) = did_you_mean(k, GROUP_KEYS.iter().copied()) {
                        d = d.with_help(format!("did you mean `{best}`?"));
                    } else {
                        d = d.with_help(format!(
                            "hosts go under `hosts:` and subgroups under `children:`, e.g. `hosts: {{{k}: }}`"
                        ));
                    }
                    self.push(d);
                }
            }
        }
    }

    fn hosts(&mut self, group: &str, node: &Node, path: &FieldPath) {
        let Some(entries) = self.entries(
            node,
            path,
            "a mapping of host names",
            Some("write each host as a key, with its variables or nothing: `hosts: {pg1: , pg2: {ansible_port: 2222}}`"),
        ) else {
            return;
        };
        for (key, value) in entries {
            let Some(pattern) = self.name(key, path) else {
                continue;
            };
            let here = path.key(pattern);
            let (names, port) = match expand_host_pattern(pattern) {
                Ok(x) => x,
                Err(e) => {
                    let mark = Mark {
                        line: key.mark.line,
                        col: key.mark.col + e.offset as u32,
                    };
                    self.error(mark, &here, e.message);
                    continue;
                }
            };
            let key_at = self.at(key.mark);
            let mut vars = Vec::new();
            if let Some(port) = port {
                vars.push((
                    "ansible_port".to_string(),
                    Var {
                        value: port.into(),
                        origin: key_at.clone(),
                    },
                ));
            }
            if !value.is_null() && value.as_map().is_none() {
                self.error(
                    value.mark,
                    &here,
                    format!(
                        "host `{pattern}` must have a mapping of variables (or nothing), found {}",
                        value.describe()
                    ),
                );
                continue;
            }
            vars.extend(self.vars(value, &here));
            for name in names {
                if let Some(problem) = host_name_problem(&name) {
                    self.error(key.mark, &here, problem);
                    continue;
                }
                self.b.host(group, &name, key_at.clone());
                for (k, v) in &vars {
                    self.b.host_var(&name, k, v.clone());
                }
            }
        }
    }

    fn children(&mut self, parent: &str, node: &Node, path: &FieldPath) {
        let Some(entries) = self.entries(
            node,
            path,
            "a mapping of group names",
            Some("write each child group as a key: `children: {replica: }`"),
        ) else {
            return;
        };
        for (key, value) in entries {
            let Some(name) = self.name(key, path) else {
                continue;
            };
            self.group(name, value, key.mark, &path.key(name));
            self.b.child(parent, name, self.at(key.mark));
        }
    }

    /// The variables of a `vars:` mapping (or of a host), each with the position of its value.
    fn vars(&mut self, node: &Node, path: &FieldPath) -> Vec<(String, Var)> {
        let Some(entries) = self.entries(node, path, "a mapping of variable names", None) else {
            return Vec::new();
        };
        let mut vars = Vec::new();
        for (key, value) in entries {
            if let Some(name) = self.name(key, path) {
                vars.push((
                    name.to_string(),
                    Var {
                        value: value.to_json(),
                        origin: self.at(value.mark),
                    },
                ));
            }
        }
        vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Builder {
        let file = SourceFile::new("inv.yml");
        let node = crate::yaml::load_str(text, &file).unwrap();
        let mut b = Builder::new();
        parse(&file, &node, &mut b);
        b
    }

    #[test]
    fn nested_groups_vars_and_null_hosts() {
        let b = load(
            "all:\n  vars: {a: 1}\n  hosts: {solo: }\n  children:\n    pg:\n      vars: {b: x}\n      children:\n        \
             primary:\n          hosts:\n            pg1: {ansible_port: 2222}\n        replica:\n          hosts:\n            \
             pg[2:3]:\n",
        );
        assert!(b.diags.is_empty(), "{}", b.diags);
        let inv = &b.inv;
        assert_eq!(inv.groups["all"].hosts, ["solo"]);
        assert_eq!(inv.groups["all"].vars["a"].value, json!(1));
        assert_eq!(inv.groups["all"].children, ["pg"]);
        assert_eq!(inv.groups["pg"].children, ["primary", "replica"]);
        assert_eq!(inv.groups["replica"].hosts, ["pg2", "pg3"]);
        let port = &inv.sources.host_vars["pg1"]["ansible_port"];
        assert_eq!(port.value, json!(2222));
        assert_eq!(port.origin.to_string(), "inv.yml:10:33");
    }

    #[test]
    fn a_group_in_several_places_merges() {
        let b = load(
            "all:\n  children:\n    pg:\n      hosts: {pg1: }\n    etcd:\n      children:\n        pg:\n          \
             hosts: {pg2: }\n          vars: {x: 1}\n",
        );
        assert!(b.diags.is_empty(), "{}", b.diags);
        assert_eq!(b.inv.groups["pg"].hosts, ["pg1", "pg2"]);
        assert_eq!(b.inv.groups["etcd"].children, ["pg"]);
        assert_eq!(b.inv.groups["all"].children, ["pg", "etcd"]);
    }

    fn errors(text: &str) -> String {
        load(text).diags.to_string()
    }

    #[test]
    fn hosts_as_a_list() {
        assert_eq!(
            errors("all:\n  children:\n    postgres:\n      hosts:\n        - pg1\n"),
            "error: inv.yml:5:9: all.children.postgres.hosts: must be a mapping of host names, found a list\n  \
             help: write each host as a key, with its variables or nothing: `hosts: {pg1: , pg2: {ansible_port: 2222}}`\n"
        );
    }

    #[test]
    fn unknown_group_key() {
        assert_eq!(
            errors("all:\n  children:\n    pg:\n      host:\n        pg1:\n"),
            "error: inv.yml:4:7: all.children.pg.host: unknown key `host` in group `pg`: a group has only `hosts`, \
             `children` and `vars`\n  help: did you mean `hosts`?\n"
        );
        assert_eq!(
            errors("all:\n  pg1:\n"),
            "error: inv.yml:2:3: all.pg1: unknown key `pg1` in group `all`: a group has only `hosts`, `children` and \
             `vars`\n  help: hosts go under `hosts:` and subgroups under `children:`, e.g. `hosts: {pg1: }`\n"
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            errors("all:\n  vars: [a]\n  hosts:\n    pg1: 5\n  children: x\n"),
            "error: inv.yml:2:9: all.vars: must be a mapping of variable names, found a list\n\
             error: inv.yml:4:10: all.hosts.pg1: host `pg1` must have a mapping of variables (or nothing), found an integer\n\
             error: inv.yml:5:13: all.children: must be a mapping of group names, found a string\n  \
             help: write each child group as a key: `children: {replica: }`\n"
        );
        assert_eq!(
            errors("- all\n"),
            "error: inv.yml:1:1: an inventory must be a mapping of group names (usually `all:`), found a list\n"
        );
    }

    #[test]
    fn bad_host_names_and_ranges() {
        assert_eq!(
            errors("all:\n  hosts:\n    \"pg 1\":\n    pg[5:2]:\n"),
            "error: inv.yml:3:5: all.hosts.pg 1: host name `pg 1` contains whitespace\n\
             error: inv.yml:4:7: all.hosts.pg[5:2]: host range `[5:2]` begins after its end\n"
        );
    }

    #[test]
    fn duplicate_host_in_a_group_declared_twice() {
        assert_eq!(
            errors("all:\n  children:\n    pg:\n      hosts: {pg1: }\n    etcd:\n      children:\n        pg:\n          hosts: {pg1: }\n"),
            "error: inv.yml:8:19: host `pg1` is declared twice in group `pg`\n  help: first declared at line 4\n"
        );
    }

    #[test]
    fn plugin_configs_are_refused() {
        assert!(
            errors("plugin: aws_ec2\n").contains("inventory plugins (`plugin:`) are not supported")
        );
    }
}
