//! Loading an inventory: a file (YAML or INI) or a directory of them, then `group_vars/` and
//! `host_vars/` beside it, then variable precedence and connection variables.

use std::path::{Path, PathBuf};

use super::build::Builder;
use super::vars_dirs::load_vars_dirs;
use super::{ini, merge, structure, yaml, Inventory};
use crate::diag::{Diagnostic, Diagnostics, Location, SourceFile};

/// Loads the inventory at `path` (a file or a directory). Warnings are dropped; use
/// [`load_with_warnings`] to show them.
pub fn load(path: &Path) -> Result<Inventory, Diagnostics> {
    load_with_warnings(path).map(|(inv, _)| inv)
}

/// Loads the inventory at `path` and returns it with the warnings found. On failure, every
/// error (and warning) of every file, sorted by position.
pub fn load_with_warnings(path: &Path) -> Result<(Inventory, Diagnostics), Diagnostics> {
    let source = SourceFile::new(path);
    let (files, base) = if path.is_dir() {
        let mut files = Vec::new();
        inventory_files(path, &mut files)
            .map_err(|e| read_error(&source, "cannot read directory", &e))?;
        if files.is_empty() {
            return Err(Diagnostic::error(
                Some(Location::file(&source)),
                "",
                "the inventory directory has no inventory file",
            )
            .into());
        }
        (files, path.to_path_buf())
    } else if path.exists() {
        let base = path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        (vec![path.to_path_buf()], base)
    } else {
        return Err(Diagnostic::error(
            Some(Location::file(&source)),
            "",
            "the inventory does not exist",
        )
        .into());
    };
    let mut b = Builder::new();
    for file in &files {
        read_file(file, &mut b);
    }
    let (mut inv, mut diags) = structure::finish(b);
    diags.extend(load_vars_dirs(&mut inv, &base));
    diags.extend(merge::resolve(&mut inv));
    split(inv, diags)
}

/// Adds the `group_vars/` and `host_vars/` of `base` (a playbook's directory) over those
/// already loaded, and re-resolves the hosts. Returns the warnings, or the errors.
pub fn add_vars_dirs(inv: &mut Inventory, base: &Path) -> Result<Diagnostics, Diagnostics> {
    let mut diags = load_vars_dirs(inv, base);
    diags.extend(merge::resolve(inv));
    split((), diags).map(|((), warnings)| warnings)
}

fn split<T>(value: T, diags: Diagnostics) -> Result<(T, Diagnostics), Diagnostics> {
    let diags = diags.sorted();
    if diags.has_errors() {
        Err(diags)
    } else {
        Ok((value, diags))
    }
}

fn read_error(file: &SourceFile, what: &str, e: &std::io::Error) -> Diagnostics {
    Diagnostic::error(Some(Location::file(file)), "", format!("{what}: {e}")).into()
}

/// Names in an inventory directory that are not inventories (Ansible's
/// `INVENTORY_IGNORE_EXTS` and backups).
const IGNORED_SUFFIXES: &[&str] = &[
    "~", ".orig", ".retry", ".md", ".txt", ".rst", ".bak", ".swp", ".pyc", ".pyo", ".rpm", ".cfg",
];

/// The inventory files of a directory, recursively, sorted by name; `group_vars/`,
/// `host_vars/`, hidden entries and ignored suffixes are skipped.
fn inventory_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(name, _)| {
            !name.starts_with('.')
                && name != "group_vars"
                && name != "host_vars"
                && !IGNORED_SUFFIXES.iter().any(|s| name.ends_with(s))
        })
        .collect();
    entries.sort();
    for (_, path) in entries {
        if path.is_dir() {
            inventory_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one inventory file into `b`, as YAML or INI.
fn read_file(path: &Path, b: &mut Builder) {
    let file = SourceFile::new(path);
    let text = match crate::limits::read_input(path) {
        Ok(t) => t,
        Err(e) => {
            b.diags.push(Diagnostic::error(
                Some(Location::file(&file)),
                "",
                e.to_string(),
            ));
            return;
        }
    };
    crate::inputs::record(path, text.as_bytes());
    // An inventory encrypted whole is decrypted before its format is told.
    let (text, encrypted) = match crate::vault::open_file(&text, &file) {
        Ok(None) => (text, false),
        Ok(Some(plain)) => (plain, true),
        Err(e) => {
            b.diags.extend(e);
            return;
        }
    };
    if is_yaml(path, &text) {
        match crate::yaml::load_str(&text, &file) {
            Ok(node) => {
                if encrypted {
                    crate::vault::reveal_strings(&node.to_json());
                }
                yaml::parse(&file, &node, b)
            }
            Err(e) => b.diags.extend(e),
        }
    } else {
        ini::parse(&file, &text, b);
    }
}

/// `.yml`, `.yaml` and `.json` files are YAML; so is a file of another name whose first
/// meaningful line is `---` or a `name:` key (an INI line never ends with `:`).
fn is_yaml(path: &Path, text: &str) -> bool {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if matches!(ext, "yml" | "yaml" | "json") {
        return true;
    }
    let first = text
        .lines()
        .map(|l| l.trim_start_matches('\u{feff}').trim())
        .find(|l| !l.is_empty() && !l.starts_with(['#', ';']));
    first.is_some_and(|l| {
        l == "---"
            || l.starts_with('{')
            || (l.ends_with(':') && !l.starts_with('[') && !l.contains(['=', ' ']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_detection() {
        assert!(is_yaml(Path::new("x.yml"), ""));
        assert!(is_yaml(Path::new("x.json"), ""));
        assert!(is_yaml(Path::new("hosts"), "# c\n---\nall:\n"));
        assert!(is_yaml(Path::new("hosts"), "all:\n  hosts:\n"));
        assert!(!is_yaml(Path::new("hosts"), "[pg]\npg1\n"));
        assert!(!is_yaml(Path::new("hosts.ini"), "pg1 ansible_host=x\n"));
    }
}
