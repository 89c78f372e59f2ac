//! Usage reporting: one DevHose deployment event per lifecycle change (started, succeeded,
//! failed), POSTed as JSON with DevHose HMAC authentication.
//!
//! The seam: the deploy side calls [`UsageReporter::report`], which only queues; a separate task
//! (the future returned by [`UsageReporter::new`]) builds, signs and sends. Reporting can
//! therefore never block or fail a deploy, a hanging endpoint costs at most one bounded attempt
//! at a time, and a dead endpoint cannot grow memory: the queue drops its oldest event when full.
//!
//! The wire format (payload, JSON rendering, signing) is in `devhose.rs`, the queue in
//! `queue.rs`; requests go through the shared client (`crate::http`), and so through `--proxy`
//! if set, as upstream's `requests` session sent them.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit};
use http_body_util::Full;
use hyper::Request;
use hyper::Uri;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, DATE};
use jiff::Timestamp;
use sha2::Sha256;
use tracing::{debug, error, info, warn};

use self::devhose::{auth_context, auth_headers, payload, payload_timestamp, python_json};
use self::queue::{Queue, StartTimes};
use crate::http::{self, HttpClient, Limits, Proxy, SetupError};
use crate::metrics;

mod devhose;
mod queue;
#[cfg(test)]
mod tests;

/// The file in `--secrets-directory` that holds the base64 HMAC key.
const KEY_FILE: &str = "usage-reporting-key";
/// Upstream's `backoff.on_exception(max_tries=5)`.
const MAX_TRIES: u32 = 5;
/// Upstream has no timeout at all; a hung endpoint must not stall reporting forever.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// `backoff.expo` waits up to 1, 2, 4, 8 s between the five tries.
const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Enough for any burst of deploys; past it the endpoint is clearly not keeping up.
const DEFAULT_QUEUE_CAPACITY: usize = 1000;
/// The answer is only read to free the connection; a runaway one must not cost memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// The lifecycle change an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsageStatus {
    /// The deploy started (lifecycle `started`).
    Started,
    /// The deploy succeeded (lifecycle `success`).
    Succeeded,
    /// The deploy failed (lifecycle `failed`).
    Failed,
}

impl UsageStatus {
    fn devhose_name(self) -> &'static str {
        match self {
            UsageStatus::Started => "in_progress",
            UsageStatus::Succeeded => "succeeded",
            UsageStatus::Failed => "failed",
        }
    }
}

/// One lifecycle change of one deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageEvent {
    /// What happened.
    pub status: UsageStatus,
    /// The application's name.
    pub app: String,
    /// The namespace it is deployed to.
    pub namespace: String,
    /// The deployment id; with `app`, it ties a completion to its start.
    pub deployment_id: String,
    /// The source repository the application config names, if any.
    pub repository: Option<String>,
}

