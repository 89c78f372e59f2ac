//! The operator's worst day, with the real daemon binary against the real test cluster: hostile
//! Applications, an API server that stops answering (black hole) or is down (connections reset),
//! deployment ids that follow each other quickly, and restarts mid-rollout with the inline
//! status. Faults are injected by a TCP proxy between the daemon and the API server
//! (`tests/fault_proxy.rs`); the test plays the kubelet where rollouts are to finish. Every wait
//! is bounded.

mod support;

use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use fiaas_k8s::ApplicationStatus;
use fiaas_tests::applications::{api as applications, put as put_application};
use fiaas_tests::fault_proxy::{FaultProxy, Mode, upstream_of};
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use support::{
    Daemon, all_succeed, audited, final_statuses, kubectl, replica_kubeconfigs, small, status,
    test_kubeconfig,
};

fn result_of<'a>(statuses: &'a [ApplicationStatus], app: &str) -> &'a ApplicationStatus {
    statuses
        .iter()
        .find(|s| {
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str)
                == Some(app)
        })
        .unwrap_or_else(|| panic!("no status of {app}"))
}

fn deeply_nested(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "a": value });
    }
    json!({"version": 3, "annotations": {"deployment": {"deep": "x"}}, "extensions": value})
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_applications_fail_alone() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "hostile").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    // Listed at start-up, where one undecodable item used to fail every listing.
    put_application(&client, &ns, "deep", "1", deeply_nested(150)).await;
    let oversized =
        json!({"version": 3, "annotations": {"deployment": {"big": "x".repeat(1_100_000)}}});
    put_application(&client, &ns, "oversized", "1", oversized).await;
    let overflow = json!({"version": 3, "replicas": {"minimum": 1, "maximum": i32::MAX},
        "healthchecks": {"readiness": {"initial_delay_seconds": i32::MAX}}});
    put_application(&client, &ns, "overflow", "1", overflow).await;
    put_application(&client, &ns, "normal-0", "1", small()).await;
    // A name no object can carry: no ApplicationStatus can be written either, so the reason
    // must reach the user as an Event on the Application.
    let misnamed = json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
        "metadata": {"name": "misnamed", "labels": {"fiaas/deployment_id": "1"}},
        "spec": {"application": "My_App", "image": "example/a:1", "config": small()}});
    applications(&client, &ns)
        .patch(
            "misnamed",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&misnamed),
        )
        .await
        .unwrap();

    let mut daemon = Daemon::start(&ns, None, &[]);
    put_application(&client, &ns, "normal-1", "1", small()).await;
    let statuses = final_statuses(
        &client,
        &ns,
        &[
            ("deep", "1"),
            ("oversized", "1"),
            ("normal-0", "1"),
            ("normal-1", "1"),
        ],
        Duration::from_secs(90),
    )
    .await;
    let deep = result_of(&statuses, "deep");
    assert_eq!(deep.result, "FAILED");
    assert!(
        deep.logs
            .iter()
            .any(|l| l.contains("recursion limit exceeded")),
        "{:?}",
        deep.logs
    );
    assert_eq!(result_of(&statuses, "oversized").result, "FAILED");
    assert_eq!(result_of(&statuses, "normal-0").result, "SUCCESS");
    assert_eq!(result_of(&statuses, "normal-1").result, "SUCCESS");
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let told = events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|e| {
                e.regarding.and_then(|r| r.name).as_deref() == Some("misnamed")
                    && e.reason.as_deref() == Some("DeployFailed")
                    && e.note
                        .is_some_and(|n| n.contains("spec.application: 'My_App'"))
            });
        if told {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no DeployFailed Event naming spec.application"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // The timeout arithmetic on i32::MAX values did not kill the deploy task (the rollout
    // finished since the test plays the kubelet), and the app takes its next version.
    let overflowed =
        final_statuses(&client, &ns, &[("overflow", "1")], Duration::from_secs(60)).await;
    assert_eq!(overflowed[0].result, "SUCCESS", "{:?}", overflowed[0].logs);
    put_application(&client, &ns, "overflow", "2", small()).await;
    let next = final_statuses(&client, &ns, &[("overflow", "2")], Duration::from_secs(60)).await;
    assert_eq!(next[0].result, "SUCCESS");
    daemon.assert_alive();
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_black_holed_connection_is_noticed_and_deploys_resume() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "blackhole").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let proxy = FaultProxy::start(upstream_of(&test_kubeconfig())).await;
    let kubeconfig = proxy.kubeconfig(&test_kubeconfig(), &std::env::temp_dir());
    let mut daemon = Daemon::start(&ns, Some(&kubeconfig), &[]);
    put_application(&client, &ns, "before", "1", small()).await;
    all_succeed(&client, &ns, &["before".into()], Duration::from_secs(60)).await;

    assert_eq!(daemon.health(), Some(200));
    proxy.set(Mode::BlackHole);
    put_application(&client, &ns, "during", "1", small()).await;
    // Nothing can deploy now: /healthz must say so (500, the upstream's failure answer) once the
    // watch's failure outlasts its allowance, instead of answering 200 throughout.
    let black_hole = Instant::now();
    let mut unhealthy_after = None;
    while black_hole.elapsed() < Duration::from_secs(90) {
        if unhealthy_after.is_none() && daemon.health() == Some(500) {
            unhealthy_after = Some(black_hole.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let unhealthy_after = unhealthy_after.expect("/healthz answered 200 through a 90 s black hole");
    eprintln!("/healthz said 500 {unhealthy_after:?} into the black hole");
    daemon.assert_alive();
    proxy.set(Mode::Pass);
    put_application(&client, &ns, "after", "1", small()).await;
    // Bounded well below the five minutes a read without deadline took to fail.
    let took = all_succeed(
        &client,
        &ns,
        &["during".into(), "after".into()],
        Duration::from_secs(30),
    )
    .await;
    eprintln!("after a 90 s black hole, new apps succeeded {took:?} after traffic passed again");
    let deadline = Instant::now() + Duration::from_secs(30);
    while daemon.health() != Some(200) {
        assert!(Instant::now() < deadline, "/healthz did not recover");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    daemon.assert_alive();
    kubelet.abort();
    drop_namespace(&client, &ns).await;
    let _ = std::fs::remove_file(kubeconfig);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_server_outage_mid_batch_loses_nothing() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "outage").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let proxy = FaultProxy::start(upstream_of(&test_kubeconfig())).await;
    let kubeconfig = proxy.kubeconfig(&test_kubeconfig(), &std::env::temp_dir());
    let mut daemon = Daemon::start(&ns, Some(&kubeconfig), &["--max-concurrent-deploys", "3"]);
    let apps: Vec<String> = (0..12).map(|i| format!("app-{i}")).collect();
    for app in &apps {
        put_application(&client, &ns, app, "1", small()).await;
    }
    // Down while the batch is in flight: some have succeeded, others not yet.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut done = 0;
        for app in &apps {
            if status(&client, &ns, app, "1")
                .await
                .is_some_and(|s| s.result == "SUCCESS")
            {
                done += 1;
            }
        }
        if done >= 1 {
            assert!(
                done < apps.len(),
                "the whole batch finished before the outage"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing deployed before the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.set(Mode::Reset);
    tokio::time::sleep(Duration::from_secs(45)).await;
    daemon.assert_alive();
    proxy.set(Mode::Pass);
    // Within seconds, not after a watch backoff of half a minute.
    let took = all_succeed(&client, &ns, &apps, Duration::from_secs(20)).await;
    eprintln!(
        "after a 45 s outage, all {} apps succeeded {took:?} after the server returned",
        apps.len()
    );
    daemon.assert_alive();
    kubelet.abort();
    drop_namespace(&client, &ns).await;
    let _ = std::fs::remove_file(kubeconfig);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_deployment_id_gets_a_final_status_and_the_last_one_wins() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "rapid").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let _daemon = Daemon::start(&ns, None, &[]);
    // Once this deployed, the daemon watches: every later change reaches it as its own event.
    put_application(&client, &ns, "first", "1", small()).await;
    all_succeed(&client, &ns, &["first".into()], Duration::from_secs(60)).await;
    for id in ["d1", "d2", "d3"] {
        put_application(&client, &ns, "forward", id, small()).await;
    }
    for id in ["d1", "d2", "d1"] {
        put_application(&client, &ns, "back", id, small()).await;
    }
    let forward = final_statuses(
        &client,
        &ns,
        &[("forward", "d1"), ("forward", "d2"), ("forward", "d3")],
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(forward[2].result, "SUCCESS");
    // Each deployment id's failure has an Event of its own that names it, not a repeat in a
    // series that still shows the first id.
    let invalid = json!({"version": 3, "replicas": "many"});
    for id in ["f1", "f2"] {
        put_application(&client, &ns, "failing", id, invalid.clone()).await;
        final_statuses(&client, &ns, &[("failing", id)], Duration::from_secs(30)).await;
    }
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let notes: Vec<String> = events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("failing")
                    && e.reason.as_deref() == Some("DeployFailed")
            })
            .filter_map(|e| e.note)
            .collect();
        if ["f1", "f2"].iter().all(|id| {
            notes
                .iter()
                .any(|n| n.starts_with(&format!("deployment_id={id} FAILED")))
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "DeployFailed events: {notes:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    final_statuses(&client, &ns, &[("back", "d2")], Duration::from_secs(90)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    for (app, id) in [("forward", "d3"), ("back", "d1")] {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let live = deployments.get(app).await.ok();
            let live_id = live
                .as_ref()
                .and_then(|d| d.metadata.labels.as_ref())
                .and_then(|l| l.get("fiaas/deployment_id").cloned());
            let succeeded = status(&client, &ns, app, id)
                .await
                .is_some_and(|s| s.result == "SUCCESS");
            if live_id.as_deref() == Some(id) && succeeded {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{app} should end on {id}: runs {live_id:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_interrupted_by_sigterm_or_sigkill_resume_with_the_inline_status() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "inline").await;
    let apps: Vec<String> = (0..4).map(|i| format!("app-{i}")).collect();
    let inline = ["--include-status-in-app"];
    let mut daemon = Daemon::start(&ns, None, &inline);
    for app in &apps {
        put_application(&client, &ns, app, "1", small()).await;
    }
    // No kubelet yet: every rollout waits, and the Applications say RUNNING.
    let all_running = || async {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut running = 0;
            for app in &apps {
                if status(&client, &ns, app, "1")
                    .await
                    .is_some_and(|s| s.result == "RUNNING")
                {
                    running += 1;
                }
            }
            if running == apps.len() {
                return;
            }
            assert!(Instant::now() < deadline, "not every app got RUNNING");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    all_running().await;
    daemon.signal("-TERM");
    let mut daemon = Daemon::start(&ns, None, &inline);
    tokio::time::sleep(Duration::from_secs(3)).await;
    all_running().await;
    daemon.signal("-KILL");

    let kubelet = keep_pods_ready(&client, &ns, None);
    let _daemon = Daemon::start(&ns, None, &inline);
    let took = all_succeed(&client, &ns, &apps, Duration::from_secs(90)).await;
    eprintln!("after SIGTERM and SIGKILL mid-rollout, all apps succeeded in {took:?}");
    for app in &apps {
        let live = applications(&client, &ns).get(app).await.unwrap();
        assert_eq!(live.data["status"]["result"], "SUCCESS", "{app}");
    }
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}

async fn lease_holder(client: &Client, ns: &str) -> Option<(String, jiff::Timestamp)> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let spec = leases.get_opt("fiaas-deploy-daemon").await.ok()??.spec?;
    Some((spec.holder_identity?, spec.acquire_time?.0))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_leader_writes_nothing_once_its_lease_has_passed() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "frozen").await;
    let kubeconfigs = replica_kubeconfigs(&client, &ns, &["replica-a", "replica-b"]).await;
    let election = ["--leader-election", "--disable-crd-creation"];
    let mut first = Daemon::start_as(&ns, Some(&kubeconfigs[0]), &election, Some("replica-a"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while lease_holder(&client, &ns).await.map(|(h, _)| h).as_deref() != Some("replica-a") {
        assert!(Instant::now() < deadline, "replica-a never led");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _second = Daemon::start_as(&ns, Some(&kubeconfigs[1]), &election, Some("replica-b"));
    let apps: Vec<String> = (0..3).map(|i| format!("app-{i}")).collect();
    // A 10 s rollout timeout (10 × 1 s × 1 replica) that passes while replica-a is frozen: on
    // waking, its own timer tells it to write FAILED at once, without a request first.
    let quick = json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1},
                       "healthchecks": {"readiness": {"initial_delay_seconds": 1}}});
    for app in &apps {
        put_application(&client, &ns, app, "1", quick.clone()).await;
    }
    // No kubelet yet: replica-a waits for every rollout.
    let deadline = Instant::now() + Duration::from_secs(60);
    for app in &apps {
        while status(&client, &ns, app, "1")
            .await
            .map(|s| s.result)
            .as_deref()
            != Some("RUNNING")
        {
            assert!(Instant::now() < deadline, "{app} never got RUNNING");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    first.send("-STOP");
    let kubelet = keep_pods_ready(&client, &ns, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let taken_over = loop {
        if let Some((holder, acquired)) = lease_holder(&client, &ns).await
            && holder == "replica-b"
        {
            break acquired;
        }
        assert!(
            Instant::now() < deadline,
            "replica-b never took the lease over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    all_succeed(&client, &ns, &apps, Duration::from_secs(60)).await;
    // Woken after its lease passed, the old leader sees its rollouts done, but must not say so.
    first.send("-CONT");
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = first.0.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the old leader kept running after losing its lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!exit.success(), "losing the lease exits non-zero");
    // The API server writes its audit log asynchronously.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late_writes: Vec<String> = audited(&ns, "replica-a")
        .into_iter()
        .filter(|r| {
            matches!(r.verb.as_str(), "create" | "patch" | "update" | "delete")
                && (200..300).contains(&r.code)
                && r.resource != "leases"
                && r.received >= taken_over
        })
        .map(|r| format!("{} {} at {}", r.verb, r.uri, r.received))
        .collect();
    assert!(
        late_writes.is_empty(),
        "replica-a wrote after replica-b took over at {taken_over}: {late_writes:#?}"
    );
    for kubeconfig in kubeconfigs {
        let _ = std::fs::remove_file(kubeconfig);
    }
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}

/// The daemon's peak resident memory (`VmHWM`), in MiB.
fn peak_rss_mib(daemon: &Daemon) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.0.id())).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_that_finds_thousands_of_unfinished_apps_stays_bounded() {
    let Some(client) = test_cluster().await else {
        return;
    };
    const APPS: usize = 3000;
    const PERMITS: usize = 20;
    let ns = test_namespace(&client, "fanout").await;
    // Invalid, so each deploy is short: found at start-up, each is deployed (and FAILED) anew.
    let names: Vec<String> = (0..APPS).map(|i| format!("app-{i}")).collect();
    for chunk in names.chunks(50) {
        futures::future::join_all(chunk.iter().map(|name| {
            put_application(
                &client,
                &ns,
                name,
                "1",
                json!({"version": 3, "replicas": "many"}),
            )
        }))
        .await;
    }
    let proxy = FaultProxy::start(upstream_of(&test_kubeconfig())).await;
    let kubeconfig = proxy.kubeconfig(&test_kubeconfig(), &std::env::temp_dir());
    let mut daemon = Daemon::start(
        &ns,
        Some(&kubeconfig),
        &["--max-concurrent-deploys", &PERMITS.to_string()],
    );
    let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let failed = statuses
            .list_metadata(&Default::default())
            .await
            .unwrap()
            .items
            .len();
        if failed >= APPS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {failed} of {APPS} apps have a status"
        );
        daemon.assert_alive();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let peak = proxy.peak_connections();
    let rss = peak_rss_mib(&daemon);
    eprintln!("{APPS} unfinished apps at start-up: peak {peak} connections, peak RSS {rss:.1} MiB");
    // The deploys' permits, plus the three watches, the Event recorder and a few connections
    // the pool has not reused yet.
    assert!(peak <= PERMITS + 10, "{peak} connections at once");
    assert!(rss < 96.0, "peak RSS {rss:.1} MiB");
    drop_namespace(&client, &ns).await;
    let _ = std::fs::remove_file(kubeconfig);
}

/// Removes the cluster-scoped throttling objects when dropped.
struct Throttling(String);

impl Drop for Throttling {
    fn drop(&mut self) {
        for kind in [
            "flowschema",
            "prioritylevelconfiguration",
            "clusterrolebinding",
        ] {
            let _ = Command::new("kubectl")
                .args(["delete", "--ignore-not-found", kind, &self.0])
                .stdout(Stdio::null())
                .status();
        }
    }
}

/// The API server's count of requests it rejected (429) for a priority level.
fn rejected(priority_level: &str) -> f64 {
    kubectl(&["get", "--raw", "/metrics"], None)
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_flowcontrol_rejected_requests_total{")
                && l.contains(&format!(r#"priority_level="{priority_level}""#))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_throttling_api_server_slows_deploys_down_but_loses_none() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "throttled").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    // The daemon runs as a ServiceAccount of its own (the test's admin is exempt from API
    // Priority and Fairness), whose requests go to a priority level with about three seats
    // that rejects the rest with 429 at once.
    let name = format!("fiaas-{ns}");
    let _cleanup = Throttling(name.clone());
    kubectl(&["create", "serviceaccount", "daemon", "-n", &ns], None);
    kubectl(
        &[
            "create",
            "clusterrolebinding",
            &name,
            "--clusterrole=cluster-admin",
            &format!("--serviceaccount={ns}:daemon"),
        ],
        None,
    );
    let throttling = format!(
        r#"
apiVersion: flowcontrol.apiserver.k8s.io/v1beta1
kind: PriorityLevelConfiguration
metadata: {{name: {name}}}
spec:
  type: Limited
  limited: {{assuredConcurrencyShares: 1, limitResponse: {{type: Reject}}}}
---
apiVersion: flowcontrol.apiserver.k8s.io/v1beta1
kind: FlowSchema
metadata: {{name: {name}}}
spec:
  priorityLevelConfiguration: {{name: {name}}}
  matchingPrecedence: 50
  rules:
  - subjects: [{{kind: ServiceAccount, serviceAccount: {{name: daemon, namespace: {ns}}}}}]
    resourceRules: [{{verbs: ["*"], apiGroups: ["*"], resources: ["*"], namespaces: ["*"], clusterScope: true}}]
    nonResourceRules: [{{verbs: ["*"], nonResourceURLs: ["*"]}}]
"#
    );
    kubectl(&["apply", "-f", "-"], Some(&throttling));
    let deadline = Instant::now() + Duration::from_secs(30);
    let secret = loop {
        let secret = kubectl(
            &[
                "get",
                "serviceaccount",
                "daemon",
                "-n",
                &ns,
                "-o",
                "jsonpath={.secrets[0].name}",
            ],
            None,
        );
        if !secret.is_empty() {
            break secret;
        }
        assert!(
            Instant::now() < deadline,
            "no token for the daemon's ServiceAccount"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let token = kubectl(
        &[
            "get",
            "secret",
            &secret,
            "-n",
            &ns,
            "-o",
            "jsonpath={.data.token}",
        ],
        None,
    );
    let token = String::from_utf8(
        data_encoding::BASE64
            .decode(token.trim().as_bytes())
            .unwrap(),
    )
    .unwrap();
    let original = std::fs::read_to_string(test_kubeconfig()).unwrap();
    let start = original.find("user: {token: ").unwrap() + "user: {token: ".len();
    let end = start + original[start..].find('}').unwrap();
    let kubeconfig = std::env::temp_dir().join(format!("kubeconfig-{name}"));
    std::fs::write(
        &kubeconfig,
        format!("{}{token}{}", &original[..start], &original[end..]),
    )
    .unwrap();

    let rejected_before = rejected(&name);
    let mut daemon = Daemon::start(&ns, Some(&kubeconfig), &[]);
    let apps: Vec<String> = (0..30).map(|i| format!("app-{i}")).collect();
    for app in &apps {
        put_application(&client, &ns, app, "1", small()).await;
    }
    let took = all_succeed(&client, &ns, &apps, Duration::from_secs(180)).await;
    let throttled = rejected(&name) - rejected_before;
    eprintln!(
        "{} apps deployed through {throttled} rejected (429) requests in {took:?}",
        apps.len()
    );
    assert!(throttled > 0.0, "the API server never throttled the daemon");
    daemon.assert_alive();
    kubelet.abort();
    drop_namespace(&client, &ns).await;
    let _ = std::fs::remove_file(kubeconfig);
}
