//! Usage reporting: one DevHose deployment event per lifecycle change (started, succeeded,
//! failed), POSTed as JSON with DevHose HMAC authentication (inventory §e.5).
//!
//! The seam: the deploy side calls [`UsageReporter::report`], which only queues; a separate task
//! (the future returned by [`UsageReporter::new`]) builds, signs and sends. Reporting can
//! therefore never block or fail a deploy, a hanging endpoint costs at most one bounded attempt
//! at a time, and a dead endpoint cannot grow memory: the queue drops its oldest event when full.
//!
//! Payload building, JSON rendering and signing are pure functions so that the wire format can
//! be pinned by tests without a server.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper::Uri;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, DATE};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::Notify;
use tracing::{debug, error, info, warn};

use crate::metrics;

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
/// A deployment that started but never completed (daemon restarted mid-deploy, lost event)
/// must not be remembered forever.
const MAX_REMEMBERED_STARTS: usize = 1000;
/// The answer is only read to free the connection; a runaway one must not cost memory.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// `urllib.parse.quote` leaves these unescaped in the signed path (besides `[A-Za-z0-9_.~-]`).
const PATH_SAFE: &[u8] = b".-~_@:!$&'()*+,;=/?";

type HmacSha256 = Hmac<Sha256>;
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

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
}

