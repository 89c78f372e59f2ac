//! The extension hook (`--extension-hook-url`, inventory e.6): an external service that may rewrite
//! each Kubernetes object before fiaas applies it.
//!
//! For every object, fiaas POSTs `{"object": <object>, "application": <app config>}` to
//! `<hook URL joined with "fiaas/deploy/"><Kind>`. A 200 answer replaces the object, a 404 (or any
//! other answer below 400) leaves it alone, and anything from 400 up fails the deploy.
//!
//! As upstream, the URL is joined the way Python's `urljoin` does (RFC 3986): a hook URL whose
//! path does not end in `/` loses its last segment, so `http://hook/api` calls
//! `http://hook/fiaas/deploy/<Kind>` while `http://hook/api/` calls
//! `http://hook/api/fiaas/deploy/<Kind>`. Credentials in the hook URL are sent as basic auth,
//! and `--proxy` is used as upstream's `requests` session uses it: plain http is forwarded
//! through the proxy, https is tunnelled with `CONNECT`. Proxy environment variables are not
//! consulted.
//!
//! Connection failures are retried as upstream's `Retry(total=5, connect=5, backoff_factor=0.1)`
//! did (5 retries, waiting 0, 0.2, 0.4, 0.8 and 1.6 s), for every hook URL (upstream only retried
//! under the literal hook URL, which a base with a path but no trailing `/` never matched). Unlike
//! upstream, which could wait forever and stall every deploy behind it, each attempt is bounded in
//! time, and redirects are not followed (they count as "leave the object alone").

use std::error::Error as StdError;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use fiaas_transform::ClusterConfig;
use http_body_util::{BodyExt as _, Empty, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue, PROXY_AUTHORIZATION};
use hyper::http::uri::Scheme;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tower_service::Service;

type BoxError = Box<dyn StdError + Send + Sync>;

/// How long one attempt (connect, request and response body) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Shorter than [`REQUEST_TIMEOUT`] so that an unreachable hook fails as a (retried) connection
/// failure rather than as a timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_RETRIES: u32 = 5;
const BACKOFF_FACTOR: Duration = Duration::from_millis(100);
/// The largest answer read from the hook: 3 MiB, the API server's own limit for a request body.
const MAX_ANSWER_BYTES: usize = 3 * 1024 * 1024;

/// Why the hook could not be set up, or why a call failed (which fails the deploy).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `--extension-hook-url` is not an absolute http(s) URL.
    #[error("invalid --extension-hook-url: {0}")]
    InvalidUrl(String),
    /// `--proxy` is not an http proxy URL.
    #[error("invalid --proxy: {0}")]
    InvalidProxy(String),
    /// An https hook URL, but no CA certificates to check its certificate with.
    #[error("cannot call an https extension hook: {0}")]
    Certificates(#[source] io::Error),
    /// The call did not get an answer (after the retries, for connection failures).
    #[error("calling the extension hook for {kind} at {url} failed: {cause}")]
    Request {
        /// The object kind the hook was called for.
        kind: String,
        /// The URL called.
        url: String,
        /// The error and its causes.
        cause: String,
    },
    /// An attempt took longer than the request timeout.
    #[error("the extension hook for {kind} at {url} did not answer within {timeout:?}")]
    Timeout {
        /// The object kind the hook was called for.
        kind: String,
        /// The URL called.
        url: String,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The hook answered with a status from 400 up (other than 404).
    #[error("the extension hook for {kind} at {url} answered {status}")]
    Status {
        /// The object kind the hook was called for.
        kind: String,
        /// The URL called.
        url: String,
        /// The status it answered with.
        status: StatusCode,
    },
    /// The hook answered 200 with something other than a JSON object.
    #[error("the extension hook for {kind} at {url} answered 200 without a JSON object: {cause}")]
    InvalidResponse {
        /// The object kind the hook was called for.
        kind: String,
        /// The URL called.
        url: String,
        /// What was wrong with the answer.
        cause: String,
    },
}

/// A configured extension hook; cheap to clone (clones share the connection pool).
#[derive(Clone, Debug)]
pub struct ExtensionHook {
    /// The hook URL joined with `fiaas/deploy/`, without credentials; the kind is appended.
    base: String,
    /// Basic auth from credentials in the hook URL.
    authorization: Option<HeaderValue>,
    /// Sent with each request when plain http requests are forwarded through the proxy.
    proxy_authorization: Option<HeaderValue>,
    transport: Transport,
    policy: Policy,
}

#[derive(Clone, Copy, Debug)]
struct Policy {
    timeout: Duration,
    connect_timeout: Duration,
    retries: u32,
    backoff_factor: Duration,
}

impl Policy {
    const DEFAULT: Policy = Policy {
        timeout: REQUEST_TIMEOUT,
        connect_timeout: CONNECT_TIMEOUT,
        retries: CONNECT_RETRIES,
        backoff_factor: BACKOFF_FACTOR,
    };

    /// urllib3's `Retry.get_backoff_time()`: nothing before the first retry, then the factor
    /// doubled each time.
    fn backoff(&self, retry: u32) -> Duration {
        if retry <= 1 {
            Duration::ZERO
        } else {
            self.backoff_factor * 2u32.saturating_pow(retry - 1)
        }
    }
}

/// The joined URL keeps the hook URL's scheme, so one kind of client serves every call.
#[derive(Clone, Debug)]
enum Transport {
    Http(Client<HookConnector, Full<Bytes>>),
    Https(Client<HttpsConnector<HookConnector>, Full<Bytes>>),
}

#[derive(Serialize)]
struct Payload<'a> {
    object: &'a Value,
    application: &'a Value,
}

