use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderMap, PROXY_AUTHORIZATION};
use hyper::service::service_fn;
use hyper::{Response, server};
use hyper_util::rt::TokioIo;
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
                server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
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
        (StatusCode::OK, " ".repeat(LIMITS.answer_bytes + 1))
    });
    let hook = ExtensionHook::new(&format!("http://{addr}/"), None, Policy::DEFAULT).unwrap();
    match hook.call("Deployment", &object(), &app_config()).await {
        Err(error @ HookError::Request { .. }) => {
            assert!(
                error
                    .to_string()
                    .contains("the answer is larger than 3145728 bytes"),
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
    let hook = ExtensionHook::new(&format!("http://u:p@{addr}/"), None, Policy::DEFAULT).unwrap();
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
        Proxy::from_config(Some(&format!("http://u:p@{addr}")))
            .unwrap()
            .as_ref(),
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

fn quick(retries: u32) -> Policy {
    Policy {
        limits: Limits {
            connect: Duration::from_secs(1),
            request: Duration::from_secs(5),
            ..LIMITS
        },
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
    let mut policy = quick(5);
    policy.limits.request = Duration::from_millis(200);
    let hook = ExtensionHook::new(&format!("http://{addr}/"), None, policy).unwrap();
    let result = hook.call("Deployment", &object(), &app_config()).await;
    assert!(
        matches!(result, Err(HookError::Timeout { .. })),
        "{result:?}"
    );
}
