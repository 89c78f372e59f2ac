//! The BestEffort rule of every namespace in scope, kept current by a watch on ResourceQuotas so
//! a deploy does not list quotas each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::apply::requires_besteffort;

#[derive(Default)]
struct Quotas {
    /// Per namespace, the names of quotas that demand BestEffort pods.
    besteffort: HashMap<String, Vec<String>>,
    synced: bool,
}

/// Which namespaces only admit BestEffort pods, from a watch.
#[derive(Clone, Default)]
pub struct QuotaWatch {
    quotas: Arc<Mutex<Quotas>>,
}

fn key(quota: &ResourceQuota) -> (String, String) {
    (
        quota.metadata.namespace.clone().unwrap_or_default(),
        quota.metadata.name.clone().unwrap_or_default(),
    )
}

impl QuotaWatch {
    /// A watch over `namespace` (all namespaces if `None`); spawn the returned future.
    pub fn new(
        client: Client,
        namespace: Option<&str>,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let api: Api<ResourceQuota> = match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let watch = QuotaWatch::default();
        let quotas = watch.quotas.clone();
        let task = async move {
            let mut stream = watcher::watcher(api, crate::watch_config())
                .backoff(crate::WatchBackoff::default())
                .boxed();
            let mut listing: HashMap<String, Vec<String>> = HashMap::new();
            while let Some(event) = stream.next().await {
                let Ok(mut state) = quotas.lock() else { return };
                match event {
                    Ok(Event::Init) => listing.clear(),
                    Ok(Event::InitApply(quota)) => {
                        if requires_besteffort(&quota) {
                            let (ns, name) = key(&quota);
                            listing.entry(ns).or_default().push(name);
                        }
                    }
                    Ok(Event::InitDone) => {
                        state.besteffort = std::mem::take(&mut listing);
                        state.synced = true;
                    }
                    Ok(Event::Apply(quota)) => {
                        let (ns, name) = key(&quota);
                        let names = state.besteffort.entry(ns).or_default();
                        names.retain(|n| *n != name);
                        if requires_besteffort(&quota) {
                            names.push(name);
                        }
                    }
                    Ok(Event::Delete(quota)) => {
                        let (ns, name) = key(&quota);
                        if let Some(names) = state.besteffort.get_mut(&ns) {
                            names.retain(|n| *n != name);
                        }
                    }
                    Err(e) => tracing::warn!("ResourceQuota watch error, retrying: {e}"),
                }
            }
        };
        (watch, task)
    }

    /// Whether `namespace` only admits BestEffort pods; `None` until the watch has listed.
    pub fn besteffort_required(&self, namespace: &str) -> Option<bool> {
        let quotas = self.quotas.lock().ok()?;
        quotas.synced.then(|| {
            quotas
                .besteffort
                .get(namespace)
                .is_some_and(|names| !names.is_empty())
        })
    }
}
