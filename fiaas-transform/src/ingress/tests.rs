//! Expectations come from the upstream daemon (the differential oracle run on the fiaas.yml
//! quoted in each test), listed in upstream's creation order.

use std::collections::BTreeMap;

use fiaas_spec::{
    AppSpec, AutoscalerSpec, CheckAction, CheckSpec, DatadogSpec, HealthChecksSpec,
    IngressItemSpec, IngressPathMappingSpec, IngressTlsSpec, PortRef, PortSpec, PrometheusSpec,
    Protocol, ResourcesSpec, StrongboxSpec,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::ingresses;
use crate::error::TransformError;
use crate::meta;
use fiaas_config::TransformSettings;

const SUFFIXES: [&str; 2] = ["svc.test.example.com", "127.0.0.1.xip.io"];

fn port(protocol: Protocol, name: &str, port: i32) -> PortSpec {
    PortSpec {
        protocol,
        name: name.to_owned(),
        port,
        target_port: 8080,
    }
}

fn check(path: &str) -> CheckSpec {
    CheckSpec {
        action: CheckAction::Http {
            path: path.to_owned(),
            port: PortRef::Name("http".to_owned()),
            http_headers: Vec::new(),
        },
        initial_delay_seconds: 10,
        period_seconds: 10,
        success_threshold: 1,
        failure_threshold: 3,
        timeout_seconds: 1,
    }
}

/// What `version: 3` alone means for app `testapp` (image `img:1`, uid `u1`, id `d1`).
fn app() -> AppSpec {
    AppSpec {
        uid: Some("u1".to_owned()),
        namespace: "default".to_owned(),
        name: "testapp".to_owned(),
        image: "img:1".to_owned(),
        autoscaler: AutoscalerSpec {
            enabled: true,
            min_replicas: 2,
            max_replicas: 5,
            cpu_threshold_percentage: 50,
        },
        resources: ResourcesSpec::default(),
        admin_access: false,
        secrets_in_environment: false,
        prometheus: PrometheusSpec {
            enabled: true,
            scrape: "true".to_owned(),
            port: PortRef::Name("http".to_owned()),
            path: "/_/metrics".to_owned(),
        },
        datadog: DatadogSpec {
            enabled: false,
            tags: serde_json::Map::new(),
        },
        ports: vec![port(Protocol::Http, "http", 80)],
        health_checks: HealthChecksSpec {
            liveness: check("/_/health"),
            readiness: check("/_/ready"),
        },
        teams: Vec::new(),
        tags: Vec::new(),
        deployment_id: "d1".to_owned(),
        labels: Default::default(),
        annotations: Default::default(),
        ingresses: vec![item(None, &[("/", 80)])],
        strongbox: StrongboxSpec {
            enabled: false,
            iam_role: None,
            aws_region: "eu-west-1".to_owned(),
            groups: None,
        },
        singleton: false,
        ingress_tls: IngressTlsSpec::default(),
        secrets: Vec::new(),
        app_config: Value::Null,
    }
}

fn app_with(ingresses: Vec<IngressItemSpec>) -> AppSpec {
    AppSpec { ingresses, ..app() }
}

fn item(host: Option<&str>, paths: &[(&str, i32)]) -> IngressItemSpec {
    IngressItemSpec {
        host: host.map(str::to_owned),
        pathmappings: paths
            .iter()
            .map(|(path, port)| IngressPathMappingSpec {
                path: (*path).to_owned(),
                port: *port,
            })
            .collect(),
        annotations: BTreeMap::new(),
    }
}

/// An item with host and path `/` on port 80, as `- host: <host>` means.
fn host(host: &str) -> IngressItemSpec {
    item(Some(host), &[("/", 80)])
}

fn annotated(mut item: IngressItemSpec, annotations: &[(&str, &str)]) -> IngressItemSpec {
    item.annotations = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Some((*v).to_owned())))
        .collect();
    item
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The daemon's configuration for these flags (nothing else: no config file).
fn daemon(flags: &[&str]) -> TransformSettings {
    let argv = std::iter::once("fiaas-deploy-daemon").chain(flags.iter().copied());
    fiaas_config::ClusterConfig::from_args(argv, None)
        .expect("valid flags")
        .transform
}

/// `--ingress-suffix svc.test.example.com --ingress-suffix 127.0.0.1.xip.io
/// --use-networkingv1-ingress` and `flags`.
fn config(flags: &[&str]) -> TransformSettings {
    let mut all = vec![
        "--ingress-suffix",
        SUFFIXES[0],
        "--ingress-suffix",
        SUFFIXES[1],
        "--use-networkingv1-ingress",
    ];
    all.extend_from_slice(flags);
    daemon(&all)
}

fn run(app: &AppSpec, config: &TransformSettings) -> Result<Vec<Value>, TransformError> {
    let labels = meta::fiaas_labels(app, "");
    Ok(ingresses(app, config, &labels)?
        .iter()
        .map(|object| object.to_json())
        .collect())
}

