//! The daemon's Prometheus metrics, under the names, types and labels the Python daemon exposes
//! (dashboards and alerts written for it keep working), plus a few of our own.
//!
//! Counters are registered under their exposed `<name>_total` name, as `prometheus_client`
//! exposes them. The upstream's unlabelled metrics are exposed at zero from startup (see
//! [`install`]), so a rate over them is defined before the first event; other families show only
//! their `HELP`/`TYPE` lines until first use (see [`render`]).

use std::sync::Mutex;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// `prometheus_client`'s default buckets, which every upstream histogram uses.
const UPSTREAM_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A whole reconcile waits for the rollout, which takes minutes, so the upstream buckets (≤ 10 s)
/// would put nearly every reconcile in `+Inf`.
const RECONCILE_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0,
];

const VERSION_INFO: &str = "fiaas_fdd_version_info";
const YML_VERSION: &str = "fiaas_yml_version_total";
const DEPLOYER_REQUESTS: &str = "deployer_requests";
const DEPLOYER_ERRORS: &str = "deployer_errors_total";
const DEPLOYER_SUCCESS: &str = "deployer_success_total";
const TIME_TO_DEPLOY: &str = "deployer_time_to_deploy";
const UPSERT_CONFLICT_RETRY: &str = "fiaas_upsert_conflict_retry_total";
const UPSERT_CONFLICT_FAILURE: &str = "fiaas_upsert_conflict_failure_total";
const USAGE_LATENCY: &str = "fiaas_usage_reporting_latency";
const USAGE_SUCCESS: &str = "fiaas_usage_reporting_success_total";
const USAGE_RETRY: &str = "fiaas_usage_reporting_retry_total";
const USAGE_FAILURE: &str = "fiaas_usage_reporting_failure_total";
const WEB_LATENCY: &str = "web_request_latency";
const WEB_STARTED: &str = "web_request_started_total";
const WEB_FINISHED: &str = "web_request_finished_total";
const WEB_EXCEPTION: &str = "web_request_exception_total";
const RECONCILE_DURATION: &str = "fiaas_reconcile_duration_seconds";
const API_ERRORS: &str = "fiaas_api_errors_total";
const DEPLOY_ERRORS: &str = "fiaas_deploy_errors_total";
const DEPLOYS_IN_PROGRESS: &str = "fiaas_deploys_in_progress";
const DEPLOYS_QUEUED: &str = "fiaas_deploys_queued";
const HEALTHY: &str = "fiaas_healthy";
const SHARDS_HELD: &str = "fiaas_shards_held";
const SHARD_TRANSITIONS: &str = "fiaas_shard_lease_transitions_total";

