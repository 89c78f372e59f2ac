//! Embed the daemon's deploy of one Application in another tool: the same statuses, apply,
//! prune and rollout tracking as `fiaas-deploy-daemon`, run once for one Application.
//!
//! `cargo run -p fiaas-examples --example embed_deployer -- NAMESPACE APPLICATION [daemon flags]`
//! against the cluster of the current kubeconfig.

use std::sync::Arc;

use anyhow::Context;
use fiaas_daemon::application::{ApplicationView, RawApplication};
use fiaas_daemon::deployer::{Cancel, Deployer};
use fiaas_daemon::scheduler::{Finished, StartCheck};
use fiaas_k8s::{Applier, RolloutTracker, StatusWriter};
use fiaas_transform::ClusterConfig;
use kube::Api;
use tokio::sync::{Semaphore, watch};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let namespace = args
        .next()
        .context("usage: embed_deployer NAMESPACE APPLICATION [daemon flags]")?;
    let name = args
        .next()
        .context("usage: embed_deployer NAMESPACE APPLICATION [daemon flags]")?;
    // The daemon's own flags, parsed by the one shared configuration definition.
    let config = ClusterConfig::from_args(std::iter::once("embed".to_owned()).chain(args), None)?;

    let client = kube::Client::try_default().await?;
    let applications: Api<RawApplication> = Api::namespaced(client.clone(), &namespace);
    let view = ApplicationView::of(&applications.get(&name).await?);

    // The rollout tracker follows Deployments through one watch; it must run while deploying.
    let (tracker, tracking) = RolloutTracker::new(client.clone(), Some(&namespace));
    tokio::spawn(tracking);
    let config = Arc::new(config);
    let deployer = Deployer {
        statuses: StatusWriter::new(client.clone(), config.include_status_in_app),
        applier: Applier::new(client.clone()).await?,
        config,
        tracker,
        quotas: None,
        events: None,
        usage: None,
        hook: None,
        permits: Arc::new(Semaphore::new(1)),
        fence: None,
    };
    // Nothing cancels a one-off deploy; the sender just has to outlive it.
    let (_never, cancel) = watch::channel(Cancel::No);
    match deployer.run(view, cancel, StartCheck::Fresh, 0).await {
        Finished::Verdict(verdict) => println!("{name}: {}", verdict.as_str()),
        other => println!("{name}: unfinished ({other:?})"),
    }
    Ok(())
}
