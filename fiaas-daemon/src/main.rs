//! `fiaas-deploy-daemon`: watches Applications and deploys them. The wiring only; the parts live
//! in the fiaas-daemon library.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use fiaas_config::{ClusterConfig, DaemonArgs, Scope};
use fiaas_daemon::controller::{Controller, Stop};
use fiaas_daemon::deployer::Deployer;
use fiaas_daemon::health::{Health, Heartbeat};
use fiaas_daemon::leader::{self, LeaderElector};
use fiaas_daemon::metrics;
use fiaas_daemon::shards::ShardLeases;
use fiaas_daemon::startup::{self, NAMESPACE_FILE};
use fiaas_daemon::usage::{UsageReporter, UsageSettings};
use fiaas_daemon::web::{self, WebState};
use fiaas_k8s::{Applier, QuotaWatch, RolloutTracker};
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;

/// Every flag, the daemon's own (`--max-concurrent-deploys`, `--leader-election`, `--shards`, ...)
/// among them, as defined in fiaas-config; the values are read into `ClusterConfig::deploys` and
/// `ClusterConfig::daemon`.
#[derive(Parser)]
#[command(
    name = "fiaas-deploy-daemon",
    version,
    about = "Deploys fiaas Applications"
)]
struct Cli {
    #[command(flatten)]
    flags: DaemonArgs,
}

