//! The daemon's web server: front page, fiaas.yml defaults, the v2 → v3 transform, `/healthz`
//! and the Prometheus metrics, answered as the Python daemon's Flask app answers them (same
//! paths, bodies, content types — doubled `charset` included — and security headers).
//!
//! Differences on purpose: `/healthz` reflects [`Health`], an invalid `POST /transform` body is a
//! 400 with the reason (upstream crashes into a 500), bodies over
//! [`fiaas_spec::MAX_DOCUMENT_BYTES`] are refused with 413, and the metrics are also at
//! `/metrics`.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::health::Health;
use crate::metrics;

/// What the web server reads.
#[derive(Clone)]
pub struct WebState {
    /// Renders the metrics page.
    pub metrics: PrometheusHandle,
    /// Answers `/healthz`.
    pub health: Health,
}

const HTML: &str = "text/html; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";
// Flask appends `; charset=utf-8` to a mimetype that already has one; clients have read the
// doubled parameter for years, so it stays.
const DEFAULTS_YAML: &str = "text/vnd.yaml; charset=utf-8; charset=utf-8";
const TRANSFORMED_YAML: &str = "text/vnd.yaml; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8; charset=utf-8";

/// flask-talisman's headers as upstream configures it (no HSTS, no HTTPS redirect: the daemon
/// is served in-cluster over plain HTTP).
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

/// Bounds on slow clients, so one cannot hold a connection (or the shutdown) open for long.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Without upkeep, histogram samples pile up between scrapes.
const METRICS_UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Pause after an accept error that is not about one connection (e.g. out of file descriptors),
/// so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

const FRONT_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Fiaas Deploy Daemon</title></head>
<body>
<h1>Fiaas Deploy Daemon</h1>
<p>Welcome to the FIAAS deploy daemon.</p>
<ul>
<li><a href="/defaults">The defaults of the fiaas.yml format</a> (version 3; <a href="/defaults/2">version 2</a>)</li>
<li><a href="/internal-backstage/prometheus">The daemon's metrics</a></li>
<li><a href="/transform">Convert a fiaas.yml to the current version</a></li>
</ul>
</body>
</html>
"#;

const TRANSFORM_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Fiaas Deploy Daemon</title></head>
<body>
<h1>Fiaas Deploy Daemon</h1>
<p>Transform fiaas applicaton config.</p>
<p>POST a fiaas.yml of any supported version here to get it back as version 3, without the values that are the defaults:</p>
<pre>curl -H "Content-Type: application/x-yaml" --data-binary @path/to/fiaas.yml -X POST http://&lt;daemon&gt;/transform</pre>
</body>
</html>
"#;

const NOT_FOUND_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>404 Not Found</title></head>
<body>
<h1>Not Found</h1>
<p>There is nothing at this address. The front page, <a href="/">/</a>, lists what there is.</p>
</body>
</html>
"#;

const METHOD_NOT_ALLOWED_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>405 Method Not Allowed</title></head>
<body>
<h1>Method Not Allowed</h1>
<p>This address does not answer that method; the Allow header lists the ones it answers.</p>
</body>
</html>
"#;

const INTERNAL_ERROR_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>500 Internal Server Error</title></head>
<body>
<h1>Internal Server Error</h1>
<p>The daemon failed to answer this request.</p>
</body>
</html>
"#;

/// A page the server answers, named as in the `page` label of `web_request_latency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Page {
    Frontpage,
    Metrics,
    Defaults,
    /// `/defaults/<int>`, with the defaults of that version if fiaas has it.
    DefaultsVersioned(Option<&'static str>),
    Transform,
    Healthz,
}

impl Page {
    fn label(self) -> &'static str {
        match self {
            Page::Frontpage => "frontpage",
            Page::Metrics => "metrics",
            Page::Defaults => "defaults",
            Page::DefaultsVersioned(_) => "defaults_versioned",
            Page::Transform => "transform",
            Page::Healthz => "healthz",
        }
    }

    fn allowed_methods(self) -> &'static str {
        match self {
            Page::Transform => "GET, HEAD, OPTIONS, POST",
            _ => "GET, HEAD, OPTIONS",
        }
    }
}

