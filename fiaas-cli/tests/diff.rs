//! `fiaas diff` against the real test cluster: an app is deployed through the daemon's own apply
//! path (`Applier::deploy`), then the `fiaas` binary is asked what deploying an Application
//! manifest would change: nothing for the same spec, the image line for a new image, the whole
//! Ingress for a spec without one (the prune), a RoleBinding for a newly configured role; and
//! nothing is written. It connects with `--kubeconfig`, `--context`, the
//! daemon's connection flags, and the pod's in-cluster configuration.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fiaas_config::ClusterConfig;
use fiaas_k8s::{Applier, ClusterFacts, DeployOptions};
use fiaas_spec::AppFacts;
use fiaas_tests::{applications, drop_namespace, test_cluster, test_namespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::config::Kubeconfig;
use serde_json::{Value, json};

const FLAGS: &[&str] = &[
    "--ingress-suffix",
    "svc.test.example.com",
    "--use-networkingv1-ingress",
];

/// Write the Application `name` and deploy it as the daemon does.
async fn deploy(client: &kube::Client, ns: &str, name: &str, id: &str, config: &Value) {
    let stored = applications::put(client, ns, name, id, config.clone())
        .await
        .expect("the Application is stored");
    let facts = AppFacts {
        name: name.to_owned(),
        namespace: ns.to_owned(),
        image: format!("example/{name}:{id}"),
        deployment_id: id.to_owned(),
        uid: stored.metadata.uid,
        ..AppFacts::default()
    };
    let app = fiaas_spec::from_document(config, &facts).expect("a valid spec");
    let cluster =
        ClusterConfig::from_args(std::iter::once("fiaas").chain(FLAGS.iter().copied()), None)
            .expect("valid flags")
            .transform;
    Applier::new(client.clone())
        .await
        .expect("an applier")
        .deploy(
            &app,
            &cluster,
            DeployOptions {
                facts: &ClusterFacts::default(),
                hook: None,
            },
        )
        .await
        .expect("the deploy applies");
}

/// A scratch directory of this test, removed first if a former run left it.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fiaas-diff-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// An Application manifest as users keep it (no uid, no status), in the file `<file>.yaml`.
fn manifest(dir: &Path, file: &str, ns: &str, name: &str, image: &str, config: &Value) -> PathBuf {
    let body = json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
        "metadata": {"name": name, "namespace": ns, "labels": {"fiaas/deployment_id": "1"}},
        "spec": {"application": name, "image": image, "config": config}});
    let path = dir.join(format!("{file}.yaml"));
    std::fs::write(&path, body.to_string()).expect("write the manifest");
    path
}

