//! The monitoring kit (`deploy/monitoring/`): every PromQL query of the dashboard and the alert
//! rules parses, uses only metrics the daemon exports, and every alert has a runbook line.

use std::collections::BTreeSet;

use fiaas_daemon::metrics;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;

fn kit_file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../deploy/monitoring/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_else(|e| panic!("read deploy/monitoring/{name}: {e}"))
}

/// The metric names a query selects.
struct Selected(BTreeSet<String>);

impl ExprVisitor for Selected {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(selector) => Some(selector),
            Expr::MatrixSelector(matrix) => Some(&matrix.vs),
            _ => None,
        };
        if let Some(selector) = selector {
            let name = selector
                .name
                .clone()
                .ok_or("a selector without a metric name")?;
            self.0.insert(name);
        }
        Ok(true)
    }
}

/// The families the daemon's metrics page lists (`# TYPE name kind`), with a histogram's
/// `_bucket`, `_sum` and `_count` series.
fn exported() -> BTreeSet<String> {
    let handle = metrics::install("monitoring-test").unwrap();
    let mut names = BTreeSet::new();
    for line in metrics::render(&handle).lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = rest.split(' ');
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

fn check(query: &str, exported: &BTreeSet<String>, place: &str) {
    let expr = parser::parse(query).unwrap_or_else(|e| panic!("{place}: {query}: {e}"));
    let mut selected = Selected(BTreeSet::new());
    walk_expr(&mut selected, &expr).unwrap_or_else(|e| panic!("{place}: {e}"));
    assert!(!selected.0.is_empty(), "{place}: {query} selects no metric");
    for name in &selected.0 {
        assert!(
            exported.contains(name),
            "{place}: {name} is not exported by the daemon"
        );
    }
}

#[test]
fn every_query_parses_and_uses_only_exported_metrics() {
    let exported = exported();

    let dashboard: Value = serde_json::from_str(&kit_file("dashboard.json")).unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let place = format!("dashboard panel {}", panel["title"]);
            check(target["expr"].as_str().unwrap(), &exported, &place);
            queries += 1;
        }
    }
    assert!(queries >= 8, "{queries} dashboard queries");

    let rules = fiaas_spec::parse_document(&kit_file("prometheusrule.yaml")).unwrap();
    let mut alerts = Vec::new();
    for group in rules["spec"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let alert = rule["alert"].as_str().unwrap().to_owned();
            check(rule["expr"].as_str().unwrap(), &exported, &alert);
            assert!(
                rule["annotations"]["runbook"]
                    .as_str()
                    .is_some_and(|r| r.len() > 40),
                "{alert} needs a runbook line"
            );
            alerts.push(alert);
        }
    }
    assert_eq!(
        alerts,
        [
            "FiaasDeployFailureRatioHigh",
            "FiaasDeployStuckRunning",
            "FiaasWatcherUnhealthy",
            "FiaasApiErrors"
        ]
    );
}
