//! The daemon's own flags are set in its config file like the upstream's, with the same
//! precedence: the real binary, started with `-c FILE`, against the test cluster.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fiaas_tests::{drop_namespace, test_cluster, test_namespace};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

/// The daemon process and its config file, both gone on drop.
struct Daemon(Child, std::path::PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(&self.1);
    }
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases.get_opt(name).await.ok()??.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread")]
async fn leader_election_from_the_file_with_the_lease_name_from_the_command_line() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "config-file").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = std::env::temp_dir().join(format!(
        "fiaas-daemon-config-file-{}.yaml",
        std::process::id()
    ));
    std::fs::write(
        &file,
        format!(
            "port: {port}\nenable-crd-support: true\nuse-apiextensionsv1-crd: true\n\
             use-networkingv1-ingress: true\nleader-election: yes\n\
             leader-election-lease-name: from-the-file\nmax-concurrent-deploys: 2\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon"))
        .args(["-c", &file.display().to_string()])
        .args(["--leader-election-lease-name", "from-the-command-line"])
        .env("NAMESPACE", &ns)
        .env("HOSTNAME", "config-file-replica")
        .stdout(Stdio::null())
        .spawn()
        .expect("start fiaas-deploy-daemon");
    let mut daemon = Daemon(child, file);

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    while holder(&leases, "from-the-command-line").await.as_deref() != Some("config-file-replica") {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "the daemon exited: the file's keys were refused"
        );
        assert!(
            Instant::now() < deadline,
            "the daemon never took the lease named on the command line"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(holder(&leases, "from-the-file").await, None);
    drop(daemon);
    drop_namespace(&client, &ns).await;
}