impl ExtensionHook {
    /// The hook configured by `--extension-hook-url` (using `--proxy`, if set); `None` unless
    /// the URL is set.
    pub fn from_config(config: &ClusterConfig) -> Result<Option<ExtensionHook>, HookError> {
        config
            .extension_hook_url
            .as_deref()
            .map(|url| ExtensionHook::new(url, config.proxy.as_deref(), Policy::DEFAULT))
            .transpose()
    }

    fn new(hook_url: &str, proxy: Option<&str>, policy: Policy) -> Result<Self, HookError> {
        let HookBase {
            base,
            https,
            authorization,
        } = hook_base(hook_url)?;

        // `requests` ignores an empty proxy setting.
        let proxy = proxy
            .filter(|p| !p.is_empty())
            .map(parse_proxy)
            .transpose()?;
        let proxy_authorization = match &proxy {
            Some(proxy) if !https => proxy.authorization.clone(),
            _ => None,
        };

        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(policy.connect_timeout));
        // The connector also opens the TCP connections that TLS runs over.
        http.enforce_http(false);
        let connector = HookConnector { http, proxy };
        let builder = Client::builder(TokioExecutor::new());
        let transport = if https {
            let connector = HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(HookError::Certificates)?
                .https_only()
                .enable_http1()
                .wrap_connector(connector);
            Transport::Https(builder.build(connector))
        } else {
            Transport::Http(builder.build(connector))
        };
        Ok(ExtensionHook {
            base,
            authorization,
            proxy_authorization,
            transport,
            policy,
        })
    }

    /// Calls the hook for one object of kind `kind` (e.g. `Deployment`) with the application's
    /// config. `Some(object)` is the hook's replacement for the object (a 200 answer), `None`
    /// means keep it (404, or any other answer below 400); answers from 400 up are errors.
    pub async fn call(
        &self,
        kind: &str,
        object: &Value,
        app_config: &Value,
    ) -> Result<Option<Value>, HookError> {
        let url = format!("{}{kind}", self.base);
        let request_error = |cause: String| HookError::Request {
            kind: kind.to_owned(),
            url: url.clone(),
            cause,
        };
        let uri: Uri = url.parse().map_err(|e| request_error(format!("{e}")))?;
        let payload = Payload {
            object,
            application: app_config,
        };
        let body =
            Bytes::from(serde_json::to_vec(&payload).map_err(|e| request_error(format!("{e}")))?);

        let (status, answer) = self
            .post_with_retries(kind, &url, &uri, body.clone())
            .await?;
        tracing::debug!(
            kind,
            url,
            request = %String::from_utf8_lossy(&body),
            status = status.as_u16(),
            response = %String::from_utf8_lossy(&answer),
            "Extension hook called"
        );
        match status {
            StatusCode::OK => match serde_json::from_slice(&answer) {
                Ok(object @ Value::Object(_)) => Ok(Some(object)),
                Ok(other) => Err(HookError::InvalidResponse {
                    kind: kind.to_owned(),
                    url,
                    cause: format!("got {other}"),
                }),
                Err(e) => Err(HookError::InvalidResponse {
                    kind: kind.to_owned(),
                    url,
                    cause: e.to_string(),
                }),
            },
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_client_error() || status.is_server_error() => {
                Err(HookError::Status {
                    kind: kind.to_owned(),
                    url,
                    status,
                })
            }
            _ => Ok(None),
        }
    }

    async fn post_with_retries(
        &self,
        kind: &str,
        url: &str,
        uri: &Uri,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), HookError> {
        let mut retry = 0;
        loop {
            let attempt = tokio::time::timeout(self.policy.timeout, self.post(uri, body.clone()));
            let error = match attempt.await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(error)) => error,
                Err(_elapsed) => {
                    return Err(HookError::Timeout {
                        kind: kind.to_owned(),
                        url: url.to_owned(),
                        timeout: self.policy.timeout,
                    });
                }
            };
            // Only failures to connect are safe to retry: the hook never saw the request.
            let connect_failed = matches!(&error, AttemptError::Send(e) if e.is_connect());
            let cause = error_chain(&error);
            if !connect_failed || retry >= self.policy.retries {
                return Err(HookError::Request {
                    kind: kind.to_owned(),
                    url: url.to_owned(),
                    cause,
                });
            }
            retry += 1;
            tracing::debug!(kind, url, retry, error = %cause, "Connecting to the extension hook failed, retrying");
            tokio::time::sleep(self.policy.backoff(retry)).await;
        }
    }

    async fn post(&self, uri: &Uri, body: Bytes) -> Result<(StatusCode, Bytes), AttemptError> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        if let Some(authorization) = &self.proxy_authorization {
            headers.insert(PROXY_AUTHORIZATION, authorization.clone());
        }
        let response = match &self.transport {
            Transport::Http(client) => client.request(request).await,
            Transport::Https(client) => client.request(request).await,
        }
        .map_err(AttemptError::Send)?;
        let status = response.status();
        // An answer is one Kubernetes object: bounded like the objects the API server accepts,
        // so a misbehaving hook cannot make the daemon buffer without limit.
        let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| AttemptError::Body(e.to_string()))?
            .to_bytes();
        Ok((status, answer))
    }
}

