//! Golden tests: every e2e and bootstrap case of upstream
//! `tests/fiaas_deploy_daemon/test_e2e.py` and `test_bootstrap_e2e.py`. For each case the
//! objects `fiaas_transform::render` produces are compared, after upstream's normalisation
//! (`fiaas_tests::normalise_object`), with the upstream's expected files; kinds
//! the upstream asserts absent must not be rendered.

use fiaas_config::ClusterConfig;
use fiaas_spec::{AdditionalLabelsOrAnnotations, AppFacts};
use fiaas_tests::e2e::{
    Case, Cluster, Deploy, UID, bootstrap_case, expected_object, flags, input_document, kind_of,
    main_cases, service_account_cases,
};
use fiaas_tests::{first_difference, normalise_object};
use fiaas_transform::RenderOptions;
use libtest_mimic::{Arguments, Failed, Trial};

fn run(case: &Case, cluster: Cluster, networking_v1: bool, deploy: &Deploy) -> Result<(), Failed> {
    let config = ClusterConfig::from_args(flags(cluster, networking_v1), None)
        .map_err(|e| e.to_string())?
        .transform;
    let document = input_document(case, deploy);
    let facts = AppFacts {
        name: case.name.into(),
        namespace: "default".into(),
        image: deploy.image.into(),
        deployment_id: deploy.deployment_id.into(),
        uid: Some(UID.into()),
        additional_labels: case.labels.clone().map(|l| {
            serde_json::from_value::<AdditionalLabelsOrAnnotations>(l).unwrap_or_default()
        }),
        additional_annotations: None,
    };
    let app = fiaas_spec::from_document(&document, &facts).map_err(|e| e.to_string())?;
    let manifests = fiaas_transform::render(&app, &config, &RenderOptions::default())
        .map_err(|e| e.to_string())?;
    let mut failures = Vec::new();
    for (kind, v1_file, v1beta1_file) in &case.expected {
        let file = if networking_v1 { v1_file } else { v1beta1_file };
        let expected = expected_object(file, cluster, deploy, case.name, UID);
        let name = expected
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or_default();
        let actual = manifests
            .objects
            .iter()
            .map(|o| o.to_json())
            .find(|o| o.pointer("/metadata/name") == Some(&name) && kind_of(o) == Some(*kind));
        match actual {
            None => failures.push(format!("{file}: no {kind:?} named {name} rendered")),
            Some(actual) => {
                if let Some(diff) =
                    first_difference(&normalise_object(&expected), &normalise_object(&actual), "")
                {
                    failures.push(format!("{file}: {diff}"));
                }
            }
        }
    }
    for kind in &case.absent {
        if manifests.objects.iter().any(|o| o.kind() == *kind) {
            failures.push(format!(
                "{kind:?} rendered, but upstream asserts it does not exist"
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

fn main() {
    let args = Arguments::from_args();
    let first = || Deploy {
        image: "finntech/application-name:123",
        deployment_id: "deployment_id_1",
        strongbox_groups: None,
    };
    let mut trials = Vec::new();
    for networking_v1 in [true, false] {
        let api = if networking_v1 {
            "networking-v1"
        } else {
            "extensions-v1beta1"
        };
        for service_type in ["ClusterIP", "NodePort"] {
            for c in main_cases() {
                let (c1, c2) = (c.clone(), c.clone());
                trials.push(Trial::test(
                    format!("{api}/{service_type}/{}/first-deploy", c.name),
                    move || run(&c1, Cluster::Main(service_type), networking_v1, &first()),
                ));
                let groups = c.name.contains("strongbox").then(|| vec!["foo", "bar"]);
                trials.push(Trial::test(
                    format!("{api}/{service_type}/{}/second-deploy", c.name),
                    move || {
                        run(
                            &c2,
                            Cluster::Main(service_type),
                            networking_v1,
                            &Deploy {
                                image: "finntech/application-name:321",
                                deployment_id: "deployment_id_2",
                                strongbox_groups: groups,
                            },
                        )
                    },
                ));
            }
        }
        for c in service_account_cases() {
            trials.push(Trial::test(
                format!("{api}/service-account/{}", c.name),
                move || run(&c, Cluster::ServiceAccount, networking_v1, &first()),
            ));
        }
        let c = bootstrap_case();
        trials.push(Trial::test(
            format!("{api}/bootstrap/{}", c.name),
            move || {
                run(
                    &c,
                    Cluster::Bootstrap,
                    networking_v1,
                    &Deploy {
                        image: "nginx:1.13.9-alpine",
                        deployment_id: "1",
                        strongbox_groups: None,
                    },
                )
            },
        ));
    }
    libtest_mimic::run(&args, trials).exit();
}
