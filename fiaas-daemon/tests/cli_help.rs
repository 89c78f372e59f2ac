//! `fiaas-deploy-daemon --help` lists every flag of the upstream daemon (upstream `fiaas_deploy_daemon/config.py`).

use std::process::Command;

/// The upstream daemon's flags.
const UPSTREAM_FLAGS: &[&str] = &[
    "--api-cert",
    "--api-server",
    "--api-token",
    "--client-cert",
    "--config-file",
    "--datadog-activate-sleep",
    "--datadog-container-image",
    "--datadog-container-memory",
    "--datadog-global-tags",
    "--debug",
    "--deployment-max-surge",
    "--deployment-max-unavailable",
    "--disable-crd-creation",
    "--disable-deprecated-managed-env-vars",
    "--disable-service-links",
    "--dns-search-domains",
    "--enable-crd-support",
    "--enable-deprecated-multi-namespace-support",
    "--enable-deprecated-tls-entry-per-host",
    "--enable-service-account-per-app",
    "--environment",
    "--extension-hook-url",
    "--global-env",
    "--host-rewrite-rule",
    "--include-status-in-app",
    "--infrastructure",
    "--ingress-host-pair",
    "--ingress-suffix",
    "--list-of-cluster-roles",
    "--list-of-roles",
    "--log-format",
    "--pdb-max-unavailable",
    "--pdb-unhealthy-pod-eviction-policy",
    "--port",
    "--pre-stop-delay",
    "--proxy",
    "--ready-check-timeout-multiplier",
    "--secret-init-containers",
    "--secrets-directory",
    "--secrets-init-container-image",
    "--secrets-service-account-name",
    "--service-type",
    "--strongbox-init-container-image",
    "--tls-certificate-issuer",
    "--tls-certificate-issuer-overrides",
    "--tls-certificate-issuer-type-default",
    "--tls-certificate-issuer-type-overrides",
    "--tls-certificate-ready",
    "--usage-reporting-cluster-name",
    "--usage-reporting-endpoint",
    "--usage-reporting-operator",
    "--usage-reporting-team",
    "--usage-reporting-tenant",
    "--use-apiextensionsv1-crd",
    "--use-in-memory-emptydirs",
    "--use-ingress-tls",
    "--use-networkingv1-ingress",
];

#[test]
fn help_lists_every_upstream_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let missing: Vec<&&str> = UPSTREAM_FLAGS
        .iter()
        .filter(|flag| {
            !help.contains(&format!("{flag} "))
                && !help.contains(&format!("{flag}\n"))
                && !help.contains(&format!("{flag}="))
        })
        .collect();
    assert!(missing.is_empty(), "missing from --help: {missing:?}");
}