/// The hook as the applier calls it, for each object of a deploy.
impl fiaas_k8s::ObjectHook for ExtensionHook {
    fn call<'a>(
        &'a self,
        kind: &'a str,
        object: &'a Value,
        app_config: &'a Value,
    ) -> futures::future::BoxFuture<'a, Result<Option<Value>, String>> {
        Box::pin(async move {
            ExtensionHook::call(self, kind, object, app_config)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error(transparent)]
    Send(hyper_util::client::legacy::Error),
    #[error("reading the answer failed: {0}")]
    Body(String),
}

/// An error with all its causes, since hyper's own messages ("client error (Connect)") say
/// little without them.
fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Where the hook's calls go.
struct HookBase {
    /// The hook URL joined with `fiaas/deploy/`, without credentials.
    base: String,
    https: bool,
    /// Basic auth from credentials in the hook URL.
    authorization: Option<HeaderValue>,
}

fn hook_base(hook_url: &str) -> Result<HookBase, HookError> {
    let url = split_url(hook_url).map_err(|e| HookError::InvalidUrl(e.to_owned()))?;
    let https = match url.scheme.as_str() {
        "http" => false,
        "https" => true,
        _ => {
            return Err(HookError::InvalidUrl(
                "not an http:// or https:// URL".to_owned(),
            ));
        }
    };
    let base = format!(
        "{}://{}{}",
        url.scheme,
        url.host_port,
        join_path(url.path, "fiaas/deploy/")
    );
    // Checked now so that a bad URL stops the daemon at startup, not every deploy.
    base.parse::<Uri>()
        .map_err(|e| HookError::InvalidUrl(e.to_string()))?;
    Ok(HookBase {
        base,
        https,
        authorization: url.userinfo.and_then(basic_auth),
    })
}

