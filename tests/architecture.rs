//! The crate graph that makes ARCHITECTURE.md's invariants compile errors: the engine cannot
//! name a module (it does not depend on `pgdeploy-modules`), modules cannot open a
//! connection (they depend on `pgdeploy-core` only), the core depends on no other crate of
//! the workspace, and the test doubles never reach the binary. A `use` across a missing edge
//! fails to compile; this test fails when someone adds the edge to a `Cargo.toml`.

use std::path::Path;

/// The workspace crates a manifest's `[dependencies]` (not dev-, not build-) names.
fn workspace_deps(manifest: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(manifest)).unwrap();
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps {
            let name = line.split(['.', '=', ' ']).next().unwrap_or_default();
            if name.starts_with("pgdeploy") {
                deps.push(name.to_string());
            }
        }
    }
    deps
}

#[test]
fn the_crate_graph_keeps_the_invariants() {
    let core = workspace_deps("crates/core/Cargo.toml");
    assert!(core.is_empty(), "the core depends on {core:?}");

    let modules = workspace_deps("modules/Cargo.toml");
    assert_eq!(
        modules,
        ["pgdeploy-core"],
        "modules depend on the core only"
    );

    let engine = workspace_deps("crates/engine/Cargo.toml");
    assert!(
        !engine.iter().any(|d| d == "pgdeploy-modules"),
        "the engine names no module: {engine:?}"
    );

    for transport in ["crates/ssh/Cargo.toml", "crates/test-support/Cargo.toml"] {
        let deps = workspace_deps(transport);
        assert_eq!(deps, ["pgdeploy-core"], "{transport}");
    }

    let binary = workspace_deps("Cargo.toml");
    assert!(
        !binary.iter().any(|d| d == "pgdeploy-test-support"),
        "the test doubles stay out of the binary: {binary:?}"
    );
    // And the manifests are read at all: the binary depends on the engine and the modules.
    assert!(binary.iter().any(|d| d == "pgdeploy-engine"), "{binary:?}");
    assert!(binary.iter().any(|d| d == "pgdeploy-modules"), "{binary:?}");
}
