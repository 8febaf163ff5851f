//! Offline checks that several modules make on their parameters.

use std::path::PathBuf;

use pgdeploy_core::module::{ParseContext, Problem};

/// Remote paths must be absolute: a relative one would depend on the login directory.
pub(crate) fn check_absolute(field: &'static str, path: &str) -> Vec<Problem> {
    if path.starts_with('/') {
        Vec::new()
    } else {
        vec![Problem::field(
            field,
            format!("`{path}` is not an absolute path"),
        )]
    }
}

/// A file on the workstation, relative to the playbook's directory.
pub(crate) fn check_local_file(
    field: &'static str,
    src: &str,
    cx: &ParseContext<'_>,
) -> Vec<Problem> {
    let path = cx.playbook_dir.join(src);
    if path.is_file() {
        Vec::new()
    } else {
        vec![Problem::field(
            field,
            format!("local file `{}` does not exist", path.display()),
        )]
    }
}

/// Where a template named by `src` is: beside the playbook, or in its `templates/` folder.
pub(crate) fn find_template(src: &str, cx: &ParseContext<'_>) -> Result<PathBuf, Problem> {
    let candidates = [
        cx.playbook_dir.join(src),
        cx.playbook_dir.join("templates").join(src),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            Problem::field(
                "src",
                format!(
                    "template `{src}` not found (looked in `{}` and `{}`)",
                    candidates[0].display(),
                    candidates[1].display()
                ),
            )
        })
}

/// A `validate` command must name the candidate file with `%s`.
pub(crate) fn check_validate(validate: Option<&str>) -> Vec<Problem> {
    match validate {
        Some(v) if !v.contains("%s") => vec![Problem::field(
            "validate",
            format!("`{v}` does not contain `%s`, the path of the file to check"),
        )],
        _ => Vec::new(),
    }
}
