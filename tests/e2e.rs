//! The e2e and bootstrap cases of upstream `tests/fiaas_deploy_daemon/test_e2e.py` and
//! `test_bootstrap_e2e.py` as data: inputs, daemon
//! flags, expected files with their placeholders filled in. Shared by the golden tests (render
//! only) and the live tests (applied to the test cluster).

use fiaas_transform::Kind;
use serde_json::{Value, json};

use crate::load_yaml;

/// The Application uid the golden tests use (the live tests use the real one).
pub const UID: &str = "5e7a1c2e-0000-4000-8000-00000000e2e0";

/// Daemon flags of the upstream e2e clusters (`prepare_fdd` in test_e2e.py), without the
/// service type.
const E2E_FLAGS: &[&str] = &[
    "--ingress-suffix",
    "svc.test.example.com",
    "--environment",
    "test",
    "--datadog-container-image",
    "DATADOG_IMAGE:tag",
    "--strongbox-init-container-image",
    "STRONGBOX_IMAGE",
    "--secret-init-containers",
    "parameter-store=PARAM_STORE_IMAGE",
    "--tls-certificate-issuer-type-overrides",
    "use-issuer.example.com=certmanager.k8s.io/issuer",
    "--use-ingress-tls",
    "default_off",
    "--enable-crd-support",
    "--use-apiextensionsv1-crd",
    "--include-status-in-app",
];

/// Which upstream test cluster a case ran on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cluster {
    /// The `fdd` fixture of test_e2e.py, with this service type.
    Main(&'static str),
    /// The `fdd_service_account` fixture: ClusterIP and a ServiceAccount per app.
    ServiceAccount,
    /// The bootstrap run of test_bootstrap_e2e.py.
    Bootstrap,
}

/// One pairing of an input with expected objects.
#[derive(Clone, Debug)]
pub struct Case {
    /// Input, relative to `fixtures/specs/`.
    pub input: &'static str,
    /// Application name.
    pub name: &'static str,
    /// The Application's `additional_labels`.
    pub labels: Option<Value>,
    /// (kind, expected file for networking.k8s.io/v1 runs, file for extensions/v1beta1 runs).
    pub expected: Vec<(Kind, &'static str, &'static str)>,
    /// Kinds upstream asserts do not exist.
    pub absent: Vec<Kind>,
}

/// The same expected file for both Ingress APIs.
pub fn both(kind: Kind, file: &'static str) -> (Kind, &'static str, &'static str) {
    (kind, file, file)
}

/// The additional labels of the `custom_resource_definition` cases v3-data-examples-v3 and
/// -full with the given `pod` entry.
pub fn v3minimal_labels(pod: Value) -> Value {
    json!({"global": {"global/label": "true"}, "deployment": {"deployment/label": "true"},
        "horizontal_pod_autoscaler": {"horizontal-pod-autoscaler/label": "true"},
        "ingress": {"ingress/label": "true"}, "service": {"service/label": "true"},
        "pod": pod, "status": {"status/label": "true"}})
}

/// A case whose expected files follow the `<prefix>-<kind>.yml` naming.
pub fn case(input: &'static str, name: &'static str, prefix: &'static str, kinds: &[Kind]) -> Case {
    let expected = kinds
        .iter()
        .map(|kind| {
            let (v1, v1beta1): (String, String) = match kind {
                Kind::Service => (
                    format!("{prefix}-service.yml"),
                    format!("{prefix}-service.yml"),
                ),
                Kind::Deployment => (
                    format!("{prefix}-deployment.yml"),
                    format!("{prefix}-deployment.yml"),
                ),
                Kind::HorizontalPodAutoscaler => {
                    (format!("{prefix}-hpa.yml"), format!("{prefix}-hpa.yml"))
                }
                Kind::ServiceAccount => (
                    format!("{prefix}-service-account.yml"),
                    format!("{prefix}-service-account.yml"),
                ),
                _ => (
                    format!("{prefix}-networkingv1-ingress.yml"),
                    format!("{prefix}-ingress.yml"),
                ),
            };
            (
                *kind,
                &*Box::leak(v1.into_boxed_str()),
                &*Box::leak(v1beta1.into_boxed_str()),
            )
        })
        .collect();
    Case {
        input,
        name,
        labels: None,
        expected,
        absent: Vec::new(),
    }
}