/// The parts of an absolute URL the hook needs.
struct UrlParts<'a> {
    scheme: String,
    userinfo: Option<&'a str>,
    host_port: &'a str,
    path: &'a str,
}

fn split_url(url: &str) -> Result<UrlParts<'_>, &'static str> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
        .ok_or("not an absolute URL")?;
    let (authority, rest) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    if host_port.is_empty() {
        return Err("no host in the URL");
    }
    Ok(UrlParts {
        scheme: scheme.to_ascii_lowercase(),
        userinfo,
        host_port,
        path,
    })
}

/// The path of Python's `urljoin(base, reference)` for a relative-path reference: the base's
/// last segment is replaced, empty segments in between are dropped (Python's departure from
/// RFC 3986) and dot segments are resolved.
fn join_path(base_path: &str, reference: &str) -> String {
    let mut segments: Vec<&str> = base_path.split('/').collect();
    if segments.last().is_some_and(|last| !last.is_empty()) {
        segments.pop();
    }
    segments.extend(reference.split('/'));
    let last = segments.len() - 1;
    let mut resolved = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "" if i != 0 && i != last => {}
            "." => {}
            ".." => {
                resolved.pop();
            }
            segment => resolved.push(segment),
        }
    }
    if matches!(segments.last(), Some(&".") | Some(&"..")) {
        resolved.push("");
    }
    let path = resolved.join("/");
    if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    }
}

/// `requests`' `get_auth_from_url`: a user and a password, percent-decoded; a user alone gives
/// no credentials.
fn basic_auth(userinfo: &str) -> Option<HeaderValue> {
    let (user, password) = userinfo.split_once(':')?;
    let mut credentials = percent_decode(user);
    credentials.push(b':');
    credentials.extend(percent_decode(password));
    let mut value = HeaderValue::try_from(format!(
        "Basic {}",
        data_encoding::BASE64.encode(&credentials)
    ))
    .ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(hex) if bytes[i] == b'%' => std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    decoded
}

/// An http proxy from `--proxy`.
#[derive(Clone, Debug)]
struct Proxy {
    /// Where to connect: `http://host:port/`.
    uri: Uri,
    authorization: Option<HeaderValue>,
}

fn parse_proxy(proxy: &str) -> Result<Proxy, HookError> {
    let invalid = |reason: &str| HookError::InvalidProxy(reason.to_owned());
    // `requests` reads a proxy without a scheme as an http one.
    let with_scheme;
    let proxy = if proxy.contains("://") {
        proxy
    } else {
        with_scheme = format!("http://{proxy}");
        &with_scheme
    };
    let parts = split_url(proxy).map_err(invalid)?;
    if parts.scheme != "http" {
        return Err(invalid("only http:// proxies are supported"));
    }
    let uri = format!("http://{}/", parts.host_port)
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
    Ok(Proxy {
        uri,
        authorization: parts.userinfo.and_then(basic_auth),
    })
}

/// Connects to the hook directly or through the proxy.
#[derive(Clone, Debug)]
struct HookConnector {
    http: HttpConnector,
    proxy: Option<Proxy>,
}

impl Service<Uri> for HookConnector {
    type Response = HookIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HookIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let proxy = self.proxy.clone();
        let target = proxy
            .as_ref()
            .map_or_else(|| dst.clone(), |p| p.uri.clone());
        let connecting = self.http.call(target);
        Box::pin(async move {
            let io = connecting.await?;
            Ok(match proxy {
                None => HookIo::Tcp { io, proxied: false },
                Some(proxy) if dst.scheme() == Some(&Scheme::HTTPS) => {
                    HookIo::Tunnel(tunnel(io, &dst, proxy.authorization).await?)
                }
                // Marked proxied, the client sends the full URL in the request line.
                Some(_) => HookIo::Tcp { io, proxied: true },
            })
        })
    }
}