fn fiaas_diff(args: &[&str], env: &[(&str, &str)], clear: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fiaas"));
    command
        .arg("diff")
        .args(args)
        .args(FLAGS)
        .envs(env.iter().copied());
    for name in clear {
        command.env_remove(name);
    }
    command.output().expect("the fiaas binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn status(output: &Output) -> i32 {
    output.status.code().expect("exited")
}

#[tokio::test]
async fn no_change_after_a_deploy_then_an_image_change_and_a_pruned_ingress() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "cli-diff").await;
    let config = json!({"version": 3});
    deploy(&client, &ns, "web", "1", &config).await;
    let dir = scratch("changes");
    let same = manifest(&dir, "same", &ns, "web", "example/web:1", &config);
    let same = same.to_str().expect("a UTF-8 path");

    let unchanged = fiaas_diff(&[same], &[], &[]);
    assert_eq!(
        status(&unchanged),
        0,
        "no change after a deploy: {}{}",
        text(&unchanged.stdout),
        text(&unchanged.stderr)
    );
    assert_eq!(text(&unchanged.stdout), "");

    let new_image = fiaas_diff(&[same, "--image", "example/web:2"], &[], &[]);
    let shown = text(&new_image.stdout);
    assert_eq!(status(&new_image), 1, "{shown}{}", text(&new_image.stderr));
    assert!(
        shown.contains(&format!("/apps.v1.Deployment.{ns}.web")),
        "{shown}"
    );
    let changed: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with(['-', '+']) && !l.starts_with("---") && !l.starts_with("+++"))
        .filter(|l| !l.contains("  generation:"))
        .collect();
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with('-')
                && l.trim_start_matches('-').trim() == "image: example/web:1")
            && changed.iter().any(|l| l.starts_with('+')
                && l.trim_start_matches('+').trim() == "image: example/web:2"),
        "the image line changes: {shown}"
    );
    // The image's tag is also the app's version: the `fiaas/version` label of every object
    // and the environment.
    let follows_the_image = |line: &&str| {
        line.contains("example/web:")
            || line.contains("fiaas/version:")
            || line.ends_with("value: \"1\"")
            || line.ends_with("value: \"2\"")
    };
    assert!(
        changed.iter().all(follows_the_image),
        "only the image changes, and what follows it: {shown}"
    );

    let without_ingress = manifest(
        &dir,
        "without-ingress",
        &ns,
        "web",
        "example/web:1",
        &json!({"version": 3, "ingress": []}),
    );
    let pruned = fiaas_diff(&[without_ingress.to_str().unwrap()], &[], &[]);
    let shown = text(&pruned.stdout);
    assert_eq!(status(&pruned), 1, "{shown}{}", text(&pruned.stderr));
    assert!(
        shown.contains(&format!("/networking.k8s.io.v1.Ingress.{ns}.web")),
        "{shown}"
    );
    assert!(
        shown.contains("\n-kind: Ingress\n") && !shown.contains("\n+kind: Ingress\n"),
        "the Ingress is shown removed: {shown}"
    );

    // A role configured since the deploy: its RoleBinding would be created (generateName).
    let binding = fiaas_diff(
        &[
            same,
            "--enable-service-account-per-app",
            "--list-of-roles",
            "reader",
        ],
        &[],
        &[],
    );
    let shown = text(&binding.stdout);
    assert_eq!(status(&binding), 1, "{shown}{}", text(&binding.stderr));
    assert!(
        shown.contains(&format!(
            "/rbac.authorization.k8s.io.v1.RoleBinding.{ns}.web-"
        )) && shown.contains("\n+kind: RoleBinding\n")
            && shown.contains("\n+  name: reader\n"),
        "a new RoleBinding is shown created: {shown}"
    );

    let custom = fiaas_diff(
        &[same, "--image", "example/web:2"],
        &[("KUBECTL_EXTERNAL_DIFF", "diff -q")],
        &[],
    );
    assert_eq!(status(&custom), 1, "{}", text(&custom.stderr));
    assert!(
        text(&custom.stdout).contains(&format!("apps.v1.Deployment.{ns}.web differ")),
        "KUBECTL_EXTERNAL_DIFF replaces the diff program: {}",
        text(&custom.stdout)
    );
    let failing = fiaas_diff(
        &[same],
        &[("KUBECTL_EXTERNAL_DIFF", "diff --no-such-flag")],
        &[],
    );
    assert!(status(&failing) > 1, "a failing diff program is an error");

    // Nothing was written: the Deployment keeps its image, the Ingress is still there.
    let deployment = Api::<Deployment>::namespaced(client.clone(), &ns)
        .get("web")
        .await
        .expect("the Deployment is live");
    let image = deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
    assert_eq!(image.as_deref(), Some("example/web:1"));
    assert!(
        Api::<Ingress>::namespaced(client.clone(), &ns)
            .get_opt("web")
            .await
            .expect("read the Ingress")
            .is_some()
    );
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .list(&Default::default())
        .await
        .expect("list RoleBindings");
    assert!(bindings.items.is_empty(), "no RoleBinding was created");
    let _ = std::fs::remove_dir_all(&dir);
    drop_namespace(&client, &ns).await;
}