fn route(path: &str) -> Option<Page> {
    match path {
        "/" => Some(Page::Frontpage),
        "/internal-backstage/prometheus" | "/metrics" => Some(Page::Metrics),
        "/defaults" => Some(Page::Defaults),
        "/transform" => Some(Page::Transform),
        "/healthz" => Some(Page::Healthz),
        _ => {
            // Flask's `<int:version>`: any run of digits matches the route, so an unknown version
            // is a 404 from the page itself (and timed), not a routing miss.
            let version = path.strip_prefix("/defaults/")?;
            if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let defaults = match version.trim_start_matches('0') {
                "2" => Some(fiaas_spec::V2_DEFAULTS_YAML),
                "3" => Some(fiaas_spec::V3_DEFAULTS_YAML),
                _ => None,
            };
            Some(Page::DefaultsVersioned(defaults))
        }
    }
}

/// Serve until `shutdown` resolves (stop accepting, finish in-flight requests).
///
/// Errors accepting a connection are logged, not returned: the server outlives them.
pub async fn serve(
    listener: TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Every connection (and the upkeep task) holds a receiver; the sender's `closed()` is then
    // "all of them have finished".
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_metrics_upkeep(state.metrics.clone(), stop_rx.clone());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => spawn_connection(stream, state.clone(), stop_rx.clone()),
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(%error, "web connection lost while being accepted");
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot accept web connections");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
            },
        }
    }
    drop(listener);
    drop(stop_rx);
    stop_tx.send_replace(true);
    stop_tx.closed().await;
    Ok(())
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

fn spawn_metrics_upkeep(handle: PrometheusHandle, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                () = tokio::time::sleep(METRICS_UPKEEP_INTERVAL) => handle.run_upkeep(),
            }
        }
    });
}

fn spawn_connection(stream: TcpStream, state: WebState, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let service = service_fn(move |request| handle(state.clone(), request));
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            _ = stop.changed() => {
                // Answers the request in flight, if any, then closes.
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "web connection ended with an error");
        }
    });
}

async fn handle(
    state: WebState,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(answer(respond(&state, request)).await)
}

/// Count the request, answer it with `respond`, add the security headers.
async fn answer(respond: impl Future<Output = Response<Full<Bytes>>>) -> Response<Full<Bytes>> {
    metrics::web_request_started();
    // A panic would otherwise drop the connection unanswered; Flask answers 500 and counts it.
    let mut response = match AssertUnwindSafe(respond).catch_unwind().await {
        Ok(response) => response,
        Err(_) => {
            metrics::web_request_exception();
            tracing::error!("a web request handler panicked");
            html(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR_PAGE)
        }
    };
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    metrics::web_request_finished();
    response
}

async fn respond(state: &WebState, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(target) = route(request.uri().path()) else {
        return html(StatusCode::NOT_FOUND, NOT_FOUND_PAGE);
    };
    match *request.method() {
        // hyper leaves the body out of a HEAD answer and keeps its Content-Length.
        Method::GET | Method::HEAD => {
            let _timer = Timer::start(target);
            get(state, target)
        }
        Method::POST if target == Page::Transform => {
            let _timer = Timer::start(target);
            transform(request).await
        }
        Method::OPTIONS => allow(html(StatusCode::OK, ""), target),
        _ => allow(
            html(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED_PAGE),
            target,
        ),
    }
}

/// Records the page's latency when dropped, so a panicking page is timed too.
struct Timer {
    page: Page,
    started: Instant,
}