/// The `page` label values of `web_request_latency`, all exposed from startup as upstream does.
const WEB_PAGES: [&str; 6] = [
    "frontpage",
    "metrics",
    "defaults",
    "defaults_versioned",
    "transform",
    "healthz",
];

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Every family: name, type, help (upstream's help text where upstream has the metric).
const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        VERSION_INFO,
        Kind::Gauge,
        "The tag of the running fiaas-deploy-daemon docker image.",
    ),
    (YML_VERSION, Kind::Counter, "The version of fiaas.yml used"),
    (DEPLOYER_REQUESTS, Kind::Gauge, "Request to deploy an app"),
    (DEPLOYER_ERRORS, Kind::Counter, "Deploy failed"),
    (DEPLOYER_SUCCESS, Kind::Counter, "Deploy successful"),
    (TIME_TO_DEPLOY, Kind::Histogram, "Time spent on each deploy"),
    (
        UPSERT_CONFLICT_RETRY,
        Kind::Counter,
        "Number of retries made due to 409 Conflict when upserting a Kubernetes resource",
    ),
    (
        UPSERT_CONFLICT_FAILURE,
        Kind::Counter,
        "Number of times max retries were exceeded due to 409 Conflict when upserting a Kubernetes resource",
    ),
    (USAGE_LATENCY, Kind::Histogram, "Request latency in seconds"),
    (
        USAGE_SUCCESS,
        Kind::Counter,
        "Number of successfully reported usage events",
    ),
    (
        USAGE_RETRY,
        Kind::Counter,
        "Number of retries when reporting usage events",
    ),
    (
        USAGE_FAILURE,
        Kind::Counter,
        "Number of failures when reporting usage events",
    ),
    (WEB_LATENCY, Kind::Histogram, "Request latency in seconds"),
    (WEB_STARTED, Kind::Counter, "HTTP requests received"),
    (
        WEB_FINISHED,
        Kind::Counter,
        "HTTP requests successfully handled",
    ),
    (WEB_EXCEPTION, Kind::Counter, "Failed HTTP requests"),
    (
        RECONCILE_DURATION,
        Kind::Histogram,
        "Seconds from picking up an Application to its final status, rollout included",
    ),
    (
        API_ERRORS,
        Kind::Counter,
        "Failed Kubernetes API calls, by action and kind of error",
    ),
    (
        DEPLOY_ERRORS,
        Kind::Counter,
        "Deploys that failed, by reason",
    ),
    (
        DEPLOYS_IN_PROGRESS,
        Kind::Gauge,
        "Deploys started and not finished (waiting for a permit, applying or rolling out)",
    ),
    (
        DEPLOYS_QUEUED,
        Kind::Gauge,
        "Deployment ids waiting for their app's running deploy to finish",
    ),
    (
        HEALTHY,
        Kind::Gauge,
        "1 while a part of the daemon reports progress, 0 once it reports failing, by part",
    ),
    (
        SHARDS_HELD,
        Kind::Gauge,
        "How many shards this replica holds (with --shards)",
    ),
    (
        SHARD_TRANSITIONS,
        Kind::Counter,
        "Shard leases this replica gained, lost or released, by change",
    ),
];

/// Why the metrics could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The Prometheus recorder could not be built or installed (e.g. another global recorder is
    /// already installed).
    #[error("cannot install the Prometheus metrics recorder: {0}")]
    Install(#[from] BuildError),
}

/// The process collector: `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
/// `process_start_time_seconds`, as the Python daemon's client library exported them; read at
/// each scrape.
static PROCESS: std::sync::LazyLock<metrics_process::Collector> =
    std::sync::LazyLock::new(metrics_process::Collector::default);

/// The recorder is process-global, so a second `install` (tests, embedders) must get the first
/// one's handle rather than fail.
static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Install the Prometheus recorder (global), describe every metric, expose the unlabelled ones at
/// 0, set `fiaas_fdd_version_info{fiaas_fdd_version=<version>} 1`. Returns the handle to render.
///
/// Calling it again returns the same handle (and leaves the version of the first call).
pub fn install(version: &str) -> Result<PrometheusHandle, MetricsError> {
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for name in [TIME_TO_DEPLOY, USAGE_LATENCY, WEB_LATENCY] {
        builder =
            builder.set_buckets_for_metric(Matcher::Full(name.to_owned()), UPSTREAM_BUCKETS)?;
    }
    builder = builder.set_buckets_for_metric(
        Matcher::Full(RECONCILE_DURATION.to_owned()),
        RECONCILE_BUCKETS,
    )?;
    let handle = builder.install_recorder()?;

    for &(name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => describe_counter!(name, help),
            Kind::Gauge => describe_gauge!(name, help),
            Kind::Histogram => describe_histogram!(name, help),
        }
    }
    // Registering a handle is what makes the exporter list a series; zero is the upstream value.
    for name in [
        USAGE_SUCCESS,
        USAGE_RETRY,
        USAGE_FAILURE,
        WEB_STARTED,
        WEB_FINISHED,
        WEB_EXCEPTION,
    ] {
        counter!(name).absolute(0);
    }
    let _ = histogram!(TIME_TO_DEPLOY);
    let _ = histogram!(USAGE_LATENCY);
    for page in WEB_PAGES {
        let _ = histogram!(WEB_LATENCY, "page" => page);
    }
    gauge!(VERSION_INFO, "fiaas_fdd_version" => version.to_owned()).set(1.0);
    PROCESS.describe();
    PROCESS.collect();

    *installed = Some(handle.clone());
    Ok(handle)
}

