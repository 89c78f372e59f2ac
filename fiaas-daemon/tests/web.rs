//! The web server over real HTTP: every route, its headers and content types, the transform, the
//! health page, the metrics page and a graceful shutdown.

use std::collections::BTreeMap;
use std::time::Duration;

use fiaas_daemon::health::Health;
use fiaas_daemon::web::{WebState, serve};
use std::io::{Read, Write};
use std::net::TcpStream;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'self'; style-src 'self' finncdn.no *.finncdn.no; script-src 'none'; object-src 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("permissions-policy", "browsing-topics=()"),
];

const DEFAULTS_YAML: &str = "text/vnd.yaml; charset=utf-8; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

struct Server {
    address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(health: Health) -> Server {
        let metrics = fiaas_daemon::metrics::install("1.2.3-test").expect("metrics install");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let state = WebState { metrics, health };
        let served = tokio::spawn(serve(listener, state, async {
            let _ = stopped.await;
        }));
        Server {
            address,
            stop: Some(stop),
            served,
        }
    }

    async fn request(&self, method: &str, path: &str, body: Option<&[u8]>) -> Answer {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        if let Some(body) = body {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body.unwrap_or_default());
        let address = self.address;
        blocking(move || {
            let mut stream = connect(address);
            stream.write_all(&raw).unwrap();
            read_answer(stream)
        })
        .await
    }

    async fn get(&self, path: &str) -> Answer {
        self.request("GET", path, None).await
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).unwrap();
        }
        tokio::time::timeout(Duration::from_secs(10), self.served)
            .await
            .expect("serve ends after shutdown")
            .unwrap()
            .unwrap();
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn assert_secure(&self) {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(self.header(name), value, "{name} in {self:?}");
        }
        assert!(!self.headers.contains_key("strict-transport-security"));
    }
}

/// Blocking socket work, off the runtime's threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work).await.unwrap()
}

