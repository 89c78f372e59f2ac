//! The extension hook (`--extension-hook-url`): an external service that may rewrite each
//! Kubernetes object before fiaas applies it.
//!
//! For every object, fiaas POSTs `{"object": <object>, "application": <app config>}` to
//! `<hook URL joined with "fiaas/deploy/"><Kind>`. A 200 answer replaces the object, a 404 (or any
//! other answer below 400) leaves it alone, and anything from 400 up fails the deploy.
//!
//! As upstream, the URL is joined the way Python's `urljoin` does (RFC 3986): a hook URL whose
//! path does not end in `/` loses its last segment, so `http://hook/api` calls
//! `http://hook/fiaas/deploy/<Kind>` while `http://hook/api/` calls
//! `http://hook/api/fiaas/deploy/<Kind>`. Credentials in the hook URL are sent as basic auth.
//! The calls go through the shared client (`crate::http`), and so through `--proxy` if set.
//!
//! Connection failures are retried as upstream's `Retry(total=5, connect=5, backoff_factor=0.1)`
//! did (5 retries, waiting 0, 0.2, 0.4, 0.8 and 1.6 s), for every hook URL (upstream only retried
//! under the literal hook URL, which a base with a path but no trailing `/` never matched). Unlike
//! upstream, which could wait forever and stall every deploy behind it, each attempt is bounded in
//! time, and redirects are not followed (they count as "leave the object alone").

use std::time::Duration;

use fiaas_config::ClusterConfig;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use serde::Serialize;
use serde_json::Value;

use crate::http::{self, HttpClient, HttpError, Limits, Proxy, SetupError};

const LIMITS: Limits = Limits {
    // Shorter than the request timeout so that an unreachable hook fails as a (retried)
    // connection failure rather than as a timeout.
    connect: Duration::from_secs(5),
    request: Duration::from_secs(10),
    // An answer is one Kubernetes object: bounded like the objects the API server accepts (3 MiB
    // for a request body), so a misbehaving hook cannot make the daemon buffer without limit.
    answer_bytes: 3 * 1024 * 1024,
};
const CONNECT_RETRIES: u32 = 5;
const BACKOFF_FACTOR: Duration = Duration::from_millis(100);

/// Why the hook could not be set up, or why a call failed (which fails the deploy).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `--extension-hook-url` is not an absolute http(s) URL.
    #[error("invalid --extension-hook-url: {0}")]
    InvalidUrl(String),
    /// `--proxy` is invalid, or an https hook URL but no CA certificates.
    #[error("cannot set up the extension hook's client")]
    Setup(#[source] SetupError),
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
    client: HttpClient,
    policy: Policy,
}

#[derive(Clone, Copy, Debug)]
struct Policy {
    limits: Limits,
    retries: u32,
    backoff_factor: Duration,
}

impl Policy {
    const DEFAULT: Policy = Policy {
        limits: LIMITS,
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

#[derive(Serialize)]
struct Payload<'a> {
    object: &'a Value,
    application: &'a Value,
}

impl ExtensionHook {
    /// The hook configured by `--extension-hook-url` (using `--proxy`, if set); `None` unless
    /// the URL is set.
    pub fn from_config(config: &ClusterConfig) -> Result<Option<ExtensionHook>, HookError> {
        let Some(url) = config.extension_hook_url.as_deref() else {
            return Ok(None);
        };
        let proxy = Proxy::from_config(config.proxy.as_deref()).map_err(HookError::Setup)?;
        ExtensionHook::new(url, proxy.as_ref(), Policy::DEFAULT).map(Some)
    }

    fn new(hook_url: &str, proxy: Option<&Proxy>, policy: Policy) -> Result<Self, HookError> {
        let HookBase {
            base,
            https,
            authorization,
        } = hook_base(hook_url)?;
        let client = HttpClient::new(https, proxy, policy.limits).map_err(HookError::Setup)?;
        Ok(ExtensionHook {
            base,
            authorization,
            client,
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

        let answer = self.post_with_retries(kind, &url, &uri, &body).await?;
        tracing::debug!(
            kind,
            url,
            request = %String::from_utf8_lossy(&body),
            status = answer.status.as_u16(),
            response = %String::from_utf8_lossy(&answer.body),
            "Extension hook called"
        );
        match answer.status {
            StatusCode::OK => match serde_json::from_slice(&answer.body) {
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
        body: &Bytes,
    ) -> Result<http::Answer, HookError> {
        let mut retry = 0;
        loop {
            let error = match self.client.send(self.request(uri, body.clone())).await {
                Ok(answer) => return Ok(answer),
                Err(HttpError::Timeout(timeout)) => {
                    return Err(HookError::Timeout {
                        kind: kind.to_owned(),
                        url: url.to_owned(),
                        timeout,
                    });
                }
                Err(error) => error,
            };
            // Only failures to connect are safe to retry: the hook never saw the request.
            let connect_failed = matches!(error, HttpError::Connect(_));
            let cause = http::error_chain(&error);
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

    fn request(&self, uri: &Uri, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        request
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

/// Where the hook's calls go.
struct HookBase {
    /// The hook URL joined with `fiaas/deploy/`, without credentials.
    base: String,
    https: bool,
    /// Basic auth from credentials in the hook URL.
    authorization: Option<HeaderValue>,
}

fn hook_base(hook_url: &str) -> Result<HookBase, HookError> {
    let url = http::split_url(hook_url).map_err(|e| HookError::InvalidUrl(e.to_owned()))?;
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
        authorization: url.userinfo.and_then(http::basic_auth),
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

#[cfg(test)]
mod tests;