/// Why usage reporting cannot start.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// The key file exists but could not be read.
    #[error("unable to read the usage reporting key {path}: {source}")]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// The key file does not hold a usable base64 key (upstream crashes; we refuse to start).
    #[error("the usage reporting key {path} is not valid base64: {reason}")]
    InvalidKey {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it (never the key itself).
        reason: String,
    },
    /// `--usage-reporting-endpoint` is not an absolute http(s) URL.
    #[error("the usage reporting endpoint {endpoint:?} is not an http(s) URL: {reason}")]
    InvalidEndpoint {
        /// The endpoint as configured.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `--proxy` is not an http proxy URL.
    #[error("cannot send usage reports")]
    Proxy(#[source] SetupError),
}

/// Everything the reporter needs, resolved once at startup.
#[derive(Clone)]
pub struct UsageSettings {
    endpoint: Uri,
    /// The endpoint's path and query as upstream's `requests` signs them.
    signed_path: String,
    auth_context: String,
    mac: HmacSha256,
    cluster_name: Option<String>,
    operator: Option<String>,
    team: Option<String>,
    environment: String,
    proxy: Option<Proxy>,
    request_timeout: Duration,
    backoff_base: Duration,
    queue_capacity: usize,
}

impl fmt::Debug for UsageSettings {
    // By hand so that the key can never end up in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsageSettings")
            .field("endpoint", &self.endpoint)
            .field("auth_context", &self.auth_context)
            .field("cluster_name", &self.cluster_name)
            .field("operator", &self.operator)
            .field("team", &self.team)
            .field("environment", &self.environment)
            .field("proxy", &self.proxy.is_some())
            .field("request_timeout", &self.request_timeout)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}

impl UsageSettings {
    /// None when reporting is disabled (no endpoint, or no key file / empty key, or no tenant), as upstream.
    ///
    /// Reads `<secrets_directory>/usage-reporting-key`. As upstream, the key is decoded whenever
    /// a key and a tenant are set, even without an endpoint, so a bad key is reported either
    /// way. Errors: an unreadable key file, a key that is not standard padded base64 (ASCII
    /// whitespace ignored), an endpoint that is not an absolute http(s) URL (upstream would
    /// fail every send instead), or an invalid `--proxy`.
    pub fn from_config(
        config: &fiaas_config::ClusterConfig,
    ) -> Result<Option<UsageSettings>, UsageError> {
        let key_path = config.secrets_directory.join(KEY_FILE);
        let raw_key = read_key_file(&key_path)?;
        let tenant = config
            .usage_reporting_tenant
            .as_deref()
            .filter(|t| !t.is_empty());
        let auth = match (raw_key.as_deref(), tenant) {
            (Some(raw), Some(tenant)) if !strip_whitespace(raw).is_empty() => {
                Some((keyed_mac(&key_path, raw)?, auth_context(tenant)))
            }
            _ => None,
        };
        let endpoint = config
            .usage_reporting_endpoint
            .as_deref()
            .filter(|e| !e.is_empty());
        let (Some(endpoint), Some((mac, auth_context))) = (endpoint, auth) else {
            debug!(
                endpoint = ?config.usage_reporting_endpoint,
                key_set = raw_key.is_some(),
                tenant = ?config.usage_reporting_tenant,
                "Usage reporting disabled"
            );
            return Ok(None);
        };
        let (endpoint, signed_path) = parse_endpoint(endpoint)?;
        let proxy = Proxy::from_config(config.proxy.as_deref()).map_err(UsageError::Proxy)?;
        Ok(Some(UsageSettings {
            endpoint,
            signed_path,
            auth_context,
            mac,
            cluster_name: config.usage_reporting_cluster_name.clone(),
            operator: config.usage_reporting_operator.clone(),
            team: config.usage_reporting_team.clone(),
            environment: config.transform.environment.clone(),
            proxy,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            backoff_base: DEFAULT_BACKOFF_BASE,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }))
    }
}

/// The key file's bytes, or None when it is not a regular file (upstream's `os.path.isfile`).
fn read_key_file(path: &Path) -> Result<Option<Vec<u8>>, UsageError> {
    let read_error = |source| UsageError::ReadKey {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => std::fs::read(path).map(Some).map_err(read_error),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_error(e)),
    }
}

/// Secrets mounted from Kubernetes often end in a newline, and `base64` wraps long output.
fn strip_whitespace(raw: &[u8]) -> Vec<u8> {
    raw.iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

fn keyed_mac(path: &Path, raw: &[u8]) -> Result<HmacSha256, UsageError> {
    let invalid = |reason: String| UsageError::InvalidKey {
        path: path.to_owned(),
        reason,
    };
    let key = BASE64
        .decode(&strip_whitespace(raw))
        .map_err(|e| invalid(e.to_string()))?;
    HmacSha256::new_from_slice(&key).map_err(|e| invalid(e.to_string()))
}

fn parse_endpoint(endpoint: &str) -> Result<(Uri, String), UsageError> {
    let invalid = |reason: String| UsageError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason,
    };
    let uri: Uri = endpoint
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| invalid(e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("the scheme must be http or https".to_owned())),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("there is no host".to_owned()));
    }
    // `requests`' `path_url`: the path (at least `/`) and a non-empty query.
    let mut signed_path = match uri.path() {
        "" => "/".to_owned(),
        path => path.to_owned(),
    };
    if let Some(query) = uri.query().filter(|q| !q.is_empty()) {
        signed_path.push('?');
        signed_path.push_str(query);
    }
    Ok((uri, signed_path))
}

/// A cheap handle to queue usage events; clones share one queue and one sending task.
///
/// When the last clone is dropped, the sending task sends what is still queued and ends.
#[derive(Clone, Debug)]
pub struct UsageReporter {
    handle: Arc<Handle>,
}

