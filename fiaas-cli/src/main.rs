//! `fiaas`: validate, migrate and render fiaas.yml files offline, and diff a deploy against the
//! live cluster.

mod diff;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use fiaas_config::{ClusterArgs, ClusterConfig, Scope};
use fiaas_spec::{AdditionalLabelsOrAnnotations, AppFacts};
use fiaas_transform::{AutoscalingVersion, RenderOptions};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(
    name = "fiaas",
    version,
    about = "Work with fiaas.yml files offline, and see what a deploy would change"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check fiaas.yml files; every problem of every file is printed to stderr, and a warning for
    /// each value that is accepted, because the Python daemon deploys it, although it is not
    /// what the schema asks (a text where a boolean belongs, a port `protocol: TCP`).
    Validate {
        /// fiaas.yml files (version 2 or 3).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Reject the files with warnings too.
        #[arg(long)]
        strict: bool,
    },
    /// Print a fiaas.yml in version 3 form (a v2 file is migrated, a v3 file printed as is).
    Migrate {
        /// fiaas.yml file.
        file: PathBuf,
        /// Leave out every value equal to its v3 default.
        #[arg(long)]
        strip_defaults: bool,
    },
    /// Print the v3 defaults (the upstream daemon's defaults.yml).
    Defaults,
    /// Print the JSON Schema of the v3 format, for editors.
    Schema,
    /// Print the Application and ApplicationStatus CustomResourceDefinitions as YAML.
    Crd {
        /// Describe the Application's `spec.config` with the fiaas.yml schema, so that the API
        /// server refuses an invalid fiaas.yml (the daemon's `--crd-validation`).
        #[arg(long)]
        crd_validation: bool,
    },
    /// Print the Kubernetes objects the daemon would deploy for an app, in deploy order.
    ///
    /// Daemon flags (the same as fiaas-deploy-daemon's, or `-c cluster_config.yaml`) sit next to
    /// the render flags.
    Render(Box<RenderArgs>),
    /// Show what a deploy would change on the live cluster, as `kubectl diff` does.
    ///
    /// The daemon's own apply and prune run with every write dry-run (`dryRun=All`, field
    /// manager `fiaas-deploy-daemon`); each object's live state and the API server's answer are
    /// written as YAML to two directories and compared with `diff -u -N` (or
    /// `$KUBECTL_EXTERNAL_DIFF`). Objects the deploy would delete show as removed.
    /// Exit status: 0 no changes, 1 changes, >1 an error.
    ///
    /// Connects with `--kubeconfig`/`--context`, else with the daemon's connection flags when
    /// one is given (`--api-server`, `--api-token`, `--api-cert`, `--client-cert`), else with
    /// `$KUBECONFIG` or `~/.kube/config`, else with the pod's in-cluster configuration. Without
    /// `--uid`, the owner references take the live Application's uid.
    Diff(Box<diff::DiffArgs>),
}

/// The app to render: its fiaas.yml (or Application) and the Application's facts.
#[derive(clap::Args)]
struct AppArgs {
    /// A fiaas.yml, or a whole Application resource (then name, namespace, image, deployment id,
    /// uid and additional labels/annotations come from it; flags given here override them).
    app_yml: PathBuf,
    /// Application name (`spec.application`).
    #[arg(long)]
    name: Option<String>,
    /// Namespace (default: `default`).
    #[arg(long)]
    namespace: Option<String>,
    /// Container image (default: NAME:latest).
    #[arg(long)]
    image: Option<String>,
    /// Deployment id (the `fiaas/deployment_id` label; default: 1).
    #[arg(long)]
    deployment_id: Option<String>,
    /// The Application's uid; owner references are set only when it is known (`diff` reads it
    /// off the live Application).
    #[arg(long)]
    uid: Option<String>,
    /// The Application's `additional_labels`, as JSON (`{"global": {...}, "pod": {...}}`).
    #[arg(long, value_name = "JSON")]
    labels: Option<String>,
    /// The Application's `additional_annotations`, as JSON.
    #[arg(long, value_name = "JSON")]
    annotations: Option<String>,
}

