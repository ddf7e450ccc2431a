//! The torchvision networks built natively (`kneecam::model::vision`) against torchvision 0.28
//! itself: random-weight resnet18, densenet161 and squeezenet1_1 state dicts (batch-norm
//! statistics randomised too) written by the virtualenv of scripts/setup-libtorch (through
//! `.kneecam-python`), once per version of the fixture script, into cargo's target tmp folder,
//! with PyTorch's logits, CAMs and a Grad-CAM for one fixed input x[1, 3, 112, 112].
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::py_fixtures::{self, assert_close};
use kneecam::cam::{self, CamSpec, Method, Normalization, Placement};
use kneecam::model::vision::{imagenet, VisionArch, VisionError, VisionNet};
use kneecam::model::weights::WeightsError;
use predicates::prelude::*;
use tch::{Device, Tensor};

/// Writes every fixture into the folder given as argv[1]. Deterministic (fixed seed).
const FIXTURES_PY: &str = r#"
import re, sys
import torch, torchvision
import torch.nn.functional as F
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(0)
x = (torch.rand(1, 3, 112, 112) - 0.45) / 0.225
expected = {"x": x}

def randomise_batch_norms(model):
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.num_batches_tracked.fill_(7)

def features(name, model, x):
    if name == "resnet18":
        return torch.nn.Sequential(*list(model.children())[:-2])(x)
    if name == "densenet161":
        return F.relu(model.features(x))
    return model.features(x)

for name in ["resnet18", "densenet161", "squeezenet1_1"]:
    model = getattr(torchvision.models, name)(weights=None)
    randomise_batch_norms(model)
    model.eval()
    sd = model.state_dict()
    if name == "squeezenet1_1":
        save_file({k: v.contiguous() for k, v in sd.items()}, f"{out}/{name}.safetensors")
        torch.save(sd, f"{out}/{name}_legacy_format.pth", _use_new_zipfile_serialization=False)
        bad = dict(sd)
        bad["features.12.expand3x3.bias_old"] = bad.pop("features.12.expand3x3.bias")
        bad["features.0.weight"] = torch.zeros(64, 3, 5, 5)
        save_file({k: v.contiguous() for k, v in bad.items()}, f"{out}/{name}_bad.safetensors")
    else:
        torch.save(sd, f"{out}/{name}.pth")
    if name == "densenet161":
        legacy = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
                  for k, v in sd.items()}
        assert any(".norm.1." in k for k in legacy)
        # As torchvision publishes densenet161-8d451a50.pth: legacy keys, in the legacy format.
        torch.save(legacy, f"{out}/{name}_legacy.pth", _use_new_zipfile_serialization=False)
    with torch.no_grad():
        logits = model(x)[0]
        f = features(name, model, x)
    weight = sd[{"resnet18": "fc.weight", "densenet161": "classifier.weight",
                 "squeezenet1_1": "classifier.1.weight"}[name]]
    weight = weight.reshape(weight.shape[0], -1)
    k = int(logits.argmax())
    expected[f"{name}.logits"] = logits
    expected[f"{name}.cam"] = torch.einsum("c,schw->shw", weight[k], f)
    if name == "squeezenet1_1":
        # Grad-CAM through the true head: the 1x1 convolution, ReLU, average pool.
        leaf = f.detach().requires_grad_(True)
        logit = model.classifier(leaf).flatten(1)[0, k]
        (grads,) = torch.autograd.grad(logit, leaf)
        expected[f"{name}.gradcam"] = torch.einsum("sc,schw->shw", grads.mean((2, 3)), f)
save_file({k: v.contiguous() for k, v in expected.items()}, f"{out}/expected.safetensors")
"#;

/// The fixture folder, made once per version of FIXTURES_PY (and reused by later runs).
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| py_fixtures::make("vision-fixtures", FIXTURES_PY))
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

fn expected(name: &str) -> Tensor {
    py_fixtures::expected(fixtures(), name)
}

