//! The daemon's log output, shaped like upstream's `logsetup.py`/`log_extras.py`.
//!
//! Every log record becomes one entry on stdout, nothing else is printed there: a plain line
//! `[<asctime>|<LEVEL>] <message> [<logger>|<thread>]` or, with `--log-format json`, one JSON object
//! per line with upstream's keys. The logger is the tracing target (the module path), the thread is
//! the OS thread name (tokio workers are all `tokio-runtime-worker`).
//!
//! Upstream's thread-local "extras" (`app_name`, `namespace`, `deployment_id`) are span fields
//! here: the deployer runs each deploy inside [`deploy_span`], and every event inside it carries
//! them. Any span declaring one of those fields counts, the innermost one wins.
//!
//! Timestamps are UTC where upstream printed the pod's local time (which is UTC in the usual
//! container anyway); the formats are otherwise upstream's.

use std::fmt::{self, Write as _};
use std::io::Write as _;

use fiaas_config::LogFormat;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;
use serde_json::{Map, Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::{SubscriberInitExt as _, TryInitError};

/// Dependencies that log every connection and request at INFO/DEBUG; upstream's equivalent
/// (werkzeug) is quietened the same way. Directives match by target prefix, so `kube` also covers
/// `kube_client`/`kube_runtime` and `hyper` covers `hyper_util`/`hyper_rustls`.
const QUIET_DEPENDENCIES: &[&str] = &["hyper", "h2", "kube", "rustls", "tower"];

/// The span fields that make up upstream's log "extras".
const EXTRA_FIELDS: [&str; 3] = ["app_name", "namespace", "deployment_id"];

/// Why the global logger could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A level directive did not parse (a bug: they are built in).
    #[error("invalid log filter directive: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// Another global subscriber (or `log` logger) was installed first.
    #[error("installing the global logger failed: {0}")]
    Install(#[from] TryInitError),
}

/// Install the global tracing subscriber: level INFO (DEBUG with `--debug`); noisy dependency
/// crates (hyper, kube, rustls, tower) at WARN unless `--debug`; output format per
/// `--log-format`. Records from crates using the `log` facade are included.
pub fn init(format: LogFormat, debug: bool) -> Result<(), LoggingError> {
    tracing_subscriber::registry()
        .with(filter(debug)?)
        .with(StdoutLayer::new(format, std::io::stdout))
        .try_init()?;
    Ok(())
}

fn filter(debug: bool) -> Result<EnvFilter, LoggingError> {
    // Built from our own directives only: upstream has no RUST_LOG-like override either.
    let directives = if debug {
        "debug".to_owned()
    } else {
        QUIET_DEPENDENCIES
            .iter()
            .fold("info".to_owned(), |mut acc, krate| {
                acc.push_str(&format!(",{krate}=warn"));
                acc
            })
    };
    Ok(EnvFilter::builder().parse(directives)?)
}

/// The span the deployer enters for one deploy; its fields are upstream's log "extras", so every
/// record logged inside it names the application being deployed.
pub fn deploy_span(app_name: &str, namespace: &str, deployment_id: &str) -> tracing::Span {
    tracing::info_span!("deploy", app_name, namespace, deployment_id)
}

/// One status-log line as upstream's status handler formats it:
/// `[<asctime>|<LEVEL>] <message> [<logger>|<thread>|<namespace>/<app>]`, the level right-aligned
/// in 7 columns and the time like `2024-01-31 12:34:56,789` (UTC, where upstream used local time).
pub fn status_line(
    level: Level,
    message: &str,
    logger: &str,
    thread: &str,
    namespace: &str,
    app: &str,
) -> String {
    status_line_at(
        Timestamp::now(),
        level,
        message,
        logger,
        thread,
        namespace,
        app,
    )
}

fn status_line_at(
    at: Timestamp,
    level: Level,
    message: &str,
    logger: &str,
    thread: &str,
    namespace: &str,
    app: &str,
) -> String {
    format!(
        "[{}|{:>7}] {message} [{logger}|{thread}|{namespace}/{app}]",
        asctime(at),
        level_name(level)
    )
}

/// Python's level names, so `WARN` reads `WARNING` as in upstream's logs.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

fn utc(at: Timestamp) -> DateTime {
    Offset::UTC.to_datetime(at)
}

/// Python logging's `asctime`: milliseconds truncated, after a comma.
fn asctime(at: Timestamp) -> String {
    let t = utc(at);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond() / 1_000_000
    )
}

