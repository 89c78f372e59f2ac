//! What the daemon's live tests share: the real daemon binary as a child process, and waits on
//! the ApplicationStatus objects it writes. Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fiaas_k8s::{ApplicationStatus, status_name};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff;
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};

pub struct Daemon(pub Child, pub u16);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    pub fn start(ns: &str, kubeconfig: Option<&PathBuf>, extra: &[&str]) -> Daemon {
        Self::start_as(ns, kubeconfig, extra, None)
    }

    /// Start with `HOSTNAME` set to `identity`: the leader lease's holder name and the Events'
    /// reporting instance.
    pub fn start_as(
        ns: &str,
        kubeconfig: Option<&PathBuf>,
        extra: &[&str],
        identity: Option<&str>,
    ) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon"));
        command
            .args([
                "--port",
                &port.to_string(),
                "--enable-crd-support",
                "--use-apiextensionsv1-crd",
                "--use-networkingv1-ingress",
            ])
            .args(extra)
            .env("NAMESPACE", ns)
            .stdout(Stdio::null());
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        if let Some(identity) = identity {
            command.env("HOSTNAME", identity);
        }
        Daemon(command.spawn().expect("start fiaas-deploy-daemon"), port)
    }

    /// The status code `/healthz` answers, if it answers.
    pub fn health(&self) -> Option<u16> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        answer.split(' ').nth(1)?.parse().ok()
    }

    pub fn assert_alive(&mut self) {
        assert!(
            self.0.try_wait().unwrap().is_none(),
            "the daemon exited; it should ride out the fault"
        );
    }

    pub fn send(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn signal(&mut self, signal: &str) {
        self.send(signal);
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.0.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop on {signal}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn small() -> Value {
    json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1}})
}

pub async fn status(client: &Client, ns: &str, app: &str, id: &str) -> Option<ApplicationStatus> {
    let api: Api<ApplicationStatus> = Api::namespaced(client.clone(), ns);
    api.get_opt(&status_name(app, id)).await.ok().flatten()
}

/// Wait until every `(app, id)` has a final status; returns them, or fails naming the missing.
pub async fn final_statuses(
    client: &Client,
    ns: &str,
    wanted: &[(&str, &str)],
    within: Duration,
) -> Vec<ApplicationStatus> {
    let deadline = Instant::now() + within;
    loop {
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (app, id) in wanted {
            match status(client, ns, app, id).await {
                Some(s) if s.result == "SUCCESS" || s.result == "FAILED" => found.push(s),
                other => missing.push(format!("{app}/{id}: {:?}", other.map(|s| s.result))),
            }
        }
        if missing.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no final status within {within:?}: {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub fn test_kubeconfig() -> PathBuf {
    PathBuf::from(std::env::var_os("KUBECONFIG").expect("KUBECONFIG of the test cluster"))
}

/// Wait until `apps` (id "1") all succeeded; how long that took.
pub async fn all_succeed(client: &Client, ns: &str, apps: &[String], within: Duration) -> Duration {
    let started = Instant::now();
    let wanted: Vec<(&str, &str)> = apps.iter().map(|a| (a.as_str(), "1")).collect();
    for s in final_statuses(client, ns, &wanted, within).await {
        assert_eq!(s.result, "SUCCESS", "{:?}: {:?}", s.metadata.name, s.logs);
    }
    started.elapsed()
}

pub fn kubectl(args: &[&str], input: Option<&str>) -> String {
    use std::io::Write as _;
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    if let Some(input) = input {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "kubectl {args:?} failed");
    String::from_utf8(output.stdout).unwrap()
}

/// A kubeconfig for the test cluster that authenticates as the ServiceAccount `name` of `ns`
/// (which must exist), with the token from the Secret the token controller creates for it.
pub async fn service_account_kubeconfig(client: &Client, ns: &str, name: &str) -> PathBuf {
    let token = service_account_token(client, ns, name).await;
    let admin = kube::config::Kubeconfig::read_from(test_kubeconfig()).unwrap();
    let cluster = admin.clusters[0].cluster.clone().unwrap();
    let config = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "test", "user": name}}],
        "current-context": "sa",
    });
    let path = std::env::temp_dir().join(format!("kubeconfig-{ns}-{name}"));
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

async fn service_account_token(client: &Client, ns: &str, name: &str) -> String {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for secret in secrets.list(&Default::default()).await.unwrap().items {
            let for_us = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .is_some_and(|account| account == name);
            if let Some(token) = secret.data.as_ref().and_then(|d| d.get("token"))
                && for_us
            {
                return String::from_utf8(token.0.clone()).unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no token Secret for the ServiceAccount"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One request of the audit log.
pub struct Request {
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub verb: String,
    pub code: u64,
    pub uri: String,
    /// The object's name, if the request named one.
    pub name: Option<String>,
    /// When the API server received it.
    pub received: jiff::Timestamp,
}

/// The requests the ServiceAccount `name` of `ns` made, from the test cluster's audit log
/// (`tests/cluster/up` records ServiceAccounts' requests).
pub fn audited(ns: &str, name: &str) -> Vec<Request> {
    let directory = std::env::var_os("FIAAS_TEST_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-cluster"));
    let log = std::fs::read_to_string(directory.join("audit.log"))
        .expect("the audit log of a cluster started by tests/cluster/up");
    let user = format!("system:serviceaccount:{ns}:{name}");
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["user"]["username"] == user.as_str())
        .filter_map(|event| {
            let object = &event["objectRef"];
            let mut resource = object["resource"].as_str()?.to_owned();
            if let Some(sub) = object["subresource"].as_str() {
                resource = format!("{resource}/{sub}");
            }
            Some(Request {
                resource,
                verb: event["verb"].as_str()?.to_owned(),
                code: event["responseStatus"]["code"].as_u64().unwrap_or(0),
                uri: event["requestURI"].as_str().unwrap_or_default().to_owned(),
                name: object["name"].as_str().map(str::to_owned),
                received: event["requestReceivedTimestamp"].as_str()?.parse().ok()?,
            })
        })
        .collect()
}

/// One ServiceAccount per replica in `ns`, each allowed everything in `ns` (so that the audit
/// log tells the replicas' requests apart), and a kubeconfig for each.
pub async fn replica_kubeconfigs(client: &Client, ns: &str, replicas: &[&str]) -> Vec<PathBuf> {
    let mut kubeconfigs = Vec::new();
    for replica in replicas {
        kubectl(&["create", "serviceaccount", "-n", ns, replica], None);
        kubectl(
            &[
                "create",
                "rolebinding",
                "-n",
                ns,
                replica,
                "--clusterrole=cluster-admin",
                &format!("--serviceaccount={ns}:{replica}"),
            ],
            None,
        );
        kubeconfigs.push(service_account_kubeconfig(client, ns, replica).await);
    }
    kubeconfigs
}