fn connect(address: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

fn read_answer(mut stream: TcpStream) -> Answer {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("answer within 10 s");
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn yaml(text: &str) -> serde_json::Value {
    fiaas_spec::parse_document(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_answer_as_upstream() {
    let server = Server::start(Health::default()).await;

    let front = server.get("/").await;
    assert_eq!(front.status, 200);
    assert_eq!(front.header("content-type"), HTML);
    assert!(
        front
            .body
            .contains("<p>Welcome to the FIAAS deploy daemon.</p>")
    );
    for link in ["/defaults", "/internal-backstage/prometheus", "/transform"] {
        assert!(front.body.contains(&format!("href=\"{link}\"")), "{link}");
    }
    front.assert_secure();

    let defaults = server.get("/defaults").await;
    assert_eq!(defaults.status, 200);
    assert_eq!(defaults.header("content-type"), DEFAULTS_YAML);
    assert_eq!(defaults.body, fiaas_spec::V3_DEFAULTS_YAML);
    defaults.assert_secure();
    for (version, text) in [
        ("2", fiaas_spec::V2_DEFAULTS_YAML),
        ("3", fiaas_spec::V3_DEFAULTS_YAML),
    ] {
        let answer = server.get(&format!("/defaults/{version}")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), DEFAULTS_YAML);
        assert_eq!(answer.body, text);
    }
    for missing in ["/defaults/1", "/defaults/4", "/defaults/x", "/defaults/"] {
        let answer = server.get(missing).await;
        assert_eq!(answer.status, 404, "{missing}");
        assert_eq!(answer.header("content-type"), HTML);
        answer.assert_secure();
    }

    let help = server.get("/transform").await;
    assert_eq!(help.status, 200);
    assert_eq!(help.header("content-type"), HTML);
    assert!(
        help.body
            .contains("<p>Transform fiaas applicaton config.</p>")
    );
    assert!(help.body.contains("curl "));

    let healthy = server.get("/healthz").await;
    assert_eq!((healthy.status, healthy.body.as_str()), (200, "OK"));
    assert_eq!(healthy.header("content-type"), HTML);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_page_lists_the_upstream_families() {
    let server = Server::start(Health::default()).await;
    server.get("/healthz").await;
    for path in ["/internal-backstage/prometheus", "/metrics"] {
        let answer = server.get(path).await;
        assert_eq!(answer.status, 200);
        assert_eq!(
            answer.header("content-type"),
            "text/plain; version=0.0.4; charset=utf-8; charset=utf-8"
        );
        answer.assert_secure();
        let text = &answer.body;
        assert!(
            text.contains(r#"fiaas_fdd_version_info{fiaas_fdd_version="1.2.3-test"} 1"#),
            "{text}"
        );
        for name in [
            "web_request_started_total",
            "web_request_finished_total",
            "web_request_exception_total",
            "fiaas_usage_reporting_success_total",
            "fiaas_usage_reporting_retry_total",
            "fiaas_usage_reporting_failure_total",
        ] {
            assert!(
                text.lines()
                    .any(|line| line.split(' ').next() == Some(name)),
                "{name} sample\n{text}"
            );
        }
        // The process collectors of the Python client library, which dashboards use.
        for (name, kind) in [
            ("process_cpu_seconds_total", "counter"),
            ("process_resident_memory_bytes", "gauge"),
            ("process_virtual_memory_bytes", "gauge"),
            ("process_open_fds", "gauge"),
            ("process_max_fds", "gauge"),
            ("process_start_time_seconds", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}")),
                "{name}\n{text}"
            );
            let value: f64 = text
                .lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("a {name} sample\n{text}"))
                .parse()
                .unwrap();
            if name != "process_cpu_seconds_total" {
                assert!(value > 0.0, "{name} {value}");
            }
        }
        for page in [
            "frontpage",
            "metrics",
            "defaults",
            "defaults_versioned",
            "transform",
            "healthz",
        ] {
            assert!(
                text.contains(&format!(
                    r#"web_request_latency_bucket{{page="{page}",le="+Inf"}}"#
                )),
                "{page}\n{text}"
            );
        }
        for family in [
            "fiaas_yml_version_total counter",
            "deployer_requests gauge",
            "deployer_errors_total counter",
            "deployer_success_total counter",
            "deployer_time_to_deploy histogram",
            "fiaas_upsert_conflict_retry_total counter",
            "fiaas_upsert_conflict_failure_total counter",
            "fiaas_usage_reporting_latency histogram",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family}\n")),
                "{family}\n{text}"
            );
        }
        let healthz_count = text
            .lines()
            .find_map(|line| line.strip_prefix(r#"web_request_latency_count{page="healthz"} "#))
            .expect("healthz latency count");
        assert_ne!(healthz_count, "0", "the /healthz request is timed");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflects_the_registered_parts() {
    let health = Health::default();
    let deployer = health.register("deployer", Duration::from_secs(60));
    let server = Server::start(health).await;
    assert_eq!(server.get("/healthz").await.status, 200);
    deployer.stop("gone");
    let sick = server.get("/healthz").await;
    assert_eq!(sick.status, 500);
    assert_eq!(sick.body, "I don't feel so good...");
    assert_eq!(sick.header("content-type"), HTML);
    sick.assert_secure();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_are_checked_per_route() {
    let server = Server::start(Health::default()).await;

    let missing = server.request("POST", "/nowhere", Some(b"x")).await;
    assert_eq!(missing.status, 404);
    missing.assert_secure();

    let wrong = server.request("POST", "/", Some(b"x")).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), "GET, HEAD, OPTIONS");
    assert_eq!(wrong.header("content-type"), HTML);
    wrong.assert_secure();

    let wrong = server.request("DELETE", "/transform", None).await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), "GET, HEAD, OPTIONS, POST");

    let options = server.request("OPTIONS", "/transform", None).await;
    assert_eq!(options.status, 200);
    assert_eq!(options.header("allow"), "GET, HEAD, OPTIONS, POST");
    assert_eq!(options.body, "");
    options.assert_secure();

    let head = server.request("HEAD", "/defaults", None).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), DEFAULTS_YAML);
    assert_eq!(
        head.header("content-length"),
        fiaas_spec::V3_DEFAULTS_YAML.len().to_string()
    );
    assert_eq!(head.body, "");
    head.assert_secure();

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_returns_the_stripped_v3_document() {
    let server = Server::start(Health::default()).await;

    let answer = server
        .request("POST", "/transform", Some(b"version: 2\n"))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.header("content-type"),
        "text/vnd.yaml; charset=utf-8"
    );
    answer.assert_secure();
    let expected = yaml(
        "version: 3\n\
         replicas: {maximum: 2}\n\
         metrics: {prometheus: {path: /internal-backstage/prometheus}}\n\
         ports: [{target_port: 80}]\n\
         healthchecks: {liveness: {http: {path: /}}, readiness: {http: {path: /}}}\n",
    );
    assert_eq!(yaml(&answer.body), expected);
    let top_level: Vec<&str> = answer
        .body
        .lines()
        .filter(|line| !line.starts_with(' ') && !line.starts_with('-'))
        .filter_map(|line| line.split(':').next())
        .collect();
    assert_eq!(
        top_level,
        ["healthchecks", "metrics", "ports", "replicas", "version"],
        "keys sorted\n{}",
        answer.body
    );

    let v3 = "version: 3\nreplicas:\n  minimum: 1\n  maximum: 1\nadmin_access: true\n";
    let echoed = server
        .request("POST", "/transform", Some(v3.as_bytes()))
        .await;
    assert_eq!(echoed.status, 200);
    assert_eq!(yaml(&echoed.body), yaml(v3));
    assert!(echoed.body.starts_with("admin_access:"), "{}", echoed.body);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_or_oversized_transform_bodies_are_refused() {
    let server = Server::start(Health::default()).await;

    for (body, reason) in [
        (&b"version: 1\n"[..], "supported versions"),
        (b"", "empty document"),
        (b"- a list\n", "a list"),
        (b"version: [\n", "not valid YAML"),
        (b"\xff\xfe", "UTF-8"),
    ] {
        let answer = server.request("POST", "/transform", Some(body)).await;
        assert_eq!(answer.status, 400, "{answer:?}");
        assert_eq!(answer.header("content-type"), "text/plain; charset=utf-8");
        assert!(answer.body.contains(reason), "{reason}: {answer:?}");
        answer.assert_secure();
    }

    // Declared too large: refused before the body is read.
    let address = server.address;
    let answer = blocking(move || {
        let mut stream = connect(address);
        let head = format!(
            "POST /transform HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            fiaas_spec::MAX_DOCUMENT_BYTES + 1
        );
        stream.write_all(head.as_bytes()).unwrap();
        read_answer(stream)
    })
    .await;
    assert_eq!(answer.status, 413);
    answer.assert_secure();

    // Chunked, with no declared length: refused once the limit is crossed.
    let answer = blocking(move || {
        let mut stream = connect(address);
        let head = "POST /transform HTTP/1.1\r\nHost: test\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
        stream.write_all(head.as_bytes()).unwrap();
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "#".repeat(64 * 1024));
        for _ in 0..=(fiaas_spec::MAX_DOCUMENT_BYTES / (64 * 1024)) {
            if stream.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        read_answer(stream)
    })
    .await;
    assert_eq!(answer.status, 413);

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_request_in_flight() {
    let server = Server::start(Health::default()).await;
    let body = b"version: 2\n";

    // A request whose body is still arriving when the shutdown begins.
    let mut stream = connect(server.address);
    let head = format!(
        "POST /transform HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\nversion",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // An idle keep-alive connection, which must not hold the shutdown up.
    let mut idle = connect(server.address);
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let idle = blocking(move || {
        let mut first = [0u8; 12];
        idle.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        idle
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let address = server.address;
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!stopping.is_finished(), "waits for the request in flight");
    assert!(
        TcpStream::connect(address).is_err(),
        "no new connections once stopping"
    );

    stream.write_all(&body[b"version".len()..]).unwrap();
    let answer = blocking(move || read_answer(stream)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), "close");
    assert!(answer.body.contains("version: 3"), "{answer:?}");
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("serve ends once the request is answered")
        .unwrap();
    drop(idle);
}
