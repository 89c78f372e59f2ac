//! The app's Service.

use std::collections::BTreeMap;

use fiaas_spec::{AppSpec, Protocol};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::deployment::selector;
use crate::meta::{merged, object_meta};
use fiaas_config::TransformSettings;

/// The Service of an app with ports; `None` when it has none (the applier deletes it).
pub(crate) fn service(
    app: &AppSpec,
    config: &TransformSettings,
    fiaas_labels: &BTreeMap<String, String>,
) -> Option<Service> {
    if app.ports.is_empty() {
        return None;
    }
    let tcp_names: Vec<&str> = app
        .ports
        .iter()
        .filter(|p| p.protocol == Protocol::Tcp)
        .map(|p| p.name.as_str())
        .collect();
    let mut annotations = app.annotations.service.clone();
    if !tcp_names.is_empty() {
        annotations.insert("fiaas/tcp_port_names".to_owned(), tcp_names.join(","));
    }
    Some(Service {
        metadata: object_meta(
            app,
            &app.name,
            merged(&app.labels.service, &[fiaas_labels]),
            annotations,
        ),
        spec: Some(ServiceSpec {
            selector: Some(selector(app)),
            // Every port is TCP to Kubernetes, whatever its fiaas protocol.
            ports: Some(
                app.ports
                    .iter()
                    .map(|p| ServicePort {
                        name: Some(p.name.clone()),
                        port: p.port,
                        target_port: Some(IntOrString::Int(p.target_port)),
                        protocol: Some("TCP".to_owned()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            type_: Some(config.service_type.as_str().to_owned()),
            session_affinity: Some("None".to_owned()),
            load_balancer_source_ranges: Some(Vec::new()),
            ..ServiceSpec::default()
        }),
        status: None,
    })
}
