//! The `fiaas` command line on the upstream examples.

use std::process::{Command, Output};

use fiaas_spec::python;
use fiaas_tests::{fixtures_dir, load_yaml, yaml_files};

fn fiaas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fiaas"))
        .args(args)
        .output()
        .expect("the fiaas binary runs")
}

fn path(relative: &str) -> String {
    fixtures_dir().join(relative).display().to_string()
}

const INVALID: &[(&str, &str)] = &[
    (
        "specs/v3/data/examples/invalid_ingress_port_name.yml",
        "ingress[0].paths[0].port",
    ),
    (
        "specs/v3/data/examples/invalid_ingress_port_number.yml",
        "ingress[0].paths[0].port",
    ),
    (
        "specs/v3/data/examples/invalid_no_health_check_defined_http.yml",
        "healthchecks.liveness",
    ),
    (
        "specs/v3/data/examples/invalid_no_health_check_defined_tcp.yml",
        "healthchecks.liveness",
    ),
    (
        "specs/v2/data/examples/no_health_check_defined.yml",
        "healthchecks",
    ),
    (
        "specs/v2/data/examples/ports_empty_list.yml",
        "Index 0 out of bounds",
    ),
    ("specs/data/invalid.yml", "not valid YAML"),
];

#[test]
fn validate_accepts_every_valid_example_and_rejects_every_invalid_one_naming_the_field() {
    for example in yaml_files("specs")
        .iter()
        .filter(|f| !f.contains("transformations"))
    {
        let output = fiaas(&["validate", &path(example)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match INVALID.iter().find(|(file, _)| file == example) {
            Some((_, field)) => {
                assert_eq!(output.status.code(), Some(1), "{example} must be rejected");
                assert!(
                    stderr.contains(field),
                    "{example}: {stderr} does not name {field}"
                );
            }
            None => assert!(output.status.success(), "{example}: {stderr}"),
        }
    }
}

#[test]
fn validate_reports_every_bad_file_and_fails() {
    let output = fiaas(&[
        "validate",
        &path(INVALID[0].0),
        &path("specs/v3/data/examples/v3minimal.yml"),
        &path(INVALID[2].0),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("invalid_ingress_port_name.yml")
            && stderr.contains("invalid_no_health_check_defined_http.yml"),
        "{stderr}"
    );
    assert!(!stderr.contains("v3minimal.yml"), "{stderr}");
}

#[test]
fn validate_warns_about_the_non_booleans_it_accepts() {
    let output = fiaas(&[
        "validate",
        &path("render/bool-singleton-quoted-false/app.yml"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: replicas.singleton: 'false' is not a boolean; read as true"),
        "{stderr}"
    );
}

#[test]
fn validate_warns_about_what_upstream_deploys_and_strict_rejects_it() {
    let cases: &[(&str, &str)] = &[
        (
            "lenient-port-protocol-upper-tcp",
            "ports[0].protocol: 'TCP' is neither 'http' nor 'tcp'",
        ),
        (
            "lenient-probe-zero-timeout-and-success",
            "healthchecks.liveness.timeout_seconds: 0 is passed on",
        ),
        (
            "lenient-cpu-threshold-zero-no-hpa",
            "replicas.cpu_threshold_percentage: 0 is less than 1",
        ),
        (
            "lenient-strongbox-groups-string",
            "extensions.strongbox.groups: 'abc' is not a list; read as the groups ['a', 'b', 'c']",
        ),
        (
            "lenient-prometheus-port-true",
            "metrics.prometheus.port: True is not a port name or number; read as 1",
        ),
        (
            "lenient-prometheus-port-float",
            "metrics.prometheus.port: 9100.9 is not a port name or number; read as 9100",
        ),
        (
            "lenient-secret-parameter-null",
            "extensions.secrets.parameter-store.parameters.A: null",
        ),
    ];
    for (case, message) in cases {
        let file = path(&format!("render/{case}/app.yml"));
        let output = fiaas(&["validate", &file]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{case}: {stderr}");
        assert!(
            stderr.contains(&format!("warning: {message}")),
            "{case}: {stderr}"
        );
        let output = fiaas(&["validate", "--strict", &file]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains(&format!("error: {message}")),
            "{case}: {stderr}"
        );
    }
    let output = fiaas(&[
        "validate",
        "--strict",
        &path("specs/v3/data/examples/v3minimal.yml"),
    ]);
    assert!(output.status.success());
}

#[test]
fn validate_still_rejects_an_autoscaler_without_a_cpu_threshold() {
    let dir = std::env::temp_dir().join(format!("fiaas-cli-hpa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("fiaas.yml");
    std::fs::write(
        &file,
        "version: 3\nreplicas: {minimum: 2, maximum: 4, cpu_threshold_percentage: 0}\n",
    )
    .expect("temp file");
    let output = fiaas(&["validate", &file.display().to_string()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("replicas.cpu_threshold_percentage"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn migrate_equals_the_upstream_transformations_in_both_modes() {
    for expected_file in yaml_files("specs/v2/data/transformations") {
        let strip = expected_file.contains("strip_defaults");
        let name = expected_file.rsplit('/').next().unwrap_or_default();
        let input = if name == "v2minimal.yml" {
            "specs/data/v2minimal.yml".to_owned()
        } else {
            format!("specs/v2/data/examples/{name}")
        };
        let mut args = vec!["migrate".to_owned(), path(&input)];
        if strip {
            args.push("--strip-defaults".to_owned());
        }
        let output = fiaas(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            output.status.success(),
            "{input}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let actual = fiaas_spec::parse_document(&String::from_utf8_lossy(&output.stdout))
            .expect("migrate prints YAML");
        assert!(
            python::eq(&actual, &load_yaml(&expected_file)),
            "{expected_file}: {actual}"
        );
    }
}

#[test]
fn defaults_and_schema_are_printed() {
    let defaults = fiaas(&["defaults"]);
    assert_eq!(
        String::from_utf8_lossy(&defaults.stdout),
        fiaas_spec::V3_DEFAULTS_YAML
    );
    let schema = fiaas(&["schema"]);
    let parsed: serde_json::Value =
        serde_json::from_slice(&schema.stdout).expect("the schema is JSON");
    assert_eq!(parsed["title"], "fiaas.yml version 3");
}

#[test]
fn crd_validation_changes_only_the_applications_config_schema() {
    let documents = |args: &[&str]| -> Vec<serde_json::Value> {
        let output = fiaas(args);
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout)
            .split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| fiaas_spec::parse_document(d).expect("a CRD"))
            .collect()
    };
    let plain = documents(&["crd"]);
    let mut validating = documents(&["crd", "--crd-validation"]);
    assert_eq!(plain.len(), 2);
    let config = |crds: &mut Vec<serde_json::Value>| {
        crds[0]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["config"]
            .take()
    };
    let schema = config(&mut validating);
    assert_eq!(schema["required"], serde_json::json!(["version"]));
    assert_eq!(
        schema["properties"]["replicas"]["properties"]["minimum"]["type"],
        "integer"
    );
    assert_eq!(
        config(&mut plain.clone()),
        serde_json::json!({"type": "object", "nullable": true,
            "x-kubernetes-preserve-unknown-fields": true})
    );
    let mut plain = plain;
    config(&mut plain);
    assert_eq!(plain, validating, "everything else is the same");
}

#[test]
fn render_prints_nothing_on_stdout_for_invalid_input() {
    let output = fiaas(&[
        "render",
        &path(INVALID[0].0),
        "--name",
        "x",
        "--ingress-suffix",
        "svc.test.example.com",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("ingress[0].paths[0].port"));
}

#[test]
fn render_takes_an_application_resource_and_prints_a_json_list() {
    let dir = std::env::temp_dir().join(format!("fiaas-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("application.yml");
    std::fs::write(
        &file,
        "apiVersion: fiaas.schibsted.io/v1\nkind: Application\nmetadata:\n  name: hello\n  namespace: web\n  uid: 11111111-2222-3333-4444-555555555555\n  labels: {fiaas/deployment_id: abc}\nspec:\n  application: hello\n  image: example/hello:7\n  config:\n    version: 3\n  additional_labels:\n    global: {team: web}\n",
    )
    .expect("write the Application");
    let output = fiaas(&[
        "render",
        &file.display().to_string(),
        "-o",
        "json",
        "--use-networkingv1-ingress",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
    assert_eq!(list["kind"], "List");
    let deployment = list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["kind"] == "Deployment"))
        .expect("a Deployment");
    assert_eq!(deployment["metadata"]["namespace"], "web");
    assert_eq!(
        deployment["metadata"]["labels"]["fiaas/deployment_id"],
        "abc"
    );
    assert_eq!(deployment["metadata"]["labels"]["team"], "web");
    assert_eq!(
        deployment["metadata"]["ownerReferences"][0]["uid"],
        "11111111-2222-3333-4444-555555555555"
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "example/hello:7"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn render_writes_the_hpa_in_the_autoscaling_version_asked_for() {
    let file = path("specs/v3/data/examples/v3minimal.yml");
    let hpa = |version: Option<&str>| {
        let mut args = vec!["render", file.as_str(), "--name", "scaled", "-o", "json"];
        if let Some(version) = version {
            args.extend(["--autoscaling-version", version]);
        }
        let output = fiaas(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let list: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON output");
        list["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i["kind"] == "HorizontalPodAutoscaler")
                    .cloned()
            })
            .expect("an HPA")
    };
    let default = hpa(None);
    assert_eq!(default["apiVersion"], "autoscaling/v1", "the upstream's");
    assert_eq!(default, hpa(Some("v1")));
    let threshold = &default["spec"]["targetCPUUtilizationPercentage"];
    for (flag, api_version) in [("v2", "autoscaling/v2"), ("v2beta2", "autoscaling/v2beta2")] {
        let hpa = hpa(Some(flag));
        assert_eq!(hpa["apiVersion"], api_version);
        assert_eq!(hpa["metadata"], default["metadata"]);
        assert_eq!(
            &hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            threshold
        );
    }
    let refused = fiaas(&["render", &file, "--autoscaling-version", "v2beta1"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--autoscaling-version"));
}

#[test]
fn render_is_deterministic() {
    let args = [
        "render",
        &path("specs/v3/data/examples/full.yml"),
        "--name",
        "full",
        "--datadog-container-image",
        "dd:1",
    ];
    assert_eq!(fiaas(&args).stdout, fiaas(&args).stdout);
}

#[test]
fn a_bad_daemon_flag_is_an_error_naming_it() {
    let output = fiaas(&[
        "render",
        &path("specs/v3/data/examples/v3minimal.yml"),
        "--name",
        "x",
        "--pre-stop-delay",
        "soon",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--pre-stop-delay"));
}

#[test]
fn render_takes_abbreviated_daemon_flags_like_argparse() {
    let render = |flags: &[&str]| {
        let mut args = vec![
            "render",
            "specs/v3/data/examples/v3minimal.yml",
            "--name",
            "x",
            "--output",
            "json",
        ];
        args.extend_from_slice(flags);
        let fixture = path(args[1]);
        args[1] = &fixture;
        fiaas(&args)
    };
    let full = render(&[
        "--environment",
        "prod",
        "--use-networkingv1-ingress",
        "--ingress-suffix",
        "svc.example.com",
    ]);
    let abbreviated = render(&[
        "--environ",
        "prod",
        "--use-networkingv1",
        "--ingress-suff=svc.example.com",
    ]);
    assert!(full.status.success());
    assert!(
        abbreviated.status.success(),
        "{}",
        String::from_utf8_lossy(&abbreviated.stderr)
    );
    assert_eq!(abbreviated.stdout, full.stdout);
    // `--use-in` could be --use-in-memory-emptydirs or --use-ingress-tls.
    let ambiguous = render(&["--use-in"]);
    assert_eq!(ambiguous.status.code(), Some(2));
}

#[test]
fn help_lists_every_subcommand() {
    let output = fiaas(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "validate", "migrate", "defaults", "schema", "crd", "render", "diff",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} missing from: {help}"
        );
    }
}