use Kind::{
    Deployment as D, HorizontalPodAutoscaler as H, Ingress as I, Service as S, ServiceAccount as SA,
};

/// The `custom_resource_definition` and `test_multiple_ingresses` cases of test_e2e.py (run on
/// the ClusterIP and NodePort clusters).
pub fn main_cases() -> Vec<Case> {
    let mut v3minimal = case(
        "v3/data/examples/v3minimal.yml",
        "v3-data-examples-v3minimal",
        "v3minimal",
        &[S, D, I, H],
    );
    v3minimal.labels = Some(v3minimal_labels(json!({"pod/label": "true"})));
    v3minimal.absent = vec![SA];
    let mut full = case(
        "v3/data/examples/full.yml",
        "v3-data-examples-full",
        "v3full",
        &[S, D, I, H],
    );
    full.labels = Some(v3minimal_labels(
        json!({"pod/label": "true", "s": "override"}),
    ));
    let mut v2minimal = case(
        "data/v2minimal.yml",
        "data-v2minimal",
        "v2minimal",
        &[S, D, I],
    );
    v2minimal.absent = vec![SA, H];
    vec![
        v2minimal,
        case(
            "v2/data/examples/host.yml",
            "v2-data-examples-host",
            "host",
            &[S, D, I],
        ),
        case(
            "v2/data/examples/exec_config.yml",
            "v2-data-examples-exec-config",
            "exec",
            &[S, D, I],
        ),
        case(
            "v2/data/examples/tcp_ports.yml",
            "v2-data-examples-tcp-ports",
            "tcp_ports",
            &[S, D],
        ),
        case(
            "v2/data/examples/single_tcp_port.yml",
            "v2-data-examples-single-tcp-port",
            "single_tcp_port",
            &[S, D],
        ),
        case(
            "v2/data/examples/partial_override.yml",
            "v2-data-examples-partial-override",
            "partial_override",
            &[S, D, I, H],
        ),
        v3minimal,
        full,
        case(
            "v3/data/examples/multiple_hosts_multiple_paths.yml",
            "v3-data-examples-multiple-hosts-multiple-paths",
            "multiple_hosts_multiple_paths",
            &[S, D, I, H],
        ),
        case(
            "v3/data/examples/strongbox.yml",
            "v3-data-examples-strongbox",
            "strongbox",
            &[S, D, I, H],
        ),
        case(
            "v3/data/examples/secrets.yml",
            "v3-data-examples-secrets",
            "secrets",
            &[D],
        ),
        Case {
            expected: vec![both(D, "single-replica-singleton.yml")],
            ..case(
                "v3/data/examples/single-replica-singleton.yml",
                "v3-data-examples-single-replica-singleton",
                "",
                &[],
            )
        },
        Case {
            expected: vec![both(D, "single-replica-not-singleton.yml")],
            ..case(
                "v3/data/examples/single-replica-not-singleton.yml",
                "v3-data-examples-single-replica-not-singleton",
                "",
                &[],
            )
        },
        case(
            "v3/data/examples/tls_enabled.yml",
            "v3-data-examples-tls-enabled",
            "tls",
            &[S, D, I, H],
        ),
        Case {
            expected: vec![
                both(S, "tls-service-cert-issuer.yml"),
                both(D, "tls-deployment-cert-issuer.yml"),
                (
                    I,
                    "tls-networkingv1-ingress-cert-issuer.yml",
                    "tls-ingress-cert-issuer.yml",
                ),
                both(H, "tls-hpa-cert-issuer.yml"),
            ],
            ..case(
                "v3/data/examples/tls_enabled_cert_issuer.yml",
                "v3-data-examples-tls-enabled-cert-issuer",
                "",
                &[],
            )
        },
        Case {
            expected: vec![(
                I,
                "tls-networkingv1-ingress-multiple.yml",
                "tls-ingress-multiple.yml",
            )],
            ..case(
                "v3/data/examples/tls_enabled_multiple.yml",
                "v3-data-examples-tls-enabled-multiple",
                "",
                &[],
            )
        },
        // test_multiple_ingresses: two ingresses each.
        Case {
            expected: vec![
                (
                    I,
                    "multiple_networkingv1-ingress.yml",
                    "multiple_ingress1.yml",
                ),
                (
                    I,
                    "multiple_networkingv1-ingress2.yml",
                    "multiple_ingress2.yml",
                ),
            ],
            ..case(
                "v3/data/examples/multiple_ingress.yml",
                "v3-data-examples-multiple-ingress",
                "",
                &[],
            )
        },
        Case {
            expected: vec![
                (
                    I,
                    "multiple_networkingv1-ingress_default_host1.yml",
                    "multiple_ingress_default_host1.yml",
                ),
                (
                    I,
                    "multiple_networkingv1-ingress_default_host2.yml",
                    "multiple_ingress_default_host2.yml",
                ),
            ],
            ..case(
                "v3/data/examples/multiple_ingress_default_host.yml",
                "v3-data-examples-multiple-ingress-default-host",
                "",
                &[],
            )
        },
        Case {
            expected: vec![
                (
                    I,
                    "tls_issuer_networkingv1_override1.yml",
                    "tls_issuer_override1.yml",
                ),
                (
                    I,
                    "tls_issuer_networkingv1_override2.yml",
                    "tls_issuer_override2.yml",
                ),
            ],
            ..case(
                "v3/data/examples/tls_issuer_override.yml",
                "v3-data-examples-tls-issuer-override",
                "",
                &[],
            )
        },
    ]
}

