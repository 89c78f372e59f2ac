//! Leader election against the real test cluster: one holder at a time, a prompt hand-over when
//! the holder lets go, and the take-over of a lease its holder let expire.

use std::time::Duration;

use fiaas_daemon::leader::LeaderElector;
use fiaas_tests::test_cluster;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};

const LEASE: &str = "fiaas-deploy-daemon";

/// A namespace of its own for one test, deleted when the test ends (even by a panic).
struct TestNamespace {
    name: String,
}

impl TestNamespace {
    async fn create(client: &Client, test: &str) -> Self {
        let name = format!(
            "leader-{test}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("creating the test namespace");
        TestNamespace { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await, and the test's client is served by the test's runtime, which this
        // drop blocks: delete with a client and a runtime of its own.
        let deleted = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to delete the test namespace")
                .block_on(async {
                    let client = Client::try_default().await?;
                    Api::<Namespace>::all(client)
                        .delete(&name, &DeleteParams::background())
                        .await
                        .map(|_| ())
                })
        })
        .join();
        if let Ok(Err(e)) = deleted {
            eprintln!("could not delete namespace {}: {e}", self.name);
        }
    }
}

async fn holder(client: &Client, namespace: &str) -> Option<String> {
    Api::<Lease>::namespaced(client.clone(), namespace)
        .get(LEASE)
        .await
        .expect("reading the lease")
        .spec
        .and_then(|spec| spec.holder_identity)
}

#[tokio::test]
async fn one_holder_at_a_time_and_a_prompt_hand_over() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let namespace = TestNamespace::create(&client, "handover").await;
    let first = LeaderElector::new(client.clone(), &namespace.name, LEASE, "first".to_owned());
    let second = LeaderElector::new(client.clone(), &namespace.name, LEASE, "second".to_owned());

    let guard = first.acquire().await.expect("the first candidate acquires");
    assert_eq!(
        holder(&client, &namespace.name).await.as_deref(),
        Some("first")
    );

    let waiting = tokio::spawn(async move { second.acquire().await });
    // Long enough for several of the second's attempts and one renewal of the first's.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        !waiting.is_finished(),
        "the second candidate acquired a held lease"
    );
    tokio::select! {
        () = guard.lost() => panic!("the first candidate lost a lease it kept renewing"),
        () = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    assert_eq!(
        holder(&client, &namespace.name).await.as_deref(),
        Some("first")
    );

    drop(guard);
    // Well under the 15 s lease duration: the release, not expiry, let the second in.
    let second_guard = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the second candidate acquires promptly after the release")
        .expect("the waiting task")
        .expect("the second candidate acquires");
    assert_eq!(
        holder(&client, &namespace.name).await.as_deref(),
        Some("second")
    );
    second_guard.release().await.expect("releasing the lease");
    assert_eq!(holder(&client, &namespace.name).await, None);
}

#[tokio::test]
async fn an_expired_foreign_lease_is_taken_over_and_the_loser_is_told() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let namespace = TestNamespace::create(&client, "expired").await;
    let leases = Api::<Lease>::namespaced(client.clone(), &namespace.name);
    let long_ago = MicroTime(Timestamp::now() - SignedDuration::from_secs(60));
    let stale = Lease {
        metadata: ObjectMeta {
            name: Some(LEASE.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("crashed-pod".to_owned()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(long_ago.clone()),
            renew_time: Some(long_ago),
            lease_transitions: Some(3),
            ..LeaseSpec::default()
        }),
    };
    leases
        .create(&PostParams::default(), &stale)
        .await
        .expect("creating the stale lease");

    let elector = LeaderElector::new(client.clone(), &namespace.name, LEASE, "me".to_owned());
    let guard = tokio::time::timeout(Duration::from_secs(5), elector.acquire())
        .await
        .expect("an expired lease is taken at once")
        .expect("acquiring the expired lease");
    let spec = leases.get(LEASE).await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("me"));
    assert_eq!(spec.lease_transitions, Some(4));

    // Someone else seizes it behind our back: the next renewal notices.
    let mut seized = leases.get(LEASE).await.unwrap();
    seized.spec.as_mut().unwrap().holder_identity = Some("usurper".to_owned());
    leases
        .replace(LEASE, &PostParams::default(), &seized)
        .await
        .expect("seizing the lease");
    tokio::time::timeout(Duration::from_secs(10), guard.lost())
        .await
        .expect("the holder learns it lost the lease");
    drop(guard);
    // A lost lease is not released: it is someone else's now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        holder(&client, &namespace.name).await.as_deref(),
        Some("usurper")
    );
}