/// Python's `datetime.isoformat()`: microseconds, left out entirely when they are zero.
fn iso_timestamp(at: Timestamp) -> String {
    let t = utc(at);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = t.subsec_nanosecond() / 1_000;
    if micros != 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, ".{micros:06}");
    }
    out
}

/// Upstream's extras as recorded on a span; stored in the span's extensions.
#[derive(Clone, Debug, Default, PartialEq)]
struct Extras {
    app_name: String,
    namespace: String,
    deployment_id: String,
}

impl Visit for Extras {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field, format!("{value:?}"));
    }
}

impl Extras {
    fn set(&mut self, field: &Field, value: String) {
        match field.name() {
            "app_name" => self.app_name = value,
            "namespace" => self.namespace = value,
            "deployment_id" => self.deployment_id = value,
            _ => {}
        }
    }
}

/// What one event carries, taken apart for formatting.
#[derive(Default)]
struct EventFields {
    message: String,
    /// Fields other than the message, rendered `key=value` after it (upstream has no structured
    /// fields, so they become part of the message text).
    others: String,
    /// The `error` field: upstream's exception text.
    error: Option<String>,
    /// Where a record forwarded from the `log` facade really came from.
    log_target: Option<String>,
    log_file: Option<String>,
    log_line: Option<u64>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "log.target" => self.log_target = Some(value.to_owned()),
            "log.file" => self.log_file = Some(value.to_owned()),
            _ => self.record_debug(field, &format_args!("{value}")),
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "log.line" {
            self.log_line = Some(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = Some(format!("{value:?}")),
            // The rest of the `log` bridge's bookkeeping, already in the metadata.
            "log.module_path" | "log.target" | "log.file" | "log.line" => {}
            name => {
                // Writing to a String cannot fail.
                let _ = write!(self.others, " {name}={value:?}");
            }
        }
    }
}

impl EventFields {
    fn message(&self) -> String {
        format!("{}{}", self.message, self.others)
    }
}

/// Writes each event to stdout in the configured format, and keeps the extras of spans that
/// declare them.
struct StdoutLayer<W> {
    format: LogFormat,
    make_writer: W,
}

impl<W> StdoutLayer<W> {
    fn new(format: LogFormat, make_writer: W) -> Self {
        StdoutLayer {
            format,
            make_writer,
        }
    }
}

impl<S, W> Layer<S> for StdoutLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let fields = attrs.metadata().fields();
        if !EXTRA_FIELDS.iter().any(|name| fields.field(name).is_some()) {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extras = Extras::default();
        attrs.record(&mut extras);
        span.extensions_mut().insert(extras);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        // A deploy span may declare its fields empty and record them once known.
        if let Some(span) = ctx.span(id)
            && let Some(extras) = span.extensions_mut().get_mut::<Extras>()
        {
            values.record(extras);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let extras = ctx
            .event_scope(event)
            .and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<Extras>().cloned())
            })
            .unwrap_or_default();
        let mut line = match self.format {
            LogFormat::Plain => plain_line(Timestamp::now(), event),
            LogFormat::Json => json_line(Timestamp::now(), event, &extras),
        };
        line.push('\n');
        // One write per record keeps concurrent records from interleaving; a failing stdout has
        // nowhere left to be reported.
        let _ = self
            .make_writer
            .make_writer_for(event.metadata())
            .write_all(line.as_bytes());
    }
}

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

fn event_fields(event: &Event<'_>) -> EventFields {
    let mut fields = EventFields::default();
    event.record(&mut fields);
    fields
}

/// `[<asctime>|<LEVEL>] <message> [<logger>|<thread>]`; like Python's exception text, an
/// `error` field follows on the next line.
fn plain_line(at: Timestamp, event: &Event<'_>) -> String {
    let fields = event_fields(event);
    let meta = event.metadata();
    let logger = fields.log_target.as_deref().unwrap_or(meta.target());
    let mut line = format!(
        "[{}|{:>7}] {} [{logger}|{}]",
        asctime(at),
        level_name(*meta.level()),
        fields.message(),
        thread_name()
    );
    if let Some(error) = &fields.error {
        line.push('\n');
        line.push_str(error);
    }
    line
}

