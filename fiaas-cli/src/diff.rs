//! `fiaas diff`: what a deploy would change on the live cluster, shown the way `kubectl diff`
//! shows it (same directory layout, file names, external diff override and exit statuses).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use fiaas_config::{ClusterArgs, ClusterConfig};
use fiaas_daemon::hook::ExtensionHook;
use fiaas_k8s::{Applier, ClusterFacts, DeployOptions, ObjectHook, PlannedObject};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use crate::AppArgs;

/// The comparison `kubectl diff` runs unless `KUBECTL_EXTERNAL_DIFF` names another.
const DEFAULT_DIFF: &str = "diff -u -N";

#[derive(clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Kubeconfig file to connect with (instead of `$KUBECONFIG`, `~/.kube/config` or the
    /// in-cluster configuration).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long)]
    context: Option<String>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Where the client configuration comes from.
#[derive(Debug, PartialEq, Eq)]
enum Connection {
    /// `--kubeconfig` and/or `--context`.
    Kubeconfig {
        file: Option<PathBuf>,
        context: Option<String>,
    },
    /// The daemon's connection flags, read as the daemon reads them.
    DaemonFlags,
    /// `$KUBECONFIG` or `~/.kube/config`, else the in-cluster configuration.
    Inferred,
}

fn connection(args: &DiffArgs, config: &ClusterConfig) -> Connection {
    if args.kubeconfig.is_some() || args.context.is_some() {
        Connection::Kubeconfig {
            file: args.kubeconfig.clone(),
            context: args.context.clone(),
        }
    } else if fiaas_daemon::startup::connection_flags_given(config) {
        Connection::DaemonFlags
    } else {
        Connection::Inferred
    }
}

async fn client(connection: Connection, config: &ClusterConfig) -> anyhow::Result<kube::Client> {
    let kube_config = match connection {
        Connection::Kubeconfig { file, context } => {
            let kubeconfig = match &file {
                Some(path) => Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}", path.display()))?,
                None => Kubeconfig::read().context("reading the kubeconfig")?,
            };
            let options = KubeConfigOptions {
                context,
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .context("the kubeconfig")?
        }
        Connection::DaemonFlags => fiaas_daemon::startup::kube_config(config, "default").await?,
        Connection::Inferred => kube::Config::infer()
            .await
            .context("no kubeconfig and no in-cluster configuration")?,
    };
    kube::Client::try_from(fiaas_k8s::with_deadlines(kube_config))
        .context("cannot build a Kubernetes client")
}

/// Run `fiaas diff`: 0 without changes, 1 with changes, 2 (or the diff program's status above
/// 1) on an error.
pub fn run(args: &DiffArgs, config: &ClusterConfig) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(plan(args, config)))
        .and_then(|planned| compare(&planned));
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The daemon's deploy of the app, dry-run.
async fn plan(args: &DiffArgs, config: &ClusterConfig) -> anyhow::Result<Vec<PlannedObject>> {
    let (document, mut facts) = crate::app_input(&args.app)?;
    let client = client(connection(args, config), config).await?;
    if facts.uid.is_none() {
        // The daemon's objects are owned by the Application; its uid survives a deploy.
        let applications: Api<fiaas_k8s::Application> =
            Api::namespaced(client.clone(), &facts.namespace);
        match applications
            .get_metadata_opt(&facts.name)
            .await
            .with_context(|| format!("get Application {}", facts.name))?
        {
            Some(found) => facts.uid = found.metadata.uid,
            None => eprintln!(
                "note: no Application {} in namespace {}: the objects are shown without owner \
                 references",
                facts.name, facts.namespace
            ),
        }
    }
    let app = fiaas_spec::from_document(&document, &facts)?;
    let hook = ExtensionHook::from_config(config)?;
    let applier = Applier::new(client).await?;
    let report = applier
        .plan(
            &app,
            &config.transform,
            DeployOptions {
                facts: &ClusterFacts::default(),
                hook: hook.as_ref().map(|h| h as &dyn ObjectHook),
            },
        )
        .await?;
    Ok(report.planned)
}

/// kubectl's file name of an object: `[<group>.]<version>.<Kind>.<namespace>.<name>`.
fn file_name(object: &PlannedObject, namespace: &str) -> String {
    let resource = &object.resource;
    let group = if resource.group.is_empty() {
        String::new()
    } else {
        format!("{}.", resource.group)
    };
    format!(
        "{group}{}.{}.{namespace}.{}",
        resource.version, resource.kind, object.name
    )
}