impl Timer {
    fn start(page: Page) -> Self {
        Timer {
            page,
            started: Instant::now(),
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        metrics::web_request(self.page.label(), self.started.elapsed().as_secs_f64());
    }
}

fn get(state: &WebState, requested: Page) -> Response<Full<Bytes>> {
    match requested {
        Page::Frontpage => html(StatusCode::OK, FRONT_PAGE),
        Page::Metrics => page(
            StatusCode::OK,
            PROMETHEUS_TEXT,
            metrics::render(&state.metrics),
        ),
        Page::Defaults => page(StatusCode::OK, DEFAULTS_YAML, fiaas_spec::V3_DEFAULTS_YAML),
        Page::DefaultsVersioned(Some(defaults)) => page(StatusCode::OK, DEFAULTS_YAML, defaults),
        Page::DefaultsVersioned(None) => html(StatusCode::NOT_FOUND, NOT_FOUND_PAGE),
        Page::Transform => html(StatusCode::OK, TRANSFORM_PAGE),
        Page::Healthz => match state.health.check() {
            Ok(()) => html(StatusCode::OK, "OK"),
            Err(problems) => {
                // The body stays upstream's fixed sentence; the reasons go to the log.
                tracing::warn!(problems = ?problems, "health check failed");
                html(StatusCode::INTERNAL_SERVER_ERROR, "I don't feel so good...")
            }
        },
    }
}

/// `POST /transform`: a fiaas.yml of any supported version, answered as v3 without its defaults,
/// keys sorted as upstream's `pyaml.dump` sorts them.
async fn transform(request: Request<Incoming>) -> Response<Full<Bytes>> {
    let limit = fiaas_spec::MAX_DOCUMENT_BYTES;
    let too_large = || {
        page(
            StatusCode::PAYLOAD_TOO_LARGE,
            TEXT,
            format!("fiaas.yml is limited to {limit} bytes\n"),
        )
    };
    let declared_length = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > limit as u64) {
        return too_large();
    }
    let read = Limited::new(request.into_body(), limit).collect();
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large();
        }
        Ok(Err(error)) => {
            return page(
                StatusCode::BAD_REQUEST,
                TEXT,
                format!("cannot read the request body: {error}\n"),
            );
        }
        Err(_) => {
            return page(
                StatusCode::REQUEST_TIMEOUT,
                TEXT,
                "the request body took too long to arrive\n",
            );
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return page(
            StatusCode::BAD_REQUEST,
            TEXT,
            "fiaas.yml must be UTF-8 text\n",
        );
    };
    // PyYAML skips a byte-order mark; editors on some platforms write one.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let converted =
        fiaas_spec::parse_document(text).and_then(|document| fiaas_spec::to_v3(&document, true));
    match converted {
        Ok(mut converted) => {
            converted.sort_all_objects();
            page(
                StatusCode::OK,
                TRANSFORMED_YAML,
                fiaas_spec::to_yaml(&converted),
            )
        }
        Err(error) => page(StatusCode::BAD_REQUEST, TEXT, format!("{error}\n")),
    }
}

fn page(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn html(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    page(status, HTML, body)
}

fn allow(mut response: Response<Full<Bytes>>, target: Page) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(target.allowed_methods()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_like_flask() {
        assert_eq!(route("/"), Some(Page::Frontpage));
        assert_eq!(route("/metrics"), Some(Page::Metrics));
        assert_eq!(
            route("/defaults/2"),
            Some(Page::DefaultsVersioned(Some(fiaas_spec::V2_DEFAULTS_YAML)))
        );
        assert_eq!(
            route("/defaults/03"),
            Some(Page::DefaultsVersioned(Some(fiaas_spec::V3_DEFAULTS_YAML)))
        );
        assert_eq!(route("/defaults/1"), Some(Page::DefaultsVersioned(None)));
        assert_eq!(
            route("/defaults/99999999999999999999999"),
            Some(Page::DefaultsVersioned(None))
        );
        for unknown in [
            "/defaults/",
            "/defaults/x",
            "/defaults/-2",
            "/transform/",
            "/healthz/x",
            "",
        ] {
            assert_eq!(route(unknown), None, "{unknown}");
        }
    }

    #[tokio::test]
    async fn a_panicking_page_is_answered_500_with_the_security_headers() {
        let response = answer(async { panic!("deliberately") }).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(response.headers()[name], value);
        }
    }
}
