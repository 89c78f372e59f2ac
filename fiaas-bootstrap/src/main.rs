//! `fiaas-deploy-daemon-bootstrap`: deploy, once, the Applications labelled
//! `fiaas/bootstrap=true` in the daemon's namespace (or one app straight from a fiaas.yml), wait
//! until every one has rolled out, and exit 0, or exit 1 naming each app and its final state.
//! Every app is deployed by the daemon's [`Deployer`], as the daemon deploys it: statuses,
//! the extension hook, retries after transient failures, and `--max-concurrent-deploys`; only
//! the wiring is here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fiaas_config::{ClusterConfig, DeployerArgs, Scope};
use fiaas_daemon::application::{ApplicationView, RawApplication};
use fiaas_daemon::deployer::{Cancel, Deployer};
use fiaas_daemon::scheduler::Finished;
use fiaas_daemon::startup::{self, NAMESPACE_FILE};
use fiaas_k8s::{Applier, DeployResult, RolloutTracker};
use kube::api::{Api, ListParams};
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "fiaas-deploy-daemon-bootstrap",
    version,
    about = "Deploy the bootstrap Applications once and wait for them"
)]
struct Cli {
    /// The cluster flags and how deploys run (`--max-concurrent-deploys`, `--status-retention`),
    /// read into the `ClusterConfig`.
    #[command(flatten)]
    flags: DeployerArgs,
    /// Deploy this fiaas.yml instead of the bootstrap Applications (needs --name and --image).
    #[arg(long, value_name = "FIAAS_YML")]
    app: Option<PathBuf>,
    /// Application name, with --app.
    #[arg(long, requires = "app")]
    name: Option<String>,
    /// Container image, with --app.
    #[arg(long, requires = "app")]
    image: Option<String>,
    /// Deployment id, with --app.
    #[arg(long, requires = "app", default_value = "1")]
    deployment_id: String,
    /// How long to wait for every app to roll out.
    #[arg(long, default_value_t = 120)]
    timeout_seconds: u64,
}

fn main() -> ExitCode {
    let (cli, config, runtime) =
        match startup::begin::<Cli>("fiaas-deploy-daemon-bootstrap", Scope::Deployer) {
            Ok(started) => started,
            Err(code) => return code,
        };
    match runtime.block_on(run(config, cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("General failure! {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Final state of each app, as the summary prints it.
type States = Arc<Mutex<BTreeMap<String, String>>>;

async fn run(config: ClusterConfig, cli: Cli) -> anyhow::Result<bool> {
    let namespace = startup::namespace(Path::new(NAMESPACE_FILE), std::env::var("NAMESPACE").ok())?;
    let client = kube::Client::try_from(startup::kube_config(&config, &namespace).await?)
        .context("creating the Kubernetes client")?;
    let applier = Applier::new(client.clone()).await?;
    let (tracker, tracking) = RolloutTracker::new(client.clone(), Some(&namespace));
    tokio::spawn(tracking);
    let timeout = Duration::from_secs(cli.timeout_seconds);
    let states: States = Arc::default();

    let work = async {
        let views = match &cli.app {
            Some(file) => from_file(&cli, file, &namespace, &states)?,
            None => bootstrap_applications(&config, &client, &namespace, &states).await?,
        };
        let deployer = Deployer::new(client.clone(), Arc::new(config.clone()), applier, tracker)
            .context("extension hook")?;
        deploy_all(&deployer, views, &states).await;
        anyhow::Ok(())
    };
    let progress = tokio::spawn(report_progress(states.clone()));
    let finished = tokio::time::timeout(timeout, work).await;
    progress.abort();
    let snapshot = states.lock().map(|s| s.clone()).unwrap_or_default();
    match finished {
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) if snapshot.values().all(|s| s == "SUCCESS") => {
            tracing::info!("Bootstrapped {} applications", snapshot.len());
            Ok(true)
        }
        outcome => {
            if outcome.is_err() {
                tracing::error!(
                    "Timed out after waiting {}s for applications to become ready.",
                    timeout.as_secs()
                );
            }
            tracing::error!("Applications which failed to become ready:");
            for (app, state) in &snapshot {
                tracing::error!("{app} in namespace {namespace} had final state {state}");
                eprintln!("{app} in namespace {namespace}: {state}");
            }
            Ok(false)
        }
    }
}

/// Every 5 s, tell which apps are still rolling out.
async fn report_progress(states: States) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    loop {
        tick.tick().await;
        let waiting: Vec<String> = states
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|(_, v)| *v == "RUNNING")
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        if !waiting.is_empty() {
            eprintln!("still rolling out: {}", waiting.join(", "));
        }
    }
}

/// The Applications labelled `fiaas/bootstrap=true` in the namespace that can be deployed; the
/// others are FAILED in `states` right away.
async fn bootstrap_applications(
    config: &ClusterConfig,
    client: &kube::Client,
    namespace: &str,
    states: &States,
) -> anyhow::Result<Vec<ApplicationView>> {
    if !config.enable_crd_support {
        anyhow::bail!("bootstrapping Applications requires --enable-crd-support");
    }
    let api: Api<RawApplication> = Api::namespaced(client.clone(), namespace);
    let listed = api
        .list(&ListParams::default().labels("fiaas/bootstrap=true"))
        .await
        .context("listing the bootstrap Applications")?;
    let mut views = Vec::new();
    for object in &listed.items {
        let view = ApplicationView::of(object);
        if view.deployment_id.is_none() {
            tracing::error!(
                "Application {} has no fiaas/deployment_id label",
                view.object_name
            );
            set(states, &view.app, "FAILED (no fiaas/deployment_id label)");
            continue;
        }
        views.push(view);
    }
    Ok(views)
}

/// The app of `--app`, unless its file is not a fiaas.yml (then FAILED in `states`).
fn from_file(
    cli: &Cli,
    file: &Path,
    namespace: &str,
    states: &States,
) -> anyhow::Result<Vec<ApplicationView>> {
    let (Some(name), Some(image)) = (&cli.name, &cli.image) else {
        anyhow::bail!("--app needs --name and --image");
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match fiaas_spec::parse_document(&text) {
        Ok(config) => Ok(vec![ApplicationView::unstored(
            namespace,
            name,
            image,
            &cli.deployment_id,
            config,
        )]),
        Err(e) => {
            tracing::error!("{}: {e}", file.display());
            set(states, name, "FAILED (invalid fiaas.yml)");
            Ok(Vec::new())
        }
    }
}

/// Deploys every app at once (the deployer bounds how many talk to the API server) and
/// records how each ended.
async fn deploy_all(deployer: &Deployer, views: Vec<ApplicationView>, states: &States) {
    // Nothing cancels a bootstrap deploy; the overall timeout drops them instead.
    let (_keep_going, cancel) = watch::channel(Cancel::No);
    let deploys = views.into_iter().map(|view| {
        set(states, &view.app, "RUNNING");
        let cancel = cancel.clone();
        async move {
            let state = match deployer.run_until_done(&view, cancel).await {
                Finished::Verdict(result) => result.as_str(),
                Finished::AlreadyDeployed => DeployResult::Success.as_str(),
                Finished::Transient => "FAILED (the API server did not answer)",
                Finished::Stopped => "UNFINISHED",
            };
            set(states, &view.app, state);
        }
    });
    futures::future::join_all(deploys).await;
}

fn set(states: &States, app: &str, state: &str) {
    if let Ok(mut states) = states.lock() {
        states.insert(app.to_owned(), state.to_owned());
    }
}
