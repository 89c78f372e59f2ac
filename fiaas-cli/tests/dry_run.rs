//! `fiaas render … | kubectl apply --dry-run=server -f -` against the real test cluster, for
//! every valid upstream v3 example. The 1.20 test server does not serve `policy/v1`, so the
//! PodDisruptionBudget is left out here; the daemon's own apply path covers it with its version
//! fallback (fiaas-k8s live tests).

use std::io::Write;
use std::process::{Command, Stdio};

use fiaas_tests::{fixtures_dir, test_cluster_configured, yaml_files};

#[test]
fn every_v3_example_renders_objects_the_api_server_accepts() {
    if !test_cluster_configured() {
        return;
    }
    let mut failures = Vec::new();
    let examples = yaml_files("specs/v3/data/examples");
    for example in examples.iter().filter(|f| !f.contains("invalid_")) {
        let stem = example
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".yml");
        let name = format!("dry-{}", stem.replace('_', "-").to_lowercase());
        let rendered = Command::new(env!("CARGO_BIN_EXE_fiaas"))
            .args([
                "render",
                &fixtures_dir().join(example).display().to_string(),
                "--name",
                &name,
            ])
            .args([
                "--ingress-suffix",
                "svc.test.example.com",
                "--use-networkingv1-ingress",
                "--environment",
                "test",
            ])
            .args([
                "--datadog-container-image",
                "dd:1",
                "--strongbox-init-container-image",
                "sb:1",
            ])
            .output()
            .expect("fiaas runs");
        assert!(
            rendered.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let text = String::from_utf8_lossy(&rendered.stdout);
        let served: Vec<&str> = text
            .split("---\n")
            .filter(|doc| !doc.trim().is_empty() && !doc.contains("kind: PodDisruptionBudget"))
            .collect();
        let mut kubectl = Command::new("kubectl")
            .args(["apply", "--dry-run=server", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is installed (tests/cluster/build installs it)");
        kubectl
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("---\n{}", served.join("---\n")).as_bytes())
            .expect("feed kubectl");
        let answer = kubectl.wait_with_output().expect("kubectl finishes");
        let stdout = String::from_utf8_lossy(&answer.stdout);
        if !answer.status.success() || stdout.matches("(server dry run)").count() != served.len() {
            failures.push(format!(
                "{example}: {stdout}{}",
                String::from_utf8_lossy(&answer.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_install_manifests_apply_to_a_real_api_server() {
    if !test_cluster_configured() {
        return;
    }
    let deploy_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy");
    let answer = Command::new("kubectl")
        .args(["apply", "-k", deploy_dir, "--dry-run=server"])
        .output()
        .expect("kubectl is installed");
    let stdout = String::from_utf8_lossy(&answer.stdout);
    assert!(
        answer.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&answer.stderr)
    );
    for kind in [
        "customresourcedefinition",
        "serviceaccount",
        "role.rbac",
        "clusterrole.rbac",
        "configmap",
        "deployment.apps",
        "service/",
    ] {
        assert!(stdout.contains(kind), "{kind} missing from: {stdout}");
    }
}