/// The `custom_resource_definition_service_account` cases of test_e2e.py.
pub fn service_account_cases() -> Vec<Case> {
    let mut v3minimal = case(
        "v3/data/examples/v3minimal.yml",
        "v3-data-examples-v3minimal",
        "v3minimal",
        &[S, D, I, H, SA],
    );
    v3minimal.labels = Some(v3minimal_labels(json!({"pod/label": "true"})));
    vec![
        case(
            "data/v2minimal.yml",
            "data-v2minimal",
            "v2minimal",
            &[S, D, I, SA],
        ),
        v3minimal,
    ]
}

/// The first case of test_bootstrap_e2e.py, the only one upstream effectively asserts.
pub fn bootstrap_case() -> Case {
    let mut c = case(
        "v2/data/examples/v2bootstrap.yml",
        "specs-v2-data-examples-v2bootstrap",
        "v2bootstrap",
        &[S, D, I],
    );
    c.absent = vec![H];
    c
}

/// One deployment of a case.
#[derive(Clone, Debug)]
pub struct Deploy {
    /// Image.
    pub image: &'static str,
    /// Deployment id.
    pub deployment_id: &'static str,
    /// Strongbox groups set in the config before deploying (the strongbox case's second deploy
    /// in test_e2e.py).
    pub strongbox_groups: Option<Vec<&'static str>>,
}

impl Deploy {
    /// The first deploy of a test_e2e.py case.
    pub fn first() -> Self {
        Deploy {
            image: "finntech/application-name:123",
            deployment_id: "deployment_id_1",
            strongbox_groups: None,
        }
    }

    /// The second deploy of a `custom_resource_definition` case.
    pub fn second(case: &Case) -> Self {
        Deploy {
            image: "finntech/application-name:321",
            deployment_id: "deployment_id_2",
            strongbox_groups: case.name.contains("strongbox").then(|| vec!["foo", "bar"]),
        }
    }

    /// The bootstrap deploy of test_bootstrap_e2e.py.
    pub fn bootstrap() -> Self {
        Deploy {
            image: "nginx:1.13.9-alpine",
            deployment_id: "1",
            strongbox_groups: None,
        }
    }
}

