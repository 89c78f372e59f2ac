//! The app's Ingresses: upstream's `IngressDeployer`, `IngressTLSDeployer` and its two
//! API-version adapters, as one pure function.
//!
//! The host items of the app (explicit hosts, `<app>.<suffix>` default hosts, paired hosts) are
//! grouped into Ingress objects: the default `<app>` Ingress, one `<app>-N` Ingress per annotated
//! item, and one `<app>-N` Ingress per non-default TLS issuer.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use data_encoding::BASE32_NOPAD;
use fiaas_spec::{AppSpec, IngressPathMappingSpec, Protocol};
use indexmap::IndexMap;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha1::{Digest, Sha1};

use crate::error::TransformError;
use crate::meta;
use crate::object::{
    KubeObject, LegacyHttpIngressPath, LegacyHttpIngressRuleValue, LegacyIngress,
    LegacyIngressBackend, LegacyIngressRule, LegacyIngressSpec, LegacyIngressTls,
};
use fiaas_config::{TransformSettings, UseIngressTls};

/// Path of the fallback mapping; upstream reads it from its default fiaas.yml, where it is `/`.
const DEFAULT_PATH: &str = "/";
/// The only path type upstream sends on `networking.k8s.io/v1`.
const PATH_TYPE: &str = "ImplementationSpecific";
/// Annotation telling the cluster's ingress controllers whether the Ingress has explicit hosts.
const EXPOSE_ANNOTATION: &str = "fiaas/expose";
/// Annotation asking for an ACME certificate when no issuer is configured.
const TLS_ACME_ANNOTATION: &str = "kubernetes.io/tls-acme";
/// Longest DNS name allowed as a certificate's common name.
const MAX_COMMON_NAME: usize = 63;

/// The Ingresses of `app`, in upstream's creation order: `networking.k8s.io/v1` ones when
/// `config.use_networkingv1_ingress`, else `extensions/v1beta1` ones.
///
/// Empty when the app should have no Ingress (no http port, no ingress items, or no host to
/// serve). Removing Ingresses of earlier deploys is left to the caller. `fiaas_labels` are the
/// fiaas-managed labels; they win over the app's ingress labels.
///
/// Fails when no non-annotated ingress item has a path, so the default hosts need the fallback
/// mapping (`/` on the port named `http`), and no port is named `http`. Upstream fails so even
/// when there is no suffix to use the mapping on.
pub fn ingresses(
    app: &AppSpec,
    config: &TransformSettings,
    fiaas_labels: &BTreeMap<String, String>,
) -> Result<Vec<KubeObject>, TransformError> {
    if !should_have_ingress(app, config) {
        return Ok(Vec::new());
    }
    let default_paths = default_pathmappings(app)?;
    let items = host_items(app, config, &default_paths);
    let issuers = Issuers::new(app, config);
    let labels = meta::merged(&app.labels.ingress, &[fiaas_labels]);
    let tls = Tls::new(app, config);
    Ok(group(app, items, &issuers)
        .iter()
        .filter(|group| !group.items.is_empty())
        .map(|group| {
            let ingress = render(app, group, tls.as_ref());
            let metadata =
                meta::object_meta(app, ingress.name, labels.clone(), ingress.annotations);
            if config.use_networkingv1_ingress {
                KubeObject::Ingress(networking_v1(app, metadata, &ingress.rules, ingress.tls))
            } else {
                KubeObject::LegacyIngress(extensions_v1beta1(
                    app,
                    metadata,
                    &ingress.rules,
                    ingress.tls,
                ))
            }
        })
        .collect())
}

/// Whether the app gets Ingresses at all.
///
/// Hosts on annotated items do not count as a way to generate a host: an app whose only hosts are
/// annotated gets no Ingress when the cluster has no suffix (upstream behaves so).
fn should_have_ingress(app: &AppSpec, config: &TransformSettings) -> bool {
    (!config.ingress_suffixes.is_empty() || has_explicit_host(app))
        && !app.ingresses.is_empty()
        && app.ports.iter().any(|port| port.protocol == Protocol::Http)
}

