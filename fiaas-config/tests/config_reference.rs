//! `docs/configuration.md` is generated from the flags' definition; fail when the checked-in
//! copy no longer matches it, and when the example ConfigMap misses a flag.

use std::path::Path;

use fiaas_config::Flag;
use fiaas_config::reference::configuration_markdown;

/// The workspace root, where `docs/` and `deploy/` live.
fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
}

#[test]
fn configuration_doc_is_fresh() {
    let path = workspace_root().join("docs/configuration.md");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == configuration_markdown(),
        "docs/configuration.md is stale: regenerate with \
         `cargo run -p fiaas-config --example configuration-reference > docs/configuration.md`"
    );
}

#[test]
fn example_configmap_mentions_every_flag() {
    let path = workspace_root().join("deploy/configmap.yaml");
    let configmap = std::fs::read_to_string(&path).expect("deploy/configmap.yaml exists");
    let missing: Vec<&str> = Flag::ALL
        .iter()
        .filter(|flag| **flag != Flag::ConfigFile)
        .map(|flag| flag.long())
        .filter(|long| !configmap.contains(&format!(" {long}:")))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/configmap.yaml does not mention (as `key:` or `# key:`) these flags: {missing:?}"
    );
}