/// Upstream's `FiaasFormatter` object. Tracing knows no function name, so `LocationInfo.method`
/// stays empty; `file` is the file name and `module` its stem, as in Python.
fn json_line(at: Timestamp, event: &Event<'_>, extras: &Extras) -> String {
    let fields = event_fields(event);
    let meta = event.metadata();
    let path = fields
        .log_file
        .as_deref()
        .or(meta.file())
        .unwrap_or_default();
    let file = path.rsplit(['/', '\\']).next().unwrap_or_default();
    let module = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    let mut record = Map::new();
    record.insert("@timestamp".into(), iso_timestamp(at).into());
    record.insert("@version".into(), 1.into());
    record.insert("level".into(), level_name(*meta.level()).into());
    record.insert(
        "logger".into(),
        fields.log_target.as_deref().unwrap_or(meta.target()).into(),
    );
    record.insert("thread".into(), thread_name().into());
    record.insert("message".into(), fields.message().into());
    record.insert(
        "LocationInfo".into(),
        json!({
            "method": "",
            "file": file,
            "line": fields.log_line.or(meta.line().map(u64::from)),
            "module": module,
        }),
    );
    record.insert(
        "extras".into(),
        json!({
            "app_name": extras.app_name,
            "namespace": extras.namespace,
            "deployment_id": extras.deployment_id,
        }),
    );
    record.insert("pathname".into(), path.into());
    record.insert("process".into(), std::process::id().into());
    record.insert("processName".into(), "MainProcess".into());
    if let Some(error) = fields.error {
        record.insert("throwable".into(), error.into());
    }
    Value::Object(record).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::Registry;

    use super::*;

    /// Collects everything the layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn capture(format: LogFormat, f: impl FnOnce()) -> Vec<String> {
        let out = Captured::default();
        let subscriber = Registry::default().with(StdoutLayer::new(format, out.clone()));
        tracing::subscriber::with_default(subscriber, f);
        out.lines()
    }

    fn thread() -> String {
        thread_name()
    }

    #[test]
    fn plain_format() {
        let lines = capture(LogFormat::Plain, || {
            tracing::info!(target: "fiaas_daemon::deployer", "Deploying {}", "app");
            tracing::warn!(target: "fiaas_daemon::deployer", kind = "Service", "slow");
            tracing::error!(target: "x", error = "boom\ndetails", "failed");
        });
        assert_eq!(lines.len(), 5, "{lines:#?}");
        let rest = |line: &str| line.split_once(']').unwrap().1.to_owned();
        assert!(lines[0].starts_with('['));
        assert_eq!(&lines[0][24..33], "|   INFO]");
        assert_eq!(
            rest(&lines[0]),
            format!(" Deploying app [fiaas_daemon::deployer|{}]", thread())
        );
        assert_eq!(&lines[1][24..33], "|WARNING]");
        assert_eq!(
            rest(&lines[1]),
            format!(" slow kind=Service [fiaas_daemon::deployer|{}]", thread())
        );
        assert_eq!(rest(&lines[2]), format!(" failed [x|{}]", thread()));
        assert_eq!(&lines[3..], ["boom", "details"]);
    }

    #[test]
    fn plain_asctime_shape() {
        let lines = capture(LogFormat::Plain, || tracing::info!("x"));
        let stamp = &lines[0][1..24];
        let parsed = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", &stamp[..19]);
        assert!(parsed.is_ok(), "{stamp}");
        assert_eq!(&stamp[19..20], ",");
        assert!(stamp[20..].chars().all(|c| c.is_ascii_digit()));
    }

    fn json_records(f: impl FnOnce()) -> Vec<Value> {
        capture(LogFormat::Json, f)
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[test]
    fn json_format_outside_a_deploy() {
        let records = json_records(|| tracing::info!(target: "fiaas_daemon::web", "hello"));
        let record = &records[0];
        let keys: Vec<&str> = record
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "@timestamp",
                "@version",
                "level",
                "logger",
                "thread",
                "message",
                "LocationInfo",
                "extras",
                "pathname",
                "process",
                "processName"
            ]
        );
        assert_eq!(record["@version"], 1);
        assert_eq!(record["level"], "INFO");
        assert_eq!(record["logger"], "fiaas_daemon::web");
        assert_eq!(record["thread"], thread());
        assert_eq!(record["message"], "hello");
        assert_eq!(record["processName"], "MainProcess");
        assert_eq!(record["process"], std::process::id());
        assert_eq!(
            record["extras"],
            json!({"app_name": "", "namespace": "", "deployment_id": ""})
        );
        let location = &record["LocationInfo"];
        assert_eq!(location["file"], "logging.rs");
        assert_eq!(location["module"], "logging");
        assert_eq!(location["method"], "");
        assert!(location["line"].as_u64().unwrap() > 0);
        assert!(record["pathname"].as_str().unwrap().ends_with("logging.rs"));
        let stamp = record["@timestamp"].as_str().unwrap();
        assert!(
            jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", &stamp[..19]).is_ok(),
            "{stamp}"
        );
    }

    #[test]
    fn json_format_inside_a_deploy() {
        let records = json_records(|| {
            let _deploy = deploy_span("app", "ns", "id-1").entered();
            let _inner = tracing::info_span!("apply", kind = "Service").entered();
            tracing::error!(error = %"Conflict", "Failed to deploy");
        });
        let record = &records[0];
        assert_eq!(
            record["extras"],
            json!({"app_name": "app", "namespace": "ns", "deployment_id": "id-1"})
        );
        assert_eq!(record["level"], "ERROR");
        assert_eq!(record["message"], "Failed to deploy");
        assert_eq!(record["throwable"], "Conflict");
    }

    #[test]
    fn records_from_the_log_facade_keep_their_origin() {
        // What tracing-log's bridge emits for a `log::warn!` in rustls.
        let records = json_records(|| {
            tracing::event!(
                target: "log",
                Level::WARN,
                log.target = "rustls::client",
                log.module_path = "rustls::client",
                log.file = "src/client/hs.rs",
                log.line = 42u32,
                "Sending warning alert"
            )
        });
        let record = &records[0];
        assert_eq!(record["logger"], "rustls::client");
        assert_eq!(record["message"], "Sending warning alert");
        assert_eq!(record["level"], "WARNING");
        assert_eq!(
            record["LocationInfo"],
            json!({"method": "", "file": "hs.rs", "line": 42, "module": "hs"})
        );
        assert_eq!(record["pathname"], "src/client/hs.rs");
    }

    #[test]
    fn innermost_extras_win_and_late_records_count() {
        let records = json_records(|| {
            let _outer = deploy_span("outer", "ns", "1").entered();
            let watch = tracing::info_span!(
                "watch",
                app_name = "inner",
                namespace = "ns2",
                deployment_id = tracing::field::Empty
            );
            let _watch = watch.clone().entered();
            tracing::info!("before");
            watch.record("deployment_id", "2");
            tracing::info!("after");
        });
        assert_eq!(
            records[0]["extras"],
            json!({"app_name": "inner", "namespace": "ns2", "deployment_id": ""})
        );
        assert_eq!(
            records[1]["extras"],
            json!({"app_name": "inner", "namespace": "ns2", "deployment_id": "2"})
        );
    }

    #[test]
    fn status_line_format() {
        let at: Timestamp = "2024-01-31T12:34:56.789999Z".parse().unwrap();
        assert_eq!(
            status_line_at(
                at,
                Level::INFO,
                "Saving result SUCCESS",
                "fiaas_daemon::deployer",
                "tokio-runtime-worker",
                "default",
                "myapp"
            ),
            "[2024-01-31 12:34:56,789|   INFO] Saving result SUCCESS \
             [fiaas_daemon::deployer|tokio-runtime-worker|default/myapp]"
        );
        assert!(
            status_line_at(at, Level::WARN, "m", "l", "t", "n", "a")
                .starts_with("[2024-01-31 12:34:56,789|WARNING] m")
        );
    }

    #[test]
    fn iso_timestamps_follow_python() {
        let at: Timestamp = "2024-01-31T12:34:56.789012345Z".parse().unwrap();
        assert_eq!(iso_timestamp(at), "2024-01-31T12:34:56.789012");
        let whole: Timestamp = "2024-01-31T12:34:56Z".parse().unwrap();
        assert_eq!(iso_timestamp(whole), "2024-01-31T12:34:56");
        assert_eq!(asctime(whole), "2024-01-31 12:34:56,000");
    }

    fn filtered(debug: bool) -> Vec<String> {
        let out = Captured::default();
        let subscriber = Registry::default()
            .with(filter(debug).unwrap())
            .with(StdoutLayer::new(LogFormat::Plain, out.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!(target: "fiaas_daemon::deployer", "ours at debug");
            tracing::info!(target: "fiaas_daemon::deployer", "ours at info");
            tracing::info!(target: "kube_runtime::watcher", "kube at info");
            tracing::warn!(target: "kube_runtime::watcher", "kube at warn");
            tracing::info!(target: "hyper_util::client", "hyper at info");
        });
        out.lines()
            .iter()
            .map(|line| {
                line.split_once("] ")
                    .unwrap()
                    .1
                    .split(" [")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn levels() {
        assert_eq!(filtered(false), ["ours at info", "kube at warn"]);
        assert_eq!(
            filtered(true),
            [
                "ours at debug",
                "ours at info",
                "kube at info",
                "kube at warn",
                "hyper at info"
            ]
        );
    }
}