/// Closes the queue when the last [`UsageReporter`] clone goes away.
#[derive(Debug)]
struct Handle {
    queue: Arc<Queue>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl UsageReporter {
    /// A reporter and the task that sends (spawn it).
    ///
    /// The queue holds 1000 events; when full, the oldest is dropped with a warning and counted
    /// as a failure. The task sends one event at a time and ends once every reporter clone is
    /// dropped and the queue is drained.
    pub fn new(
        settings: UsageSettings,
    ) -> (UsageReporter, impl Future<Output = ()> + Send + 'static) {
        info!(
            endpoint = %settings.endpoint,
            "Usage reporting enabled, sending events to {}", settings.endpoint
        );
        let queue = Arc::new(Queue::new(settings.queue_capacity));
        let client = http_client(&settings);
        if let Err(why) = &client {
            error!("Usage reporting cannot send any event: {why}");
        }
        let sender = Sender {
            settings,
            client,
            starts: StartTimes::default(),
        };
        let reporter = UsageReporter {
            handle: Arc::new(Handle {
                queue: Arc::clone(&queue),
            }),
        };
        (reporter, sender.run(queue))
    }

    /// Never blocks, never fails.
    pub fn report(&self, event: UsageEvent) {
        if let Some(dropped) = self.handle.queue.push(event) {
            warn!(
                app = %dropped.app,
                deployment_id = %dropped.deployment_id,
                "Usage reporting queue full, dropping the oldest event"
            );
            metrics::usage_report_failed();
        }
    }
}
/// An error rather than a startup failure: upstream ships its own CA bundle and never fails
/// here, and a missing CA store must not keep the daemon from deploying.
fn http_client(settings: &UsageSettings) -> Result<HttpClient, String> {
    let https = settings.endpoint.scheme_str() == Some("https");
    let limits = Limits {
        connect: settings.request_timeout,
        request: settings.request_timeout,
        answer_bytes: MAX_RESPONSE_BYTES,
    };
    HttpClient::new(https, settings.proxy.as_ref(), limits).map_err(|e| http::error_chain(&e))
}

/// The sending task's state.
struct Sender {
    settings: UsageSettings,
    client: Result<HttpClient, String>,
    starts: StartTimes,
}

impl Sender {
    async fn run(mut self, queue: Arc<Queue>) {
        while let Some(event) = queue.pop().await {
            // Taken at dequeue time, as upstream: a backlog delays both timestamps.
            let now = payload_timestamp(Timestamp::now());
            let started_at = self.starts.started_at(&event, &now);
            let body = python_json(&payload(&self.settings, &event, &now, &started_at));
            self.send(Bytes::from(body)).await;
        }
    }

    /// Sends one event with up to [`MAX_TRIES`] attempts; every outcome is logged and counted,
    /// none is returned because nobody could act on it.
    async fn send(&self, body: Bytes) {
        let client = match &self.client {
            Ok(client) => client,
            Err(why) => {
                metrics::usage_report_failed();
                error!(error = %why, "Unable to send usage reporting event");
                return;
            }
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let started = Instant::now();
            let outcome = self.attempt(client, &body).await;
            metrics::usage_report_latency(started.elapsed().as_secs_f64());
            let why = match outcome {
                Ok(()) => {
                    metrics::usage_report_succeeded();
                    return;
                }
                Err(why) => why,
            };
            if tries >= MAX_TRIES {
                metrics::usage_report_failed();
                error!(error = %why, tries, "Unable to send usage reporting event");
                return;
            }
            metrics::usage_report_retried();
            let wait = full_jitter(self.settings.backoff_base.saturating_mul(1 << (tries - 1)));
            info!(error = %why, tries, "Usage reporting failed, trying again in {wait:.1?}");
            tokio::time::sleep(wait).await;
        }
    }

    /// One signed POST; Ok for any status below 400 (redirects are not followed: a redirected
    /// request would carry a signature for the wrong path anyway).
    async fn attempt(&self, client: &HttpClient, body: &Bytes) -> Result<(), String> {
        let nonce = uuid::Uuid::new_v4().to_string();
        let auth = auth_headers(&self.settings, body, Timestamp::now(), &nonce);
        let request = Request::post(self.settings.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(DATE, auth.date)
            .header("Content-Signature", auth.content_signature)
            .header("DevHose-AuthContext", auth.auth_context)
            .header("DevHose-Nonce", auth.nonce)
            .body(Full::new(body.clone()))
            .map_err(|e| http::error_chain(&e))?;
        // The answer is read to the end, so the connection can be reused (`requests` reads it
        // too, and fails the attempt if it cannot).
        let answer = client
            .send(request)
            .await
            .map_err(|e| http::error_chain(&e))?;
        if answer.status.as_u16() >= 400 {
            return Err(format!("the endpoint answered {}", answer.status));
        }
        Ok(())
    }
}

/// A uniformly random wait in `[0, cap)` (`backoff.full_jitter`).
fn full_jitter(cap: Duration) -> Duration {
    // A v4 UUID is 122 random bits from the OS; its low 53 bits are all random and make an
    // evenly spread f64 in [0, 1) without another crate.
    let bits = uuid::Uuid::new_v4().as_u128() as u64 & ((1 << 53) - 1);
    let unit = bits as f64 / (1u64 << 53) as f64;
    cap.mul_f64(unit)
}