/// Some ingress item has a host and no annotations (an empty host counts, as upstream tests
/// `is not None`; an annotation with a null value counts, as upstream tests the keys).
fn has_explicit_host(app: &AppSpec) -> bool {
    app.ingresses
        .iter()
        .any(|item| item.host.is_some() && item.annotations.is_empty())
}

/// The paths of the default hosts: every path of every non-annotated item, de-duplicated in
/// order; `/` on the port named `http` when there are none.
fn default_pathmappings(app: &AppSpec) -> Result<Vec<IngressPathMappingSpec>, TransformError> {
    let unannotated = app
        .ingresses
        .iter()
        .filter(|item| item.annotations.is_empty())
        .flat_map(|item| &item.pathmappings);
    let paths: Vec<IngressPathMappingSpec> = dedup(unannotated).into_iter().cloned().collect();
    if !paths.is_empty() {
        return Ok(paths);
    }
    // Upstream looks for the name `http`, whatever the port's protocol, and fails even when there
    // is no suffix to use the mapping on.
    let port = app
        .ports
        .iter()
        .find(|port| port.name == "http")
        .ok_or_else(|| {
            TransformError::InvalidConfiguration(
                "Cannot find http port mapping in application spec".to_owned(),
            )
        })?;
    Ok(vec![IngressPathMappingSpec {
        path: DEFAULT_PATH.to_owned(),
        port: port.port,
    }])
}

/// One host with the paths routed on it.
#[derive(Debug)]
struct HostItem<'a> {
    host: String,
    paths: &'a [IngressPathMappingSpec],
    /// Never an empty map, so `Some` means "annotated".
    annotations: Option<&'a BTreeMap<String, Option<String>>>,
}

/// Explicit hosts (rewritten), then default hosts, then paired hosts.
fn host_items<'a>(
    app: &'a AppSpec,
    config: &TransformSettings,
    default_paths: &'a [IngressPathMappingSpec],
) -> Vec<HostItem<'a>> {
    let mut items: Vec<HostItem<'a>> = app
        .ingresses
        .iter()
        .filter_map(|item| {
            let host = item.host.as_deref().filter(|host| !host.is_empty())?;
            Some(HostItem {
                host: rewrite_host(config, host),
                paths: &item.pathmappings,
                annotations: Some(&item.annotations).filter(|a| !a.is_empty()),
            })
        })
        .collect();
    // Default hosts are never rewritten, even when a rule matches them.
    items.extend(config.ingress_suffixes.iter().map(|suffix| HostItem {
        host: format!("{}.{suffix}", app.name),
        paths: default_paths,
        annotations: None,
    }));
    // Only the items present before pairing get a pair, and a host already served (also by a pair
    // added in this loop) is not added twice.
    for index in 0..items.len() {
        let Some(paired) = config
            .ingress_host_pairs
            .get(&items[index].host)
            .filter(|paired| !paired.is_empty())
        else {
            continue;
        };
        if !items.iter().any(|item| item.host == *paired) {
            let copy = HostItem {
                host: paired.clone(),
                paths: items[index].paths,
                annotations: items[index].annotations,
            };
            items.push(copy);
        }
    }
    items
}

/// `host` rewritten by the first matching `--host-rewrite-rule`.
fn rewrite_host(config: &TransformSettings, host: &str) -> String {
    config
        .host_rewrite_rules
        .iter()
        .find_map(|rule| rule.apply(host))
        .unwrap_or_else(|| host.to_owned())
}

/// The cert-manager issuer of a host: annotation key (issuer type) and issuer name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Issuer<'a> {
    kind: &'a str,
    /// `None` when neither the cluster nor the app names an issuer and no override applies.
    name: Option<&'a str>,
}

/// Issuer resolution by host suffix, with the overrides sorted longest suffix first.
struct Issuers<'a> {
    type_overrides: Vec<(&'a str, &'a str)>,
    name_overrides: Vec<(&'a str, &'a str)>,
    /// The app's own or the cluster's issuer name, for hosts without a name override.
    fallback_name: Option<&'a str>,
    /// The issuer of the default Ingress; hosts with another issuer go to their own Ingress.
    default: Issuer<'a>,
}