/// Whether this machine lets an unprivileged process mount in its own namespaces, which the
/// in-cluster test needs to put a service account's files where every client reads them.
fn can_unshare() -> bool {
    Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs tmpfs /var/run"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn connects_with_a_kubeconfig_file_a_context_the_daemon_flags_and_in_cluster() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "cli-diff-connect").await;
    let config = json!({"version": 3});
    deploy(&client, &ns, "conn", "1", &config).await;
    let dir = scratch("connect");
    let app = manifest(&dir, "conn", &ns, "conn", "example/conn:1", &config);
    let app = app.to_str().expect("a UTF-8 path");
    let kubeconfig = std::env::var("KUBECONFIG").expect("the test cluster's kubeconfig");
    // No kubeconfig to fall back on: each connection must come from what is given.
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home = home.to_str().unwrap();
    let isolated = [("HOME", home)];
    let clear = [
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
    ];

    let nothing = fiaas_diff(&[app], &isolated, &clear);
    assert!(
        status(&nothing) > 1,
        "without any configuration it is an error"
    );

    for args in [
        vec![app, "--kubeconfig", &kubeconfig],
        vec![app, "--kubeconfig", &kubeconfig, "--context", "test-cert"],
    ] {
        let output = fiaas_diff(&args, &isolated, &clear);
        assert_eq!(
            status(&output),
            0,
            "{args:?}: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    }
    let wrong_context = fiaas_diff(
        &[app, "--kubeconfig", &kubeconfig, "--context", "nope"],
        &isolated,
        &clear,
    );
    assert!(status(&wrong_context) > 1);

    let parsed = Kubeconfig::read_from(&kubeconfig).expect("the test kubeconfig parses");
    let cluster = parsed.clusters[0].cluster.clone().expect("a cluster entry");
    let server = cluster.server.expect("a server");
    let ca = cluster.certificate_authority.expect("a CA file");
    let token = parsed
        .auth_infos
        .iter()
        .find_map(|user| user.auth_info.as_ref()?.token.clone())
        .map(|t| secrecy::ExposeSecret::expose_secret(&t).to_owned())
        .expect("a token user");
    let daemon_flags = fiaas_diff(
        &[
            app,
            "--api-server",
            &server,
            "--api-token",
            &token,
            "--api-cert",
            &ca,
        ],
        &isolated,
        &clear,
    );
    assert_eq!(
        status(&daemon_flags),
        0,
        "{}{}",
        text(&daemon_flags.stdout),
        text(&daemon_flags.stderr)
    );

    let address = server.trim_start_matches("https://");
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let in_cluster_env = [
        ("HOME", home),
        ("KUBERNETES_SERVICE_HOST", host),
        ("KUBERNETES_SERVICE_PORT", port),
    ];
    if can_unshare() {
        // The service account's files, where a pod has them, in a mount namespace of its own.
        let script = r#"set -e
mount -t tmpfs tmpfs /var/run
mkdir -p /var/run/secrets/kubernetes.io/serviceaccount
cd /var/run/secrets/kubernetes.io/serviceaccount
cp "$TEST_CA" ca.crt
printf %s "$TEST_TOKEN" > token
printf %s "$TEST_NS" > namespace
exec "$@""#;
        let output = Command::new("unshare")
            .args([
                "-rm",
                "sh",
                "-c",
                script,
                "sh",
                env!("CARGO_BIN_EXE_fiaas"),
                "diff",
                app,
            ])
            .args(FLAGS)
            .envs(in_cluster_env)
            .envs([("TEST_CA", &ca), ("TEST_TOKEN", &token), ("TEST_NS", &ns)])
            .env_remove("KUBECONFIG")
            .output()
            .expect("unshare runs");
        assert_eq!(
            status(&output),
            0,
            "in-cluster: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
    } else {
        // Without mount namespaces the pod's files cannot be provided; the in-cluster
        // configuration is still what is tried, and its missing files are named.
        eprintln!("unshare -rm is not permitted here: in-cluster checked up to its files");
        let output = fiaas_diff(&[app], &in_cluster_env, &["KUBECONFIG"]);
        assert!(status(&output) > 1);
        assert!(
            text(&output.stderr).contains("/var/run/secrets/kubernetes.io/serviceaccount"),
            "{}",
            text(&output.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop_namespace(&client, &ns).await;
}
