//! The corpus of broken inputs: every case under `tests/corpus/` must be refused with exit
//! status 1, before any host is contacted, with errors that name `file:line:column`; the
//! exact error text is snapshot-tested.
//!
//! A case is a folder holding its input files and `args`, the command line (without the
//! program name) run from inside the folder.

use std::path::Path;
use std::process::Command;

fn run_case(dir: &Path) -> (i32, String) {
    let args = std::fs::read_to_string(dir.join("args")).expect("every case has an `args` file");
    let out = Command::new(env!("CARGO_BIN_EXE_pgdeploy"))
        .env("PGDEPLOY_LOCK_WAIT", "120")
        .args(args.split_whitespace())
        .arg("--no-color")
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("pgdeploy runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn broken_inputs_are_refused_with_located_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/corpus exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("args").is_file())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "the corpus has {} cases, want at least 30",
        cases.len()
    );
    let located = regex_lite::Regex::new(r"(?m)^error: [^\s:]+:\d+:\d+: ").expect("valid regex");
    let mut failures = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let (code, stderr) = run_case(case);
        if code != 1 {
            failures.push(format!("{name}: exit status {code}, want 1\n{stderr}"));
        }
        if !located.is_match(&stderr) {
            failures.push(format!("{name}: no error names file:line:column\n{stderr}"));
        }
        insta::with_settings!({
            snapshot_path => root.join("snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, stderr);
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The README's error examples are real output: the first diagnostic of these cases,
/// excerpt and help included, is in it as printed.
#[test]
fn the_readme_shows_real_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    for case in [
        "42-templated-task-unknown-param",
        "43-template-fails-for-some-hosts",
    ] {
        let (_, stderr) = run_case(&root.join("tests/corpus").join(case));
        let first = stderr.split("\n\n").next().unwrap_or_default();
        assert!(
            readme.contains(&format!("```\n{first}\n")),
            "README.md does not show {case} as printed:\n{first}"
        );
    }
}
