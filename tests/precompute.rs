//! `kneecam precompute` through the binary on a small phantom cohort with the demo models:
//! every entry written, a second run reuses them, a corrupt entry is replaced, shards split
//! the work without overlap, two processes can fill one store at once, and `predict` gives
//! the same numbers from the store as from the models. `export` (precompute/export.rs) shares
//! the cohort.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use predicates::str::contains;

#[path = "support/binary.rs"]
mod binary;
use binary::kneecam;

#[path = "precompute/blas_order.rs"]
mod blas_order;
#[path = "precompute/export.rs"]
mod export;
#[path = "precompute/reference.rs"]
mod reference;

const EXAMS: usize = 4;
/// 3 planes × 3 tasks × 4 methods per exam.
const ENTRIES: usize = EXAMS * 3 * 3 * 4;

fn cohort() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("precompute-cohort");
        if !dir.join("valid").is_dir() {
            let tmp = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
            let out = tmp.path().join("cohort");
            Command::cargo_bin("kneecam")
                .expect("binary")
                .args([
                    "synth", "--cases", "4", "--valid", "4", "--seed", "11", "--out",
                ])
                .arg(&out)
                .assert()
                .success();
            // Another test binary may have won the race; either copy is the same cohort.
            let _ = std::fs::rename(&out, &dir);
        }
        dir
    })
}

fn precompute(home: &Path, store: &Path, extra: &[&str]) -> Command {
    let mut cmd = kneecam(home);
    cmd.arg("precompute")
        .arg("--data")
        .arg(cohort())
        .args(["--models", "models/demo", "--cache"])
        .arg(store)
        .args(extra);
    cmd
}

fn entries(store: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let Ok(version) = std::fs::read_dir(store.join("v1")) else {
        return found;
    };
    for bucket in version.flatten() {
        for file in std::fs::read_dir(bucket.path()).expect("bucket").flatten() {
            let name = file.file_name().to_string_lossy().to_string();
            assert!(name.ends_with(".kcam"), "only entries in the store: {name}");
            found.insert(name);
        }
    }
    found
}

#[test]
fn precompute_fills_reuses_and_repairs() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = home.path().join("store");
    precompute(home.path(), &store, &[])
        .assert()
        .success()
        .stdout(contains(format!("{ENTRIES} entries computed")));
    let written = entries(&store);
    assert_eq!(written.len(), ENTRIES);

    precompute(home.path(), &store, &[])
        .assert()
        .success()
        .stdout(contains(format!("0 entries computed, {ENTRIES} already")));

    // Truncate one entry: the next run replaces it, and only it.
    let victim = written.iter().next().expect("an entry").clone();
    let path = store.join("v1").join(&victim[..2]).join(&victim);
    let bytes = std::fs::read(&path).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).expect("truncate");
    precompute(home.path(), &store, &[])
        .assert()
        .success()
        .stdout(contains("1 entries computed"))
        .stdout(contains("1 corrupt ones replaced"));
    assert_eq!(std::fs::read(&path).expect("read"), bytes);
}

#[test]
fn shards_split_the_work_without_overlap() {
    let home = tempfile::tempdir().expect("tempdir");
    let whole = home.path().join("whole");
    precompute(home.path(), &whole, &["--methods", "contrib"])
        .assert()
        .success();
    let mut union = BTreeSet::new();
    for shard in ["0/3", "1/3", "2/3"] {
        let part = home.path().join(shard.replace('/', "-of-"));
        precompute(
            home.path(),
            &part,
            &["--methods", "contrib", "--shard", shard],
        )
        .assert()
        .success();
        let got = entries(&part);
        assert!(union.is_disjoint(&got), "shard {shard} overlaps");
        union.extend(got);
    }
    assert_eq!(union, entries(&whole));
    precompute(home.path(), &whole, &["--shard", "3/3"])
        .assert()
        .failure()
        .stderr(contains("3/3"));
    precompute(home.path(), &whole, &["--methods", "cam,lime"])
        .assert()
        .failure()
        .stderr(contains("lime"));
}

#[test]
fn two_processes_fill_one_store_at_once() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = home.path().join("store");
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kneecam"))
            .env("KNEECAM_CACHE_DIR", home.path().join("cache"))
            .env("KNEECAM_DATA_DIR", home.path().join("data"))
            .args([
                "--device",
                "cpu",
                "precompute",
                "--methods",
                "cam,contrib",
                "--data",
            ])
            .arg(cohort())
            .args(["--models", "models/demo", "--cache"])
            .arg(&store)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().expect("a").success());
    assert!(b.wait().expect("b").success());
    assert_eq!(entries(&store).len(), EXAMS * 3 * 3 * 2);
    // Every entry sound: a third run computes nothing.
    precompute(home.path(), &store, &["--methods", "cam,contrib"])
        .assert()
        .success()
        .stdout(contains("0 entries computed"))
        .stdout(contains("0 corrupt"));
}

#[test]
fn predict_reads_the_store_and_agrees_with_the_models() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = home.path().join("store");
    let csv = |name: &str| home.path().join(name);
    kneecam(home.path())
        .args(["predict", "--models", "models/demo", "--data"])
        .arg(cohort())
        .arg("--cache")
        .arg(home.path().join("empty-store"))
        .arg("--out")
        .arg(csv("plain.csv"))
        .assert()
        .success();
    precompute(home.path(), &store, &["--methods", "cam"])
        .assert()
        .success();
    kneecam(home.path())
        .args(["predict", "--models", "models/demo", "--data"])
        .arg(cohort())
        .arg("--cache")
        .arg(&store)
        .arg("--out")
        .arg(csv("stored.csv"))
        .assert()
        .success();
    let plain = std::fs::read_to_string(csv("plain.csv")).expect("plain");
    let stored = std::fs::read_to_string(csv("stored.csv")).expect("stored");
    assert_eq!(plain, stored);
}

