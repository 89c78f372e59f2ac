//! `--shards`: several replicas of the real daemon share one fleet on the real test cluster.
//! Each replica runs as its own ServiceAccount, so the API server's audit log says which replica
//! wrote what: every app must be deployed by exactly one replica. Replicas are killed, stopped
//! and added while apps deploy; every wait is bounded.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fiaas_k8s::ApplicationStatus;
use fiaas_tests::applications::put as put_application;
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::Api;
use support::{Daemon, audited, replica_kubeconfigs, small};

const REPLICAS: [&str; 3] = ["replica-0", "replica-1", "replica-2"];
/// 12 shards spread evenly over the three replicas.
const EVEN: [(&str, usize); 3] = [("replica-0", 4), ("replica-1", 4), ("replica-2", 4)];

fn start(ns: &str, kubeconfig: &PathBuf, identity: &str) -> Daemon {
    Daemon::start_as(
        ns,
        Some(kubeconfig),
        &["--shards", "12", "--disable-crd-creation"],
        Some(identity),
    )
}

/// Per shard lease: holder and renew time.
async fn shard_leases(client: &Client, ns: &str) -> BTreeMap<u32, (String, Option<Timestamp>)> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let mut out = BTreeMap::new();
    for lease in leases.list(&Default::default()).await.unwrap().items {
        let name = lease.metadata.name.unwrap_or_default();
        let Some(index) = name
            .strip_prefix("fiaas-deploy-daemon-shard-")
            .and_then(|i| i.parse().ok())
        else {
            continue;
        };
        let spec = lease.spec.unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        out.insert(index, (holder, spec.renew_time.map(|t| t.0)));
    }
    out
}

/// How many shards each replica holds.
async fn spread(client: &Client, ns: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for (holder, _) in shard_leases(client, ns).await.into_values() {
        if !holder.is_empty() {
            *counts.entry(holder).or_insert(0) += 1;
        }
    }
    counts
}