impl<'a> Issuers<'a> {
    fn new(app: &'a AppSpec, config: &'a TransformSettings) -> Self {
        let type_overrides = longest_suffix_first(&config.tls_certificate_issuer_type_overrides);
        let name_overrides = longest_suffix_first(&config.tls_certificate_issuer_overrides);
        let fallback_name = app
            .ingress_tls
            .certificate_issuer
            .as_deref()
            .filter(|name| !name.is_empty())
            .or(config.tls_certificate_issuer.as_deref());
        // The default Ingress serves the suffix hosts, so the first suffix with an override
        // decides its issuer.
        let for_suffixes = |overrides: &[(&'a str, &'a str)]| {
            config
                .ingress_suffixes
                .iter()
                .filter(|suffix| !suffix.is_empty())
                .find_map(|suffix| first_override(overrides, suffix))
        };
        let default = Issuer {
            kind: for_suffixes(&type_overrides)
                .unwrap_or(&config.tls_certificate_issuer_type_default),
            name: for_suffixes(&name_overrides).or(fallback_name),
        };
        Issuers {
            type_overrides,
            name_overrides,
            fallback_name,
            default,
        }
    }

    fn for_host(&self, host: &str) -> Issuer<'a> {
        if host.is_empty() {
            return Issuer {
                kind: self.default.kind,
                name: self.fallback_name,
            };
        }
        Issuer {
            kind: first_override(&self.type_overrides, host).unwrap_or(self.default.kind),
            name: first_override(&self.name_overrides, host).or(self.fallback_name),
        }
    }
}

/// The overrides as (suffix, value), longest suffix first; equal lengths keep the configured
/// order (upstream's sort is stable).
fn longest_suffix_first(overrides: &IndexMap<String, String>) -> Vec<(&str, &str)> {
    let mut sorted: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(suffix, value)| (suffix.as_str(), value.as_str()))
        .collect();
    sorted.sort_by_key(|(suffix, _)| Reverse(suffix.chars().count()));
    sorted
}

/// The value of the first override whose suffix `host` equals or ends with (after a dot).
fn first_override<'a>(overrides: &[(&'a str, &'a str)], host: &str) -> Option<&'a str> {
    overrides
        .iter()
        .find(|(suffix, _)| {
            host.strip_suffix(suffix)
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
        })
        .map(|(_, value)| *value)
}

/// One Ingress to create, before it is turned into an object.
struct Group<'a> {
    name: String,
    items: Vec<HostItem<'a>>,
    annotations: Option<&'a BTreeMap<String, Option<String>>>,
    explicit_host: bool,
    issuer: Issuer<'a>,
    /// The `<app>` Ingress, the only one whose TLS certificate gets the short host.
    default: bool,
}

/// The Ingresses: default first, then annotated ones, then one per non-default issuer.
///
/// New Ingresses are named `<app>-N`, N counting every Ingress made so far, so an annotated item
/// and an issuer group never get the same name. Issuer groups split hosts even without TLS.
fn group<'a>(app: &AppSpec, items: Vec<HostItem<'a>>, issuers: &Issuers<'a>) -> Vec<Group<'a>> {
    let explicit_host = has_explicit_host(app);
    let mut default = Group {
        name: app.name.clone(),
        items: Vec::new(),
        annotations: None,
        explicit_host,
        issuer: issuers.default,
        default: true,
    };
    let mut annotated: Vec<Group<'a>> = Vec::new();
    // Keyed as upstream does, by "<type>:<name>" with a missing name written as Python's `None`.
    let mut by_issuer: IndexMap<String, Group<'a>> = IndexMap::new();
    for item in items {
        let issuer = issuers.for_host(&item.host);
        let counter = 1 + annotated.len() + by_issuer.len();
        if let Some(annotations) = item.annotations {
            annotated.push(Group {
                name: format!("{}-{counter}", app.name),
                items: vec![item],
                annotations: Some(annotations),
                explicit_host: true,
                issuer,
                default: false,
            });
        } else if issuer != issuers.default {
            let key = format!("{}:{}", issuer.kind, issuer.name.unwrap_or("None"));
            by_issuer
                .entry(key)
                .or_insert_with(|| Group {
                    name: format!("{}-{counter}", app.name),
                    items: Vec::new(),
                    annotations: None,
                    explicit_host,
                    issuer,
                    default: false,
                })
                .items
                .push(item);
        } else {
            default.items.push(item);
        }
    }
    let mut groups = Vec::with_capacity(1 + annotated.len() + by_issuer.len());
    groups.push(default);
    groups.extend(annotated);
    groups.extend(by_issuer.into_values());
    groups
}

