//! `group_vars/` and `host_vars/`: variable files beside an inventory (or a playbook).
//!
//! Like Ansible's `host_group_vars` plugin, the variables of group or host `NAME` come from
//! the first of `NAME` (a file, or a directory of files merged in sorted order), `NAME.yml`,
//! `NAME.yaml`, `NAME.json`. Hidden files and backups (`~`) are skipped. A file for a group or
//! host the inventory does not have is a warning: it is often a leftover, rarely fatal.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{Inventory, Var, Vars};
use crate::diag::{did_you_mean, Diagnostic, Diagnostics, Location, SourceFile};

/// Extensions in Ansible's order of preference; `""` is the bare name.
const EXTENSIONS: &[&str] = &["", ".yml", ".yaml", ".json"];

/// Reads `base/group_vars/` and `base/host_vars/` into `inv.sources`; a later call (the
/// playbook's directory after the inventory's) overrides the variables of an earlier one.
/// Returns errors (bad files) and warnings (files for unknown groups or hosts).
pub(crate) fn load_vars_dirs(inv: &mut Inventory, base: &Path) -> Diagnostics {
    let mut diags = Diagnostics::new();
    for kind in [Kind::Group, Kind::Host] {
        let dir = base.join(kind.dir());
        if !dir.is_dir() {
            continue;
        }
        for (entity, candidates) in entities(&dir, &mut diags) {
            let paths = candidates.paths;
            let known = match kind {
                Kind::Group => inv.groups.contains_key(&entity),
                Kind::Host => inv.hosts.contains_key(&entity),
            };
            let Some((_, path)) = paths.first() else {
                continue;
            };
            if !known {
                if candidates.warn_if_unknown {
                    diags.push(unknown_entity(inv, kind, &entity, path));
                }
                continue;
            }
            for (_, ignored) in &paths[1..] {
                diags.push(Diagnostic::warning(
                    Some(Location::file(&SourceFile::new(ignored))),
                    "",
                    format!(
                        "ignored: `{}` comes first for {} `{entity}`",
                        path.display(),
                        kind.noun()
                    ),
                ));
            }
            let target = match kind {
                Kind::Group => inv.sources.group_files.entry(entity).or_default(),
                Kind::Host => inv.sources.host_files.entry(entity).or_default(),
            };
            for file in files_of(path, &mut diags) {
                read_vars_file(&file, target, &mut diags);
            }
        }
    }
    diags
}

#[derive(Clone, Copy)]
enum Kind {
    Group,
    Host,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Group => "group_vars",
            Kind::Host => "host_vars",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Kind::Group => "group",
            Kind::Host => "host",
        }
    }
}

fn unknown_entity(inv: &Inventory, kind: Kind, entity: &str, path: &Path) -> Diagnostic {
    let names: Vec<&str> = match kind {
        Kind::Group => inv.groups.keys().map(String::as_str).collect(),
        Kind::Host => inv.hosts.keys().map(String::as_str).collect(),
    };
    let d = Diagnostic::warning(
        Some(Location::file(&SourceFile::new(path))),
        "",
        format!(
            "{} `{entity}` is not in the inventory; these variables are not used",
            kind.noun()
        ),
    );
    match did_you_mean(entity, names) {
        Some(best) => d.with_help(format!("did you mean `{best}`?")),
        None => d,
    }
}

fn visible(name: &str) -> bool {
    !name.starts_with('.') && !name.ends_with('~')
}

/// The candidates of one group or host, best first (rank = index in [`EXTENSIONS`]).
struct Candidates {
    paths: Vec<(usize, PathBuf)>,
    /// Whether a missing group or host deserves a warning: not for files that are merely
    /// beside the vars files (`README.md`).
    warn_if_unknown: bool,
}