/// A models folder with one random-weight AlexNet MRNet (acl-sagittal), written by the
/// project's Python (torch) as a reference-style state dict.
fn mrnet_models(dir: &Path) -> PathBuf {
    let models = dir.join("mrnet-models");
    std::fs::create_dir_all(&models).expect("mkdir");
    let script = r#"
import sys, torch, torch.nn as nn
torch.manual_seed(0)
features = nn.Sequential(
    nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
    nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
    nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
    nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
    nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
state = {f"pretrained_model.features.{k}": v for k, v in features.state_dict().items()}
head = nn.Linear(256, 2)
state.update({f"classifer.{k}": v for k, v in head.state_dict().items()})
torch.save(state, sys.argv[1])
"#;
    let weights = models.join("acl-sagittal.pt");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".kneecam-python");
    let status = std::process::Command::new(python)
        .args(["-c", script])
        .arg(&weights)
        .status()
        .expect("the project's Python (scripts/setup-libtorch makes it)");
    assert!(status.success());
    let sha = kneecam::model::manifest::sha256_file(&weights).expect("sha256");
    std::fs::write(
        models.join("manifest.toml"),
        format!(
            "format = 1\n\n[models.acl-sagittal]\nfile = \"acl-sagittal.pt\"\narch = \"mrnet\"\n\
             classes = 2\nsha256 = \"{sha}\"\n"
        ),
    )
    .expect("manifest");
    models
}

#[test]
fn workers_share_the_exams_and_write_what_one_worker_writes() {
    let home = tempfile::tempdir().expect("tempdir");
    let (one, two) = (home.path().join("one"), home.path().join("two"));
    // One worker of one thread; then two workers, one thread each: the same arithmetic.
    for (store, threads, workers) in [(&one, "1", "1"), (&two, "2", "2")] {
        precompute(home.path(), store, &["--workers", workers])
            .env("OMP_NUM_THREADS", threads)
            .assert()
            .success()
            .stdout(contains(format!("{EXAMS} exams in")))
            .stdout(contains(format!("{ENTRIES} entries computed")));
    }
    let names = entries(&one);
    assert_eq!(names.len(), ENTRIES);
    assert_eq!(names, entries(&two), "every entry, once");
    for name in names {
        let read = |root: &Path| {
            std::fs::read(root.join("v1").join(&name[..2]).join(&name)).expect("an entry")
        };
        assert!(read(&one) == read(&two), "{name}: not the same bytes");
    }
}

#[test]
fn batched_forward_passes_give_the_same_entries() {
    let home = tempfile::tempdir().expect("tempdir");
    let models = mrnet_models(home.path());
    let (one, four) = (home.path().join("one"), home.path().join("four"));
    for (store, batch) in [(&one, "1"), (&four, "4")] {
        kneecam(home.path())
            .arg("precompute")
            .arg("--data")
            .arg(cohort())
            .arg("--models")
            .arg(&models)
            .arg("--cache")
            .arg(store)
            .args([
                "--methods",
                "contrib,gradcam",
                "--precision",
                "f32",
                "--batch",
                batch,
            ])
            .assert()
            .success();
    }
    let names = entries(&one);
    assert_eq!(names, entries(&four));
    assert_eq!(names.len(), EXAMS * 2, "one model, two methods");
    for name in names {
        let read = |root: &Path| {
            kneecam::cam::store::Store::read_path(&root.join("v1").join(&name[..2]).join(&name))
                .expect("a sound entry")
        };
        let (a, b) = (read(&one), read(&four));
        assert_eq!(a.raw.dim(), b.raw.dim());
        for (x, y) in a.logits.iter().zip(&b.logits) {
            assert!((x - y).abs() < 1e-3, "logits {x} vs {y}");
        }
        let scale = a.raw.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (x, y) in a.raw.iter().zip(b.raw.iter()) {
            assert!(
                (x - y).abs() <= 1e-3 * scale,
                "maps {x} vs {y} (scale {scale})"
            );
        }
    }
}

#[test]
fn an_interrupted_precompute_leaves_only_sound_entries() {
    let home = tempfile::tempdir().expect("tempdir");
    let store = home.path().join("store");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_kneecam"))
        .env("KNEECAM_CACHE_DIR", home.path().join("cache"))
        .env("KNEECAM_DATA_DIR", home.path().join("data"))
        .args(["--device", "cpu", "precompute", "--data"])
        .arg(cohort())
        .args(["--models", "models/demo", "--cache"])
        .arg(&store)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupt as soon as the first entries exist.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // (Counting files, not `entries`: a temporary file may exist while the child writes.)
    let any_file = || {
        std::fs::read_dir(store.join("v1"))
            .map(|mut buckets| buckets.next().is_some())
            .unwrap_or(false)
    };
    while !any_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = child.wait_with_output().expect("exits");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("interrupted") || text.contains(&format!("{ENTRIES} entries computed")),
        "{text}"
    );
    // No temporary file left, every entry sound, and a re-run completes the store.
    for name in entries(&store) {
        let path = store.join("v1").join(&name[..2]).join(&name);
        kneecam::cam::store::Store::read_path(&path).expect("a sound entry");
    }
    precompute(home.path(), &store, &[])
        .assert()
        .success()
        .stdout(contains("0 corrupt"));
    assert_eq!(entries(&store).len(), ENTRIES);
}
