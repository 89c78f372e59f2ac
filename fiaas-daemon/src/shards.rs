//! Sharding (`--shards N`): several replicas share one fleet of Applications. The fleet is split
//! into N shards by a stable hash of `namespace/spec.application`; shard `i` is deployed only by
//! the holder of the Lease `<base>-shard-<i>` in the daemon's namespace.
//!
//! Each replica also keeps a membership Lease (`<base>-member-<identity>`), so every replica
//! knows how many are alive and holds at most ceil(N / replicas) shards: it takes shards that
//! are free (never held, released, or expired), gives up shards beyond its share (when a replica
//! joins), and gives all of them up on shutdown so a rolling update moves them at once. Writes
//! follow the same protocol as the leader lease (`fiaas-daemon/src/leader.rs`): every change is a
//! create or a replace carrying the `resourceVersion` read, so of two replicas racing for one
//! shard exactly one wins; a replica stops writing for a shard (its [`Fence`]) before another
//! can see that shard's lease expire.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fence::Fence;
use crate::health::Heartbeat;
use crate::leader::{
    RENEW_DEADLINE, RENEW_INTERVAL, RETRY_INTERVAL, expired, holder, is_conflict,
    lease_duration_seconds,
};

/// How often a replica looks at the leases: renews its own, takes free shards, gives up extra
/// ones.
const ROUND: Duration = RETRY_INTERVAL;
const _: () = assert!(MEMBERSHIP_DURATION.as_secs() < crate::leader::LEASE_DURATION.as_secs());

/// Bounds one round, so a hung request cannot stall renewals (the fences close meanwhile).
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// Between closing a shard's fence and releasing its lease: deploys of the shard are stopped
/// by then, and a request already on its way has landed before another replica can start.
const RELEASE_PAUSE: Duration = Duration::from_secs(1);
/// How long a replica's membership lasts after its last renewal (every round). Shorter than a
/// shard lease, so a replica that died is no longer counted by the time its shards expire and
/// the others' share has grown to take them.
const MEMBERSHIP_DURATION: Duration = Duration::from_secs(10);
/// Label of every lease of one daemon installation (its value: the base name).
const GROUP_LABEL: &str = "fiaas/lease-group";
/// Label saying whether a lease is a shard's or a replica's membership.
const ROLE_LABEL: &str = "fiaas/lease-role";

/// The shard of an app among `shards`: FNV-1a (64 bit) of `namespace/application`, fixed by its
/// definition, so every replica and every version of the daemon agrees.
pub fn shard_of(namespace: &str, application: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in namespace
        .bytes()
        .chain(std::iter::once(b'/'))
        .chain(application.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(shards)) as u32
}

/// The name of shard `index`'s lease.
pub fn shard_lease_name(base: &str, index: u32) -> String {
    format!("{base}-shard-{index}")
}

/// The shard whose lease `name` is, if it is one of this installation's `count` shards.
fn shard_index(base: &str, count: u32, name: &str) -> Option<u32> {
    let index: u32 = name
        .strip_prefix(base)?
        .strip_prefix("-shard-")?
        .parse()
        .ok()?;
    (index < count).then_some(index)
}

/// What the rest of the daemon sees of the shard leases.
#[derive(Clone)]
pub struct Shards {
    count: u32,
    held: watch::Receiver<BTreeSet<u32>>,
    fence: Fence,
}

impl Shards {
    /// How many shards the fleet is split into.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The shards this replica holds now; changes whenever it gains or gives up one.
    pub fn held(&self) -> watch::Receiver<BTreeSet<u32>> {
        self.held.clone()
    }

    /// Whether this replica holds the shard of `app` in `namespace`.
    pub fn holds(&self, namespace: &str, app: &str) -> bool {
        self.held
            .borrow()
            .contains(&shard_of(namespace, app, self.count))
    }

    /// The fence of the deploys: per shard, closed once its lease may have passed on.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }
}

/// The task that keeps this replica's membership and shard leases.
pub struct ShardLeases {
    api: Api<Lease>,
    base: String,
    identity: String,
    count: u32,
    /// Per held shard: when its last successful write (take-over or renewal) was sent.
    held: BTreeMap<u32, Instant>,
    valid_until: Vec<watch::Sender<Instant>>,
    held_tx: watch::Sender<BTreeSet<u32>>,
    rounds: u64,
}