fn main() -> ExitCode {
    let (Cli { flags: DaemonArgs }, config, runtime) =
        match startup::begin::<Cli>("fiaas-deploy-daemon", Scope::Daemon) {
            Ok(started) => started,
            Err(code) => return code,
        };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("General failure! {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: ClusterConfig) -> anyhow::Result<()> {
    startup::warn_if_env_variable_config();
    tracing::info!("fiaas-deploy-daemon starting with configuration {config:?}");
    let namespace = startup::namespace(Path::new(NAMESPACE_FILE), std::env::var("NAMESPACE").ok())?;
    let handle =
        metrics::install(&config.transform.version).context("installing the metrics recorder")?;
    // Upstream builds a default AppSpec at start-up through its counted factory.
    metrics::yml_version_seen("3", "None");
    let health = Health::default();

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let stop = shutdown_tx.clone();
    tokio::spawn(async move {
        wait_for_termination().await;
        tracing::info!("Termination requested; finishing in-flight applies");
        let _ = shutdown_tx.send(true);
    });

    let listener = tokio::net::TcpListener::bind(("0.0.0.0", config.port))
        .await
        .with_context(|| format!("binding the web server to port {}", config.port))?;
    let web_shutdown = {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let web = tokio::spawn(web::serve(
        listener,
        WebState {
            metrics: handle,
            health: health.clone(),
        },
        web_shutdown,
    ));

    if config.enable_crd_support {
        let kube_config = startup::kube_config(&config, &namespace).await?;
        let client =
            kube::Client::try_from(kube_config).context("creating the Kubernetes client")?;
        let daemon = config.daemon.clone();
        let sharded = daemon.shards > 1;
        if sharded && daemon.leader_election {
            tracing::info!("With --shards, each shard's Lease replaces the leader election");
        }
        // Standby replicas wait here, before touching CRDs or watching anything.
        let lease = if daemon.leader_election && !sharded {
            let elector = LeaderElector::new(
                client.clone(),
                &namespace,
                &daemon.leader_election_lease_name,
                leader::default_identity(),
            );
            let mut stopping = shutdown_rx.clone();
            tokio::select! {
                acquired = elector.acquire() => Some(acquired.context("acquiring the leader lease")?),
                _ = stopping.wait_for(|stop| *stop) => {
                    web.await.context("the web server task")?.context("the web server")?;
                    return Ok(());
                }
            }
        } else {
            None
        };
        // Registered before the start-up steps, so /healthz reports one that keeps failing (a
        // missing RBAC grant, say) instead of answering 200 while nothing can deploy.
        let watcher_heartbeat = health.register("CrdWatcher", Duration::from_secs(30));
        if !config.disable_crd_creation {
            let crd_validation = if daemon.crd_validation {
                fiaas_k8s::ConfigValidation::Schema
            } else {
                fiaas_k8s::ConfigValidation::Off
            };
            retry_until_ok(
                "creating the CRDs",
                &shutdown_rx,
                &watcher_heartbeat,
                || fiaas_k8s::ensure_crds_with(&client, crd_validation),
            )
            .await?;
        }
        let applier = retry_until_ok(
            "discovering the API server",
            &shutdown_rx,
            &watcher_heartbeat,
            || Applier::new(client.clone()),
        )
        .await?;
        let scope = (!config.enable_deprecated_multi_namespace_support).then(|| namespace.clone());
        let (tracker, tracking) = RolloutTracker::new(client.clone(), scope.as_deref());
        tokio::spawn(tracking);
        let (quotas, quota_watch) = QuotaWatch::new(client.clone(), scope.as_deref());
        tokio::spawn(quota_watch);
        let usage = match UsageSettings::from_config(&config).context("usage reporting")? {
            Some(settings) => {
                let (reporter, sending) = UsageReporter::new(settings);
                tokio::spawn(sending);
                Some(reporter)
            }
            None => None,
        };
        let events = Recorder::new(
            client.clone(),
            Reporter {
                controller: "fiaas-deploy-daemon".to_owned(),
                instance: std::env::var("HOSTNAME").ok(),
            },
        );
        let shards = sharded.then(|| {
            let (leases, shards) = ShardLeases::new(
                client.clone(),
                &namespace,
                &daemon.leader_election_lease_name,
                leader::default_identity(),
                daemon.shards,
            );
            let (release, released) = watch::channel(false);
            let heartbeat = health.register("ShardLeases", Duration::from_secs(30));
            let task = tokio::spawn(leases.run(released, heartbeat));
            (shards, release, task)
        });
        let fence = match (&lease, &shards) {
            (Some(lease), _) => Some(lease.fence()),
            (None, Some((shards, _, _))) => Some(shards.fence()),
            (None, None) => None,
        };
        let config = Arc::new(config);
        let deployer = Deployer::new(client.clone(), config, applier, tracker)
            .context("extension hook")?
            .with_quotas(quotas)
            .with_events(events)
            .with_usage(usage)
            .with_fence(fence);
        let deployer = Arc::new(deployer);
        let mut controller = Controller::new(
            client,
            scope,
            deployer,
            watcher_heartbeat,
            health.register("Deployer", Duration::from_secs(30)),
        );
        if let Some((shards, _, _)) = &shards {
            controller = controller.sharded(shards.clone());
        }
        let (stop_controller, controller_stop) = watch::channel(Stop::No);
        let mut terminating = shutdown_rx.clone();
        let graceful = stop_controller.clone();
        // Sharded, a replica stops its deploys at once and hands its shards over, so the other
        // replicas resume them within a round instead of waiting for the grace period.
        let how = if sharded { Stop::Now } else { Stop::Gracefully };
        tokio::spawn(async move {
            if terminating.wait_for(|stop| *stop).await.is_ok() {
                let _ = graceful.send(how);
            }
        });
        let running = controller.run(
            controller_stop,
            Duration::from_secs(daemon.shutdown_grace_seconds),
        );
        match lease {
            None => {
                running.await;
                if let Some((_, release, task)) = shards {
                    let _ = release.send(true);
                    task.await.context("the shard lease task")?;
                }
            }
            Some(lease) => {
                tokio::pin!(running);
                tokio::select! {
                    () = &mut running => {
                        if let Err(e) = lease.release().await {
                            tracing::warn!("Could not release the leader lease: {e}");
                        }
                    }
                    () = lease.lost() => {
                        // Another replica may deploy as soon as the lease expires: stop every
                        // deploy now, without another write, and exit non-zero so Kubernetes
                        // restarts this one to wait for the lease.
                        let _ = stop_controller.send(Stop::Now);
                        running.await;
                        let _ = stop.send(true);
                        web.await.context("the web server task")?.context("the web server")?;
                        anyhow::bail!("lost the leader lease; deploys stopped");
                    }
                }
            }
        }
    } else {
        tracing::warn!(
            "--enable-crd-support is not set: no Applications are watched, nothing will be deployed"
        );
    }
    web.await
        .context("the web server task")?
        .context("the web server")?;
    Ok(())
}

/// How long a start-up step may keep failing before `/healthz` reports it.
const STARTUP_FAILURE_ALLOWANCE: Duration = Duration::from_secs(60);

/// Retry a start-up step with backoff until it works or the daemon is asked to stop; while it
/// fails, `heartbeat` says why.
async fn retry_until_ok<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    shutdown: &watch::Receiver<bool>,
    heartbeat: &Heartbeat,
    mut step: impl FnMut() -> F,
) -> anyhow::Result<T> {
    let mut delay = Duration::from_millis(500);
    let started = std::time::Instant::now();
    loop {
        match step().await {
            Ok(value) => {
                heartbeat.beat();
                return Ok(value);
            }
            Err(e) if *shutdown.borrow() => anyhow::bail!("{what}: {e}"),
            Err(e) => {
                // A short blip at start-up is no reason for the kubelet to restart the daemon.
                if started.elapsed() < STARTUP_FAILURE_ALLOWANCE {
                    heartbeat.beat();
                } else {
                    heartbeat.stop(format!("{what} fails: {e}"));
                }
                tracing::warn!("{what} failed, retrying in {}s: {e}", delay.as_secs_f32());
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn wait_for_termination() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
