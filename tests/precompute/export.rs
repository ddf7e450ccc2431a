//! `kneecam export` through the binary on the same small cohort: the reference code's tree
//! exactly, PNGs that hold the slice, kneecam's JSON whose contributions add up to the logit,
//! a re-run that skips what is done, the CAM store read first, `--which` by the model's call,
//! shards, a killed run that leaves only whole folders, and outputs refused inside inputs.
use std::collections::BTreeSet;
use std::path::Path;

use predicates::str::contains;

use super::{cohort, kneecam, precompute};

fn export(home: &Path, out: &Path, extra: &[&str]) -> assert_cmd::Command {
    let mut cmd = kneecam(home);
    cmd.arg("export")
        .arg("--data")
        .arg(cohort())
        .args(["--models", "models/demo", "--cache"])
        .arg(home.join("store"))
        .arg("--out")
        .arg(out)
        .args(extra);
    cmd
}

/// Every file under `dir`, as paths relative to it.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).expect("list").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("inside");
                found.insert(relative.to_string_lossy().to_string());
            }
        }
    }
    found
}

fn slices(exam: &str, plane: &str) -> usize {
    let path = cohort()
        .join("valid")
        .join(plane)
        .join(format!("{exam}.npy"));
    kneecam::data::npy::read_volume(&path)
        .expect("npy")
        .data
        .dim()
        .0
}

fn exams() -> Vec<String> {
    (0..4).map(|id| format!("{id:04}")).collect()
}

#[test]
fn export_writes_the_reference_tree_and_a_rerun_skips_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = home.path().join("cams");
    export(
        home.path(),
        &out,
        &["--which", "all", "--planes", "sagittal,axial"],
    )
    .assert()
    .success()
    .stdout(contains("4 exams exported (8 series folders)"))
    .stdout(contains("8 computed"));
    let mut expected = BTreeSet::new();
    for exam in exams() {
        for plane in ["axial", "sagittal"] {
            for i in 0..slices(&exam, plane) {
                expected.insert(format!("{plane}/{exam}/slices/{i}.png"));
                expected.insert(format!("{plane}/{exam}/cams/{i}.png"));
            }
        }
    }
    assert_eq!(tree(&out), expected, "exactly the reference code's tree");

    // The slice PNG is the slice; the overlay is colour.
    let volume = kneecam::data::npy::read_volume(&cohort().join("valid/axial/0002.npy"))
        .expect("npy")
        .data;
    let gray = image::open(out.join("axial/0002/slices/3.png"))
        .expect("png")
        .into_luma8();
    let slice: Vec<u8> = volume
        .index_axis(ndarray::Axis(0), 3)
        .iter()
        .copied()
        .collect();
    assert_eq!(gray.into_raw(), slice);
    let overlay = image::open(out.join("axial/0002/cams/3.png")).expect("png");
    assert_eq!(overlay.color(), image::ColorType::Rgb8);

    export(
        home.path(),
        &out,
        &["--which", "all", "--planes", "sagittal,axial"],
    )
    .assert()
    .success()
    .stdout(contains("0 exams exported (0 series folders)"))
    .stdout(contains("4 already there"));
    // The same CAMs into a new folder come from the store.
    export(
        home.path(),
        &home.path().join("again"),
        &["--which", "all", "--planes", "axial"],
    )
    .assert()
    .success()
    .stdout(contains("4 series from the CAM store, 0 computed"));
}

#[test]
fn kneecam_layout_records_contributions_that_add_up_and_indexes_them() {
    let home = tempfile::tempdir().expect("tempdir");
    // precompute fills the store; export then runs no model.
    precompute(
        home.path(),
        &home.path().join("store"),
        &["--methods", "contrib"],
    )
    .assert()
    .success();
    let out = home.path().join("cams");
    export(
        home.path(),
        &out,
        &[
            "--which", "all", "--layout", "kneecam", "--method", "contrib",
        ],
    )
    .assert()
    .success()
    .stdout(contains("12 series from the CAM store, 0 computed"));
    let index = std::fs::read_to_string(out.join("index.csv")).expect("index");
    assert_eq!(index.lines().count(), 1 + 12, "{index}");
    for exam in exams() {
        for plane in ["axial", "coronal", "sagittal"] {
            let path = out.join(plane).join(&exam).join("exam.json");
            let record: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("json"))
                    .expect("parse");
            let shares = record["slice_contributions"].as_array().expect("array");
            assert_eq!(shares.len(), slices(&exam, plane));
            let total: f64 = shares.iter().map(|v| v.as_f64().expect("number")).sum();
            let class = record["class"].as_u64().expect("class") as usize;
            let logit = record["logits"][class].as_f64().expect("logit");
            let bias = record["bias"].as_f64().expect("bias");
            assert!(
                (total + bias - logit).abs() < 1e-3,
                "{exam} {plane}: {total} + {bias} != {logit}"
            );
            assert!(record["combined"].as_f64().is_some(), "all planes ran");
        }
    }
}

