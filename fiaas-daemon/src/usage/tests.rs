use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ::metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use hmac::Mac as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::devhose::{AuthHeaders, PATH_SAFE, http_date, quote, quote_plus, string_to_sign};
use super::queue::MAX_REMEMBERED_STARTS;
use super::*;

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
        proxy: None,
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
) -> fiaas_config::ClusterConfig {
    let mut config = fiaas_config::ClusterConfig {
        secrets_directory: dir.0.clone(),
        usage_reporting_endpoint: endpoint.map(str::to_owned),
        usage_reporting_tenant: tenant.map(str::to_owned),
        usage_reporting_cluster_name: Some("cluster".to_owned()),
        ..Default::default()
    };
    config.transform.environment = "pro".to_owned();
    config
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
        let err = UsageSettings::from_config(&config(&bad, endpoint, Some("tenant"))).unwrap_err();
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
    let bad_proxy = fiaas_config::ClusterConfig {
        proxy: Some("socks5://proxy:1080".to_owned()),
        ..config(&good, Some("https://devhose.example.com/"), Some("tenant"))
    };
    let err = UsageSettings::from_config(&bad_proxy).unwrap_err();
    assert!(matches!(err, UsageError::Proxy(_)), "{err}");
    for endpoint in [
        "devhose.example.com/usage",
        "ftp://devhose.example.com/",
        "http:///x",
    ] {
        let err =
            UsageSettings::from_config(&config(&good, Some(endpoint), Some("tenant"))).unwrap_err();
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
        let date =
            jiff::civil::DateTime::strptime("%a, %d %b %Y %H:%M:%S -0000", header(attempt, "date"))
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
async fn sends_through_the_proxy() {
    let (proxy_url, received) = devhose(0).await;
    // The devhose stands in for the proxy: plain http is forwarded to it with the full URL.
    let proxy_address = proxy_url.split('/').nth(2).unwrap();
    let good = SecretsDir::new(Some(KEY_B64.as_bytes()));
    let config = fiaas_config::ClusterConfig {
        proxy: Some(format!("http://u:p@{proxy_address}")),
        ..config(&good, Some("http://devhose.invalid/usage"), Some("tenant"))
    };
    let s = UsageSettings::from_config(&config).unwrap().unwrap();
    let (reporter, sender) = UsageReporter::new(s);
    reporter.report(event(UsageStatus::Started, None));
    drop(reporter);
    tokio::time::timeout(Duration::from_secs(20), sender)
        .await
        .unwrap();

    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "http://devhose.invalid/usage");
    assert_eq!(header(&received[0], "host"), "devhose.invalid");
    assert_eq!(header(&received[0], "proxy-authorization"), "Basic dTpw");
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
