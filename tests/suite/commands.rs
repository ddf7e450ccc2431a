//! The headless commands as users run them: real weights files, real exams, the real binary.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kneecam::data::npy::{read_header, write_u8_volume};
use kneecam::model::mrnet::Mrnet;
use ndarray::Array3;
use predicates::prelude::*;

fn kneecam(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("kneecam").expect("binary");
    cmd.env("KNEECAM_DATA_DIR", home.join("data"))
        .env("KNEECAM_CACHE_DIR", home.join("cache"));
    cmd
}

/// A random-weight MRNet saved as safetensors, and a small exam.
fn model_and_exam(dir: &Path) -> (PathBuf, PathBuf) {
    let net = crate::torch_rng(Some(3), || Mrnet::new(tch::Device::Cpu, 2));
    let model = dir.join("mrnet.safetensors");
    net.vs.save(&model).expect("save weights");
    let exam = dir.join("0007.npy");
    let volume = Array3::from_shape_fn((3, 128, 128), |(s, r, c)| {
        ((r * 2 + c + s * 40) % 256) as u8
    });
    write_u8_volume(&exam, &volume).expect("write exam");
    (model, exam)
}

#[test]
fn cam_writes_arrays_summary_and_pngs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (model, exam) = model_and_exam(dir.path());
    let out = dir.path().join("out");
    kneecam(dir.path())
        .args([
            "cam", "--device", "cpu", "--method", "contrib", "--png", "--model",
        ])
        .arg(&model)
        .arg("--exam")
        .arg(&exam)
        .arg("--out")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("3 slices"));
    assert_eq!(
        read_header(&out.join("cam.npy")).expect("cam.npy").shape,
        [3, 3, 3]
    );
    assert_eq!(
        read_header(&out.join("cam_u8.npy"))
            .expect("cam_u8.npy")
            .shape,
        [3, 128, 128]
    );
    assert!(out.join("slices/2.png").is_file() && out.join("cams/2.png").is_file());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("json");
    let class = summary["class"].as_u64().expect("class") as usize;
    let logit = summary["logits"][class].as_f64().expect("logit");
    let scores: f64 = summary["slice_scores"]
        .as_array()
        .expect("scores")
        .iter()
        .filter_map(|v| v.as_f64())
        .sum();
    let bias = summary["bias"].as_f64().expect("bias");
    assert!(
        (scores + bias - logit).abs() <= 1e-4 * logit.abs().max(1e-3),
        "{scores} + {bias} vs {logit}"
    );
    for key in ["load_model", "load_exam", "forward", "cam", "write"] {
        assert!(
            summary["timings_ms"][key].as_f64().is_some(),
            "timings_ms.{key}"
        );
    }
    assert_eq!(summary["method"], "contrib");
    assert_eq!(summary["model_sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn cam_refuses_bad_input_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (model, exam) = model_and_exam(dir.path());
    let run = |extra: &[&str], model: &Path, out: &Path| {
        let mut cmd = kneecam(dir.path());
        cmd.args(["cam", "--device", "cpu", "--model"])
            .arg(model)
            .arg("--exam")
            .arg(&exam)
            .arg("--out")
            .arg(out)
            .args(extra);
        cmd.assert()
    };
    let missing = dir.path().join("nope.safetensors");
    run(&[], &missing, &dir.path().join("o1"))
        .code(2)
        .stderr(predicate::str::contains(
            "expected a weights file or MODELS_DIR:task:plane",
        ));
    run(&["--class", "5"], &model, &dir.path().join("o2"))
        .code(2)
        .stderr(predicate::str::contains(
            "class 5 asked for, but the model has 2 output(s)",
        ));
    let occupied = dir.path().join("o3");
    std::fs::create_dir_all(&occupied).expect("mkdir");
    std::fs::write(occupied.join("keep.txt"), "mine").expect("write");
    run(&[], &model, &occupied)
        .code(2)
        .stderr(predicate::str::contains("is not empty"));
    assert_eq!(
        std::fs::read_to_string(occupied.join("keep.txt")).expect("kept"),
        "mine"
    );
    run(
        &[],
        Path::new("models/demo:acl:sagital"),
        &dir.path().join("o4"),
    )
    .code(2)
    .stderr(predicate::str::contains("unknown plane 'sagital'"));
    let not_a_model = dir.path().join("notes.safetensors");
    std::fs::write(&not_a_model, "hello").expect("write");
    run(&[], &not_a_model, &dir.path().join("o5"))
        .code(2)
        .stderr(predicate::str::contains("notes.safetensors"));
}

/// A bare weights file has no task or plane: its errors name the file only, once.
#[test]
fn a_bad_bare_weights_file_is_named_without_a_task_or_plane() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, exam) = model_and_exam(dir.path());
    let not_a_model = dir.path().join("notes.safetensors");
    std::fs::write(&not_a_model, "hello").expect("write");
    let out = kneecam(dir.path())
        .args(["cam", "--device", "cpu", "--model"])
        .arg(&not_a_model)
        .arg("--exam")
        .arg(&exam)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("abnormal"), "{stderr}");
    assert!(!stderr.contains("axial"), "{stderr}");
    assert_eq!(stderr.matches("notes.safetensors").count(), 1, "{stderr}");
}