#[test]
fn which_splits_the_positives_by_the_call_and_shards_split_the_exams() {
    let home = tempfile::tempdir().expect("tempdir");
    let run = |which: &str, shard: Option<&str>, out: &str| {
        let out = home.path().join(out);
        let mut extra = vec![
            "--which", which, "--task", "abnormal", "--planes", "sagittal",
        ];
        extra.extend(shard.map(|s| ["--shard", s]).into_iter().flatten());
        extra.extend(["--layout", "kneecam"]);
        export(home.path(), &out, &extra).assert().success();
        std::fs::read_dir(out.join("sagittal"))
            .map(|list| {
                list.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect::<BTreeSet<_>>()
            })
            .unwrap_or_default()
    };
    let positives = run("positives", None, "positives");
    let (tp, false_negatives) = (run("tp", None, "tp"), run("fn", None, "fn"));
    assert!(tp.is_disjoint(&false_negatives));
    assert_eq!(&tp | &false_negatives, positives);
    for exam in &false_negatives {
        let path = home.path().join("fn/sagittal").join(exam).join("exam.json");
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("json")).expect("parse");
        assert!(record["combined"].as_f64().expect("combined") < 0.5);
    }
    let all = run("all", None, "all");
    let halves = [
        run("all", Some("0/2"), "half"),
        run("all", Some("1/2"), "half"),
    ];
    assert_eq!(
        halves[1], all,
        "the second shard adds the rest to the same folder"
    );
    assert!(!halves[0].is_empty() || all.is_empty());
}

#[test]
fn a_killed_export_leaves_whole_folders_and_a_rerun_finishes() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = home.path().join("cams");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kneecam"))
        .env("KNEECAM_CACHE_DIR", home.path().join("cache"))
        .env("KNEECAM_DATA_DIR", home.path().join("data"))
        .args(["--device", "cpu", "export", "--which", "all", "--data"])
        .arg(cohort())
        .args(["--models", "models/demo", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let started = || {
        std::fs::read_dir(out.join("axial"))
            .map(|mut list| list.next().is_some())
            .unwrap_or(false)
    };
    while !started() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().expect("kill");
    child.wait().expect("exits");
    // Whatever the kill left: every finished folder is whole.
    for plane in ["axial", "coronal", "sagittal"] {
        let Ok(list) = std::fs::read_dir(out.join(plane)) else {
            continue;
        };
        for entry in list.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue; // the killed process's unfinished folder
            }
            let count = |sub: &str| {
                std::fs::read_dir(entry.path().join(sub))
                    .expect(sub)
                    .count()
            };
            assert_eq!(count("slices"), slices(&name, plane), "{plane}/{name}");
            assert_eq!(count("cams"), slices(&name, plane), "{plane}/{name}");
        }
    }
    let fresh = home.path().join("fresh");
    export(home.path(), &fresh, &["--which", "all"])
        .assert()
        .success();
    export(home.path(), &out, &["--which", "all"])
        .assert()
        .success();
    assert_eq!(tree(&out), tree(&fresh), "no leftovers, nothing missing");
}

#[test]
fn export_refuses_outputs_inside_its_inputs_and_planes_without_models() {
    let home = tempfile::tempdir().expect("tempdir");
    export(home.path(), &cohort().join("cams"), &[])
        .assert()
        .code(2)
        .stderr(contains("inside the dataset folder"));
    export(home.path(), Path::new("models/demo/cams"), &[])
        .assert()
        .code(2)
        .stderr(contains("models folder"));
    let models = home.path().join("one-model");
    std::fs::create_dir_all(&models).expect("mkdir");
    let manifest = std::fs::read_to_string("models/demo/manifest.toml").expect("manifest");
    let (head, _) = manifest.split_once("[models.").expect("a model table");
    let sagittal = manifest
        .split("[models.")
        .find(|table| table.starts_with("acl-sagittal]"))
        .expect("the acl-sagittal table");
    std::fs::write(
        models.join("manifest.toml"),
        format!("{head}[models.{sagittal}"),
    )
    .expect("write");
    for file in std::fs::read_dir("models/demo").expect("list").flatten() {
        if file
            .file_name()
            .to_string_lossy()
            .starts_with("acl-sagittal")
        {
            std::fs::copy(file.path(), models.join(file.file_name())).expect("copy");
        }
    }
    let mut cmd = kneecam(home.path());
    cmd.arg("export")
        .arg("--data")
        .arg(cohort())
        .arg("--models")
        .arg(&models)
        .arg("--out")
        .arg(home.path().join("out"))
        .args(["--planes", "coronal"])
        .assert()
        .code(2)
        .stderr(contains("has no acl coronal model (it has: sagittal)"));
}