/// TLS settings of the deploy, present only when the app gets TLS.
struct Tls {
    /// Annotate with the Ingress's issuer (else ask for an ACME certificate).
    issuer_annotation: bool,
    /// Also one TLS entry per host (`--enable-deprecated-tls-entry-per-host`).
    entry_per_host: bool,
    /// Common name for the default Ingress's certificate, when one fits.
    short_host: Option<String>,
}

impl Tls {
    /// `None` unless TLS is wanted: the cluster allows it, the app did not opt out, and either
    /// the cluster defaults to it or the app opted in.
    fn new(app: &AppSpec, config: &TransformSettings) -> Option<Self> {
        let wanted = match config.use_ingress_tls {
            UseIngressTls::Disabled => false,
            UseIngressTls::DefaultOn => app.ingress_tls.enabled != Some(false),
            UseIngressTls::DefaultOff => app.ingress_tls.enabled == Some(true),
        };
        if !wanted {
            return None;
        }
        let named = |issuer: &Option<String>| issuer.as_deref().is_some_and(|i| !i.is_empty());
        Some(Tls {
            issuer_annotation: named(&config.tls_certificate_issuer)
                || named(&app.ingress_tls.certificate_issuer),
            entry_per_host: config.enable_deprecated_tls_entry_per_host,
            short_host: short_host(app, &config.ingress_suffixes),
        })
    }
}

/// A host short enough to be a certificate's common name, as `<app>.<suffix>` may not be:
/// `base32(sha1(name + namespace))`, lower-cased and cut so that `.<shortest suffix>` fits.
///
/// `None` without a (non-empty) suffix, and when the shortest suffix leaves no room (62+
/// characters; upstream logs an error then and goes on without it).
fn short_host(app: &AppSpec, suffixes: &[String]) -> Option<String> {
    // The first of the shortest, as upstream's stable sort picks it; lengths in characters.
    let suffix = suffixes
        .iter()
        .min_by_key(|suffix| suffix.chars().count())?;
    let room = (MAX_COMMON_NAME - 1).checked_sub(suffix.chars().count())?;
    if suffix.is_empty() || room == 0 {
        return None;
    }
    let mut hasher = Sha1::new();
    hasher.update(app.name.as_bytes());
    hasher.update(app.namespace.as_bytes());
    let mut prefix = BASE32_NOPAD.encode(&hasher.finalize());
    // Base32 is ASCII, so byte and character positions agree.
    prefix.truncate(room);
    prefix.make_ascii_lowercase();
    Some(format!("{prefix}.{suffix}"))
}

/// An Ingress in API-version-neutral form.
struct Rendered<'a> {
    name: &'a str,
    annotations: BTreeMap<String, String>,
    /// Host and its de-duplicated paths, one per item (hosts are not de-duplicated).
    rules: Vec<(&'a str, Vec<&'a IngressPathMappingSpec>)>,
    /// TLS entries as (hosts, secret name).
    tls: Vec<(Vec<String>, String)>,
}

