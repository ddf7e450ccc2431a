//! The checkpoints MRNet users have, as their training code wrote them, against real PyTorch
//! 2.13.0: the reference code's whole pickled modules (`torch.save(mrnet)`, module `model`,
//! class `MRNet`, both classifier sizes), Stanford's state dicts (no extension; zip and legacy
//! format), legacy whole modules, and a whole module that would run `os.system` when loaded.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use kneecam::cam::{self, CamSpec, Method, Normalization, Placement};
use kneecam::data::npy;
use kneecam::model::manifest::{self, Arch, ModelEntry};
use kneecam::model::network::Network;
use kneecam::model::preprocess::Preprocess;
use kneecam::model::weights::{self, FileKind, Holds, KeyFamily, TorchFormat, WeightsError};
use tch::{Device, Tensor};

use crate::py_fixtures::{self, assert_close};

use crate::binary;

/// argv[1]: the folder to write; argv[2]: the folder it will be renamed to.
const FIXTURES_PY: &str = r#"
import os, sys
import numpy as np
import torch, torch.nn as nn, torchvision
from safetensors.torch import save_file

out, final = sys.argv[1], sys.argv[2]
torch.manual_seed(0)

# The blog series' model.py, imported as module `model` exactly as its train.py does.
with open(f"{out}/model.py", "w") as source:
    source.write('''
import torch
import torch.nn as nn
from torchvision import models

class MRNet(nn.Module):
    def __init__(self, classes=2):
        super().__init__()
        self.pretrained_model = models.alexnet(weights=None)
        self.pooling_layer = nn.AdaptiveAvgPool2d(1)
        self.classifer = nn.Linear(256, classes)

    def forward(self, x):
        x = torch.squeeze(x, dim=0)
        features = self.pretrained_model.features(x)
        pooled_features = self.pooling_layer(features)
        pooled_features = pooled_features.view(pooled_features.size(0), -1)
        flattened_features = torch.max(pooled_features, 0, keepdim=True)[0]
        output = self.classifer(flattened_features)
        return output
''')
sys.path.insert(0, out)
import model

def shrink_head(alexnet):
    # AlexNet's 9216→4096→4096 head (unused by MRNet, 230 MB) at a test's size, same layout.
    alexnet.classifier[1] = nn.Linear(9216, 8)
    alexnet.classifier[4] = nn.Linear(8, 8)
    alexnet.classifier[6] = nn.Linear(8, 3)

class StanfordMRNet(nn.Module):  # Stanford's model.py
    def __init__(self):
        super().__init__()
        self.model = torchvision.models.alexnet(weights=None)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(256, 1)

    def forward(self, x):
        x = torch.squeeze(x, dim=0)
        x = self.model.features(x)
        x = self.gap(x).view(x.size(0), -1)
        x = torch.max(x, 0, keepdim=True)[0]
        return self.classifier(x)

class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {final}/PWNED",))

rng = np.random.default_rng(0)
volume = rng.integers(0, 256, size=(3, 256, 256), dtype=np.uint8)
np.save(f"{out}/exam.npy", volume)
x = torch.from_numpy(np.stack((volume,) * 3, axis=1)).float()  # the reference loader's input
expected = {}

for name, classes in [("model_demo_acl_sagittal_val_auc_0.8123_train_auc_0.9012_epoch_7.pth", 2),
                      ("model_old_meniscus_coronal_val_auc_0.7000_train_auc_0.8000_epoch_3.pth", 1)]:
    mrnet = model.MRNet(classes).eval()
    shrink_head(mrnet.pretrained_model)
    torch.save(mrnet, f"{out}/{name}")
    with torch.no_grad():
        features = mrnet.pretrained_model.features(x)
        k = 1 if classes == 2 else 0
        expected[f"{classes}_logits"] = mrnet(x.unsqueeze(0)).flatten()
        expected[f"{classes}_cam"] = torch.einsum("c,schw->shw", mrnet.classifer.weight[k], features)
    if classes == 2:
        torch.save(mrnet, f"{out}/model_legacy_abnormal_axial_val_auc_0.5000_train_auc_0.5000_epoch_1.pth",
                   _use_new_zipfile_serialization=False)
        torch.save(mrnet.state_dict(), f"{out}/state_dict_legacy.pt", _use_new_zipfile_serialization=False)
        mrnet.runs_code = RunsCode()
        torch.save(mrnet, f"{out}/model_evil_acl_axial_val_auc_0.9000_train_auc_0.9000_epoch_1.pth")
        del mrnet.runs_code
        torch.save(nn.DataParallel(mrnet), f"{out}/dataparallel_whole.pth")