/// Wait until the shards are held as `wanted` (replica → count); how long that took.
async fn wait_for_spread(client: &Client, ns: &str, wanted: &[(&str, usize)]) -> Duration {
    let wanted: BTreeMap<String, usize> =
        wanted.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    loop {
        let now = spread(client, ns).await;
        if now == wanted {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "shards held {now:?}, wanted {wanted:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The result of every app's deploy with id "1", from one listing.
async fn results(client: &Client, ns: &str) -> HashMap<String, String> {
    let api: Api<ApplicationStatus> = Api::namespaced(client.clone(), ns);
    api.list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|status| {
            let labels = status.metadata.labels.as_ref()?;
            let app = labels.get("app")?.clone();
            (labels.get("fiaas/deployment_id")? == "1").then(|| (app, status.result.clone()))
        })
        .collect()
}

async fn all_succeed(client: &Client, ns: &str, apps: &[String], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let results = results(client, ns).await;
        let missing: Vec<String> = apps
            .iter()
            .filter(|app| results.get(*app).map(String::as_str) != Some("SUCCESS"))
            .map(|app| format!("{app}: {:?}", results.get(app)))
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} apps not SUCCESS within {within:?}, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Per Deployment, the replicas that wrote it (audit log).
fn writers_of_deployments(ns: &str) -> HashMap<String, BTreeSet<String>> {
    let mut writers: HashMap<String, BTreeSet<String>> = HashMap::new();
    for replica in REPLICAS {
        for request in audited(ns, replica) {
            if request.resource == "deployments"
                && request.verb == "patch"
                && (200..300).contains(&request.code)
                && let Some(name) = request.name
            {
                writers.entry(name).or_default().insert(replica.to_owned());
            }
        }
    }
    writers
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_share_twelve_shards_and_deploy_each_app_once() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "shards").await;
    let kubeconfigs = replica_kubeconfigs(&client, &ns, &REPLICAS).await;
    let _replicas: Vec<Daemon> = REPLICAS
        .iter()
        .zip(&kubeconfigs)
        .map(|(replica, kubeconfig)| start(&ns, kubeconfig, replica))
        .collect();
    let settled = wait_for_spread(&client, &ns, &EVEN).await;
    eprintln!("3 replicas hold 4 shards each {settled:?} after start");
    let kubelet = keep_pods_ready(&client, &ns, None);
    let apps: Vec<String> = (0..300).map(|i| format!("app-{i}")).collect();
    for app in &apps {
        put_application(&client, &ns, app, "1", small()).await;
    }
    all_succeed(&client, &ns, &apps, Duration::from_secs(240)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writers = writers_of_deployments(&ns);
    for app in &apps {
        let by = writers.get(app).cloned().unwrap_or_default();
        assert_eq!(by.len(), 1, "{app} written by {by:?}");
    }
    let mut per_replica: BTreeMap<String, usize> = BTreeMap::new();
    for by in writers.values() {
        for replica in by {
            *per_replica.entry(replica.clone()).or_default() += 1;
        }
    }
    eprintln!("apps deployed per replica: {per_replica:?}");
    assert_eq!(
        per_replica.len(),
        3,
        "every replica deployed: {per_replica:?}"
    );
    assert_eq!(
        spread(&client, &ns).await.into_values().collect::<Vec<_>>(),
        [4, 4, 4]
    );
    kubelet.abort();
    drop_namespace(&client, &ns).await;
    for kubeconfig in kubeconfigs {
        let _ = std::fs::remove_file(kubeconfig);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_replica_s_shards_move_after_their_leases_expire_a_terminated_one_s_at_once() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "shard-failover").await;
    let kubeconfigs = replica_kubeconfigs(&client, &ns, &REPLICAS).await;
    let mut replicas: Vec<Option<Daemon>> = REPLICAS
        .iter()
        .zip(&kubeconfigs)
        .map(|(replica, kubeconfig)| Some(start(&ns, kubeconfig, replica)))
        .collect();
    wait_for_spread(&client, &ns, &EVEN).await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let apps: Vec<String> = (0..90).map(|i| format!("app-{i}")).collect();
    for app in &apps {
        put_application(&client, &ns, app, "1", small()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while results(&client, &ns)
        .await
        .values()
        .filter(|r| *r == "SUCCESS")
        .count()
        < 10
    {
        assert!(Instant::now() < deadline, "no deploys before the kill");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGKILL: nothing is released; the others wait for the leases to expire.
    let before = shard_leases(&client, &ns).await;
    replicas[0].as_mut().unwrap().send("-KILL");
    let moved = wait_for_spread(&client, &ns, &[("replica-1", 6), ("replica-2", 6)]).await;
    let after = shard_leases(&client, &ns).await;
    let mut latest_take_over = Duration::ZERO;
    for (index, (holder, renewed)) in &before {
        if holder != "replica-0" {
            continue;
        }
        let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
        let lease = leases
            .get(&format!("fiaas-deploy-daemon-shard-{index}"))
            .await
            .unwrap();
        let acquired = lease.spec.unwrap().acquire_time.unwrap().0;
        let expiry = renewed.unwrap() + SignedDuration::from_secs(15);
        let late = acquired.duration_since(expiry);
        latest_take_over = latest_take_over.max(late.unsigned_abs());
        assert!(
            late.as_secs_f64() < 2.5,
            "shard {index} taken over {late:?} after its lease expired (by {:?})",
            after[index].0
        );
    }
    eprintln!(
        "killed replica's shards moved {moved:?} after the kill, at most {latest_take_over:?} after their leases expired"
    );
    all_succeed(&client, &ns, &apps, Duration::from_secs(120)).await;

    // SIGTERM: the shards are released and taken at the next round, without expiry.
    let terminated = Instant::now();
    replicas[1].as_mut().unwrap().send("-TERM");
    let moved = wait_for_spread(&client, &ns, &[("replica-2", 12)]).await;
    eprintln!("terminated replica's shards moved {moved:?} after SIGTERM");
    assert!(
        terminated.elapsed() < Duration::from_secs(15),
        "the hand-over waited for the leases to expire"
    );
    let exit = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(exit) = replicas[1].as_mut().unwrap().0.try_wait().unwrap() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "replica-1 did not exit on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(exit.success(), "a terminated replica exits 0: {exit:?}");
    let late: Vec<String> = (0..10).map(|i| format!("late-{i}")).collect();
    for app in &late {
        put_application(&client, &ns, app, "1", small()).await;
    }
    all_succeed(&client, &ns, &late, Duration::from_secs(60)).await;
    replicas.clear();
    kubelet.abort();
    drop_namespace(&client, &ns).await;
    for kubeconfig in kubeconfigs {
        let _ = std::fs::remove_file(kubeconfig);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_from_one_replica_to_three_and_back_loses_nothing() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "shard-scale").await;
    let kubeconfigs = replica_kubeconfigs(&client, &ns, &REPLICAS).await;
    let _first = start(&ns, &kubeconfigs[0], REPLICAS[0]);
    wait_for_spread(&client, &ns, &[("replica-0", 12)]).await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let apps: Vec<String> = (0..60).map(|i| format!("app-{i}")).collect();
    let creating = {
        let (client, ns, apps) = (client.clone(), ns.clone(), apps.clone());
        tokio::spawn(async move {
            for app in &apps {
                put_application(&client, &ns, app, "1", small()).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let mut others: Vec<Daemon> = REPLICAS[1..]
        .iter()
        .zip(&kubeconfigs[1..])
        .map(|(replica, kubeconfig)| start(&ns, kubeconfig, replica))
        .collect();
    wait_for_spread(&client, &ns, &EVEN).await;
    for other in &mut others {
        other.signal("-TERM");
    }
    wait_for_spread(&client, &ns, &[("replica-0", 12)]).await;
    creating.await.unwrap();
    all_succeed(&client, &ns, &apps, Duration::from_secs(120)).await;
    kubelet.abort();
    drop_namespace(&client, &ns).await;
    for kubeconfig in kubeconfigs {
        let _ = std::fs::remove_file(kubeconfig);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sharded_component_builds_and_the_api_server_accepts_it() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "shard-kustomize").await;
    // An overlay next to deploy/, as deploy/sharded/kustomization.yaml says to write one.
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let overlay = repository
        .join("target")
        .join(format!("sharded-overlay-{ns}"));
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!("resources: [../../deploy]\ncomponents: [../../deploy/sharded]\nnamespace: {ns}\n"),
    )
    .unwrap();
    let built = support::kubectl(&["kustomize", overlay.to_str().unwrap()], None);
    let objects: Vec<serde_json::Value> = built
        .split("\n---\n")
        .map(|document| fiaas_spec::parse_document(document).unwrap())
        .collect();
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let deployment = find("Deployment", "fiaas-deploy-daemon");
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["args"],
        serde_json::json!(["--shards", "12"])
    );
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    assert_eq!(
        find("PodDisruptionBudget", "fiaas-deploy-daemon")["spec"]["maxUnavailable"],
        1
    );
    let rules = &find("Role", "fiaas-deploy-daemon-shards")["rules"][0];
    assert_eq!(rules["resources"], serde_json::json!(["leases"]));
    // The test cluster (Kubernetes 1.20) predates policy/v1, so its PodDisruptionBudget is
    // checked above only.
    let served: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["kind"] != "PodDisruptionBudget")
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": served});
    support::kubectl(
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&list.to_string()),
    );
    let _ = std::fs::remove_dir_all(overlay);
    drop_namespace(&client, &ns).await;
}