fn load(arch: VisionArch, file: &str) -> VisionNet {
    crate::torch_rng(None, || VisionNet::load(arch, &fixture(file), Device::Cpu))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The logits of x and the raw map (S, h, w) of `method` for the top class, as a tensor.
fn logits_and_map(net: &VisionNet, method: Method) -> (Tensor, Tensor, usize) {
    let x = expected("x");
    let spec = CamSpec {
        method,
        class: None,
        normalization: Normalization::Exam,
    };
    let placement = Placement {
        window: (0, 0, 112, 112),
        slice: (112, 112),
    };
    let explanation = cam::explain(net, &x, &spec, placement).expect("explain");
    let raw = &explanation.raw;
    let (s, h, w) = raw.dim();
    let map = Tensor::from_slice(raw.as_slice().expect("contiguous"))
        .view([s as i64, h as i64, w as i64]);
    (
        Tensor::from_slice(&explanation.logits),
        map,
        explanation.class,
    )
}

fn check_against_torchvision(arch: VisionArch, net: &VisionNet) {
    let (logits, map, class) = logits_and_map(net, Method::Cam);
    let want = expected(&format!("{arch}.logits"));
    assert_close(&logits, &want, &format!("{arch} logits"));
    assert_eq!(
        class as i64,
        want.argmax(0, false).int64_value(&[]),
        "{arch} top class"
    );
    assert_close(
        &map,
        &expected(&format!("{arch}.cam")),
        &format!("{arch} CAM"),
    );
}

#[test]
fn resnet18_from_a_pth_state_dict_matches_torchvision() {
    let net = load(VisionArch::Resnet18, "resnet18.pth");
    check_against_torchvision(VisionArch::Resnet18, &net);
}

/// Every parameter and batch-norm statistic of `a` equals `b`'s.
fn assert_same_weights(a: &VisionNet, b: &VisionNet, what: &str) {
    let variables = a.vs().variables();
    let others = b.vs().variables();
    assert_eq!(variables.len(), others.len(), "{what}");
    for (name, t) in &variables {
        let other = others
            .get(name)
            .unwrap_or_else(|| panic!("{what} lacks {name}"));
        assert!(t.equal(other), "{name} differs in {what}");
    }
}

#[test]
fn densenet161_matches_torchvision_and_its_legacy_keys_load_the_same_weights() {
    let net = load(VisionArch::Densenet161, "densenet161.pth");
    check_against_torchvision(VisionArch::Densenet161, &net);
    let legacy = load(VisionArch::Densenet161, "densenet161_legacy.pth");
    assert_same_weights(&net, &legacy, "the legacy-key, legacy-format file");
}

#[test]
fn squeezenet1_1_from_safetensors_matches_torchvision_through_its_true_head() {
    let net = load(VisionArch::Squeezenet11, "squeezenet1_1.safetensors");
    check_against_torchvision(VisionArch::Squeezenet11, &net);
    let legacy = load(VisionArch::Squeezenet11, "squeezenet1_1_legacy_format.pth");
    assert_same_weights(&net, &legacy, "the legacy-format .pth");
    // Grad-CAM's gradients flow through the 1×1 convolution and ReLU, not a linear head.
    let (_, gradcam, _) = logits_and_map(&net, Method::GradCam);
    assert_close(
        &gradcam,
        &expected("squeezenet1_1.gradcam"),
        "squeezenet1_1 Grad-CAM",
    );
}

#[test]
fn mismatched_keys_are_all_named_with_the_file() {
    let path = fixture("squeezenet1_1_bad.safetensors");
    let err = crate::torch_rng(None, || {
        VisionNet::load(VisionArch::Squeezenet11, &path, Device::Cpu)
    })
    .expect_err("a file with wrong keys");
    assert!(
        matches!(err, VisionError::Weights(WeightsError::Mismatch { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    for part in [
        path.display().to_string(),
        "missing features.12.expand3x3.bias (expected shape [256])".into(),
        "unexpected features.12.expand3x3.bias_old (shape [256])".into(),
        "wrong shape for features.0.weight: expected [64, 3, 3, 3], found [64, 3, 5, 5]".into(),
    ] {
        assert!(text.contains(&part), "no {part:?} in:\n{text}");
    }
}

#[test]
fn a_file_of_another_architecture_is_refused_naming_it() {
    let path = fixture("squeezenet1_1.safetensors");
    let err = crate::torch_rng(None, || {
        VisionNet::load(VisionArch::Resnet18, &path, Device::Cpu)
    })
    .expect_err("squeezenet weights as resnet18");
    assert!(
        matches!(
            err,
            VisionError::WrongArch {
                found: VisionArch::Squeezenet11,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("use --arch squeezenet1_1"), "{text}");
}

fn kneecam(home: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("kneecam").expect("binary");
    cmd.env("KNEECAM_DATA_DIR", home.join("data"))
        .env("KNEECAM_CACHE_DIR", home.join("cache"));
    cmd
}

fn photo(dir: &Path) -> PathBuf {
    let path = dir.join("photo.png");
    image::RgbImage::from_fn(160, 120, |x, y| {
        image::Rgb([(x * 3 % 256) as u8, (y * 2) as u8, ((x + y) % 200) as u8])
    })
    .save(&path)
    .expect("png");
    path
}

#[test]
fn cam_on_a_photo_with_torchvision_weights_writes_top5_overlays_with_imagenet_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = photo(dir.path());
    let out = dir.path().join("out");
    let assert = kneecam(dir.path())
        .args([
            "cam", "--device", "cpu", "--topk", "5", "--arch", "resnet18", "--image",
        ])
        .arg(&photo)
        .arg("--weights")
        .arg(fixture("resnet18.pth"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    let ranked: Vec<&str> = stdout.lines().filter(|l| l.contains(" %")).collect();
    assert_eq!(ranked.len(), 5, "{stdout}");
    let names = imagenet::class_names();
    for line in &ranked {
        let class: usize = line
            .split_whitespace()
            .skip_while(|w| *w != "class")
            .nth(1)
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("no class index in {line:?}"));
        assert!(
            line.contains(names[class]),
            "{line:?} lacks ImageNet's {:?}",
            names[class]
        );
    }
    let mut written: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written.len(), 5, "{written:?}");
    for (rank, name) in written.iter().enumerate() {
        assert!(
            name.starts_with(&format!("{}_", rank + 1)) && name.ends_with(".png"),
            "{name}"
        );
    }
    let overlay = image::open(out.join(&written[0])).expect("overlay png");
    assert_eq!(
        (overlay.width(), overlay.height()),
        (160, 120),
        "the photo's size"
    );
}

#[test]
fn cam_with_the_wrong_arch_for_a_file_is_bad_input_naming_both() {
    let dir = tempfile::tempdir().expect("temp dir");
    let photo = photo(dir.path());
    let weights = fixture("squeezenet1_1.safetensors");
    kneecam(dir.path())
        .args(["cam", "--device", "cpu", "--arch", "densenet161", "--image"])
        .arg(&photo)
        .arg("--weights")
        .arg(&weights)
        .arg("--out")
        .arg(dir.path().join("out"))
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains(weights.display().to_string())
                .and(predicate::str::contains("squeezenet1_1 weights"))
                .and(predicate::str::contains("not densenet161's")),
        );
    // --arch needs --weights, and names only the archs there are.
    kneecam(dir.path())
        .args(["cam", "--arch", "resnet50", "--weights", "w.pth", "--image"])
        .arg(&photo)
        .args(["--out", "o"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "expected resnet18, densenet161 or squeezenet1_1",
        ));
}