#[test]
fn cam_errors_say_each_thing_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (model, _) = model_and_exam(dir.path());
    let cam = |exam: &Path, out: &str| {
        let output = kneecam(dir.path())
            .args(["cam", "--device", "cpu", "--model"])
            .arg(&model)
            .arg("--exam")
            .arg(exam)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .expect("runs");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let folder = dir.path().join("exams");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let stderr = cam(&folder, "o1");
    assert_eq!(
        stderr,
        format!(
            "kneecam: {}: no DICOM series or NIfTI volume here: expected a .npy file, a DICOM \
             series' (or study's) folder, a DICOM file or a NIfTI volume\n",
            folder.display()
        )
    );
    let small = dir.path().join("0001.npy");
    write_u8_volume(&small, &Array3::zeros((2, 20, 20))).expect("write exam");
    let stderr = cam(&small, "o2");
    // Refused before libtorch sees it, said once.
    assert_eq!(
        stderr,
        "kneecam: the series of 20×20 px is smaller than the model's input needs (at least \
         63×63 px)\n"
    );
}

/// A TorchScript GAP classifier with 3 classes, made by the virtualenv's PyTorch.
fn toy_torchscript(path: &Path) {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.kneecam-python");
    assert!(
        Path::new(python).exists(),
        "{python} is missing: run scripts/setup-libtorch"
    );
    let script = r#"
import sys, torch
from torch import nn
torch.manual_seed(0)
class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU())
        self.fc = nn.Linear(16, 3)
    def forward(self, x):
        f = self.body(x)
        return self.fc(f.mean((2, 3))), f
with torch.no_grad():
    torch.jit.save(torch.jit.trace(Toy().eval(), torch.rand(1, 3, 224, 224)), sys.argv[1])
"#;
    let status = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(path)
        .status()
        .expect("python runs");
    assert!(status.success());
}

#[test]
fn cam_on_a_photo_ranks_classes_and_writes_one_overlay_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    toy_torchscript(&models.join("toy.pt"));
    let sha = kneecam::model::manifest::sha256_file(&models.join("toy.pt")).expect("hash");
    let manifest = format!("format = 1\n\n[images.toy]\nfile = \"toy.pt\"\narch = \"torchscript\"\nclasses = 3\nsha256 = \"{sha}\"\nclassifier = \"fc.weight\"\n");
    std::fs::write(models.join("manifest.toml"), manifest).expect("manifest");
    let photo = dir.path().join("photo.png");
    image::RgbImage::from_fn(120, 90, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 2) as u8, 90])
    })
    .save(&photo)
    .expect("png");
    let labels = dir.path().join("classes.txt");
    std::fs::write(&labels, "tabby cat\ngolden retriever\ntoaster\n").expect("labels");
    let out = dir.path().join("out");
    let assert = kneecam(dir.path())
        .args(["cam", "--device", "cpu", "--topk", "2", "--image"])
        .arg(&photo)
        .arg("--model")
        .arg(format!("{}:toy", models.display()))
        .arg("--labels")
        .arg(&labels)
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert_eq!(
        stdout.lines().filter(|l| l.contains(" %")).count(),
        2,
        "{stdout}"
    );
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(
        written[0].starts_with("1_") && written[1].starts_with("2_"),
        "{written:?}"
    );
    let overlay = image::open(out.join(&written[0])).expect("overlay png");
    assert_eq!(
        (overlay.width(), overlay.height()),
        (120, 90),
        "the overlay has the photo's size"
    );

    // Without a manifest entry, a TorchScript file is never loaded.
    kneecam(dir.path())
        .args(["cam", "--device", "cpu", "--image"])
        .arg(&photo)
        .arg("--model")
        .arg(format!("{}:resnet18", models.display()))
        .arg("--out")
        .arg(dir.path().join("out2"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no [images.resnet18] entry"));
}