stanford = StanfordMRNet().eval()
shrink_head(stanford.model)
torch.save(stanford.state_dict(), f"{out}/stanford_acl")
torch.save(stanford.state_dict(), f"{out}/stanford_acl_legacy", _use_new_zipfile_serialization=False)
# Stanford's loader: centre crop to 224, min-max to 0-255 per series, (x - 58.09) / 49.73.
v = volume[:, 16:-16, 16:-16].astype(np.float64)
v = (v - v.min()) / (v.max() - v.min()) * 255
v = (v - 58.09) / 49.73
xs = torch.from_numpy(np.stack((v,) * 3, axis=1)).float()
with torch.no_grad():
    expected["stanford_logits"] = stanford(xs.unsqueeze(0)).flatten()
    expected["stanford_cam"] = torch.einsum("c,schw->shw", stanford.classifier.weight[0],
                                            stanford.model.features(xs))
save_file({k: v.contiguous() for k, v in expected.items()}, f"{out}/expected.safetensors")
"#;

fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| py_fixtures::make("checkpoint-fixtures", FIXTURES_PY))
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

const REFERENCE_2: &str = "model_demo_acl_sagittal_val_auc_0.8123_train_auc_0.9012_epoch_7.pth";
const REFERENCE_1: &str = "model_old_meniscus_coronal_val_auc_0.7000_train_auc_0.8000_epoch_3.pth";
const LEGACY_WHOLE: &str =
    "model_legacy_abnormal_axial_val_auc_0.5000_train_auc_0.5000_epoch_1.pth";
const RUNS_CODE: &str = "model_evil_acl_axial_val_auc_0.9000_train_auc_0.9000_epoch_1.pth";

fn expected(name: &str) -> Tensor {
    py_fixtures::expected(fixtures(), name)
}

/// kneecam's logits and raw CAM (`cam`, the positive class) of `net` on the fixture exam,
/// preprocessed as said.
fn logits_and_cam(net: &Network, preprocess: Preprocess, class: i64) -> (Tensor, Tensor) {
    let volume = npy::read_volume(&fixture("exam.npy")).expect("exam.npy");
    let x = preprocess.input(&volume.data, Device::Cpu);
    let (_, height, width) = volume.data.dim();
    let spec = CamSpec {
        method: Method::Cam,
        class: Some(class as usize),
        normalization: Normalization::Exam,
    };
    let placement = Placement {
        window: preprocess.window(height, width),
        slice: (height, width),
    };
    let explanation = cam::explain(net, &x, &spec, placement).expect("explain");
    let raw = &explanation.raw;
    let (s, h, w) = raw.dim();
    let cam = Tensor::from_slice(raw.as_slice().expect("contiguous"))
        .view([s as i64, h as i64, w as i64]);
    (Tensor::from_slice(&explanation.logits), cam)
}

#[test]
fn the_reference_codes_whole_module_checkpoints_load_with_pytorchs_logits_and_cam() {
    for (file, classes) in [(REFERENCE_2, 2), (REFERENCE_1, 1), (LEGACY_WHOLE, 2)] {
        let (net, entry, family) =
            manifest::load_weights_file(&fixture(file), None, Device::Cpu).expect(file);
        assert_eq!(
            (entry.classes, entry.preprocess, family),
            (classes, Preprocess::Raw, KeyFamily::Reference)
        );
        let (logits, cam) = logits_and_cam(&net, entry.preprocess, entry.positive_class() as i64);
        // The legacy file is the two-output model saved the old way.
        assert_close(&logits, &expected(&format!("{classes}_logits")), file);
        assert_close(&cam, &expected(&format!("{classes}_cam")), file);
    }
    assert_eq!(
        weights::inspect(&fixture(REFERENCE_2)).expect("inspect"),
        FileKind::Torch {
            format: TorchFormat::Zip,
            holds: Holds::Module {
                class: "model.MRNet".into()
            }
        }
    );
    assert_eq!(
        weights::inspect(&fixture(LEGACY_WHOLE)).expect("inspect"),
        FileKind::Torch {
            format: TorchFormat::Legacy,
            holds: Holds::Module {
                class: "model.MRNet".into()
            }
        }
    );
}

