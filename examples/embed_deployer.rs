//! Embed the daemon's deploy of one Application in another tool: the same statuses, apply,
//! prune and rollout tracking as `fiaas-deploy-daemon`, run once for one Application.
//!
//! `cargo run -p fiaas-examples --example embed_deployer -- NAMESPACE APPLICATION [daemon flags]`
//! against the cluster of the current kubeconfig.

use std::sync::Arc;

use anyhow::Context;
use fiaas_config::ClusterConfig;
use fiaas_daemon::application::{ApplicationView, RawApplication};
use fiaas_daemon::deployer::{Cancel, Deployer};
use fiaas_daemon::scheduler::Finished;
use fiaas_k8s::{Applier, RolloutTracker};
use kube::Api;
use tokio::sync::watch;

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
    let applier = Applier::new(client.clone()).await?;
    // The daemon's deployer, extension hook included; `--max-concurrent-deploys` and
    // `--status-retention` at their defaults (this tool's command line does not take them).
    let deployer = Deployer::new(client, Arc::new(config), applier, tracker)?;
    // Nothing cancels a one-off deploy; the sender just has to outlive it.
    let (_never, cancel) = watch::channel(Cancel::No);
    match deployer.run_until_done(&view, cancel).await {
        Finished::Verdict(verdict) => println!("{name}: {}", verdict.as_str()),
        other => println!("{name}: unfinished ({other:?})"),
    }
    Ok(())
}