/// Everything the reporter needs, resolved once at startup.
///
/// `--proxy` is not applied: upstream sends usage events through its proxied session, this
/// port connects to the endpoint directly.
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
    /// whitespace ignored), or an endpoint that is not an absolute http(s) URL (upstream would
    /// fail every send instead).
    pub fn from_config(
        config: &fiaas_transform::ClusterConfig,
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
        Ok(Some(UsageSettings {
            endpoint,
            signed_path,
            auth_context,
            mac,
            cluster_name: config.usage_reporting_cluster_name.clone(),
            operator: config.usage_reporting_operator.clone(),
            team: config.usage_reporting_team.clone(),
            environment: config.environment.clone(),
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

/// base64 of `{"type": "<tenant>"}` exactly as Python's `json.dumps` renders it.
fn auth_context(tenant: &str) -> String {
    BASE64.encode(python_json(&json!({ "type": tenant })).as_bytes())
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
        let client = http_client();
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

/// A bounded FIFO that drops its oldest entry rather than block or grow.
#[derive(Debug)]
struct Queue {
    state: Mutex<QueueState>,
    wake: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    events: VecDeque<UsageEvent>,
    closed: bool,
}

impl Queue {
    fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            wake: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // No critical section can leave the state half-updated, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event`; returns the event dropped to make room, if any.
    fn push(&self, event: UsageEvent) -> Option<UsageEvent> {
        let dropped = {
            let mut state = self.lock();
            let dropped = if state.events.len() >= self.capacity {
                state.events.pop_front()
            } else {
                None
            };
            state.events.push_back(event);
            dropped
        };
        self.wake.notify_one();
        dropped
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// The next event, waiting for one; None once closed and drained.
    async fn pop(&self) -> Option<UsageEvent> {
        loop {
            {
                let mut state = self.lock();
                if let Some(event) = state.events.pop_front() {
                    return Some(event);
                }
                if state.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push between the unlock
            // above and this await is not missed.
            self.wake.notified().await;
        }
    }
}

/// Start times of deployments in progress, keyed by (app, deployment id), oldest first.
#[derive(Debug, Default)]
struct StartTimes {
    entries: VecDeque<((String, String), String)>,
}

impl StartTimes {
    /// The `started_at` for `event` reported at `now`: `now` for a start (remembered), the
    /// remembered start for a completion (forgotten), else `now` (e.g. a config that failed to
    /// parse has no start).
    fn started_at(&mut self, event: &UsageEvent, now: &str) -> String {
        let key = (event.app.clone(), event.deployment_id.clone());
        let known = self
            .entries
            .iter()
            .position(|(k, _)| *k == key)
            .and_then(|at| self.entries.remove(at));
        match event.status {
            UsageStatus::Started => {
                if self.entries.len() >= MAX_REMEMBERED_STARTS {
                    self.entries.pop_front();
                }
                self.entries.push_back((key, now.to_owned()));
                now.to_owned()
            }
            UsageStatus::Succeeded | UsageStatus::Failed => {
                known.map_or_else(|| now.to_owned(), |(_, started)| started)
            }
        }
    }
}

/// The DevHose deployment event, keys in upstream's order.
fn payload(
    settings: &UsageSettings,
    event: &UsageEvent,
    timestamp: &str,
    started_at: &str,
) -> Value {
    json!({
        "id": event.deployment_id,
        "application": event.app,
        "environment": environment_class(&settings.environment),
        "repository": event.repository,
        "started_at": started_at,
        "timestamp": timestamp,
        "target": {
            "infrastructure": settings.cluster_name,
            // DevHose wants both; upstream fills them with the same value.
            "provider": settings.cluster_name,
            "team": settings.operator,
            "instance": event.namespace,
        },
        "status": event.status.devhose_name(),
        "source_type": "fiaas",
        "facility": "sdrn:schibsted:service:fiaas",
        "details": { "environment": settings.environment },
        "trigger": { "type": "fiaas" },
        "team": settings.team,
    })
}

/// Upstream compares the first three characters of `--environment`.
fn environment_class(environment: &str) -> &'static str {
    ["dev", "pre", "pro"]
        .into_iter()
        .find(|prefix| environment.starts_with(prefix))
        .unwrap_or("other")
}

/// UTC, whole seconds, `Z` suffix (upstream: `utcnow().replace(microsecond=0).isoformat() + "Z"`).
fn payload_timestamp(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Python's `email.utils.formatdate(t)`: RFC 2822 in UTC with a `-0000` zone.
fn http_date(now: Timestamp) -> String {
    now.strftime("%a, %d %b %Y %H:%M:%S -0000").to_string()
}

/// JSON as Python's `json.dumps` writes it by default (`", "` and `": "` separators, non-ASCII
/// escaped), which is what upstream sends and signs; receivers may compare bytes.
fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_python_json(&mut out, value);
    out
}

fn write_python_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_python_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_str(out, key);
                out.push_str(": ");
                write_python_json(out, item);
            }
            out.push('}');
        }
    }
}

/// `ensure_ascii`: everything outside printable ASCII as lower-case `\uXXXX` (UTF-16 units).
fn write_python_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `urllib.parse.quote(bytes, safe)`: `[A-Za-z0-9_.~-]` and `safe` kept, the rest `%XX`.
fn quote(bytes: &[u8], safe: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `urllib.parse.quote_plus(bytes)`: nothing extra kept, space as `+`.
fn quote_plus(bytes: &[u8]) -> String {
    quote(bytes, b" ").replace(' ', "+")
}

/// The DevHose string to sign; `epoch_seconds` is whole seconds, signed as milliseconds.
fn string_to_sign(
    signed_path: &str,
    nonce: &str,
    epoch_seconds: i64,
    auth_context: &str,
    body: &[u8],
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n",
        quote(signed_path.as_bytes(), PATH_SAFE),
        quote_plus(nonce.as_bytes()),
        epoch_seconds.saturating_mul(1000),
        quote_plus(auth_context.as_bytes()),
        quote_plus(body),
    )
}

/// The DevHose headers of one attempt.
#[derive(Debug, PartialEq, Eq)]
struct AuthHeaders {
    content_signature: String,
    auth_context: String,
    nonce: String,
    date: String,
}

fn auth_headers(settings: &UsageSettings, body: &[u8], now: Timestamp, nonce: &str) -> AuthHeaders {
    let to_sign = string_to_sign(
        &settings.signed_path,
        nonce,
        now.as_second(),
        &settings.auth_context,
        body,
    );
    let mut mac = settings.mac.clone();
    mac.update(to_sign.as_bytes());
    AuthHeaders {
        content_signature: BASE64.encode(&mac.finalize().into_bytes()),
        auth_context: settings.auth_context.clone(),
        nonce: nonce.to_owned(),
        date: http_date(now),
    }
}

/// An error rather than a startup failure: upstream ships its own CA bundle and never fails
/// here, and a missing CA store must not keep the daemon from deploying.
fn http_client() -> Result<HttpClient, String> {
    let connector = HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no usable TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
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
            let outcome = match tokio::time::timeout(
                self.settings.request_timeout,
                self.attempt(client, &body),
            )
            .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(format!(
                    "no response within {:?}",
                    self.settings.request_timeout
                )),
            };
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
            .map_err(|e| error_chain(&e))?;
        let response = client.request(request).await.map_err(|e| error_chain(&e))?;
        let status = response.status();
        // Read the answer to the end so the connection can be reused (`requests` reads it too,
        // and fails the attempt if it cannot), but not without limit.
        Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| error_chain(&*e))?;
        if status.as_u16() >= 400 {
            return Err(format!("the endpoint answered {status}"));
        }
        Ok(())
    }
}