/// `name | annotations | host path:port … ; … | secret: hosts ; …`, for either API version.
fn summary(ingress: &Value) -> String {
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let annotations = ingress["metadata"]["annotations"]
        .as_object()
        .map(|annotations| {
            let sorted: BTreeMap<_, _> = annotations.iter().collect();
            sorted
                .iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(";")
        })
        .unwrap_or_default();
    let rules = ingress["spec"]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| {
            let mut line = text(&rule["host"]);
            for path in rule["http"]["paths"].as_array().into_iter().flatten() {
                let backend = &path["backend"];
                let port = if backend["service"].is_null() {
                    &backend["servicePort"]
                } else {
                    &backend["service"]["port"]["number"]
                };
                line.push_str(&format!(" {}:{}", text(&path["path"]), text(port)));
            }
            line
        })
        .collect::<Vec<_>>()
        .join(" ; ");
    let tls = ingress["spec"]["tls"]
        .as_array()
        .expect("tls")
        .iter()
        .map(|entry| {
            let hosts: Vec<String> = entry["hosts"]
                .as_array()
                .expect("hosts")
                .iter()
                .map(text)
                .collect();
            format!("{}: {}", text(&entry["secretName"]), hosts.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" ; ");
    format!(
        "{} | {annotations} | {rules} | {tls}",
        text(&ingress["metadata"]["name"])
    )
}

fn summaries(app: &AppSpec, config: &TransformSettings) -> Vec<String> {
    run(app, config)
        .expect("ingresses")
        .iter()
        .map(summary)
        .collect()
}

// version: 3 (default hosts only), networking.k8s.io/v1.
#[test]
fn default_hosts_networking_v1() {
    let expected = json!([{
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {
            "annotations": {"fiaas/expose": "false"},
            "labels": {"app": "testapp", "fiaas/deployed_by": "", "fiaas/deployment_id": "d1", "fiaas/version": "1"},
            "name": "testapp", "namespace": "default",
            "ownerReferences": [{"apiVersion": "fiaas.schibsted.io/v1", "blockOwnerDeletion": true, "controller": true, "kind": "Application", "name": "testapp", "uid": "u1"}]
        },
        "spec": {
            "rules": [
                {"host": "testapp.svc.test.example.com", "http": {"paths": [{"backend": {"service": {"name": "testapp", "port": {"number": 80}}}, "path": "/", "pathType": "ImplementationSpecific"}]}},
                {"host": "testapp.127.0.0.1.xip.io", "http": {"paths": [{"backend": {"service": {"name": "testapp", "port": {"number": 80}}}, "path": "/", "pathType": "ImplementationSpecific"}]}}
            ],
            "tls": []
        }
    }]);
    assert_eq!(Value::Array(run(&app(), &config(&[])).unwrap()), expected);
}

// version: 3, without --use-networkingv1-ingress.
#[test]
fn default_hosts_extensions_v1beta1() {
    let config = daemon(&[
        "--ingress-suffix",
        SUFFIXES[0],
        "--ingress-suffix",
        SUFFIXES[1],
    ]);
    let expected = json!([{
        "apiVersion": "extensions/v1beta1", "kind": "Ingress",
        "metadata": {
            "annotations": {"fiaas/expose": "false"},
            "labels": {"app": "testapp", "fiaas/deployed_by": "", "fiaas/deployment_id": "d1", "fiaas/version": "1"},
            "name": "testapp", "namespace": "default",
            "ownerReferences": [{"apiVersion": "fiaas.schibsted.io/v1", "blockOwnerDeletion": true, "controller": true, "kind": "Application", "name": "testapp", "uid": "u1"}]
        },
        "spec": {
            "rules": [
                {"host": "testapp.svc.test.example.com", "http": {"paths": [{"backend": {"serviceName": "testapp", "servicePort": 80}, "path": "/"}]}},
                {"host": "testapp.127.0.0.1.xip.io", "http": {"paths": [{"backend": {"serviceName": "testapp", "servicePort": 80}, "path": "/"}]}}
            ],
            "tls": []
        }
    }]);
    assert_eq!(Value::Array(run(&app(), &config).unwrap()), expected);
}

// labels: {ingress: {custom: label, app: user-app}}
// annotations: {ingress: {custom: annotation, fiaas/expose: user,
//                         certmanager.k8s.io/cluster-issuer: user}}
// ingress: [{host: www.example.com}, {host: ann.example.com, annotations: {custom: item, other: item}}]
// --use-ingress-tls default_on --tls-certificate-issuer letsencrypt
#[test]
fn labels_annotations_and_tls_annotation_precedence() {
    let mut app = app_with(vec![
        host("www.example.com"),
        annotated(
            host("ann.example.com"),
            &[("custom", "item"), ("other", "item")],
        ),
    ]);
    app.labels.ingress = map(&[("custom", "label"), ("app", "user-app")]);
    app.annotations.ingress = map(&[
        ("custom", "annotation"),
        ("fiaas/expose", "user"),
        ("certmanager.k8s.io/cluster-issuer", "user"),
    ]);
    let config = config(&[
        "--use-ingress-tls",
        "default_on",
        "--tls-certificate-issuer",
        "letsencrypt",
    ]);
    let labels = json!({"app": "testapp", "custom": "label", "fiaas/deployed_by": "", "fiaas/deployment_id": "d1", "fiaas/version": "1"});
    let owner = json!([{"apiVersion": "fiaas.schibsted.io/v1", "blockOwnerDeletion": true, "controller": true, "kind": "Application", "name": "testapp", "uid": "u1"}]);
    let path = json!({"backend": {"service": {"name": "testapp", "port": {"number": 80}}}, "path": "/", "pathType": "ImplementationSpecific"});
    let expected = json!([
        {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {
                "annotations": {"certmanager.k8s.io/cluster-issuer": "letsencrypt", "custom": "annotation", "fiaas/expose": "true"},
                "labels": labels, "name": "testapp", "namespace": "default", "ownerReferences": owner
            },
            "spec": {
                "rules": [
                    {"host": "www.example.com", "http": {"paths": [path]}},
                    {"host": "testapp.svc.test.example.com", "http": {"paths": [path]}},
                    {"host": "testapp.127.0.0.1.xip.io", "http": {"paths": [path]}}
                ],
                "tls": [{"hosts": ["zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io", "www.example.com", "testapp.svc.test.example.com", "testapp.127.0.0.1.xip.io"], "secretName": "testapp-ingress-tls"}]
            }
        },
        {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {
                "annotations": {"certmanager.k8s.io/cluster-issuer": "letsencrypt", "custom": "item", "fiaas/expose": "true", "other": "item"},
                "labels": labels, "name": "testapp-1", "namespace": "default", "ownerReferences": owner
            },
            "spec": {
                "rules": [{"host": "ann.example.com", "http": {"paths": [path]}}],
                "tls": [{"hosts": ["ann.example.com"], "secretName": "testapp-1-ingress-tls"}]
            }
        }
    ]);
    assert_eq!(Value::Array(run(&app, &config).unwrap()), expected);
}

#[test]
fn no_ingress_when_nothing_to_serve() {
    // version: 3, no suffix.
    let no_suffix = daemon(&["--use-networkingv1-ingress"]);
    assert_eq!(run(&app(), &no_suffix).unwrap(), Vec::<Value>::new());
    // Annotated hosts do not count as explicit hosts.
    let only_annotated = app_with(vec![annotated(
        host("internal.example.com"),
        &[("foo/ingress-class", "internal")],
    )]);
    assert_eq!(
        run(&only_annotated, &no_suffix).unwrap(),
        Vec::<Value>::new()
    );
    // ingress: [{host: ""}] counts as explicit, but gives no host, so the Ingress is empty.
    let empty_host = app_with(vec![host("")]);
    assert_eq!(run(&empty_host, &no_suffix).unwrap(), Vec::<Value>::new());
    // No http port.
    let tcp_only = AppSpec {
        ports: vec![port(Protocol::Tcp, "thrift", 7000)],
        ..app()
    };
    assert_eq!(run(&tcp_only, &config(&[])).unwrap(), Vec::<Value>::new());
    // ingress: []
    assert_eq!(
        run(&app_with(Vec::new()), &config(&[])).unwrap(),
        Vec::<Value>::new()
    );
}

// ports: [{name: http, port: 80}, {name: other, port: 5000}]
// ingress:
//   - {host: rewrite.example.com, paths: [{path: /}]}
//   - {host: foo.rewrite.example.com, paths: [{path: /a}, {path: /b, port: other}, {path: /a}]}
//   - {host: bar.svc.test.example.com, paths: [{path: /c, port: 5000}]}
//   - {paths: [{path: /b, port: other}]}
// --host-rewrite-rule rewrite.example.com=test.rewrite.example.com
// --host-rewrite-rule '([a-z0-9](?:[-a-z0-9]*[a-z0-9])?).rewrite.example.com=test.\1.rewrite.example.com'
// --host-rewrite-rule '([\w\.\-]+)\.svc.test.example.com=dont-rewrite-suffix-urls.example.com'
#[test]
fn explicit_hosts_are_rewritten_and_default_hosts_get_every_path() {
    let app = AppSpec {
        ports: vec![
            port(Protocol::Http, "http", 80),
            port(Protocol::Http, "other", 5000),
        ],
        ..app_with(vec![
            host("rewrite.example.com"),
            item(
                Some("foo.rewrite.example.com"),
                &[("/a", 80), ("/b", 5000), ("/a", 80)],
            ),
            item(Some("bar.svc.test.example.com"), &[("/c", 5000)]),
            item(None, &[("/b", 5000)]),
        ])
    };
    let config = config(&[
        "--host-rewrite-rule",
        "rewrite.example.com=test.rewrite.example.com",
        "--host-rewrite-rule",
        r"([a-z0-9](?:[-a-z0-9]*[a-z0-9])?).rewrite.example.com=test.\1.rewrite.example.com",
        "--host-rewrite-rule",
        r"([\w\.\-]+)\.svc.test.example.com=dont-rewrite-suffix-urls.example.com",
    ]);
    assert_eq!(
        summaries(&app, &config),
        [
            "testapp | fiaas/expose=true | test.rewrite.example.com /:80 ; test.foo.rewrite.example.com /a:80 /b:5000 ; dont-rewrite-suffix-urls.example.com /c:5000 ; testapp.svc.test.example.com /:80 /a:80 /b:5000 /c:5000 ; testapp.127.0.0.1.xip.io /:80 /a:80 /b:5000 /c:5000 | "
        ]
    );
}

// ingress: [{host: internal.example.com, annotations: {foo/ingress-class: internal}}]
#[test]
fn annotated_item_gets_own_ingress_and_default_hosts_fall_back_to_http_port() {
    let app = app_with(vec![annotated(
        host("internal.example.com"),
        &[("foo/ingress-class", "internal")],
    )]);
    assert_eq!(
        summaries(&app, &config(&[])),
        [
            "testapp | fiaas/expose=false | testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | ",
            "testapp-1 | fiaas/expose=true;foo/ingress-class=internal | internal.example.com /:80 | ",
        ]
    );
}

// ports: [{name: web}]
// ingress: [{host: internal.example.com, paths: [{port: web}], annotations: {foo/ingress-class: internal}}]
#[test]
fn fallback_mapping_needs_a_port_named_http() {
    let app = AppSpec {
        ports: vec![port(Protocol::Http, "web", 80)],
        ..app_with(vec![annotated(
            host("internal.example.com"),
            &[("foo/ingress-class", "internal")],
        )])
    };
    assert_eq!(
        run(&app, &config(&[])),
        Err(TransformError::InvalidConfiguration(
            "Cannot find http port mapping in application spec".to_owned()
        ))
    );
}

// ports: [{name: http}, {name: other, port: 8000}]
// annotations: {ingress: {some/annotation: val}}
// ingress:
//   - {host: extra.example.com, paths: [{path: /, port: other}], annotations: {some/annotation: some-value}}
//   - {host: extra.example.com, paths: [{path: /_/ipblocked, port: other}], annotations: {some/allowlist: 10.0.0.1/12}}
#[test]
fn each_annotated_item_gets_its_own_ingress() {
    let mut app = AppSpec {
        ports: vec![
            port(Protocol::Http, "http", 80),
            port(Protocol::Http, "other", 8000),
        ],
        ..app_with(vec![
            annotated(
                item(Some("extra.example.com"), &[("/", 8000)]),
                &[("some/annotation", "some-value")],
            ),
            annotated(
                item(Some("extra.example.com"), &[("/_/ipblocked", 8000)]),
                &[("some/allowlist", "10.0.0.1/12")],
            ),
        ])
    };
    app.annotations.ingress = map(&[("some/annotation", "val")]);
    assert_eq!(
        summaries(&app, &config(&[])),
        [
            "testapp | fiaas/expose=false;some/annotation=val | testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | ",
            "testapp-1 | fiaas/expose=true;some/annotation=some-value | extra.example.com /:8000 | ",
            "testapp-2 | fiaas/expose=true;some/allowlist=10.0.0.1/12;some/annotation=val | extra.example.com /_/ipblocked:8000 | ",
        ]
    );
}

/// foo, bar, foo.bar, other, sub.foo, sub.bar, and ann.foo annotated {some: annotation}
/// (all `.example.com`).
fn issuer_test_app() -> AppSpec {
    app_with(vec![
        host("foo.example.com"),
        host("bar.example.com"),
        host("foo.bar.example.com"),
        host("other.example.com"),
        host("sub.foo.example.com"),
        host("sub.bar.example.com"),
        annotated(host("ann.foo.example.com"), &[("some", "annotation")]),
    ])
}

// issuer_test_app
// --tls-certificate-issuer-overrides foo.example.com=issuerOne (bar.example.com=issuerTwo,
// foo.bar.example.com=issuerThree) --tls-certificate-issuer letsencrypt
// --use-ingress-tls default_on
#[test]
fn issuer_name_overrides_split_hosts_into_numbered_ingresses() {
    let config = config(&[
        "--tls-certificate-issuer-overrides",
        "foo.example.com=issuerOne",
        "--tls-certificate-issuer-overrides",
        "bar.example.com=issuerTwo",
        "--tls-certificate-issuer-overrides",
        "foo.bar.example.com=issuerThree",
        "--tls-certificate-issuer",
        "letsencrypt",
        "--use-ingress-tls",
        "default_on",
    ]);
    // Annotated Ingresses come before issuer groups, though named after them.
    assert_eq!(
        summaries(&issuer_test_app(), &config),
        [
            "testapp | certmanager.k8s.io/cluster-issuer=letsencrypt;fiaas/expose=true | other.example.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io other.example.com testapp.svc.test.example.com testapp.127.0.0.1.xip.io",
            "testapp-4 | certmanager.k8s.io/cluster-issuer=issuerOne;fiaas/expose=true;some=annotation | ann.foo.example.com /:80 | testapp-4-ingress-tls: ann.foo.example.com",
            "testapp-1 | certmanager.k8s.io/cluster-issuer=issuerOne;fiaas/expose=true | foo.example.com /:80 ; sub.foo.example.com /:80 | testapp-1-ingress-tls: foo.example.com sub.foo.example.com",
            "testapp-2 | certmanager.k8s.io/cluster-issuer=issuerTwo;fiaas/expose=true | bar.example.com /:80 ; sub.bar.example.com /:80 | testapp-2-ingress-tls: bar.example.com sub.bar.example.com",
            "testapp-3 | certmanager.k8s.io/cluster-issuer=issuerThree;fiaas/expose=true | foo.bar.example.com /:80 | testapp-3-ingress-tls: foo.bar.example.com",
        ]
    );
}

const ISSUER_TYPE_OVERRIDES: [&str; 6] = [
    "--tls-certificate-issuer-type-overrides",
    "foo.example.com=certmanager.k8s.io/issuer",
    "--tls-certificate-issuer-type-overrides",
    "bar.example.com=certmanager.k8s.io/cluster-issuer",
    "--tls-certificate-issuer-type-overrides",
    "foo.bar.example.com=certmanager.k8s.io/issuer",
];

// issuer_test_app
// --tls-certificate-issuer-type-overrides foo.example.com=certmanager.k8s.io/issuer
// (bar.example.com=certmanager.k8s.io/cluster-issuer, foo.bar.example.com=certmanager.k8s.io/issuer)
// --tls-certificate-issuer letsencrypt
#[test]
fn issuer_type_overrides_split_hosts_even_without_tls() {
    let config = config(
        &[
            &ISSUER_TYPE_OVERRIDES[..],
            &["--tls-certificate-issuer", "letsencrypt"],
        ]
        .concat(),
    );
    assert_eq!(
        summaries(&issuer_test_app(), &config),
        [
            "testapp | fiaas/expose=true | bar.example.com /:80 ; other.example.com /:80 ; sub.bar.example.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | ",
            "testapp-2 | fiaas/expose=true;some=annotation | ann.foo.example.com /:80 | ",
            "testapp-1 | fiaas/expose=true | foo.example.com /:80 ; foo.bar.example.com /:80 ; sub.foo.example.com /:80 | ",
        ]
    );
}

// As above, with --use-ingress-tls default_on.
#[test]
fn issuer_type_overrides_set_the_tls_annotation_key() {
    let config = config(
        &[
            &ISSUER_TYPE_OVERRIDES[..],
            &[
                "--tls-certificate-issuer",
                "letsencrypt",
                "--use-ingress-tls",
                "default_on",
            ],
        ]
        .concat(),
    );
    assert_eq!(
        summaries(&issuer_test_app(), &config),
        [
            "testapp | certmanager.k8s.io/cluster-issuer=letsencrypt;fiaas/expose=true | bar.example.com /:80 ; other.example.com /:80 ; sub.bar.example.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io bar.example.com other.example.com sub.bar.example.com testapp.svc.test.example.com testapp.127.0.0.1.xip.io",
            "testapp-2 | certmanager.k8s.io/issuer=letsencrypt;fiaas/expose=true;some=annotation | ann.foo.example.com /:80 | testapp-2-ingress-tls: ann.foo.example.com",
            "testapp-1 | certmanager.k8s.io/issuer=letsencrypt;fiaas/expose=true | foo.example.com /:80 ; foo.bar.example.com /:80 ; sub.foo.example.com /:80 | testapp-1-ingress-tls: foo.example.com foo.bar.example.com sub.foo.example.com",
        ]
    );
}

fn suffix_override_config() -> TransformSettings {
    config(&[
        "--use-ingress-tls",
        "default_off",
        "--tls-certificate-issuer-type-overrides",
        "example.com=certmanager.k8s.io/issuer",
        "--tls-certificate-issuer-overrides",
        "test.example.com=suffixissuer",
    ])
}

// ingress: [{host: www.example.com}, {host: other.org}]
// extensions: {tls: true}
// --use-ingress-tls default_off --tls-certificate-issuer-type-overrides example.com=certmanager.k8s.io/issuer
// --tls-certificate-issuer-overrides test.example.com=suffixissuer
#[test]
fn suffix_overrides_decide_the_default_issuer_and_acme_is_used_without_issuer() {
    let mut app = app_with(vec![host("www.example.com"), host("other.org")]);
    app.ingress_tls.enabled = Some(true);
    assert_eq!(
        summaries(&app, &suffix_override_config()),
        [
            "testapp | fiaas/expose=true;kubernetes.io/tls-acme=true | testapp.svc.test.example.com /:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io testapp.svc.test.example.com",
            "testapp-1 | fiaas/expose=true;kubernetes.io/tls-acme=true | www.example.com /:80 ; other.org /:80 ; testapp.127.0.0.1.xip.io /:80 | testapp-1-ingress-tls: www.example.com other.org testapp.127.0.0.1.xip.io",
        ]
    );
}

// As above, with extensions: {tls: {enabled: true, certificate_issuer: appissuer}}.
#[test]
fn app_issuer_applies_where_no_name_override_matches() {
    let mut app = app_with(vec![host("www.example.com"), host("other.org")]);
    app.ingress_tls = IngressTlsSpec {
        enabled: Some(true),
        certificate_issuer: Some("appissuer".to_owned()),
    };
    assert_eq!(
        summaries(&app, &suffix_override_config()),
        [
            "testapp | certmanager.k8s.io/issuer=suffixissuer;fiaas/expose=true | testapp.svc.test.example.com /:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io testapp.svc.test.example.com",
            "testapp-1 | certmanager.k8s.io/issuer=appissuer;fiaas/expose=true | www.example.com /:80 ; other.org /:80 ; testapp.127.0.0.1.xip.io /:80 | testapp-1-ingress-tls: www.example.com other.org testapp.127.0.0.1.xip.io",
        ]
    );
}

// ports: [{name: http}, {name: second, port: 8080}]
// ingress:
//   - {host: foo.example.com, paths: [{path: /api}, {path: /app, port: second}]}
//   - {host: dev1.example.com, annotations: {custom.annotation: value}}
// --ingress-host-pair foo.example.com=bar.example.com
// --ingress-host-pair testapp.svc.test.example.com=alias.example.com
// --ingress-host-pair dev1.example.com=dev2.example.com
#[test]
fn host_pairs_copy_items_with_paths_and_annotations() {
    let app = AppSpec {
        ports: vec![
            port(Protocol::Http, "http", 80),
            port(Protocol::Http, "second", 8080),
        ],
        ..app_with(vec![
            item(Some("foo.example.com"), &[("/api", 80), ("/app", 8080)]),
            annotated(host("dev1.example.com"), &[("custom.annotation", "value")]),
        ])
    };
    let config = config(&[
        "--ingress-host-pair",
        "foo.example.com=bar.example.com",
        "--ingress-host-pair",
        "testapp.svc.test.example.com=alias.example.com",
        "--ingress-host-pair",
        "dev1.example.com=dev2.example.com",
    ]);
    assert_eq!(
        summaries(&app, &config),
        [
            "testapp | fiaas/expose=true | foo.example.com /api:80 /app:8080 ; testapp.svc.test.example.com /api:80 /app:8080 ; testapp.127.0.0.1.xip.io /api:80 /app:8080 ; bar.example.com /api:80 /app:8080 ; alias.example.com /api:80 /app:8080 | ",
            "testapp-1 | custom.annotation=value;fiaas/expose=true | dev1.example.com /:80 | ",
            "testapp-2 | custom.annotation=value;fiaas/expose=true | dev2.example.com /:80 | ",
        ]
    );
}

// ingress: [{host: bar.example.com}, {host: foo.example.com}]
// --ingress-host-pair foo.example.com=bar.example.com
#[test]
fn host_pairs_add_no_host_that_is_already_served() {
    let app = app_with(vec![host("bar.example.com"), host("foo.example.com")]);
    let config = config(&["--ingress-host-pair", "foo.example.com=bar.example.com"]);
    assert_eq!(
        summaries(&app, &config),
        [
            "testapp | fiaas/expose=true | bar.example.com /:80 ; foo.example.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | "
        ]
    );
}

// ingress: [{host: www.example.com}]
// extensions: tls unset / tls: true / tls: {enabled: false}
// --use-ingress-tls disabled / default_off / default_on
#[test]
fn tls_matrix() {
    let without = "testapp | fiaas/expose=true | www.example.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | ";
    let with = "testapp | fiaas/expose=true;kubernetes.io/tls-acme=true | www.example.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io www.example.com testapp.svc.test.example.com testapp.127.0.0.1.xip.io";
    let cases = [
        ("disabled", None, without),
        ("disabled", Some(true), without),
        ("disabled", Some(false), without),
        ("default_off", None, without),
        ("default_off", Some(true), with),
        ("default_off", Some(false), without),
        ("default_on", None, with),
        ("default_on", Some(true), with),
        ("default_on", Some(false), without),
    ];
    for (use_ingress_tls, enabled, expected) in cases {
        let mut app = app_with(vec![host("www.example.com")]);
        app.ingress_tls.enabled = enabled;
        let config = config(&["--use-ingress-tls", use_ingress_tls]);
        assert_eq!(
            summaries(&app, &config),
            [expected],
            "{use_ingress_tls} / {enabled:?}"
        );
    }
}

// As the TLS matrix with tls: true and --use-ingress-tls default_on, without
// --use-networkingv1-ingress.
#[test]
fn tls_on_extensions_v1beta1() {
    let config = daemon(&[
        "--ingress-suffix",
        SUFFIXES[0],
        "--ingress-suffix",
        SUFFIXES[1],
        "--use-ingress-tls",
        "default_on",
    ]);
    assert_eq!(
        summaries(&app_with(vec![host("www.example.com")]), &config),
        [
            "testapp | fiaas/expose=true;kubernetes.io/tls-acme=true | www.example.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io www.example.com testapp.svc.test.example.com testapp.127.0.0.1.xip.io"
        ]
    );
}

/// `--use-networkingv1-ingress --use-ingress-tls default_on` and these suffixes.
fn suffix_config(suffixes: &[&str]) -> TransformSettings {
    let mut flags = vec![
        "--use-networkingv1-ingress",
        "--use-ingress-tls",
        "default_on",
    ];
    for suffix in suffixes {
        flags.extend(["--ingress-suffix", suffix]);
    }
    daemon(&flags)
}

// version: 3, --use-ingress-tls default_on, with long or equally short suffixes.
#[test]
fn short_host_uses_the_first_shortest_suffix_and_is_left_out_when_it_cannot_fit() {
    let a30 = "a".repeat(30);
    let b30 = "b".repeat(30);
    let s61 = format!("{a30}.{b30}");
    let s62 = format!("a{s61}");
    assert_eq!(
        summaries(&app(), &suffix_config(&[&s61, &format!("x.{s61}")])),
        [format!(
            "testapp | fiaas/expose=false;kubernetes.io/tls-acme=true | testapp.{s61} /:80 ; testapp.x.{s61} /:80 | testapp-ingress-tls: z.{s61} testapp.{s61} testapp.x.{s61}"
        )]
    );
    assert_eq!(
        summaries(&app(), &suffix_config(&[&s62])),
        [format!(
            "testapp | fiaas/expose=false;kubernetes.io/tls-acme=true | testapp.{s62} /:80 | testapp-ingress-tls: testapp.{s62}"
        )]
    );
    assert_eq!(
        summaries(
            &app(),
            &suffix_config(&[
                "bbb.example.com",
                "aaa.example.com",
                "a.much.longer.example.com"
            ])
        ),
        [
            "testapp | fiaas/expose=false;kubernetes.io/tls-acme=true | testapp.bbb.example.com /:80 ; testapp.aaa.example.com /:80 ; testapp.a.much.longer.example.com /:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.bbb.example.com testapp.bbb.example.com testapp.aaa.example.com testapp.a.much.longer.example.com"
        ]
    );
}

// Upstream's unit-test and e2e vectors.
#[test]
fn short_host_vectors() {
    let short = |name: &str, suffix: &str| {
        let app = AppSpec {
            name: name.to_owned(),
            ..app()
        };
        super::short_host(&app, &[suffix.to_owned()])
    };
    assert_eq!(
        short("testapp", "short.suffix").as_deref(),
        Some("zgwvxk7m22jnzqmofnboadb6kpuri4st.short.suffix")
    );
    assert_eq!(
        short("testapp", "this.is.really.a.quite.extensive.suffix").as_deref(),
        Some("zgwvxk7m22jnzqmofnboadb.this.is.really.a.quite.extensive.suffix")
    );
    assert_eq!(
        short(
            "testapp",
            "extremely.long.suffix.which.pushes.the.boundary.to.the.utmost"
        )
        .as_deref(),
        Some("z.extremely.long.suffix.which.pushes.the.boundary.to.the.utmost")
    );
    assert_eq!(
        short("v3-data-examples-tls-enabled", "svc.test.example.com").as_deref(),
        Some("pckqvxryazy6fkalse7zoudilpf43dkb.svc.test.example.com")
    );
    assert_eq!(
        short(
            "testapp",
            "really.long.suffix.which.goes.to.the.very.edge.of.the.boundary"
        ),
        None
    );
    assert_eq!(
        short(
            "testapp",
            "this.suffix.is.so.long.that.it.is.impossible.to.generate.a.short.enough.name"
        ),
        None
    );
    assert_eq!(short("testapp", ""), None);
}

// annotations: {ingress: {x: app, y: app}}
// ingress: [{host: nulls.example.com, paths: [{path: /n}], annotations: {x: null}},
//           {paths: [{path: /a}]}]
#[test]
fn null_annotations_still_make_an_annotated_item() {
    let mut nulls = item(Some("nulls.example.com"), &[("/n", 80)]);
    nulls.annotations = [("x".to_owned(), None)].into();
    let mut app = app_with(vec![nulls, item(None, &[("/a", 80)])]);
    app.annotations.ingress = map(&[("x", "app"), ("y", "app")]);
    assert_eq!(
        summaries(&app, &config(&[])),
        [
            // The annotated item's path stays off the default hosts.
            "testapp | fiaas/expose=false;x=app;y=app | testapp.svc.test.example.com /a:80 ; testapp.127.0.0.1.xip.io /a:80 | ",
            // Its own Ingress, without the annotation its null removed.
            "testapp-1 | fiaas/expose=true;y=app | nulls.example.com /n:80 | ",
        ]
    );
    // Without a suffix, an annotated item's host does not make Ingresses on its own.
    assert!(run(&app, &daemon(&[])).unwrap().is_empty());
}

// ingress:
//   - {host: this.host.is.so.long.that.it.is.impossible.to.use.as.the.common.name}
//   - {host: www.example.com}
//   - {host: exactly-sixty-three-characters-long-host-name.aaaaaaaaaaaa.com}
//   - {host: ann.example.com, annotations: {a: b}}
// --use-ingress-tls default_on --tls-certificate-issuer letsencrypt
// --enable-deprecated-tls-entry-per-host
#[test]
fn deprecated_tls_entry_per_host_for_hosts_that_fit() {
    let app = app_with(vec![
        host("this.host.is.so.long.that.it.is.impossible.to.use.as.the.common.name"),
        host("www.example.com"),
        host("exactly-sixty-three-characters-long-host-name.aaaaaaaaaaaa.com"),
        annotated(host("ann.example.com"), &[("a", "b")]),
    ]);
    let config = config(&[
        "--use-ingress-tls",
        "default_on",
        "--tls-certificate-issuer",
        "letsencrypt",
        "--enable-deprecated-tls-entry-per-host",
    ]);
    assert_eq!(
        summaries(&app, &config),
        [
            "testapp | certmanager.k8s.io/cluster-issuer=letsencrypt;fiaas/expose=true | this.host.is.so.long.that.it.is.impossible.to.use.as.the.common.name /:80 ; www.example.com /:80 ; exactly-sixty-three-characters-long-host-name.aaaaaaaaaaaa.com /:80 ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | www.example.com: www.example.com ; exactly-sixty-three-characters-long-host-name.aaaaaaaaaaaa.com: exactly-sixty-three-characters-long-host-name.aaaaaaaaaaaa.com ; testapp.svc.test.example.com: testapp.svc.test.example.com ; testapp.127.0.0.1.xip.io: testapp.127.0.0.1.xip.io ; testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io this.host.is.so.long.that.it.is.impossible.to.use.as.the.common.name www.example.com exactly-sixty-three-characters-long-host-name.aaaaaaaaaaaa.com testapp.svc.test.example.com testapp.127.0.0.1.xip.io",
            "testapp-1 | a=b;certmanager.k8s.io/cluster-issuer=letsencrypt;fiaas/expose=true | ann.example.com /:80 | ann.example.com: ann.example.com ; testapp-1-ingress-tls: ann.example.com",
        ]
    );
}

// ingress:
//   - {host: testapp.svc.test.example.com}
//   - {host: testapp.svc.test.example.com, paths: [{path: /x}]}
// --use-ingress-tls default_on
#[test]
fn hosts_are_not_deduplicated() {
    let app = app_with(vec![
        host("testapp.svc.test.example.com"),
        item(Some("testapp.svc.test.example.com"), &[("/x", 80)]),
    ]);
    assert_eq!(
        summaries(&app, &config(&["--use-ingress-tls", "default_on"])),
        [
            "testapp | fiaas/expose=true;kubernetes.io/tls-acme=true | testapp.svc.test.example.com /:80 ; testapp.svc.test.example.com /x:80 ; testapp.svc.test.example.com /:80 /x:80 ; testapp.127.0.0.1.xip.io /:80 /x:80 | testapp-ingress-tls: zgwvxk7m22jnzqmofnboadb6kpuri4st.127.0.0.1.xip.io testapp.svc.test.example.com testapp.svc.test.example.com testapp.svc.test.example.com testapp.127.0.0.1.xip.io"
        ]
    );
}

// ingress: [{host: x.example.com, paths: []}]
#[test]
fn item_without_paths_gets_a_rule_without_http() {
    let app = app_with(vec![item(Some("x.example.com"), &[])]);
    let objects = run(&app, &config(&[])).unwrap();
    assert_eq!(
        objects.iter().map(summary).collect::<Vec<_>>(),
        [
            "testapp | fiaas/expose=true | x.example.com ; testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | "
        ]
    );
    assert_eq!(
        objects[0]["spec"]["rules"][0],
        json!({"host": "x.example.com"})
    );
}

// ingress: [{host: ""}]
#[test]
fn empty_host_counts_as_explicit_but_serves_nothing() {
    assert_eq!(
        summaries(&app_with(vec![host("")]), &config(&[])),
        [
            "testapp | fiaas/expose=true | testapp.svc.test.example.com /:80 ; testapp.127.0.0.1.xip.io /:80 | "
        ]
    );
}