#[test]
fn legacy_state_dicts_and_data_parallel_modules_give_the_same_logits() {
    for file in ["state_dict_legacy.pt", "dataparallel_whole.pth"] {
        let (net, entry, _) =
            manifest::load_weights_file(&fixture(file), None, Device::Cpu).expect(file);
        let (logits, _) = logits_and_cam(&net, entry.preprocess, 1);
        assert_close(&logits, &expected("2_logits"), file);
    }
}

#[test]
fn stanfords_state_dicts_load_with_stanfords_preprocessing() {
    for file in ["stanford_acl", "stanford_acl_legacy"] {
        let (net, entry, family) =
            manifest::load_weights_file(&fixture(file), None, Device::Cpu).expect(file);
        assert_eq!(
            (family, entry.classes, entry.preprocess),
            (KeyFamily::Stanford, 1, Preprocess::Crop224Norm)
        );
        let (logits, cam) = logits_and_cam(&net, entry.preprocess, 0);
        assert_close(&logits, &expected("stanford_logits"), file);
        assert_close(&cam, &expected("stanford_cam"), file);
    }
}

#[test]
fn a_whole_module_that_would_run_os_system_is_refused_and_nothing_runs() {
    let err = weights::read_state_dict(&fixture(RUNS_CODE)).expect_err("refused");
    assert!(
        matches!(&err, WeightsError::Refused { global, .. } if global == "posix.system" || global == "os.system"),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(RUNS_CODE) && message.contains("would call"),
        "{message}"
    );
    assert!(!fixture("PWNED").exists(), "the pickled command ran");
}

fn kneecam(home: &Path) -> Command {
    binary::kneecam(home)
}

fn summary_logits(out: &Path) -> Tensor {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let logits: Vec<f32> = json["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect();
    Tensor::from_slice(&logits)
}

#[test]
fn cam_takes_the_files_as_they_are_and_says_which_preprocessing_it_chose() {
    let home = tempfile::tempdir().expect("tempdir");
    let run = |model: &str, extra: &[&str], out: &str| {
        let out = home.path().join(out);
        let assert = kneecam(home.path())
            .args(["cam", "--model"])
            .arg(fixture(model))
            .arg("--exam")
            .arg(fixture("exam.npy"))
            .arg("--out")
            .arg(&out)
            .args(extra)
            .assert()
            .success();
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        (out, stderr)
    };
    let (out, _) = run(REFERENCE_2, &[], "reference");
    assert_close(&summary_logits(&out), &expected("2_logits"), REFERENCE_2);
    let (out, stderr) = run("stanford_acl", &[], "stanford");
    assert!(
        stderr.contains("Stanford") && stderr.contains("crop224-norm"),
        "{stderr}"
    );
    assert_close(
        &summary_logits(&out),
        &expected("stanford_logits"),
        "stanford_acl",
    );
    let (out, stderr) = run("stanford_acl", &["--preprocess", "raw"], "stanford-raw");
    assert!(!stderr.contains("Stanford"), "{stderr}");
    let summary = std::fs::read_to_string(out.join("summary.json")).expect("summary");
    assert!(summary.contains("\"preprocess\": \"raw\""), "{summary}");

    let refused = kneecam(home.path())
        .args(["cam", "--model"])
        .arg(fixture(RUNS_CODE))
        .arg("--exam")
        .arg(fixture("exam.npy"))
        .arg("--out")
        .arg(home.path().join("evil"))
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&refused.get_output().stderr);
    assert!(
        stderr.contains("system") && stderr.contains("nothing in this file was run"),
        "{stderr}"
    );
    assert!(!fixture("PWNED").exists(), "the pickled command ran");
}

