//! Render a fiaas.yml into the Kubernetes objects the daemon would deploy, printed as YAML.
//!
//! `cargo run -p fiaas-examples --example render_app -- [FIAAS_YML]`
//! (default: `examples/apps/full-v3/fiaas.yml`).

use fiaas_config::ClusterConfig;
use fiaas_spec::AppFacts;
use fiaas_transform::RenderOptions;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/apps/full-v3/fiaas.yml").to_owned()
    });
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;

    // A fiaas.yml alone does not name the app: the daemon takes name, namespace, image and
    // deployment id from the Application resource, so a caller supplies them.
    let facts = AppFacts {
        name: "example".into(),
        namespace: "default".into(),
        // The image needs a tag: it becomes the app's version label, and render refuses without.
        image: "registry.example.com/example:1.0.0".into(),
        deployment_id: "1".into(),
        ..AppFacts::default()
    };
    let app = fiaas_spec::load(&text, &facts)?;

    // The cluster configuration is parsed from the daemon's own command line, so the flags and
    // their defaults are exactly those a deployed daemon would run with.
    let config = ClusterConfig::from_args(
        [
            "fiaas",
            "--ingress-suffix",
            "svc.example.com",
            "--use-networkingv1-ingress",
            "--environment",
            "test",
        ],
        None,
    )?;
    let manifests = fiaas_transform::render(&app, &config.transform, &RenderOptions::default())?;

    for object in &manifests.objects {
        print!("---\n{}", fiaas_spec::to_yaml(&object.to_json()));
    }
    Ok(())
}