/// The exposition text: the exporter's rendering, plus the `HELP`/`TYPE` lines of the families
/// that have no series yet, as `prometheus_client` lists every registered family.
pub fn render(handle: &PrometheusHandle) -> String {
    PROCESS.collect();
    let mut text = handle.render();
    for &(name, kind, help) in FAMILIES {
        if !text.contains(&format!("# TYPE {name} ")) {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {}\n\n",
                kind.as_str()
            ));
        }
    }
    text
}

/// A fiaas.yml of `version_label` was read for `app_name` (`fiaas_yml_version_total`).
pub fn yml_version_seen(version_label: &str, app_name: &str) {
    counter!(YML_VERSION, "version" => version_label.to_owned(), "app_name" => app_name.to_owned())
        .increment(1);
}

/// A deploy of `app` was requested (the `deployer_requests` gauge, which upstream only raises).
pub fn deploy_requested(app: &str) {
    gauge!(DEPLOYER_REQUESTS, "app" => app.to_owned()).increment(1.0);
}

/// A deploy of `app` succeeded (`deployer_success_total`).
pub fn deploy_succeeded(app: &str) {
    counter!(DEPLOYER_SUCCESS, "app" => app.to_owned()).increment(1);
}

/// A deploy of `app` failed (`deployer_errors_total`).
pub fn deploy_failed(app: &str) {
    counter!(DEPLOYER_ERRORS, "app" => app.to_owned()).increment(1);
}

/// How long applying one deploy's objects took (`deployer_time_to_deploy`).
pub fn time_to_deploy(seconds: f64) {
    histogram!(TIME_TO_DEPLOY).record(seconds);
}

/// How long a whole reconcile took, rollout included, by `result`
/// (`fiaas_reconcile_duration_seconds`).
pub fn reconcile_duration(result: &str, seconds: f64) {
    histogram!(RECONCILE_DURATION, "result" => result.to_owned()).record(seconds);
}

/// A Kubernetes API call doing `action` failed with an error of `kind`
/// (`fiaas_api_errors_total`).
pub fn api_error(action: &str, kind: &str) {
    counter!(API_ERRORS, "action" => action.to_owned(), "kind" => kind.to_owned()).increment(1);
}

/// A deploy failed for `reason`, a [`crate::deploy_error::DeployError::metric_label`]
/// (`fiaas_deploy_errors_total`).
pub fn deploy_error(reason: &'static str) {
    counter!(DEPLOY_ERRORS, "reason" => reason).increment(1);
}

/// How many deploys are in progress and how many wait behind their app's running one.
pub fn deploy_queue(in_progress: usize, queued: usize) {
    gauge!(DEPLOYS_IN_PROGRESS).set(in_progress as f64);
    gauge!(DEPLOYS_QUEUED).set(queued as f64);
}

/// How many shards this replica holds (`--shards`).
pub fn shards_held(count: usize) {
    gauge!(SHARDS_HELD).set(count as f64);
}

/// This replica `change`d a shard lease: "gained", "lost" or "released".
pub fn shard_transition(change: &'static str) {
    counter!(SHARD_TRANSITIONS, "change" => change).increment(1);
}

/// Whether the daemon's part `part` is healthy (`fiaas_healthy{part}`).
pub fn healthy(part: &'static str, healthy: bool) {
    gauge!(HEALTHY, "part" => part).set(if healthy { 1.0 } else { 0.0 });
}

/// An upsert of `target` met a 409 Conflict and is retried (`fiaas_upsert_conflict_retry_total`).
pub fn upsert_conflict_retry(target: &str) {
    counter!(UPSERT_CONFLICT_RETRY, "target" => target.to_owned()).increment(1);
}

/// An upsert of `target` gave up after repeated 409 Conflicts
/// (`fiaas_upsert_conflict_failure_total`).
pub fn upsert_conflict_failure(target: &str) {
    counter!(UPSERT_CONFLICT_FAILURE, "target" => target.to_owned()).increment(1);
}

/// How long one usage-report POST took (`fiaas_usage_reporting_latency`).
pub fn usage_report_latency(seconds: f64) {
    histogram!(USAGE_LATENCY).record(seconds);
}