/// Opens an HTTP `CONNECT` tunnel to `dst` through the proxy connection `io`.
async fn tunnel(
    io: TokioIo<TcpStream>,
    dst: &Uri,
    authorization: Option<HeaderValue>,
) -> Result<Upgraded, BoxError> {
    let host = dst.host().ok_or("the hook URL has no host")?;
    let authority = format!("{host}:{}", dst.port_u16().unwrap_or(443));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    // Drives the proxy connection until the tunnel is up; its failures surface in the response.
    tokio::spawn(connection.with_upgrades());
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.method_mut() = Method::CONNECT;
    *request.uri_mut() = authority.parse()?;
    request
        .headers_mut()
        .insert(HOST, HeaderValue::try_from(&authority)?);
    if let Some(authorization) = authorization {
        request
            .headers_mut()
            .insert(PROXY_AUTHORIZATION, authorization);
    }
    let mut response = sender.send_request(request).await?;
    if !response.status().is_success() {
        return Err(format!(
            "the proxy refused a tunnel to {authority}: {}",
            response.status()
        )
        .into());
    }
    Ok(hyper::upgrade::on(&mut response).await?)
}

/// A connection to the hook: a TCP stream (to the hook, or to a forwarding proxy) or a tunnel
/// through the proxy.
enum HookIo {
    Tcp {
        io: TokioIo<TcpStream>,
        proxied: bool,
    },
    Tunnel(Upgraded),
}

impl Connection for HookIo {
    fn connected(&self) -> Connected {
        match self {
            HookIo::Tcp { io, proxied } => io.connected().proxy(*proxied),
            HookIo::Tunnel(_) => Connected::new(),
        }
    }
}

