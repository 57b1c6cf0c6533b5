//! `eval` measures the rankings `query` gives: every labelled sample image, ranked by `eval`
//! (written with `--dump-rankings`) and by `query` on the same index, exactly and through the
//! graph, with the default settings of both.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn sample_data() -> PathBuf {
    std::fs::canonicalize(Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data")).unwrap()
}

fn lookalike(index: &Path) -> Command {
    let mut c = Command::cargo_bin("lookalike").unwrap();
    c.env_remove("LOOKALIKE_INDEX")
        .arg("--quiet")
        .arg("--index-dir")
        .arg(index);
    c
}

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `mode -> query name -> ranked names`, from a `--dump-rankings` file of the fused family.
fn read_rankings(file: &Path) -> HashMap<String, HashMap<String, Vec<String>>> {
    let mut out: HashMap<String, HashMap<String, Vec<String>>> = HashMap::new();
    let mut mode = None;
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["format"].is_string() {
            assert_eq!(v["family"], "fused", "{line}");
            mode = Some(v["mode"].as_str().unwrap().to_string());
        } else if let Some(query) = v["query"].as_str() {
            let ranking = v["ranking"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            out.entry(mode.clone().unwrap())
                .or_default()
                .insert(query.to_string(), ranking);
        }
    }
    out
}

#[test]
fn eval_ranks_every_sample_image_as_query_does() {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("idx");
    let data = sample_data();
    run_ok(lookalike(&index).arg("index").arg(&data));
    let dump = tmp.path().join("rankings.jsonl");
    run_ok(
        lookalike(&index)
            .arg("eval")
            .arg(&data)
            .args(["--families", "fused", "--json", "--dump-rankings"])
            .arg(&dump),
    );
    let rankings = read_rankings(&dump);
    let images = rankings["exact"].len();
    assert!(images >= 70, "{images} labelled sample images ranked");
    for (mode, flags, depth) in [("exact", &["--exact"][..], images), ("hnsw", &[][..], 10)] {
        for (name, expected) in &rankings[mode] {
            let stdout = run_ok(
                lookalike(&index)
                    .args(["query", "--json", "-k", &depth.to_string()])
                    .args(flags)
                    .arg(data.join(name)),
            );
            let answer: Value = serde_json::from_slice(&stdout).unwrap();
            assert_eq!(answer["indexed"], true, "{name}");
            let shown: Vec<String> = answer["hits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    let path = Path::new(h["path"].as_str().unwrap());
                    let rel = path.strip_prefix(&data).unwrap();
                    rel.to_string_lossy().replace('\\', "/")
                })
                .collect();
            assert_eq!(
                shown,
                expected[..depth.min(expected.len())],
                "{mode} ranking of {name}: query (left) and eval (right) differ"
            );
        }
    }
}