/// A usage event was reported (`fiaas_usage_reporting_success_total`).
pub fn usage_report_succeeded() {
    counter!(USAGE_SUCCESS).increment(1);
}

/// A usage report is retried (`fiaas_usage_reporting_retry_total`).
pub fn usage_report_retried() {
    counter!(USAGE_RETRY).increment(1);
}

/// A usage event could not be reported (`fiaas_usage_reporting_failure_total`).
pub fn usage_report_failed() {
    counter!(USAGE_FAILURE).increment(1);
}

/// A web request for `page` (`frontpage`, `metrics`, `defaults`, `defaults_versioned`,
/// `transform` or `healthz`) was answered in `seconds`
/// (`web_request_latency`).
pub fn web_request(page: &str, seconds: f64) {
    histogram!(WEB_LATENCY, "page" => page.to_owned()).record(seconds);
}

/// A web request arrived (`web_request_started_total`).
pub fn web_request_started() {
    counter!(WEB_STARTED).increment(1);
}

/// A web request was answered, whatever the status (`web_request_finished_total`).
pub fn web_request_finished() {
    counter!(WEB_FINISHED).increment(1);
}

/// A web request failed inside the daemon (`web_request_exception_total`).
pub fn web_request_exception() {
    counter!(WEB_EXCEPTION).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series' value in the exposition text.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    // One test, since the recorder is global to the test binary and values accumulate.
    #[test]
    fn exposes_upstream_families() {
        let handle = install("1.2.3").unwrap();
        assert!(
            install("other").is_ok(),
            "a second install reuses the recorder"
        );
        let text = render(&handle);

        assert_eq!(
            sample(
                &text,
                r#"fiaas_fdd_version_info{fiaas_fdd_version="1.2.3"}"#
            ),
            Some(1.0)
        );
        assert!(!text.contains(r#"fiaas_fdd_version="other""#));
        // Only the web server moves these, and it does not run in this test binary.
        for name in [WEB_STARTED, WEB_FINISHED] {
            assert_eq!(sample(&text, name), Some(0.0), "{name}\n{text}");
        }
        for name in [USAGE_SUCCESS, USAGE_RETRY, USAGE_FAILURE, WEB_EXCEPTION] {
            assert!(sample(&text, name).is_some(), "{name}\n{text}");
        }
        for page in WEB_PAGES {
            assert!(
                text.contains(&format!(
                    r#"web_request_latency_bucket{{page="{page}",le="0.005"}}"#
                )),
                "{page}\n{text}"
            );
        }
        assert!(
            text.contains(r#"deployer_time_to_deploy_bucket{le="7.5"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"fiaas_usage_reporting_latency_bucket{le="+Inf"}"#),
            "{text}"
        );
        for &(name, kind, help) in FAMILIES {
            assert!(
                text.contains(&format!("# HELP {name} {help}\n")),
                "{name}\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {name} {}\n", kind.as_str())),
                "{name}"
            );
        }

        yml_version_seen("3", "None");
        deploy_requested("app");
        deploy_requested("app");
        deploy_succeeded("app");
        deploy_failed("app");
        api_error("apply", "conflict");
        reconcile_duration("success", 42.0);
        usage_report_succeeded();
        let text = render(&handle);
        assert!(
            sample(
                &text,
                r#"fiaas_yml_version_total{version="3",app_name="None"}"#
            )
            .is_some()
        );
        assert_eq!(sample(&text, r#"deployer_requests{app="app"}"#), Some(2.0));
        assert!(sample(&text, r#"deployer_success_total{app="app"}"#).is_some());
        assert!(sample(&text, r#"deployer_errors_total{app="app"}"#).is_some());
        assert!(
            sample(
                &text,
                r#"fiaas_api_errors_total{action="apply",kind="conflict"}"#
            )
            .is_some()
        );
        assert!(
            sample(
                &text,
                r#"fiaas_reconcile_duration_seconds_bucket{result="success",le="60"}"#
            )
            .is_some(),
            "{text}"
        );
        assert!(sample(&text, USAGE_SUCCESS).is_some_and(|v| v >= 1.0));
        assert_eq!(text.matches("# TYPE deployer_requests ").count(), 1);
    }
}
