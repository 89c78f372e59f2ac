//! Outbound HTTP, shared by the extension hook (`hook/`) and usage reporting (`usage/`): one
//! way to build a client (TLS checked against the system's CA certificates, `--proxy`, a
//! connect and a request timeout), send a request and read a bounded answer. The callers keep
//! only their own logic: what to send, when to retry, what an answer means.
//!
//! `--proxy` is used as upstream's `requests` session used it for both (`proxies` maps `http`
//! and `https` to it): plain http requests are forwarded through the proxy with the full URL in
//! the request line, https is tunnelled with `CONNECT` (hyper-util's `Tunnel`). Redirects are
//! not followed.

mod connect;
mod url;

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, PROXY_AUTHORIZATION};
use hyper::{Request, StatusCode};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::rt::TokioExecutor;

use self::connect::Connector;
pub use self::url::Proxy;
pub(crate) use self::url::{basic_auth, split_url};

/// Why a client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `--proxy` is not an http proxy URL.
    #[error("invalid --proxy: {0}")]
    InvalidProxy(String),
    /// An https target, but no CA certificates to check its certificate with.
    #[error("no usable TLS root certificates")]
    Certificates(#[source] io::Error),
}

/// Why a request got no (acceptable) answer. Render it with [`error_chain`]: the causes say
/// what happened.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No connection to the target (directly, to the proxy, or through its tunnel): the target
    /// never saw the request, so sending it again is safe.
    #[error("cannot connect")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// Connected, but sending the request or reading the answer's head failed.
    #[error("the request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    /// The request, answer included, took longer than the request timeout.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The answer's body is larger than the client reads.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// Reading the answer's body failed.
    #[error("reading the answer failed")]
    Body(#[source] Box<dyn StdError + Send + Sync>),
}

/// An error with all its causes: the client's own messages ("client error (Connect)") say
/// little without them.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How long a request may take and how much of an answer is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Opening the TCP connection (to the target or to the proxy).
    pub connect: Duration,
    /// One request, start to end: connecting, sending, and reading the whole answer.
    pub request: Duration,
    /// The largest answer body read; a larger one is [`HttpError::TooLarge`].
    pub answer_bytes: usize,
}

/// A whole answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its body, at most [`Limits::answer_bytes`] long.
    pub body: Bytes,
}

/// An HTTP/1 client for http or https targets; cheap to clone (clones share the connection
/// pool).
#[derive(Clone, Debug)]
pub struct HttpClient {
    transport: Transport,
    /// Sent with each request forwarded through the proxy (a tunnel sends it on `CONNECT`).
    forward_authorization: Option<HeaderValue>,
    limits: Limits,
}

/// The scheme of the target decides how to connect, so a client serves one scheme.
#[derive(Clone, Debug)]
enum Transport {
    Plain(Client<Connector, Full<Bytes>>),
    Tls(Client<HttpsConnector<Connector>, Full<Bytes>>),
}

impl HttpClient {
    /// A client for `https://` targets if `https`, else for `http://` ones, connecting through
    /// `proxy` if given. Errors: an https client without CA certificates.
    pub fn new(https: bool, proxy: Option<&Proxy>, limits: Limits) -> Result<Self, SetupError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(limits.connect));
        // The inner connector of TLS is handed https URLs.
        http.enforce_http(false);
        let connector = match proxy {
            None => Connector::Direct(http),
            Some(proxy) if https => {
                let tunnel = Tunnel::new(proxy.uri.clone(), http);
                Connector::Tunnel(match &proxy.authorization {
                    Some(authorization) => tunnel.with_auth(authorization.clone()),
                    None => tunnel,
                })
            }
            Some(proxy) => Connector::Forward {
                http,
                proxy: proxy.uri.clone(),
            },
        };
        let builder = Client::builder(TokioExecutor::new());
        let transport = if https {
            let connector = HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(SetupError::Certificates)?
                .https_only()
                .enable_http1()
                .wrap_connector(connector);
            Transport::Tls(builder.build(connector))
        } else {
            Transport::Plain(builder.build(connector))
        };
        let forward_authorization = proxy
            .filter(|_| !https)
            .and_then(|proxy| proxy.authorization.clone());
        Ok(HttpClient {
            transport,
            forward_authorization,
            limits,
        })
    }

    /// Sends `request` (whose URL has the client's scheme) and reads the whole answer, within
    /// the limits. Any status is an answer.
    pub async fn send(&self, mut request: Request<Full<Bytes>>) -> Result<Answer, HttpError> {
        if let Some(authorization) = &self.forward_authorization {
            request
                .headers_mut()
                .insert(PROXY_AUTHORIZATION, authorization.clone());
        }
        tokio::time::timeout(self.limits.request, self.exchange(request))
            .await
            .unwrap_or(Err(HttpError::Timeout(self.limits.request)))
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Answer, HttpError> {
        let response = match &self.transport {
            Transport::Plain(client) => client.request(request).await,
            Transport::Tls(client) => client.request(request).await,
        }
        .map_err(|e| {
            if e.is_connect() {
                HttpError::Connect(e)
            } else {
                HttpError::Request(e)
            }
        })?;
        let status = response.status();
        let limit = self.limits.answer_bytes;
        let body = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<LengthLimitError>() {
                    HttpError::TooLarge(limit)
                } else {
                    HttpError::Body(e)
                }
            })?
            .to_bytes();
        Ok(Answer { status, body })
    }
}

#[cfg(test)]
mod tests;
