//! The differential cases of `tests/fixtures/render/`: each holds an `app.yml`, the `args` of a
//! render and what the upstream daemon, run as an oracle, created for them (`expected.yml`) or
//! how it rejected them (`expected-error.txt`). This runs the real `fiaas render` on each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fiaas_tests::{first_difference, fixtures_dir, normalise_object};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.join("args").is_file() {
            out.push(path);
        } else if path.is_dir() {
            cases(&path, out);
        }
    }
}

/// The documents of the oracle's output, read as PyYAML, which wrote them, reads them (a plain
/// `0o755` is text, `.inf` a float).
fn pyyaml_documents(text: &str) -> Result<Vec<Value>, String> {
    text.split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| fiaas_spec::parse_document(d).map_err(|e| e.to_string()))
        .collect()
}

/// Objects keyed like the upstream's diff tool: kind and name, or roleRef for generated names.
fn keyed(documents: Vec<Value>) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for mut doc in documents.into_iter().filter(|d| !d.is_null()) {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        let key = if doc.pointer("/metadata/generateName").is_some() {
            if let Some(Value::Object(meta)) = doc.get_mut("metadata") {
                meta.remove("name");
            }
            format!(
                "{kind}/roleRef={}:{}",
                doc["roleRef"]["kind"], doc["roleRef"]["name"]
            )
        } else {
            format!(
                "{kind}/{}",
                doc["metadata"]["name"].as_str().unwrap_or_default()
            )
        };
        out.insert(key, normalise_object(&doc));
    }
    Ok(out)
}

fn run(case: &Path) -> Result<(), Failed> {
    let args_line = std::fs::read_to_string(case.join("args"))?;
    // diffcheck.py reads `args` with Python's shlex.split.
    let args: Vec<String> = fiaas_spec::python::shlex_split(args_line.trim())
        .map_err(|e| format!("args is not shell-quoted: {e}"))?
        .into_iter()
        .filter(|a| a != "--")
        .collect();
    // diffcheck.py runs from the repository's root, where paths in `args` (`-c FILE`) start.
    let root = fixtures_dir()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or("tests/fixtures has no repository root")?;
    let output = Command::new(env!("CARGO_BIN_EXE_fiaas"))
        .current_dir(root)
        .arg("render")
        .arg(case.join("app.yml"))
        .args(&args)
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if case.join("expected-error.txt").is_file() {
        if output.status.code() != Some(1) || stderr.trim().is_empty() || !stdout.is_empty() {
            return Err(format!(
                "expected exit 1, a message and no output; got {:?}, stderr {stderr:?}",
                output.status
            )
            .into());
        }
        return Ok(());
    }
    if !output.status.success() {
        return Err(format!("exit {:?}: {stderr}", output.status).into());
    }
    let expected = keyed(pyyaml_documents(&std::fs::read_to_string(
        case.join("expected.yml"),
    )?)?)?;
    // What fiaas writes is read as Kubernetes reads it: YAML 1.2.
    let actual = keyed(serde_saphyr::from_multiple(&stdout).map_err(|e| e.to_string())?)?;
    for key in expected.keys().chain(actual.keys()) {
        match (expected.get(key), actual.get(key)) {
            (Some(e), Some(a)) => {
                if let Some(diff) = first_difference(e, a, "") {
                    return Err(format!("{key}: {diff}").into());
                }
            }
            (Some(_), None) => return Err(format!("missing {key}").into()),
            (None, _) => return Err(format!("unexpected {key}").into()),
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let root = fixtures_dir().join("render");
    let mut found = Vec::new();
    cases(&root, &mut found);
    let trials = found
        .into_iter()
        .map(|case| {
            let name = case
                .strip_prefix(&root)
                .unwrap_or(&case)
                .display()
                .to_string();
            Trial::test(name, move || run(&case))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