/// The entries of a `group_vars/` directory by the name they are for.
fn entities(dir: &Path, diags: &mut Diagnostics) -> IndexMap<String, Candidates> {
    let mut by_entity: IndexMap<String, Candidates> = IndexMap::new();
    for (name, path) in sorted_entries(dir, diags) {
        let with_ext = EXTENSIONS
            .iter()
            .enumerate()
            .skip(1)
            .find_map(|(rank, ext)| {
                name.strip_suffix(ext)
                    .filter(|stem| !stem.is_empty())
                    .map(|stem| (rank, stem.to_string()))
            });
        // A bare name with a dot that is a file (`notes.txt`, or `db1.example.com` for a host)
        // is looked up like any other, but not warned about.
        let (rank, entity, warn) = match with_ext {
            Some((rank, stem)) => (rank, stem, true),
            None => {
                let warn = path.is_dir() || !name.contains('.');
                (0, name, warn)
            }
        };
        let c = by_entity.entry(entity).or_insert(Candidates {
            paths: Vec::new(),
            warn_if_unknown: false,
        });
        c.paths.push((rank, path));
        c.warn_if_unknown |= warn;
    }
    for c in by_entity.values_mut() {
        c.paths.sort();
    }
    by_entity.sort_keys();
    by_entity
}

fn sorted_entries(dir: &Path, diags: &mut Diagnostics) -> Vec<(String, PathBuf)> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            diags.push(Diagnostic::error(
                Some(Location::file(&SourceFile::new(dir))),
                "",
                format!("cannot read directory: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut entries: Vec<(String, PathBuf)> = read
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, _)| visible(name))
        .collect();
    entries.sort();
    entries
}

/// The files of a vars path: itself, or a directory's files (recursively, sorted) that have
/// a vars extension or none.
/// A directory reached twice through symbolic links (a link to a parent) is read once.
fn files_of(path: &Path, diags: &mut Diagnostics) -> Vec<PathBuf> {
    let mut out = Vec::new();
    files_into(path, &mut std::collections::HashSet::new(), &mut out, diags);
    out
}

fn files_into(
    path: &Path,
    seen: &mut std::collections::HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
    diags: &mut Diagnostics,
) {
    if !path.is_dir() {
        // Files are read (and refused when irregular, such as a loop of links) by the loader.
        out.push(path.to_path_buf());
        return;
    }
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !seen.insert(real.clone()) {
        diags.push(Diagnostic::warning(
            Some(Location::file(&SourceFile::new(path))),
            "",
            format!(
                "skipped: this directory is `{}`, already read (a symbolic link loop)",
                real.display()
            ),
        ));
        return;
    }
    let mut ignored = Diagnostics::new();
    for (name, p) in sorted_entries(path, &mut ignored) {
        let ext = Path::new(&name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()));
        if p.is_dir() {
            if ext.is_none() {
                files_into(&p, seen, out, diags);
            }
        } else if ext.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
            out.push(p);
        }
    }
}

/// Reads one vars file (YAML or JSON: a mapping of variable names) into `target`.
fn read_vars_file(path: &Path, target: &mut Vars, diags: &mut Diagnostics) {
    let (file, node) = match crate::yaml::load_file(path) {
        Ok(x) => x,
        Err(e) => {
            diags.extend(e);
            return;
        }
    };
    if node.is_null() {
        return;
    }
    let Some(entries) = node.as_map() else {
        diags.push(Diagnostic::error(
            Some(Location::new(&file, node.mark)),
            "",
            format!(
                "a variables file must be a mapping of variable names, found {}",
                node.describe()
            ),
        ));
        return;
    };
    for (key, value) in entries {
        match key.as_str() {
            Some(name) => {
                target.insert(
                    name.to_string(),
                    Var {
                        value: value.to_json(),
                        origin: Location::new(&file, value.mark),
                    },
                );
            }
            None => diags.push(Diagnostic::error(
                Some(Location::new(&file, key.mark)),
                "",
                format!("expected a variable name as key, found {}", key.describe()),
            )),
        }
    }
}