#[derive(clap::Args)]
struct RenderArgs {
    #[command(flatten)]
    app: AppArgs,
    /// Render as if the namespace only allowed BestEffort pods (no cpu/memory resources).
    #[arg(long)]
    besteffort_qos: bool,
    /// The HorizontalPodAutoscaler's API version: the daemon writes it in the newest the
    /// cluster serves (v2 from Kubernetes 1.23, v2beta2 before, v1 where neither is served).
    #[arg(long, value_enum, default_value_t = AutoscalingApi::V1)]
    autoscaling_version: AutoscalingApi,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Yaml)]
    output: Output,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// Multi-document YAML, for `kubectl apply -f -`.
    Yaml,
    /// A `v1` `List`.
    Json,
}

/// `autoscaling/<version>`.
#[derive(Clone, Copy, ValueEnum)]
enum AutoscalingApi {
    /// `targetCPUUtilizationPercentage`, as the Python daemon writes it.
    V1,
    /// The same target as a CPU `Resource` metric.
    V2beta2,
    /// The same target as a CPU `Resource` metric.
    V2,
}

impl From<AutoscalingApi> for AutoscalingVersion {
    fn from(api: AutoscalingApi) -> Self {
        match api {
            AutoscalingApi::V1 => AutoscalingVersion::V1,
            AutoscalingApi::V2beta2 => AutoscalingVersion::V2beta2,
            AutoscalingApi::V2 => AutoscalingVersion::V2,
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > fiaas_spec::MAX_DOCUMENT_BYTES as u64 {
        anyhow::bail!(
            "{}: {} bytes, more than the limit of {} bytes",
            path.display(),
            meta.len(),
            fiaas_spec::MAX_DOCUMENT_BYTES
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn validate(files: &[PathBuf], strict: bool) -> ExitCode {
    let mut ok = true;
    let kind = if strict { "error" } else { "warning" };
    for file in files {
        let result = read(file).and_then(|text| {
            fiaas_spec::validate(&text)?;
            Ok(fiaas_spec::warnings(&fiaas_spec::parse_document(&text)?))
        });
        match result {
            Ok(warnings) => {
                ok &= !strict || warnings.is_empty();
                for warning in warnings {
                    eprintln!("{}: {kind}: {warning}", file.display());
                }
            }
            Err(e) => {
                ok = false;
                eprintln!("{}: {e:#}", file.display());
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn migrate(file: &Path, strip_defaults: bool) -> anyhow::Result<()> {
    let document = fiaas_spec::parse_document(&read(file)?)?;
    let v3 = fiaas_spec::to_v3(&document, strip_defaults)?;
    print!("{}", fiaas_spec::to_yaml(&v3));
    Ok(())
}

fn additional(
    flag: &str,
    json: Option<&str>,
) -> anyhow::Result<Option<AdditionalLabelsOrAnnotations>> {
    json.map(|text| {
        serde_json::from_str(text)
            .with_context(|| format!("--{flag}: not a JSON object of string maps"))
    })
    .transpose()
}

/// The fiaas.yml and facts of the input: a plain fiaas.yml, or an Application resource.
fn app_input(args: &AppArgs) -> anyhow::Result<(Value, AppFacts)> {
    let document = fiaas_spec::parse_document(&read(&args.app_yml)?)?;
    let mut facts = AppFacts::default();
    let config = if document.get("kind").and_then(Value::as_str) == Some("Application") {
        let text = |pointer: &str| {
            document
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        facts.name = text("/spec/application").unwrap_or_default();
        facts.namespace = text("/metadata/namespace").unwrap_or_default();
        facts.image = text("/spec/image").unwrap_or_default();
        facts.uid = text("/metadata/uid");
        facts.deployment_id = document
            .pointer("/metadata/labels")
            .and_then(|l| l.get("fiaas/deployment_id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let field = |name: &str| -> anyhow::Result<Option<AdditionalLabelsOrAnnotations>> {
            match document.pointer(&format!("/spec/{name}")) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => Ok(Some(
                    serde_json::from_value(v.clone())
                        .with_context(|| format!("spec.{name}: not a map of string maps"))?,
                )),
            }
        };
        facts.additional_labels = field("additional_labels")?;
        facts.additional_annotations = field("additional_annotations")?;
        match document.pointer("/spec/config") {
            Some(config @ Value::Object(_)) => config.clone(),
            _ => anyhow::bail!("spec.config: the Application has no fiaas.yml mapping"),
        }
    } else {
        document
    };
    if let Some(name) = &args.name {
        facts.name.clone_from(name);
    }
    if facts.name.is_empty() {
        anyhow::bail!("--name is required unless APP_YML is an Application");
    }
    if let Some(namespace) = &args.namespace {
        facts.namespace.clone_from(namespace);
    }
    if facts.namespace.is_empty() {
        facts.namespace = "default".to_owned();
    }
    if let Some(image) = &args.image {
        facts.image.clone_from(image);
    }
    if facts.image.is_empty() {
        facts.image = format!("{}:latest", facts.name);
    }
    if let Some(id) = &args.deployment_id {
        facts.deployment_id.clone_from(id);
    }
    if facts.deployment_id.is_empty() {
        facts.deployment_id = "1".to_owned();
    }
    if args.uid.is_some() {
        facts.uid.clone_from(&args.uid);
    }
    if let Some(labels) = additional("labels", args.labels.as_deref())? {
        facts.additional_labels = Some(labels);
    }
    if let Some(annotations) = additional("annotations", args.annotations.as_deref())? {
        facts.additional_annotations = Some(annotations);
    }
    Ok((config, facts))
}

fn render(args: &RenderArgs, config: &ClusterConfig) -> anyhow::Result<()> {
    let (document, facts) = app_input(&args.app)?;
    let app = fiaas_spec::from_document(&document, &facts)?;
    let options = RenderOptions {
        besteffort_qos: args.besteffort_qos,
        autoscaling: args.autoscaling_version.into(),
    };
    let manifests = fiaas_transform::render(&app, &config.transform, &options)?;
    let items: Vec<Value> = manifests.objects.iter().map(|o| o.to_json()).collect();
    let text = match args.output {
        Output::Json => {
            let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
            format!("{}\n", serde_json::to_string_pretty(&list)?)
        }
        Output::Yaml => items
            .iter()
            .map(|item| format!("---\n{}", fiaas_spec::to_yaml(item)))
            .collect(),
    };
    print!("{text}");
    Ok(())
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Render(args) => {
            let render_matches = matches.subcommand_matches("render").unwrap_or(&matches);
            match ClusterConfig::from_matches(render_matches, Scope::Cluster, None) {
                Ok(config) => render(&args, &config),
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
                }
            }
        }
        Command::Diff(args) => {
            let diff_matches = matches.subcommand_matches("diff").unwrap_or(&matches);
            return match ClusterConfig::from_matches(diff_matches, Scope::Cluster, None) {
                Ok(config) => diff::run(&args, &config),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2).max(2))
                }
            };
        }
        Command::Validate { files, strict } => return validate(&files, strict),
        Command::Migrate {
            file,
            strip_defaults,
        } => migrate(&file, strip_defaults),
        Command::Defaults => {
            print!("{}", fiaas_spec::V3_DEFAULTS_YAML);
            Ok(())
        }
        Command::Crd { crd_validation } => {
            let validation = if crd_validation {
                fiaas_k8s::ConfigValidation::Schema
            } else {
                fiaas_k8s::ConfigValidation::Off
            };
            print!("{}", fiaas_k8s::crds_yaml(validation));
            Ok(())
        }
        Command::Schema => {
            println!("{}", fiaas_spec::V3_SCHEMA_JSON.trim_end());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