/// The daemon command line of a cluster (program name first).
pub fn flags(cluster: Cluster, networking_v1: bool) -> Vec<&'static str> {
    let mut args = vec!["fiaas"];
    match cluster {
        Cluster::Main(service_type) => {
            args.extend(E2E_FLAGS);
            args.extend(["--service-type", service_type]);
        }
        Cluster::ServiceAccount => {
            args.extend(E2E_FLAGS);
            args.extend([
                "--service-type",
                "ClusterIP",
                "--enable-service-account-per-app",
            ]);
        }
        Cluster::Bootstrap => args.extend([
            "--enable-crd-support",
            "--use-apiextensionsv1-crd",
            "--include-status-in-app",
        ]),
    }
    if networking_v1 {
        args.push("--use-networkingv1-ingress");
    }
    args
}

/// The expected file with its placeholders filled in (as `_construct_expected` in test_e2e.py);
/// `uid` is the Application's.
pub fn expected_object(
    file: &str,
    cluster: Cluster,
    deploy: &Deploy,
    app: &str,
    uid: &str,
) -> Value {
    let dir = if cluster == Cluster::Bootstrap {
        "bootstrap_e2e_expected"
    } else {
        "e2e_expected"
    };
    let mut object = load_yaml(&format!("{dir}/{file}"));
    let tag = deploy
        .image
        .rsplit_once(':')
        .map(|(_, t)| t)
        .unwrap_or_default();
    let set_labels = |labels: Option<&mut Value>| {
        if let Some(Value::Object(labels)) = labels {
            labels.insert("fiaas/version".into(), tag.into());
            labels.insert("fiaas/deployment_id".into(), deploy.deployment_id.into());
        }
    };
    set_labels(object.pointer_mut("/metadata/labels"));
    set_labels(object.pointer_mut("/spec/template/metadata/labels"));
    if let Some(Value::Array(refs)) = object.pointer_mut("/metadata/ownerReferences") {
        refs.iter_mut()
            .filter_map(Value::as_object_mut)
            .for_each(|r| {
                r.insert("uid".into(), uid.into());
            });
    }
    if let Some(Value::Object(main)) = object.pointer_mut("/spec/template/spec/containers/0") {
        main.insert("image".into(), deploy.image.into());
        if let Some(Value::Array(env)) = main.get_mut("env") {
            for var in env.iter_mut().filter_map(Value::as_object_mut) {
                match var.get("name").and_then(Value::as_str) {
                    Some("VERSION" | "FIAAS_VERSION") => {
                        var.insert("value".into(), tag.into());
                    }
                    Some("IMAGE" | "FIAAS_IMAGE") => {
                        var.insert("value".into(), deploy.image.into());
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(groups) = &deploy.strongbox_groups
        && let Some(Value::Array(env)) =
            object.pointer_mut("/spec/template/spec/initContainers/0/env")
    {
        for var in env.iter_mut().filter_map(Value::as_object_mut) {
            if var.get("name").and_then(Value::as_str) == Some("SECRET_GROUPS") {
                var.insert("value".into(), groups.join(",").into());
            }
        }
    }
    let service_type = match cluster {
        Cluster::Main(service_type) => service_type,
        Cluster::ServiceAccount | Cluster::Bootstrap => "ClusterIP",
    };
    if let Some(t) = object.pointer_mut("/spec/type") {
        *t = service_type.into();
    }
    if cluster == Cluster::ServiceAccount
        && let Some(account) = object.pointer_mut("/spec/template/spec/serviceAccountName")
    {
        *account = app.into();
    }
    object
}

/// The input fiaas.yml of a case for a deploy (with the deploy's config changes).
pub fn input_document(case: &Case, deploy: &Deploy) -> Value {
    let mut document = load_yaml(&format!("specs/{}", case.input));
    if let Some(groups) = &deploy.strongbox_groups {
        document["extensions"]["strongbox"]["groups"] = json!(groups);
    }
    document
}

/// The kind of a rendered or live object's JSON.
pub fn kind_of(object: &Value) -> Option<Kind> {
    Some(match object.get("kind")?.as_str()? {
        "Service" => Kind::Service,
        "Deployment" => Kind::Deployment,
        "Ingress" => Kind::Ingress,
        "HorizontalPodAutoscaler" => Kind::HorizontalPodAutoscaler,
        "ServiceAccount" => Kind::ServiceAccount,
        "PodDisruptionBudget" => Kind::PodDisruptionBudget,
        "RoleBinding" => Kind::RoleBinding,
        _ => return None,
    })
}
