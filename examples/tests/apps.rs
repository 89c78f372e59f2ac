//! Every example app under `apps/` must stay valid, its Application must carry the same
//! fiaas.yml, and it must render under the cluster flags the README shows.

use std::path::{Path, PathBuf};

use fiaas_config::ClusterConfig;
use fiaas_spec::AppFacts;
use fiaas_transform::{Kind, RenderOptions};
use serde_json::Value;

fn app_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("apps");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The facts the daemon takes from an Application resource (the CLI's `render` reads them the
/// same way).
fn facts_of(application: &Value) -> AppFacts {
    let text = |pointer: &str| {
        application
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("the Application has no {pointer}"))
            .to_owned()
    };
    AppFacts {
        name: text("/spec/application"),
        namespace: text("/metadata/namespace"),
        image: text("/spec/image"),
        deployment_id: text("/metadata/labels/fiaas~1deployment_id"),
        ..AppFacts::default()
    }
}

#[test]
fn every_example_app_is_valid_consistent_and_renders() {
    // The README's render command; keep the two in step.
    let config = ClusterConfig::from_args(
        [
            "fiaas",
            "--ingress-suffix",
            "svc.example.com",
            "--use-networkingv1-ingress",
            "--use-ingress-tls",
            "default_off",
            "--environment",
            "test",
        ],
        None,
    )
    .expect("the README's flags parse");

    let dirs = app_dirs();
    assert!(dirs.len() >= 5, "expected the example apps, found {dirs:?}");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let fiaas_yml = read(&dir.join("fiaas.yml"));
        if let Err(e) = fiaas_spec::validate(&fiaas_yml) {
            panic!("{name}/fiaas.yml is invalid: {e}");
        }

        let application = fiaas_spec::parse_document(&read(&dir.join("application.yml")))
            .unwrap_or_else(|e| panic!("{name}/application.yml does not parse: {e}"));
        let document = fiaas_spec::parse_document(&fiaas_yml).expect("validated above");
        assert_eq!(
            application.pointer("/spec/config"),
            Some(&document),
            "{name}/application.yml: spec.config differs from {name}/fiaas.yml"
        );
        let facts = facts_of(&application);
        assert_eq!(
            facts.name, name,
            "{name}: spec.application names another app"
        );

        let app =
            fiaas_spec::from_document(&document, &facts).unwrap_or_else(|e| panic!("{name}: {e}"));
        let manifests = fiaas_transform::render(&app, &config.transform, &RenderOptions::default())
            .unwrap_or_else(|e| panic!("{name} does not render: {e}"));
        let deployment = manifests
            .objects
            .iter()
            .find(|o| o.kind() == Kind::Deployment)
            .unwrap_or_else(|| panic!("{name} renders no Deployment"));
        assert_eq!(deployment.metadata().name.as_deref(), Some(name.as_str()));
    }
}