/// The object as kubectl shows it: keys sorted, without `metadata.managedFields`.
fn shown(object: &Value) -> String {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    fiaas_spec::to_yaml(&sorted(&object))
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// A fresh directory `<temp>/<prefix><n>` (kubectl's `LIVE-…` and `MERGED-…`).
fn temp_dir(prefix: &str) -> anyhow::Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0..1000u32 {
        let dir = base.join(format!("{prefix}{}{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    anyhow::bail!("cannot create a directory {prefix}… in {}", base.display())
}

/// Removes the directory when dropped, whatever happened in between.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, name: &str, object: &Value) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, shown(object)).with_context(|| format!("cannot write {}", path.display()))
}

/// The diff program and its arguments: `$KUBECTL_EXTERNAL_DIFF` split on whitespace (as
/// kubectl splits it, without a shell), else `diff -u -N`.
fn diff_command(external: Option<&str>) -> Vec<String> {
    let command = external
        .filter(|c| !c.trim().is_empty())
        .unwrap_or(DEFAULT_DIFF);
    command.split_whitespace().map(str::to_owned).collect()
}

/// Write both sides and run the diff program on the two directories; its status is ours
/// (0 no changes, 1 changes, above 1 an error).
fn compare(planned: &[PlannedObject]) -> anyhow::Result<u8> {
    let live = TempDir(temp_dir("LIVE-")?);
    let merged = TempDir(temp_dir("MERGED-")?);
    for object in planned {
        let namespace = object
            .planned
            .as_ref()
            .or(object.live.as_ref())
            .and_then(|o| o.pointer("/metadata/namespace"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = file_name(object, namespace);
        if let Some(before) = &object.live {
            write(&live.0, &name, before)?;
        }
        if let Some(after) = &object.planned {
            write(&merged.0, &name, after)?;
        }
    }
    let external = std::env::var("KUBECTL_EXTERNAL_DIFF").ok();
    let command = diff_command(external.as_deref());
    let (program, arguments) = command
        .split_first()
        .context("KUBECTL_EXTERNAL_DIFF names no program")?;
    let status = std::process::Command::new(program)
        .args(arguments)
        .arg(&live.0)
        .arg(&merged.0)
        .status()
        .with_context(|| format!("cannot run {program}"))?;
    match status.code() {
        Some(code @ (0 | 1)) => Ok(code as u8),
        Some(code) => {
            eprintln!("error: {program} exited with status {code}");
            Ok(u8::try_from(code).unwrap_or(2).max(2))
        }
        None => anyhow::bail!("{program} was killed ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use kube::api::ApiResource;
    use serde_json::json;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        diff: DiffArgs,
    }

    fn selected(args: &[&str]) -> Connection {
        let matches = <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(std::iter::once("fiaas").chain(args.iter().copied()))
            .unwrap();
        let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap();
        let config =
            ClusterConfig::from_matches(&matches, fiaas_config::Scope::Cluster, None).unwrap();
        connection(&cli.diff, &config)
    }

    #[test]
    fn the_connection_is_the_kubeconfig_flag_then_the_daemon_flags_then_inferred() {
        assert_eq!(
            selected(&["app.yml", "--kubeconfig", "/k", "--api-token", "t"]),
            Connection::Kubeconfig {
                file: Some("/k".into()),
                context: None
            }
        );
        assert_eq!(
            selected(&["app.yml", "--context", "other"]),
            Connection::Kubeconfig {
                file: None,
                context: Some("other".into())
            }
        );
        assert_eq!(
            selected(&["app.yml", "--api-server", "https://10.0.0.1"]),
            Connection::DaemonFlags
        );
        assert_eq!(
            selected(&["app.yml", "--api-token", "t"]),
            Connection::DaemonFlags
        );
        assert_eq!(selected(&["app.yml"]), Connection::Inferred);
    }

    #[test]
    fn files_are_named_like_kubectl_names_them() {
        let object = |resource: ApiResource| PlannedObject {
            resource,
            name: "web".into(),
            live: None,
            planned: None,
        };
        let deployment = object(ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()));
        assert_eq!(file_name(&deployment, "ns"), "apps.v1.Deployment.ns.web");
        let service = object(ApiResource::erase::<k8s_openapi::api::core::v1::Service>(
            &(),
        ));
        assert_eq!(file_name(&service, "ns"), "v1.Service.ns.web");
    }

    #[test]
    fn objects_are_shown_sorted_without_managed_fields() {
        let text = shown(&json!({"spec": {"replicas": 2},
            "metadata": {"name": "web", "managedFields": [{"manager": "x"}], "labels": {"b": "1", "a": "2"},
                "uid": "u"}}));
        assert_eq!(
            text,
            "metadata:\n  labels:\n    a: \"2\"\n    b: \"1\"\n  name: web\n  uid: u\nspec:\n  replicas: 2\n"
        );
    }

    #[test]
    fn the_external_diff_is_split_on_whitespace() {
        assert_eq!(diff_command(None), ["diff", "-u", "-N"]);
        assert_eq!(diff_command(Some("  ")), ["diff", "-u", "-N"]);
        assert_eq!(
            diff_command(Some("colordiff -N -u")),
            ["colordiff", "-N", "-u"]
        );
    }
}