#[test]
fn a_whole_module_checkpoint_is_a_manifest_entry_and_a_training_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).expect("mkdir");
    std::fs::copy(fixture(REFERENCE_2), models.join("acl.pth")).expect("copy");
    let sha256 = manifest::sha256_file(&models.join("acl.pth")).expect("hash");
    let entry = ModelEntry::new("acl.pth", Arch::Mrnet, 2, Preprocess::Raw, sha256);
    let net = manifest::load_network(&models, &entry, Device::Cpu).expect("entry loads");
    let (logits, _) = logits_and_cam(&net, Preprocess::Raw, 1);
    assert_close(&logits, &expected("2_logits"), "manifest entry");

    let data = dir.path().join("data");
    crate::training::dataset(&data);
    kneecam(dir.path())
        .args([
            "train", "--arch", "mrnet", "--task", "acl", "--plane", "axial", "--epochs", "1",
        ])
        .args(["--no-augment", "--init"])
        .arg(fixture(REFERENCE_2))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(dir.path().join("trained"))
        .assert()
        .success();
}

#[test]
fn models_import_turns_checkpoints_into_a_models_folder_with_provenance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("models");
    let import = |files: &[&str], extra: &[&str]| {
        let mut cmd = kneecam(dir.path());
        cmd.args(["models", "import"]);
        for file in files {
            cmd.arg(fixture(file));
        }
        cmd.arg("--into").arg(&models).args(extra);
        cmd.assert()
    };
    let unnamed = import(&[REFERENCE_2, "stanford_acl"], &[]).failure();
    let stderr = String::from_utf8_lossy(&unnamed.get_output().stderr).into_owned();
    assert!(
        stderr.contains("stanford_acl") && stderr.contains("--task and --plane"),
        "{stderr}"
    );
    assert!(!models.exists(), "a failed import wrote something");

    import(&[REFERENCE_2, REFERENCE_1], &[]).success();
    import(&["stanford_acl"], &["--task", "acl", "--plane", "axial"]).success();
    let manifest = manifest::Manifest::load(&models).expect("manifest");
    let entry = manifest
        .model(kneecam::data::Task::Acl, kneecam::data::Plane::Sagittal)
        .expect("acl-sagittal");
    assert_eq!(
        (entry.classes, entry.auc, entry.epochs),
        (2, Some(0.8123), Some(7))
    );
    assert_eq!(entry.imported_from.as_deref(), Some(REFERENCE_2));
    assert_eq!(
        entry.imported_sha256,
        Some(manifest::sha256_file(&fixture(REFERENCE_2)).expect("hash"))
    );
    let net = manifest::load_network(&models, entry, Device::Cpu).expect("the imported file loads");
    assert_close(
        &logits_and_cam(&net, entry.preprocess, 1).0,
        &expected("2_logits"),
        "imported",
    );
    let meniscus = manifest
        .model(kneecam::data::Task::Meniscus, kneecam::data::Plane::Coronal)
        .expect("meniscus-coronal");
    assert_eq!(meniscus.classes, 1);
    let stanford = manifest
        .model(kneecam::data::Task::Acl, kneecam::data::Plane::Axial)
        .expect("acl-axial");
    assert_eq!(stanford.preprocess, Preprocess::Crop224Norm);
    let net = manifest::load_network(&models, stanford, Device::Cpu).expect("stanford loads");
    assert_close(
        &logits_and_cam(&net, stanford.preprocess, 0).0,
        &expected("stanford_logits"),
        "stanford",
    );

    let again = import(&[REFERENCE_2], &[]).failure();
    assert!(String::from_utf8_lossy(&again.get_output().stderr).contains("--replace"));
    import(&[REFERENCE_2], &["--replace"]).success();
    let evil = import(&[RUNS_CODE], &[]).failure();
    assert!(String::from_utf8_lossy(&evil.get_output().stderr).contains("would call"));
    assert!(!models.join("acl-axial.safetensors.tmp").exists() && !fixture("PWNED").exists());
}