fn render<'a>(app: &AppSpec, group: &'a Group<'a>, tls: Option<&Tls>) -> Rendered<'a> {
    let mut annotations = app.annotations.ingress.clone();
    // Upstream merges the item's map over the app's and drops null values when it sends the
    // object, so a null removes the app-level annotation of that name.
    for (key, value) in group.annotations.into_iter().flatten() {
        match value {
            Some(value) => annotations.insert(key.clone(), value.clone()),
            None => annotations.remove(key),
        };
    }
    annotations.insert(
        EXPOSE_ANNOTATION.to_owned(),
        if group.explicit_host { "true" } else { "false" }.to_owned(),
    );
    let rules: Vec<(&str, Vec<&IngressPathMappingSpec>)> = group
        .items
        .iter()
        .map(|item| (item.host.as_str(), dedup(item.paths)))
        .collect();
    let mut tls_entries = Vec::new();
    if let Some(tls) = tls {
        // The TLS annotation is merged last, so it wins over a user annotation of the same key.
        match (tls.issuer_annotation, group.issuer.name) {
            (true, Some(name)) => {
                annotations.insert(group.issuer.kind.to_owned(), name.to_owned());
            }
            // A configured issuer always resolves to a name, so `(true, None)` cannot happen.
            _ => {
                annotations.insert(TLS_ACME_ANNOTATION.to_owned(), "true".to_owned());
            }
        }
        let hosts = rules.iter().map(|(host, _)| *host);
        if tls.entry_per_host {
            tls_entries.extend(
                hosts
                    .clone()
                    .filter(|host| host.chars().count() <= MAX_COMMON_NAME)
                    .map(|host| (vec![host.to_owned()], host.to_owned())),
            );
        }
        let short_host = tls.short_host.as_ref().filter(|_| group.default);
        let combined: Vec<String> = short_host
            .cloned()
            .into_iter()
            .chain(hosts.map(str::to_owned))
            .collect();
        tls_entries.push((combined, format!("{}-ingress-tls", group.name)));
    }
    Rendered {
        name: &group.name,
        annotations,
        rules,
        tls: tls_entries,
    }
}

/// `paths` without repeats, first occurrence kept.
fn dedup<'a>(
    paths: impl IntoIterator<Item = &'a IngressPathMappingSpec>,
) -> Vec<&'a IngressPathMappingSpec> {
    // A handful of paths: a scan costs less than hashing them.
    let mut unique: Vec<&IngressPathMappingSpec> = Vec::new();
    for path in paths {
        if !unique.contains(&path) {
            unique.push(path);
        }
    }
    unique
}

fn networking_v1(
    app: &AppSpec,
    metadata: ObjectMeta,
    rules: &[(&str, Vec<&IngressPathMappingSpec>)],
    tls: Vec<(Vec<String>, String)>,
) -> Ingress {
    let rules = rules
        .iter()
        .map(|(host, paths)| IngressRule {
            host: Some((*host).to_owned()),
            // Upstream's client leaves out a rule value without paths (all fields default).
            http: (!paths.is_empty()).then(|| HTTPIngressRuleValue {
                paths: paths
                    .iter()
                    .map(|mapping| HTTPIngressPath {
                        path: Some(mapping.path.clone()),
                        path_type: PATH_TYPE.to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: app.name.clone(),
                                port: Some(ServiceBackendPort {
                                    number: Some(mapping.port),
                                    name: None,
                                }),
                            }),
                            resource: None,
                        },
                    })
                    .collect(),
            }),
        })
        .collect();
    let tls = tls
        .into_iter()
        .map(|(hosts, secret_name)| IngressTLS {
            hosts: Some(hosts),
            secret_name: Some(secret_name),
        })
        .collect();
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            rules: Some(rules),
            tls: Some(tls),
            ..IngressSpec::default()
        }),
        status: None,
    }
}

fn extensions_v1beta1(
    app: &AppSpec,
    metadata: ObjectMeta,
    rules: &[(&str, Vec<&IngressPathMappingSpec>)],
    tls: Vec<(Vec<String>, String)>,
) -> LegacyIngress {
    let rules = rules
        .iter()
        .map(|(host, paths)| LegacyIngressRule {
            host: (*host).to_owned(),
            // Upstream leaves `http` out of a rule without paths; the server requires paths.
            http: (!paths.is_empty()).then(|| LegacyHttpIngressRuleValue {
                paths: paths
                    .iter()
                    .map(|mapping| LegacyHttpIngressPath {
                        path: mapping.path.clone(),
                        backend: LegacyIngressBackend {
                            service_name: app.name.clone(),
                            service_port: IntOrString::Int(mapping.port),
                        },
                    })
                    .collect(),
            }),
        })
        .collect();
    let tls = tls
        .into_iter()
        .map(|(hosts, secret_name)| LegacyIngressTls { hosts, secret_name })
        .collect();
    LegacyIngress {
        api_version: "extensions/v1beta1".to_owned(),
        kind: "Ingress".to_owned(),
        metadata,
        spec: LegacyIngressSpec { rules, tls },
    }
}

#[cfg(test)]
mod tests;