impl ShardLeases {
    /// The leases of `count` shards named after `base` in `namespace`, competed for as
    /// `identity`; and the view of them for the controller and deployer.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        base: &str,
        identity: String,
        count: u32,
    ) -> (Self, Shards) {
        let closed = Instant::now();
        let (valid_until, receivers): (Vec<_>, Vec<_>) =
            (0..count).map(|_| watch::channel(closed)).unzip();
        let (held_tx, held) = watch::channel(BTreeSet::new());
        let leases = ShardLeases {
            api: Api::namespaced(client, namespace),
            base: base.to_owned(),
            identity,
            count,
            held: BTreeMap::new(),
            valid_until,
            held_tx,
            rounds: 0,
        };
        let shards = Shards {
            count,
            held,
            fence: Fence::sharded(receivers),
        };
        (leases, shards)
    }

    /// Keep the leases until `release` turns true (or its sender is gone), then give every
    /// shard and the membership up. While rounds fail, `heartbeat` says why after 30 s.
    pub async fn run(mut self, mut release: watch::Receiver<bool>, heartbeat: Heartbeat) {
        let mut failing_since: Option<Instant> = None;
        loop {
            match tokio::time::timeout(ROUND_TIMEOUT, self.round()).await {
                Ok(Ok(())) => {
                    failing_since = None;
                    heartbeat.beat();
                }
                outcome => {
                    let reason = match outcome {
                        Ok(Err(error)) => error.to_string(),
                        _ => "no answer".to_owned(),
                    };
                    tracing::warn!("Keeping the shard leases failed, retrying: {reason}");
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_secs(30) {
                        heartbeat.stop(format!("keeping the shard leases fails: {reason}"));
                    } else {
                        heartbeat.beat();
                    }
                    self.drop_overdue();
                }
            }
            self.rounds += 1;
            tokio::select! {
                _ = release.wait_for(|release| *release) => break,
                () = tokio::time::sleep(ROUND) => {}
            }
        }
        self.release_all().await;
    }

    fn member_name(&self) -> String {
        format!("{}-member-{}", self.base, self.identity)
    }

    async fn round(&mut self) -> Result<(), kube::Error> {
        let selector = format!("{GROUP_LABEL}={}", self.base);
        let listed = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await?
            .items;
        let now = Timestamp::now();
        let member_name = self.member_name();
        let mut members = 1;
        let mut own_membership = None;
        let mut shards = BTreeMap::new();
        for lease in listed {
            let name = lease.metadata.name.clone().unwrap_or_default();
            let role = lease
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(ROLE_LABEL))
                .cloned();
            match role.as_deref() {
                Some("member") if name == member_name => own_membership = Some(lease),
                Some("member") => {
                    if lease.spec.as_ref().is_some_and(|spec| !expired(spec, now)) {
                        members += 1;
                    } else {
                        self.forget_member(&name).await;
                    }
                }
                Some("shard") => {
                    if let Some(index) = shard_index(&self.base, self.count, &name) {
                        shards.insert(index, lease);
                    }
                }
                _ => {}
            }
        }
        self.keep_membership(own_membership).await?;
        self.check_held(&shards);
        self.renew_due(&shards).await;
        let share = self.count.div_ceil(members) as usize;
        while self.held.len() > share {
            let Some(&extra) = self.held.keys().next_back() else {
                break;
            };
            self.give_up(extra, shards.get(&extra).cloned()).await;
        }
        // The first round only announces this replica: the others count it before it takes a
        // share, so replicas that start together do not first take everything.
        if self.rounds > 0 {
            self.take_free(&shards, share, now).await;
        }
        self.publish();
        Ok(())
    }

    async fn keep_membership(&mut self, own: Option<Lease>) -> Result<(), kube::Error> {
        let mut lease = self.lease(&self.member_name(), "member", own);
        lease.spec.get_or_insert_default().lease_duration_seconds =
            Some(MEMBERSHIP_DURATION.as_secs() as i32);
        self.write(lease).await
    }

    /// Shards this replica counts as held, but whose lease says otherwise (taken over, deleted)
    /// or that were not renewed in time, are lost.
    fn check_held(&mut self, shards: &BTreeMap<u32, Lease>) {
        let lost: Vec<(u32, String)> = self
            .held
            .iter()
            .filter_map(|(&index, renewed)| {
                let holder = shards
                    .get(&index)
                    .and_then(|lease| lease.spec.as_ref())
                    .and_then(holder);
                if renewed.elapsed() >= RENEW_DEADLINE {
                    Some((index, "not renewed in time".to_owned()))
                } else if holder != Some(self.identity.as_str()) {
                    Some((
                        index,
                        holder.map_or("released".to_owned(), |h| format!("{h} holds it")),
                    ))
                } else {
                    None
                }
            })
            .collect();
        for (index, why) in lost {
            tracing::error!("Lost shard {index}: {why}");
            self.close(index);
            crate::metrics::shard_transition("lost");
        }
    }

    /// After failed rounds: shards whose renewal deadline passed are lost (their fences
    /// closed on their own already).
    fn drop_overdue(&mut self) {
        let overdue: Vec<u32> = self
            .held
            .iter()
            .filter(|(_, renewed)| renewed.elapsed() >= RENEW_DEADLINE)
            .map(|(&index, _)| index)
            .collect();
        for index in overdue {
            tracing::error!("Lost shard {index}: not renewed in time");
            self.close(index);
            crate::metrics::shard_transition("lost");
        }
        self.publish();
    }

    async fn renew_due(&mut self, shards: &BTreeMap<u32, Lease>) {
        let due: Vec<u32> = self
            .held
            .iter()
            .filter(|(_, renewed)| renewed.elapsed() >= RENEW_INTERVAL)
            .map(|(&index, _)| index)
            .collect();
        for index in due {
            let Some(current) = shards.get(&index).cloned() else {
                continue;
            };
            let sent = Instant::now();
            let lease = self.lease(&shard_lease_name(&self.base, index), "shard", Some(current));
            match self.write(lease).await {
                Ok(()) => {
                    self.held.insert(index, sent);
                    self.valid_until[index as usize].send_replace(sent + RENEW_DEADLINE);
                }
                Err(error) => tracing::warn!("Could not renew shard {index}, retrying: {error}"),
            }
        }
    }

    async fn take_free(&mut self, shards: &BTreeMap<u32, Lease>, share: usize, now: Timestamp) {
        // Replicas start looking at different shards, so they race less for the same ones.
        let offset = shard_of("", &self.identity, self.count);
        for step in 0..self.count {
            if self.held.len() >= share {
                return;
            }
            let index = (offset + step) % self.count;
            if self.held.contains_key(&index) {
                continue;
            }
            let current = shards.get(&index).cloned();
            let free = current
                .as_ref()
                .and_then(|lease| lease.spec.as_ref())
                .is_none_or(|spec| holder(spec).is_none() || expired(spec, now));
            if !free {
                continue;
            }
            let sent = Instant::now();
            let mut lease = self.lease(&shard_lease_name(&self.base, index), "shard", current);
            let spec = lease.spec.get_or_insert_default();
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.map_or(0, |t| t + 1));
            match self.write(lease).await {
                Ok(()) => {
                    tracing::info!("Took shard {index} as {}", self.identity);
                    self.held.insert(index, sent);
                    self.valid_until[index as usize].send_replace(sent + RENEW_DEADLINE);
                    crate::metrics::shard_transition("gained");
                }
                Err(error) if is_conflict(&error) => {}
                Err(error) => tracing::warn!("Could not take shard {index}: {error}"),
            }
        }
    }

    /// Stop deploying shard `index` and release its lease for another replica.
    async fn give_up(&mut self, index: u32, current: Option<Lease>) {
        self.close(index);
        self.publish();
        crate::metrics::shard_transition("released");
        tokio::time::sleep(RELEASE_PAUSE).await;
        let Some(mut lease) = current else {
            return;
        };
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = None;
        }
        match self.write(lease).await {
            Ok(()) => tracing::info!("Released shard {index}"),
            // It expires on its own.
            Err(error) => tracing::warn!("Could not release shard {index}: {error}"),
        }
    }

    /// On shutdown: every shard released and the membership removed, so the other replicas
    /// take the shards over at their next round instead of after the leases expire.
    async fn release_all(mut self) {
        let indexes: Vec<u32> = self.held.keys().copied().collect();
        for &index in &indexes {
            self.close(index);
        }
        self.publish();
        if !indexes.is_empty() {
            tokio::time::sleep(RELEASE_PAUSE).await;
        }
        for index in indexes {
            let name = shard_lease_name(&self.base, index);
            let released = async {
                let mut lease = self.api.get(&name).await?;
                if lease.spec.as_ref().and_then(holder) != Some(self.identity.as_str()) {
                    return Ok(());
                }
                if let Some(spec) = lease.spec.as_mut() {
                    spec.holder_identity = None;
                }
                self.api
                    .replace(&name, &PostParams::default(), &lease)
                    .await?;
                crate::metrics::shard_transition("released");
                Ok::<(), kube::Error>(())
            };
            match tokio::time::timeout(ROUND_TIMEOUT, released).await {
                Ok(Ok(())) => tracing::info!("Released shard {index}"),
                Ok(Err(error)) => tracing::warn!("Could not release shard {index}: {error}"),
                Err(_) => tracing::warn!("Could not release shard {index}: no answer"),
            }
        }
        self.forget_member(&self.member_name()).await;
    }

    async fn forget_member(&self, name: &str) {
        let params = DeleteParams::default();
        let deleted = self.api.delete(name, &params);
        if let Ok(Err(error)) = tokio::time::timeout(ROUND_TIMEOUT, deleted).await
            && !matches!(&error, kube::Error::Api(status) if status.code == 404)
        {
            tracing::debug!("Could not delete the membership lease {name}: {error}");
        }
    }

    fn close(&mut self, index: u32) {
        self.held.remove(&index);
        self.valid_until[index as usize].send_replace(Instant::now());
    }

    fn publish(&self) {
        let held: BTreeSet<u32> = self.held.keys().copied().collect();
        crate::metrics::shards_held(held.len());
        self.held_tx.send_if_modified(|current| {
            let changed = *current != held;
            *current = held;
            changed
        });
    }

    /// `current` (or a new lease named `name`) held by this replica and renewed now.
    fn lease(&self, name: &str, role: &str, current: Option<Lease>) -> Lease {
        let now = MicroTime(Timestamp::now());
        let mut lease = current.unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    [
                        (GROUP_LABEL.to_owned(), self.base.clone()),
                        (ROLE_LABEL.to_owned(), role.to_owned()),
                    ]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                acquire_time: Some(now.clone()),
                ..LeaseSpec::default()
            }),
        });
        let spec = lease.spec.get_or_insert_default();
        spec.holder_identity = Some(self.identity.clone());
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(lease_duration_seconds());
        lease
    }

    /// Create `lease`, or replace it when it was read (it carries a resourceVersion).
    async fn write(&self, lease: Lease) -> Result<(), kube::Error> {
        let params = PostParams::default();
        match lease.metadata.resource_version {
            None => self.api.create(&params, &lease).await.map(drop),
            Some(_) => {
                let name = lease.metadata.name.clone().unwrap_or_default();
                self.api.replace(&name, &params, &lease).await.map(drop)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shard_of_an_app_is_stable_and_spread() {
        // Fixed values: a change here moves apps between shards in running clusters.
        assert_eq!(shard_of("default", "my-app", 12), 3);
        assert_eq!(shard_of("default", "my-app", 1), 0);
        assert_ne!(
            shard_of("ab", "c", 1 << 30),
            shard_of("a", "bc", 1 << 30),
            "the separator keeps namespace and name apart"
        );
        let mut counts = [0u32; 12];
        for i in 0..1200 {
            counts[shard_of("ns", &format!("app-{i}"), 12) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (60..=140).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn only_names_of_this_installation_are_shards() {
        assert_eq!(shard_index("fdd", 12, &shard_lease_name("fdd", 3)), Some(3));
        assert_eq!(shard_index("fdd", 12, "fdd-shard-12"), None);
        assert_eq!(shard_index("fdd", 12, "fdd-member-x"), None);
        assert_eq!(shard_index("fdd", 12, "other-shard-1"), None);
    }
}