impl Read for HookIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HookIo::Tcp { io, .. } => Pin::new(io).poll_read(cx, buf),
            HookIo::Tunnel(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl Write for HookIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            HookIo::Tcp { io, .. } => Pin::new(io).poll_write(cx, buf),
            HookIo::Tunnel(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HookIo::Tcp { io, .. } => Pin::new(io).poll_flush(cx),
            HookIo::Tunnel(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HookIo::Tcp { io, .. } => Pin::new(io).poll_shutdown(cx),
            HookIo::Tunnel(io) => Pin::new(io).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            HookIo::Tcp { io, .. } => io.is_write_vectored(),
            HookIo::Tunnel(io) => io.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            HookIo::Tcp { io, .. } => Pin::new(io).poll_write_vectored(cx, bufs),
            HookIo::Tunnel(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use hyper::body::Incoming;
    use hyper::header::HeaderMap;
    use hyper::service::service_fn;
    use hyper::{Response, server};
    use serde_json::json;
    use tokio::net::TcpListener;

    use super::*;

    fn base(url: &str) -> String {
        hook_base(url).map(|b| b.base).unwrap()
    }

    #[test]
    fn urls_join_like_python() {
        // Expectations from Python's `posixpath.join(urljoin(url, "fiaas/deploy/"), kind)`.
        for (url, expected) in [
            ("http://hook", "http://hook/fiaas/deploy/"),
            ("http://hook/", "http://hook/fiaas/deploy/"),
            ("http://hook:8080/api", "http://hook:8080/fiaas/deploy/"),
            ("http://hook/api/", "http://hook/api/fiaas/deploy/"),
            ("http://hook/a/b?x=1#f", "http://hook/a/fiaas/deploy/"),
            ("http://hook?q=1", "http://hook/fiaas/deploy/"),
            ("http://hook/a//b/", "http://hook/a/b/fiaas/deploy/"),
            ("http://hook/a/../", "http://hook/fiaas/deploy/"),
            ("http://hook/../", "http://hook/fiaas/deploy/"),
            ("http://hook/a/./b/c", "http://hook/a/b/fiaas/deploy/"),
            ("http://hook/a;p/b;q", "http://hook/a;p/fiaas/deploy/"),
            ("HTTPS://Hook/x/", "https://Hook/x/fiaas/deploy/"),
            // Credentials go into the Authorization header instead.
            ("http://u:p@hook/x", "http://hook/fiaas/deploy/"),
        ] {
            assert_eq!(base(url), expected, "{url}");
        }
    }

    #[test]
    fn bad_hook_urls_are_rejected() {
        for url in [
            "",
            "URL",
            "hook/api",
            "ftp://hook/",
            "http://",
            "http:///x",
            "http://a b/",
        ] {
            assert!(
                matches!(hook_base(url), Err(HookError::InvalidUrl(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn credentials_become_basic_auth() {
        let auth = |url| hook_base(url).unwrap().authorization;
        assert_eq!(
            auth("http://us%40er:p%3Ass@hook/").unwrap(),
            format!("Basic {}", data_encoding::BASE64.encode(b"us@er:p:ss"))
        );
        // `requests` needs a password too.
        assert_eq!(auth("http://user@hook/"), None);
        assert_eq!(auth("http://hook/"), None);
    }

    #[test]
    fn proxies() {
        let proxy = parse_proxy("proxy:3128").unwrap();
        assert_eq!(proxy.uri, "http://proxy:3128/");
        assert!(proxy.authorization.is_none());
        let proxy = parse_proxy("http://u:p@proxy:3128/ignored").unwrap();
        assert_eq!(proxy.uri, "http://proxy:3128/");
        assert_eq!(proxy.authorization.unwrap(), "Basic dTpw");
        for bad in ["https://proxy:3128", "socks5://proxy:1080", "http://"] {
            assert!(
                matches!(parse_proxy(bad), Err(HookError::InvalidProxy(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn backoff_follows_urllib3() {
        let waits: Vec<_> = (1..=5)
            .map(|retry| Policy::DEFAULT.backoff(retry))
            .collect();
        assert_eq!(waits, [0, 200, 400, 800, 1600].map(Duration::from_millis));
    }

    #[tokio::test]
    async fn from_config() {
        let mut config = ClusterConfig::default();
        assert!(ExtensionHook::from_config(&config).unwrap().is_none());
        config.extension_hook_url = Some("http://hook/".to_owned());
        config.proxy = Some(String::new());
        let hook = ExtensionHook::from_config(&config).unwrap().unwrap();
        assert_eq!(hook.base, "http://hook/fiaas/deploy/");
        assert!(hook.proxy_authorization.is_none());
        config.extension_hook_url = Some("hook".to_owned());
        assert!(ExtensionHook::from_config(&config).is_err());
    }

    /// One request as the test server saw it.
    #[derive(Debug)]
    struct Seen {
        method: Method,
        uri: String,
        headers: HeaderMap,
        body: Value,
    }

    type Log = Arc<Mutex<Vec<Seen>>>;

    /// Serves HTTP/1 on `listener`, answering with `respond` and logging every request.
    fn serve(listener: TcpListener, respond: fn(&Seen) -> (StatusCode, String)) -> Log {
        let log = Log::default();
        let server_log = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = server_log.clone();
                let service = service_fn(move |request: Request<Incoming>| {
                    let log = log.clone();
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let seen = Seen {
                            method: parts.method,
                            uri: parts.uri.to_string(),
                            headers: parts.headers,
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        };
                        let (status, answer) = respond(&seen);
                        log.lock().unwrap().push(seen);
                        let mut response = Response::new(Full::new(Bytes::from(answer)));
                        *response.status_mut() = status;
                        Ok::<_, hyper::Error>(response)
                    }
                });
                tokio::spawn(
                    server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        log
    }

    async fn listen() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    fn hook_answers(seen: &Seen) -> (StatusCode, String) {
        match seen.uri.rsplit('/').next().unwrap() {
            "Deployment" => {
                let mut object = seen.body["object"].clone();
                object["metadata"]["labels"]["hooked"] = json!("yes");
                (StatusCode::OK, object.to_string())
            }
            "Service" => (StatusCode::NOT_FOUND, "no hook for this".to_owned()),
            "Ingress" => (StatusCode::INTERNAL_SERVER_ERROR, "broken".to_owned()),
            "PodDisruptionBudget" => (StatusCode::NO_CONTENT, String::new()),
            _ => (StatusCode::OK, "[1]".to_owned()),
        }
    }

    fn object() -> Value {
        json!({"metadata": {"name": "app", "labels": {"app": "app"}}, "spec": {"replicas": 2}})
    }

    fn app_config() -> Value {
        json!({"version": 3, "replicas": {"minimum": 2}})
    }

    #[tokio::test]
    async fn calls_the_hook() {
        let (listener, addr) = listen().await;
        let log = serve(listener, hook_answers);
        let hook =
            ExtensionHook::new(&format!("http://{addr}/ignored"), None, Policy::DEFAULT).unwrap();
        let call = |kind: &'static str| {
            let hook = hook.clone();
            async move { hook.call(kind, &object(), &app_config()).await }
        };

        let mut expected = object();
        expected["metadata"]["labels"]["hooked"] = json!("yes");
        assert_eq!(call("Deployment").await.unwrap(), Some(expected));
        assert_eq!(call("Service").await.unwrap(), None);
        assert_eq!(call("PodDisruptionBudget").await.unwrap(), None);
        match call("Ingress").await {
            Err(error @ HookError::Status { .. }) => assert_eq!(
                error.to_string(),
                format!(
                    "the extension hook for Ingress at http://{addr}/fiaas/deploy/Ingress \
                     answered 500 Internal Server Error"
                )
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            call("HorizontalPodAutoscaler").await,
            Err(HookError::InvalidResponse { .. })
        ));

        let log = log.lock().unwrap();
        assert_eq!(log.len(), 5);
        let first = &log[0];
        assert_eq!(first.method, Method::POST);
        assert_eq!(first.uri, "/fiaas/deploy/Deployment");
        assert_eq!(first.headers[CONTENT_TYPE], "application/json");
        assert_eq!(first.headers[ACCEPT], "application/json");
        assert_eq!(first.headers[HOST], addr.to_string());
        assert!(first.headers.get(AUTHORIZATION).is_none());
        assert_eq!(
            first.body,
            json!({"object": object(), "application": app_config()})
        );
        let keys: Vec<_> = first.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["object", "application"]);
    }

    #[tokio::test]
    async fn an_answer_beyond_the_limit_fails_the_call_instead_of_filling_memory() {
        let (listener, addr) = listen().await;
        serve(listener, |_| {
            (StatusCode::OK, " ".repeat(MAX_ANSWER_BYTES + 1))
        });
        let hook = ExtensionHook::new(&format!("http://{addr}/"), None, Policy::DEFAULT).unwrap();
        match hook.call("Deployment", &object(), &app_config()).await {
            Err(error @ HookError::Request { .. }) => {
                assert!(
                    error.to_string().contains("length limit exceeded"),
                    "{error}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn sends_credentials_from_the_url() {
        let (listener, addr) = listen().await;
        let log = serve(listener, |_| (StatusCode::NOT_FOUND, String::new()));
        let hook =
            ExtensionHook::new(&format!("http://u:p@{addr}/"), None, Policy::DEFAULT).unwrap();
        assert_eq!(
            hook.call("Service", &object(), &app_config())
                .await
                .unwrap(),
            None
        );
        assert_eq!(log.lock().unwrap()[0].headers[AUTHORIZATION], "Basic dTpw");
    }

    #[tokio::test]
    async fn forwards_plain_http_through_the_proxy() {
        let (listener, addr) = listen().await;
        let log = serve(listener, hook_answers);
        // The hook's host does not resolve: only the proxy is ever connected to.
        let hook = ExtensionHook::new(
            "http://hook.invalid/",
            Some(&format!("http://u:p@{addr}")),
            Policy::DEFAULT,
        )
        .unwrap();
        assert_eq!(
            hook.call("Service", &object(), &app_config())
                .await
                .unwrap(),
            None
        );
        let log = log.lock().unwrap();
        assert_eq!(log[0].uri, "http://hook.invalid/fiaas/deploy/Service");
        assert_eq!(log[0].headers[HOST], "hook.invalid");
        assert_eq!(log[0].headers[PROXY_AUTHORIZATION], "Basic dTpw");
    }

    /// A proxy that accepts `CONNECT` (unless asked for credentials it lacks) and then serves
    /// plain HTTP inside the tunnel, answering with the tunnel's target.
    async fn connect_proxy(require_auth: bool) -> SocketAddr {
        let (listener, addr) = listen().await;
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = service_fn(move |mut request: Request<Incoming>| async move {
                    let authorised =
                        !require_auth || request.headers().get(PROXY_AUTHORIZATION).is_some();
                    let mut response = Response::new(Empty::<Bytes>::new());
                    if request.method() != Method::CONNECT || !authorised {
                        *response.status_mut() = StatusCode::PROXY_AUTHENTICATION_REQUIRED;
                        return Ok::<_, hyper::Error>(response);
                    }
                    let target = request.uri().to_string();
                    tokio::spawn(async move {
                        let upgraded = hyper::upgrade::on(&mut request).await.unwrap();
                        let inner = service_fn(move |_: Request<Incoming>| {
                            let answer = format!("tunnelled to {target}");
                            async move {
                                Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(answer))))
                            }
                        });
                        let _ = server::conn::http1::Builder::new()
                            .serve_connection(upgraded, inner)
                            .await;
                    });
                    Ok(response)
                });
                tokio::spawn(
                    server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades(),
                );
            }
        });
        addr
    }

    #[tokio::test]
    async fn tunnels_through_the_proxy() {
        let addr = connect_proxy(false).await;
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let dst: Uri = "https://hook.invalid/fiaas/deploy/Deployment"
            .parse()
            .unwrap();
        let tunnel = tunnel(io, &dst, None).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(tunnel).await.unwrap();
        tokio::spawn(connection);
        let response = sender
            .send_request(Request::new(Empty::<Bytes>::new()))
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "tunnelled to hook.invalid:443");
    }

    #[tokio::test]
    async fn refused_tunnels_fail() {
        let addr = connect_proxy(true).await;
        let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
        let dst: Uri = "https://hook.invalid:8443/".parse().unwrap();
        let error = tunnel(io, &dst, None).await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the proxy refused a tunnel to hook.invalid:8443: 407 Proxy Authentication Required"
        );
    }

    fn quick(retries: u32) -> Policy {
        Policy {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            retries,
            backoff_factor: Duration::from_millis(100),
        }
    }

    #[tokio::test]
    async fn retries_until_the_hook_is_up() {
        let (listener, addr) = listen().await;
        drop(listener);
        tokio::spawn(async move {
            // Retries happen 0, 0.2, 0.6 and 1.4 s after the first attempt.
            tokio::time::sleep(Duration::from_millis(300)).await;
            serve(TcpListener::bind(addr).await.unwrap(), hook_answers);
        });
        let hook = ExtensionHook::new(&format!("http://{addr}/"), None, quick(5)).unwrap();
        assert_eq!(
            hook.call("Service", &object(), &app_config())
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn gives_up_connecting() {
        let (listener, addr) = listen().await;
        drop(listener);
        let hook = ExtensionHook::new(&format!("http://{addr}/"), None, quick(2)).unwrap();
        match hook.call("Service", &object(), &app_config()).await {
            Err(HookError::Request { kind, cause, .. }) => {
                assert_eq!(kind, "Service");
                assert!(cause.contains("onnect"), "{cause}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn does_not_retry_once_connected() {
        let (listener, addr) = listen().await;
        let accepted = Arc::new(Mutex::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                *counter.lock().unwrap() += 1;
                drop(stream);
            }
        });
        let hook = ExtensionHook::new(&format!("http://{addr}/"), None, quick(5)).unwrap();
        let result = hook.call("Service", &object(), &app_config()).await;
        assert!(
            matches!(result, Err(HookError::Request { .. })),
            "{result:?}"
        );
        assert_eq!(*accepted.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn times_out() {
        let (listener, addr) = listen().await;
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let policy = Policy {
            timeout: Duration::from_millis(200),
            ..quick(5)
        };
        let hook = ExtensionHook::new(&format!("http://{addr}/"), None, policy).unwrap();
        let result = hook.call("Deployment", &object(), &app_config()).await;
        assert!(
            matches!(result, Err(HookError::Timeout { .. })),
            "{result:?}"
        );
    }
}