/// The legacy client's errors say little at the top ("client error (Connect)"); the cause is
/// further down.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A uniformly random wait in `[0, cap)` (`backoff.full_jitter`).
fn full_jitter(cap: Duration) -> Duration {
    // A v4 UUID is 122 random bits from the OS; its low 53 bits are all random and make an
    // evenly spread f64 in [0, 1) without another crate.
    let bits = uuid::Uuid::new_v4().as_u128() as u64 & ((1 << 53) - 1);
    let unit = bits as f64 / (1u64 << 53) as f64;
    cap.mul_f64(unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ::metrics::{
        Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };
    use hyper::body::Incoming;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper::{Response, StatusCode};
    use hyper_util::rt::TokioIo;

    const KEY_B64: &str = "ZHVtbXkga2V5"; // base64("dummy key")

    fn settings(endpoint: &str, environment: &str, team: Option<&str>) -> UsageSettings {
        let (endpoint, signed_path) = parse_endpoint(endpoint).unwrap();
        UsageSettings {
            endpoint,
            signed_path,
            auth_context: auth_context("tenant"),
            mac: keyed_mac(Path::new("key"), KEY_B64.as_bytes()).unwrap(),
            cluster_name: Some("cluster_name".to_owned()),
            operator: Some("operator_sdrn".to_owned()),
            team: team.map(str::to_owned),
            environment: environment.to_owned(),
            request_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_millis(1),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }

    fn event(status: UsageStatus, repository: Option<&str>) -> UsageEvent {
        UsageEvent {
            status,
            app: "testapp".to_owned(),
            namespace: "default".to_owned(),
            deployment_id: "test_app_deployment_id".to_owned(),
            repository: repository.map(str::to_owned),
        }
    }

    #[test]
    fn devhose_test_vector() {
        let s = settings("http://example.com/uri", "dev", None);
        let now = Timestamp::new(1_514_764_861, 1_000).unwrap();
        assert_eq!(
            string_to_sign(
                "uri",
                "mocked_nonce",
                now.as_second(),
                &s.auth_context,
                b"payload"
            ),
            "uri\nmocked_nonce\n1514764861000\neyJ0eXBlIjogInRlbmFudCJ9\npayload\n"
        );
        let s = UsageSettings {
            signed_path: "uri".to_owned(),
            ..s
        };
        assert_eq!(
            auth_headers(&s, b"payload", now, "mocked_nonce"),
            AuthHeaders {
                content_signature: "tYyKot+bWabhxpsvWJunmFFqZ6f/LfY361xpkB3svDQ=".to_owned(),
                auth_context: "eyJ0eXBlIjogInRlbmFudCJ9".to_owned(),
                nonce: "mocked_nonce".to_owned(),
                date: "Mon, 01 Jan 2018 00:01:01 -0000".to_owned(),
            }
        );
    }

    #[test]
    fn key_whitespace_is_ignored() {
        for raw in [
            format!("\n{KEY_B64}"),
            format!("{KEY_B64}\n"),
            "ZHVtbX\nkga2V5 ".to_owned(),
        ] {
            let mut mac = keyed_mac(Path::new("key"), raw.as_bytes()).unwrap();
            mac.update(b"x");
            let mut expected = keyed_mac(Path::new("key"), KEY_B64.as_bytes()).unwrap();
            expected.update(b"x");
            assert_eq!(
                mac.finalize().into_bytes(),
                expected.finalize().into_bytes()
            );
        }
    }

    #[test]
    fn escaped_string_to_sign() {
        let odd = "\u{7f7}\u{23FB}@/";
        let epoch = Timestamp::from_millisecond(1_506_424_585_439)
            .unwrap()
            .as_second();
        assert_eq!(
            string_to_sign(
                &format!("/{odd}a-zA-Z0-9.-~_@:!$&'()*+,;=/?"),
                odd,
                epoch,
                &auth_context(odd),
                odd.as_bytes(),
            ),
            "/%DF%B7%E2%8F%BB@/a-zA-Z0-9.-~_@:!$&'()*+,;=/?\n\
             %DF%B7%E2%8F%BB%40%2F\n\
             1506424585000\n\
             eyJ0eXBlIjogIlx1MDdmN1x1MjNmYkAvIn0%3D\n\
             %DF%B7%E2%8F%BB%40%2F\n"
        );
        // An already-escaped path is escaped again, as upstream; space is `+` only in form parts.
        assert_eq!(quote(b"/a%20b c", PATH_SAFE), "/a%2520b%20c");
        assert_eq!(quote_plus(b"a b+c"), "a+b%2Bc");
    }

    #[test]
    fn http_date_is_rfc2822_with_minus_zero_zone() {
        let t = Timestamp::new(1_536_587_345, 999_999_999).unwrap();
        assert_eq!(http_date(t), "Mon, 10 Sep 2018 13:49:05 -0000");
        assert_eq!(payload_timestamp(t), "2018-09-10T13:49:05Z");
        let t = Timestamp::new(1_709_251_199, 0).unwrap();
        assert_eq!(http_date(t), "Thu, 29 Feb 2024 23:59:59 -0000");
    }

    #[test]
    fn python_json_rendering() {
        let value = json!({"a": [1, true, null], "b": {"c": "q\"\\\n\u{1}\u{7f}é😀"}});
        assert_eq!(
            python_json(&value),
            r#"{"a": [1, true, null], "b": {"c": "q\"\\\n\u0001\u007f\u00e9\ud83d\ude00"}}"#
        );
    }

    #[test]
    fn payload_started_in_each_environment() {
        for (environment, class) in [
            ("dev", "dev"),
            ("pre", "pre"),
            ("pro", "pro"),
            ("production", "pro"),
            ("something_else", "other"),
            ("de", "other"),
        ] {
            let s = settings("http://example.com/usage", environment, None);
            let ts = "2018-09-10T13:49:05Z";
            let body = python_json(&payload(
                &s,
                &event(UsageStatus::Started, Some("source/repo/name")),
                ts,
                ts,
            ));
            assert_eq!(
                body,
                format!(
                    "{{\"id\": \"test_app_deployment_id\", \"application\": \"testapp\", \
                     \"environment\": \"{class}\", \"repository\": \"source/repo/name\", \
                     \"started_at\": \"{ts}\", \"timestamp\": \"{ts}\", \"target\": \
                     {{\"infrastructure\": \"cluster_name\", \"provider\": \"cluster_name\", \
                     \"team\": \"operator_sdrn\", \"instance\": \"default\"}}, \"status\": \
                     \"in_progress\", \"source_type\": \"fiaas\", \"facility\": \
                     \"sdrn:schibsted:service:fiaas\", \"details\": {{\"environment\": \
                     \"{environment}\"}}, \"trigger\": {{\"type\": \"fiaas\"}}, \"team\": null}}"
                )
            );
        }
    }

    #[test]
    fn payload_completion_uses_remembered_start_once() {
        let s = settings("http://example.com/usage", "dev", Some("team_sdrn"));
        let mut starts = StartTimes::default();
        let t0 = "2018-09-10T13:49:05Z";
        let t1 = "2018-09-10T13:50:05Z";
        let t2 = "2018-09-10T13:51:05Z";
        assert_eq!(
            starts.started_at(&event(UsageStatus::Started, None), t0),
            t0
        );
        for (status, name) in [
            (UsageStatus::Succeeded, "succeeded"),
            (UsageStatus::Failed, "failed"),
        ] {
            let completed = event(status, None);
            starts.started_at(&event(UsageStatus::Started, None), t0);
            let started_at = starts.started_at(&completed, t1);
            assert_eq!(started_at, t0);
            let body = payload(&s, &completed, t1, &started_at);
            assert_eq!(body["status"], name);
            assert_eq!(body["started_at"], t0);
            assert_eq!(body["timestamp"], t1);
            assert_eq!(body["repository"], Value::Null);
            assert_eq!(body["team"], "team_sdrn");
            // Forgotten: a second completion has no known start.
            assert_eq!(starts.started_at(&completed, t2), t2);
        }
        assert!(starts.entries.is_empty());
    }

    #[test]
    fn remembered_starts_are_bounded() {
        let mut starts = StartTimes::default();
        for i in 0..MAX_REMEMBERED_STARTS + 10 {
            let started = UsageEvent {
                deployment_id: i.to_string(),
                ..event(UsageStatus::Started, None)
            };
            starts.started_at(&started, &i.to_string());
        }
        assert_eq!(starts.entries.len(), MAX_REMEMBERED_STARTS);
        let oldest = UsageEvent {
            deployment_id: "0".to_owned(),
            ..event(UsageStatus::Succeeded, None)
        };
        assert_eq!(starts.started_at(&oldest, "now"), "now");
        let newest = UsageEvent {
            deployment_id: (MAX_REMEMBERED_STARTS + 9).to_string(),
            ..event(UsageStatus::Failed, None)
        };
        assert_eq!(
            starts.started_at(&newest, "now"),
            (MAX_REMEMBERED_STARTS + 9).to_string()
        );
    }

    /// A fresh secrets directory, removed on drop.
    struct SecretsDir(PathBuf);

    impl SecretsDir {
        fn new(key: Option<&[u8]>) -> SecretsDir {
            let dir = std::env::temp_dir().join(format!("fiaas-usage-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(key) = key {
                std::fs::write(dir.join(KEY_FILE), key).unwrap();
            }
            SecretsDir(dir)
        }
    }

    impl Drop for SecretsDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn config(
        dir: &SecretsDir,
        endpoint: Option<&str>,
        tenant: Option<&str>,
    ) -> fiaas_transform::ClusterConfig {
        fiaas_transform::ClusterConfig {
            secrets_directory: dir.0.clone(),
            usage_reporting_endpoint: endpoint.map(str::to_owned),
            usage_reporting_tenant: tenant.map(str::to_owned),
            usage_reporting_cluster_name: Some("cluster".to_owned()),
            environment: "pro".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn enabling_rules() {
        let endpoint = Some("https://devhose.example.com/usage");
        let good_key = format!("{KEY_B64}\n");
        let good = SecretsDir::new(Some(good_key.as_bytes()));
        let enabled = UsageSettings::from_config(&config(&good, endpoint, Some("tenant")))
            .unwrap()
            .unwrap();
        assert_eq!(enabled.signed_path, "/usage");
        assert_eq!(enabled.auth_context, "eyJ0eXBlIjogInRlbmFudCJ9");
        assert_eq!(enabled.environment, "pro");
        assert_eq!(enabled.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert!(!format!("{enabled:?}").contains("mac"));

        let disabled = |dir: &SecretsDir, endpoint: Option<&str>, tenant: Option<&str>| {
            UsageSettings::from_config(&config(dir, endpoint, tenant))
                .unwrap()
                .is_none()
        };
        assert!(disabled(&good, None, Some("tenant")));
        assert!(disabled(&good, Some(""), Some("tenant")));
        assert!(disabled(&good, endpoint, None));
        assert!(disabled(&good, endpoint, Some("")));
        assert!(disabled(&SecretsDir::new(None), endpoint, Some("tenant")));
        assert!(disabled(
            &SecretsDir::new(Some(b" \n")),
            endpoint,
            Some("tenant")
        ));
        let key_is_a_dir = SecretsDir::new(None);
        std::fs::create_dir(key_is_a_dir.0.join(KEY_FILE)).unwrap();
        assert!(disabled(&key_is_a_dir, endpoint, Some("tenant")));
    }

    #[test]
    fn startup_errors() {
        let bad = SecretsDir::new(Some(b"not base64!"));
        // As upstream, the key is decoded even when no endpoint is set.
        for endpoint in [None, Some("https://devhose.example.com/usage")] {
            let err =
                UsageSettings::from_config(&config(&bad, endpoint, Some("tenant"))).unwrap_err();
            assert!(matches!(err, UsageError::InvalidKey { .. }), "{err}");
            assert!(!err.to_string().contains("not base64!"));
        }
        // Without a tenant the key is never used, so it is not checked.
        assert!(
            UsageSettings::from_config(&config(&bad, None, None))
                .unwrap()
                .is_none()
        );

        let good = SecretsDir::new(Some(KEY_B64.as_bytes()));
        for endpoint in [
            "devhose.example.com/usage",
            "ftp://devhose.example.com/",
            "http:///x",
        ] {
            let err = UsageSettings::from_config(&config(&good, Some(endpoint), Some("tenant")))
                .unwrap_err();
            assert!(
                matches!(err, UsageError::InvalidEndpoint { .. }),
                "{endpoint}: {err}"
            );
        }
    }

    #[test]
    fn signed_path_follows_requests() {
        assert_eq!(parse_endpoint("http://h").unwrap().1, "/");
        assert_eq!(
            parse_endpoint("http://h:8080/a/b?x=1&y").unwrap().1,
            "/a/b?x=1&y"
        );
        assert_eq!(parse_endpoint("https://h/a?").unwrap().1, "/a");
    }

    #[test]
    fn full_queue_drops_oldest() {
        let s = UsageSettings {
            queue_capacity: 3,
            ..settings("http://127.0.0.1:9/usage", "dev", None)
        };
        // The sending task is never run, so nothing leaves the queue.
        let (reporter, _sender) = UsageReporter::new(s);
        for i in 0..10 {
            reporter.report(UsageEvent {
                deployment_id: i.to_string(),
                ..event(UsageStatus::Started, None)
            });
        }
        let state = reporter.handle.queue.lock();
        let ids: Vec<_> = state
            .events
            .iter()
            .map(|e| e.deployment_id.as_str())
            .collect();
        assert_eq!(ids, ["7", "8", "9"]);
    }

    /// Sums what the code under test records, per metric name.
    #[derive(Clone, Default)]
    struct Tally(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Tap {
        name: String,
        tally: Tally,
    }

    impl Tap {
        fn add(&self, value: f64) {
            *self
                .tally
                .0
                .lock()
                .unwrap()
                .entry(self.name.clone())
                .or_default() += value;
        }
    }

    impl CounterFn for Tap {
        fn increment(&self, value: u64) {
            self.add(value as f64);
        }
        fn absolute(&self, _: u64) {
            unimplemented!("not used by usage reporting")
        }
    }

    impl HistogramFn for Tap {
        // Counts observations rather than summing them: latencies vary.
        fn record(&self, _: f64) {
            self.add(1.0);
        }
    }

    impl Recorder for Tally {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(Arc::new(Tap {
                name: key.name().to_owned(),
                tally: self.clone(),
            }))
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(Arc::new(Tap {
                name: key.name().to_owned(),
                tally: self.clone(),
            }))
        }
    }

    struct Received {
        path: String,
        headers: hyper::HeaderMap,
        body: Bytes,
    }

    /// A server on 127.0.0.1 that answers the first `failures` requests with 500, the rest 200.
    async fn devhose(failures: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let seen = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let log = Arc::clone(&log);
                let seen = Arc::clone(&seen);
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let log = Arc::clone(&log);
                    let seen = Arc::clone(&seen);
                    async move {
                        let path = request.uri().to_string();
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await?.to_bytes();
                        log.lock().unwrap().push(Received {
                            path,
                            headers,
                            body,
                        });
                        let status = if seen.fetch_add(1, Ordering::SeqCst) < failures {
                            StatusCode::INTERNAL_SERVER_ERROR
                        } else {
                            StatusCode::OK
                        };
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
                        *response.status_mut() = status;
                        Ok::<_, hyper::Error>(response)
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        (format!("http://{address}/usage?src=fiaas"), received)
    }

    fn header<'a>(received: &'a Received, name: &str) -> &'a str {
        received.headers.get(name).unwrap().to_str().unwrap()
    }

    #[tokio::test]
    async fn sends_signed_event_and_retries_after_500() {
        let tally = Tally::default();
        // The test runtime is single-threaded, so the sending task records into this recorder.
        let _guard = ::metrics::set_default_local_recorder(&tally);
        let (endpoint, received) = devhose(1).await;
        let s = settings(&endpoint, "dev", None);
        let (reporter, sender) = UsageReporter::new(s.clone());
        reporter.report(event(UsageStatus::Started, Some("repo")));
        drop(reporter);
        tokio::time::timeout(Duration::from_secs(20), sender)
            .await
            .unwrap();

        let received = received.lock().unwrap();
        assert_eq!(received.len(), 2);
        for attempt in received.iter() {
            assert_eq!(attempt.path, "/usage?src=fiaas");
            assert_eq!(header(attempt, "content-type"), "application/json");
            assert_eq!(
                header(attempt, "devhose-authcontext"),
                "eyJ0eXBlIjogInRlbmFudCJ9"
            );
            let date = jiff::civil::DateTime::strptime(
                "%a, %d %b %Y %H:%M:%S -0000",
                header(attempt, "date"),
            )
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp();
            let nonce = header(attempt, "devhose-nonce");
            assert_eq!(
                auth_headers(&s, &attempt.body, date, nonce).content_signature,
                header(attempt, "content-signature")
            );
            let body: Value = serde_json::from_slice(&attempt.body).unwrap();
            assert_eq!(body["status"], "in_progress");
            assert_eq!(body["repository"], "repo");
            assert_eq!(body["started_at"], body["timestamp"]);
        }
        assert_eq!(received[0].body, received[1].body);
        assert_ne!(
            header(&received[0], "devhose-nonce"),
            header(&received[1], "devhose-nonce")
        );

        let tally = tally.0.lock().unwrap();
        assert_eq!(tally.get("fiaas_usage_reporting_success_total"), Some(&1.0));
        assert_eq!(tally.get("fiaas_usage_reporting_retry_total"), Some(&1.0));
        assert_eq!(tally.get("fiaas_usage_reporting_failure_total"), None);
        assert_eq!(tally.get("fiaas_usage_reporting_latency"), Some(&2.0));
    }

    #[tokio::test]
    async fn gives_up_after_five_tries() {
        let tally = Tally::default();
        let _guard = ::metrics::set_default_local_recorder(&tally);
        let (endpoint, received) = devhose(usize::MAX).await;
        let (reporter, sender) = UsageReporter::new(settings(&endpoint, "dev", None));
        reporter.report(event(UsageStatus::Failed, None));
        drop(reporter);
        tokio::time::timeout(Duration::from_secs(20), sender)
            .await
            .unwrap();

        assert_eq!(received.lock().unwrap().len(), 5);
        let tally = tally.0.lock().unwrap();
        assert_eq!(tally.get("fiaas_usage_reporting_success_total"), None);
        assert_eq!(tally.get("fiaas_usage_reporting_retry_total"), Some(&4.0));
        assert_eq!(tally.get("fiaas_usage_reporting_failure_total"), Some(&1.0));
    }

    #[tokio::test]
    async fn a_silent_endpoint_costs_one_timeout_per_try() {
        let tally = Tally::default();
        let _guard = ::metrics::set_default_local_recorder(&tally);
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                open.push(listener.accept().await.unwrap());
            }
        });
        let s = UsageSettings {
            request_timeout: Duration::from_millis(50),
            ..settings(&format!("http://{address}/usage"), "dev", None)
        };
        let (reporter, sender) = UsageReporter::new(s);
        reporter.report(event(UsageStatus::Started, None));
        drop(reporter);
        tokio::time::timeout(Duration::from_secs(10), sender)
            .await
            .unwrap();
        hold.abort();
    }

    #[test]
    fn full_jitter_stays_below_cap() {
        let cap = Duration::from_secs(8);
        let waits: Vec<_> = (0..100).map(|_| full_jitter(cap)).collect();
        assert!(waits.iter().all(|w| *w < cap));
        assert!(waits.iter().any(|w| *w != waits[0]));
    }
}
