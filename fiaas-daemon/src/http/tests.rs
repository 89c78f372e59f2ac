use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::service::service_fn;
use hyper::{Method, Response, server};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::*;

const LIMITS: Limits = Limits {
    connect: Duration::from_secs(1),
    request: Duration::from_secs(5),
    answer_bytes: 1024,
};

/// The request line's target and the headers, as a server saw them.
#[derive(Debug)]
struct Seen {
    target: String,
    host: Option<String>,
    proxy_authorization: Option<String>,
}

/// An HTTP/1 server on 127.0.0.1 answering 200 with `answer`, logging what it was asked.
async fn serve(answer: &'static str) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let server_log = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = server_log.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let header = |name| {
                    request
                        .headers()
                        .get(name)
                        .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
                };
                log.lock().unwrap().push(Seen {
                    target: request.uri().to_string(),
                    host: header(HOST),
                    proxy_authorization: header(PROXY_AUTHORIZATION),
                });
                async move { Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(answer)))) }
            });
            tokio::spawn(
                server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (addr, log)
}

fn post(url: &str) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(Bytes::from_static(b"{}")));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = url.parse().unwrap();
    request
}

fn proxy(url: &str) -> Proxy {
    Proxy::from_config(Some(url)).unwrap().unwrap()
}

#[tokio::test]
async fn sends_and_reads_the_answer() {
    let (addr, log) = serve("hello").await;
    let client = HttpClient::new(false, None, LIMITS).unwrap();
    let answer = client
        .send(post(&format!("http://{addr}/a?b")))
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, "hello");
    let log = log.lock().unwrap();
    assert_eq!(log[0].target, "/a?b");
    assert_eq!(log[0].proxy_authorization, None);
}

#[tokio::test]
async fn forwards_plain_http_through_the_proxy() {
    let (addr, log) = serve("forwarded").await;
    // The target's host does not resolve: only the proxy is ever connected to.
    let proxy = proxy(&format!("http://u:p@{addr}"));
    let client = HttpClient::new(false, Some(&proxy), LIMITS).unwrap();
    let answer = client.send(post("http://target.invalid/x")).await.unwrap();
    assert_eq!(answer.body, "forwarded");
    let log = log.lock().unwrap();
    assert_eq!(log[0].target, "http://target.invalid/x");
    assert_eq!(log[0].host.as_deref(), Some("target.invalid"));
    assert_eq!(log[0].proxy_authorization.as_deref(), Some("Basic dTpw"));
}

/// What a `CONNECT` proxy saw of one tunnel.
#[derive(Debug, PartialEq, Eq)]
struct Tunnelled {
    /// The request head, up to the blank line.
    head: String,
    /// The first byte the client sent through the tunnel.
    first_byte: Option<u8>,
}

/// A bare TCP proxy that answers every `CONNECT` with `status_line`, then records the first
/// byte sent through the tunnel and closes it.
async fn connect_proxy(status_line: &'static str) -> (SocketAddr, Arc<Mutex<Vec<Tunnelled>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let proxy_log = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut byte = [0];
                if stream.read_exact(&mut byte).await.is_err() {
                    break;
                }
                head.push(byte[0]);
            }
            let reply = format!("{status_line}\r\n\r\n");
            stream.write_all(reply.as_bytes()).await.unwrap();
            let mut byte = [0];
            let first_byte = match stream.read(&mut byte).await {
                Ok(1) => Some(byte[0]),
                _ => None,
            };
            proxy_log.lock().unwrap().push(Tunnelled {
                head: String::from_utf8(head).unwrap(),
                first_byte,
            });
        }
    });
    (addr, log)
}

#[tokio::test]
async fn tunnels_https_through_the_proxy() {
    let (addr, log) = connect_proxy("HTTP/1.1 200 Connection established").await;
    let proxy = proxy(&format!("u:p@{addr}"));
    let client = HttpClient::new(true, Some(&proxy), LIMITS).unwrap();
    // The proxy closes the tunnel after the first byte, so the TLS handshake cannot finish.
    let error = client
        .send(post("https://target.invalid:8443/x"))
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Connect(_)), "{error:?}");
    let log = log.lock().unwrap();
    assert_eq!(
        log[0].head,
        "CONNECT target.invalid:8443 HTTP/1.1\r\nHost: target.invalid:8443\r\n\
         Proxy-Authorization: Basic dTpw\r\n\r\n"
    );
    // 0x16: a TLS handshake record, the ClientHello to the target, not to the proxy.
    assert_eq!(log[0].first_byte, Some(0x16));
}

#[tokio::test]
async fn a_refused_tunnel_is_a_connection_failure_that_says_why() {
    let (addr, _) = connect_proxy("HTTP/1.1 407 Proxy Authentication Required").await;
    let client = HttpClient::new(true, Some(&proxy(&addr.to_string())), LIMITS).unwrap();
    let error = client
        .send(post("https://target.invalid/"))
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Connect(_)), "{error:?}");
    assert!(
        error_chain(&error).ends_with("tunnel error: proxy authorization required"),
        "{}",
        error_chain(&error)
    );
}

#[tokio::test]
async fn a_closed_port_is_a_connection_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = HttpClient::new(false, None, LIMITS).unwrap();
    let error = client
        .send(post(&format!("http://{addr}/")))
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::Connect(_)), "{error:?}");
    let chain = error_chain(&error);
    assert!(chain.starts_with("cannot connect: "), "{chain}");
    assert!(chain.contains("refused"), "{chain}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let limits = Limits {
        request: Duration::from_millis(200),
        ..LIMITS
    };
    let client = HttpClient::new(false, None, limits).unwrap();
    let error = client
        .send(post(&format!("http://{addr}/")))
        .await
        .unwrap_err();
    assert!(
        matches!(error, HttpError::Timeout(t) if t == Duration::from_millis(200)),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_answer_beyond_the_limit_is_refused() {
    let (addr, _) = serve(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
         0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef!",
    )
    .await;
    let limits = Limits {
        answer_bytes: 128,
        ..LIMITS
    };
    let client = HttpClient::new(false, None, limits).unwrap();
    let error = client
        .send(post(&format!("http://{addr}/")))
        .await
        .unwrap_err();
    assert!(matches!(error, HttpError::TooLarge(128)), "{error:?}");
    assert_eq!(error.to_string(), "the answer is larger than 128 bytes");
    // Exactly at the limit is fine.
    let (addr, _) = serve(
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\
         0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    )
    .await;
    let answer = client.send(post(&format!("http://{addr}/"))).await.unwrap();
    assert_eq!(answer.body.len(), 128);
}
