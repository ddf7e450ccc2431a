//! Weights and TorchScript loading against real files written by PyTorch 2.13.0 (the virtualenv
//! of scripts/setup-libtorch, run through `.kneecam-python`). The Python fixtures are made once
//! per fixture-script version into cargo's target tmp folder.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kneecam::data::{Plane, Task};
use kneecam::model::manifest::{self, Arch, Manifest, ModelEntry, ModelError};
use kneecam::model::mrnet::Mrnet;
use kneecam::model::network::{head, GapNetwork, Network};
use kneecam::model::preprocess::Preprocess;
use kneecam::model::script::{ScriptError, ScriptNet};
use kneecam::model::weights::{self, FileKind, Holds, KeyProblem, TorchFormat, WeightsError};
use tch::{Device, Kind, Tensor};

use crate::py_fixtures;

const EXPORT_STATE_DICT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/export_state_dict.py");

/// Writes every fixture into the folder given as argv[1]. Deterministic (fixed seeds).
const FIXTURES_PY: &str = r#"
import collections, sys
import torch, torch.nn as nn
from safetensors.torch import save_file

out = sys.argv[1]
torch.manual_seed(0)

def alexnet_features():
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))

class AlexNetFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = alexnet_features()

class MRNet(nn.Module):  # pickled as __main__.MRNet, as the reference training script does
    def __init__(self):
        super().__init__()
        self.pretrained_model = AlexNetFeatures()
        self.pooling_layer = nn.AdaptiveAvgPool2d(1)
        self.classifer = nn.Linear(256, 2)

    def forward(self, x):  # x: [S, 3, H, W]
        pooled = self.pooling_layer(self.pretrained_model.features(x)).flatten(1)
        return self.classifer(pooled.max(0)[0])

model = MRNet().eval()
x = torch.rand(3, 3, 96, 96) * 255
with torch.no_grad():
    logits = model(x)
sd = model.state_dict()
torch.save(sd, f"{out}/mrnet_classifer.pt")
renamed = {k.replace("classifer.", "classifier."): v.clone() for k, v in sd.items()}
renamed["pretrained_model.classifier.1.weight"] = torch.randn(8, 4)  # AlexNet's unused head
renamed["pretrained_model.classifier.1.bias"] = torch.randn(8)
save_file(renamed, f"{out}/mrnet_classifier.safetensors")
torch.save(model, f"{out}/mrnet_whole.pt")

views = collections.OrderedDict(sd)  # non-contiguous and offset views, pickle protocol 4
views["classifer.weight"] = sd["classifer.weight"].t().contiguous().t()
views["classifer.bias"] = torch.cat([torch.zeros(5), sd["classifer.bias"], torch.zeros(3)])[5:7]
torch.save(views, f"{out}/mrnet_views_protocol4.pt", pickle_protocol=4)

half = collections.OrderedDict((f"module.{k}", v.half()) for k, v in sd.items())
torch.save(half, f"{out}/mrnet_dataparallel_half.pt")
model.load_state_dict({k[len("module."):]: v.float() for k, v in half.items()})
with torch.no_grad():
    logits_half = model(x)

class TinyCam(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU())
        self.fc = nn.Linear(16, 2)

    def forward(self, x):
        f = self.body(x)
        return self.fc(f.mean((2, 3))), f

class LogitsOnly(TinyCam):
    def forward(self, x):
        return self.fc(self.body(x).mean((2, 3)))

# torch.jit.script reads the class's source, which `python -c` lacks: it goes in a module file.
with open(f"{out}/extra_method.py", "w") as source:
    source.write("""
import torch
from torch import nn

class WithExtraMethod(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU())
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        f = self.body(x)
        return self.fc(f.mean((2, 3))), f

    @torch.jit.export
    def side_door(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2
""")
sys.path.insert(0, out)
from extra_method import WithExtraMethod

cam = TinyCam().eval()
xs = torch.rand(2, 3, 32, 32) * 255
with torch.no_grad():
    torch.jit.save(torch.jit.trace(cam, xs), f"{out}/script_ok.pt")
    torch.jit.save(torch.jit.trace(LogitsOnly().eval(), xs), f"{out}/script_logits_only.pt")
    torch.jit.save(torch.jit.script(WithExtraMethod().eval()), f"{out}/script_extra_method.pt")
    f = cam.body(xs)
    script_logits = cam.fc(f.mean((2, 3)).max(0)[0])  # MRNet's head on the module's features
save_file({"x": x, "logits": logits, "logits_half": logits_half, "xs": xs,
           "script_logits": script_logits, "script_fc_weight": cam.fc.weight.detach().clone(),
           "script_fc_bias": cam.fc.bias.detach().clone()}, f"{out}/expected.safetensors")
"#;

fn python() -> &'static str {
    py_fixtures::python()
}

/// The fixture folder, made once per version of FIXTURES_PY (and reused by later runs).
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| py_fixtures::make("weights-fixtures", FIXTURES_PY))
}

fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

fn expected(name: &str) -> Tensor {
    Tensor::read_safetensors(fixture("expected.safetensors"))
        .expect("expected.safetensors")
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no {name} in expected.safetensors"))
}

fn mrnet_logits(net: &impl GapNetwork, x: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let features = net.features(x).expect("forward");
        let (w, b) = net.classifier();
        head(&features, w, b)
    })
}

fn assert_close(got: &Tensor, want: &Tensor, tolerance: f64) {
    assert_eq!(got.size(), want.size());
    let diff = (got - want).abs().max().double_value(&[]);
    assert!(
        diff <= tolerance,
        "max |difference| {diff} > {tolerance}: got {got}, want {want}"
    );
}

fn load_mrnet(path: &Path) -> Result<Mrnet, WeightsError> {
    let mut net = crate::torch_rng(None, || Mrnet::new(Device::Cpu, 2));
    weights::load_state_dict(&mut net.vs, path)?;
    Ok(net)
}

/// The tensors of the reference state dict, for making altered copies.
fn reference_tensors() -> Vec<(String, Tensor)> {
    Tensor::read_safetensors(fixture("mrnet_classifier.safetensors")).expect("fixture")
}

fn write_variant(dir: &Path, name: &str, tensors: &[(String, Tensor)]) -> PathBuf {
    let path = dir.join(name);
    Tensor::write_safetensors(tensors, &path).expect("writing a variant");
    path
}

#[test]
fn a_pytorch_state_dict_with_classifer_gives_pytorchs_logits() {
    let net = load_mrnet(&fixture("mrnet_classifer.pt")).expect("loads");
    assert_close(
        &mrnet_logits(&net, &expected("x")),
        &expected("logits"),
        1e-4,
    );
}

#[test]
fn safetensors_with_classifier_and_alexnets_unused_head_gives_the_same_logits() {
    let net = load_mrnet(&fixture("mrnet_classifier.safetensors")).expect("loads");
    assert_close(
        &mrnet_logits(&net, &expected("x")),
        &expected("logits"),
        1e-4,
    );
}

#[test]
fn a_data_parallel_half_precision_state_dict_loads_as_float32() {
    let net = load_mrnet(&fixture("mrnet_dataparallel_half.pt")).expect("loads");
    for (name, var) in net.vs.variables() {
        assert_eq!(var.kind(), Kind::Float, "{name}");
    }
    assert_close(
        &mrnet_logits(&net, &expected("x")),
        &expected("logits_half"),
        1e-4,
    );
}

#[test]
fn weights_load_onto_the_gpu_when_there_is_one() {
    let device = Device::cuda_if_available();
    let mut net = crate::torch_rng(None, || Mrnet::new(device, 2));
    weights::load_state_dict(&mut net.vs, &fixture("mrnet_classifer.pt")).expect("loads");
    for (name, var) in net.vs.variables() {
        assert_eq!((var.device(), var.kind()), (device, Kind::Float), "{name}");
    }
    let logits = mrnet_logits(&net, &expected("x").to_device(device)).to_device(Device::Cpu);
    assert_close(&logits, &expected("logits"), 1e-3);
}

#[test]
fn strided_views_of_shared_storages_in_a_protocol_4_pickle_are_rebuilt() {
    let net = load_mrnet(&fixture("mrnet_views_protocol4.pt")).expect("loads");
    assert_close(
        &mrnet_logits(&net, &expected("x")),
        &expected("logits"),
        1e-4,
    );
}

#[test]
fn a_pickle_that_would_run_code_is_refused_before_anything_reads_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("evil.pt");
    let mut file = std::fs::File::create(&path).expect("create");
    let mut zip = zip::ZipWriter::new(&mut file);
    let options =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("evil/data.pkl", options).expect("zip");
    // os.system("touch pwned"), as pickle protocol 2.
    let pickle = b"\x80\x02cos\nsystem\nq\x00X\x0b\x00\x00\x00touch pwnedq\x01\x85q\x02Rq\x03.";
    std::io::Write::write_all(&mut zip, pickle).expect("zip");
    zip.finish().expect("zip");
    drop(zip);
    let err = load_mrnet(&path).expect_err("code");
    assert!(
        matches!(&err, WeightsError::Refused { global, how: "REDUCE", .. } if global == "os.system"),
        "{err:?}"
    );
    assert!(err.to_string().contains("would call os.system"), "{err}");
    assert!(!Path::new("pwned").exists() && !dir.path().join("pwned").exists());
}

#[test]
fn files_are_told_apart_by_their_bytes() {
    assert_eq!(
        weights::inspect(&fixture("mrnet_classifer.pt")).ok(),
        Some(FileKind::Torch {
            format: TorchFormat::Zip,
            holds: Holds::StateDict
        })
    );
    assert_eq!(
        weights::inspect(&fixture("mrnet_classifier.safetensors")).ok(),
        Some(FileKind::Safetensors)
    );
    assert_eq!(
        weights::inspect(&fixture("script_ok.pt")).ok(),
        Some(FileKind::TorchScript)
    );
    assert_eq!(
        weights::inspect(&fixture("mrnet_whole.pt")).ok(),
        Some(FileKind::Torch {
            format: TorchFormat::Zip,
            holds: Holds::Module {
                class: "__main__.MRNet".into()
            }
        })
    );
}

#[test]
fn a_misshaped_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tensors: Vec<(String, Tensor)> = reference_tensors()
        .into_iter()
        .map(|(name, t)| match name.as_str() {
            "pretrained_model.features.3.bias" => {
                (name, Tensor::zeros([10], (Kind::Float, Device::Cpu)))
            }
            _ => (name, t),
        })
        .collect();
    let path = write_variant(dir.path(), "misshaped.safetensors", &tensors);
    let err = load_mrnet(&path).expect_err("misshaped");
    match &err {
        WeightsError::Mismatch { problems, .. } => assert_eq!(
            problems,
            &[KeyProblem::Shape {
                name: "pretrained_model.features.3.bias".into(),
                expected: vec![192],
                found: vec![10],
            }]
        ),
        other => panic!("{other}"),
    }
    let message = err.to_string();
    assert!(message.contains("misshaped.safetensors"), "{message}");
    assert!(message.contains("expected [192], found [10]"), "{message}");
}

#[test]
fn missing_and_unexpected_keys_are_all_listed_in_one_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tensors: Vec<(String, Tensor)> = reference_tensors()
        .into_iter()
        .filter(|(name, _)| {
            name != "pretrained_model.features.8.weight" && name != "classifier.bias"
        })
        .collect();
    tensors.push((
        "head.weight".into(),
        Tensor::zeros([2, 256], (Kind::Float, Device::Cpu)),
    ));
    let path = write_variant(dir.path(), "partial.safetensors", &tensors);
    let message = load_mrnet(&path).expect_err("partial").to_string();
    for expected in [
        "partial.safetensors",
        "missing classifer.bias (expected shape [2])",
        "missing pretrained_model.features.8.weight (expected shape [256, 384, 3, 3])",
        "unexpected head.weight (shape [2, 256])",
    ] {
        assert!(message.contains(expected), "{expected:?} not in {message}");
    }
    assert!(
        !message.contains("pretrained_model.classifier"),
        "{message}"
    );
}

#[test]
fn nan_weights_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tensors: Vec<(String, Tensor)> = reference_tensors()
        .into_iter()
        .map(|(name, t)| match name.as_str() {
            "pretrained_model.features.6.weight" => {
                let t = t.copy();
                let _ = t.view([-1]).narrow(0, 5, 3).fill_(f64::NAN);
                (name, t)
            }
            _ => (name, t),
        })
        .collect();
    let path = write_variant(dir.path(), "nan.safetensors", &tensors);
    match load_mrnet(&path) {
        Err(WeightsError::NonFinite { name, count, .. }) => {
            assert_eq!(name, "pretrained_model.features.6.weight");
            assert_eq!(count, 3);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_whole_module_pickle_of_main_mrnet_loads_as_data_with_pytorchs_logits() {
    let net = load_mrnet(&fixture("mrnet_whole.pt")).expect("a whole pickled module loads");
    assert_close(
        &mrnet_logits(&net, &expected("x")),
        &expected("logits"),
        1e-4,
    );
}

#[test]
fn export_state_dict_converts_the_whole_module_pickle_into_loadable_safetensors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("converted.safetensors");
    let output = Command::new(python())
        .arg(EXPORT_STATE_DICT)
        .arg(fixture("mrnet_whole.pt"))
        .arg(&out)
        .output()
        .expect("running export_state_dict.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let sha = manifest::sha256_file(&out).expect("hash");
    assert!(stdout.contains(&format!("sha256 = \"{sha}\"")), "{stdout}");
    let net = load_mrnet(&out).expect("the converted file loads");
    assert_close(
        &mrnet_logits(&net, &expected("x")),
        &expected("logits"),
        1e-4,
    );
}

#[test]
fn files_that_are_not_models_get_their_own_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let random: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut npy =
        b"\x93NUMPY\x01\x00v\x00{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }".to_vec();
    npy.resize(128, b' ');
    npy.extend_from_slice(&[1, 2, 3, 4]);
    let mut zip_bytes = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut zip_bytes);
        let options =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file("notes/readme.txt", options).expect("zip");
        std::io::Write::write_all(&mut zip, b"hello").expect("zip");
        zip.finish().expect("zip");
    }
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("random.pt", random, "unrecognised binary data"),
        (
            "notes.pt",
            b"epochs: 10\nauc: 0.9\n".to_vec(),
            "a text file",
        ),
        ("volume.npy", npy, "a NumPy .npy array"),
        ("empty.safetensors", Vec::new(), "the file is empty"),
        (
            "other.zip",
            zip_bytes.into_inner(),
            "a zip archive that is not a PyTorch file",
        ),
    ];
    for (name, bytes, what) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let err = load_mrnet(&path).expect_err(name);
        assert!(
            matches!(err, WeightsError::NotWeights { .. }),
            "{name}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(name) && message.contains(what),
            "{name}: {message}"
        );
        assert!(
            message.contains("expected a .safetensors file, or a PyTorch file saved with"),
            "{message}"
        );
    }
    let missing = load_mrnet(&dir.path().join("absent.pt")).expect_err("absent");
    assert!(
        matches!(missing, WeightsError::Io { .. }) && missing.to_string().contains("absent.pt")
    );
}

#[test]
fn a_torchscript_module_gives_its_features_and_named_classifier() {
    let net =
        ScriptNet::load(&fixture("script_ok.pt"), "fc.weight", &[], Device::Cpu).expect("loads");
    assert_eq!((net.classes(), net.channels()), (2, 16));
    net.check(32).expect("forward returns (logits, features)");
    let xs = expected("xs");
    let features = tch::no_grad(|| net.features(&xs)).expect("features");
    assert_eq!(features.size(), vec![2, 16, 13, 13]);
    let (w, b) = net.classifier();
    assert_close(w, &expected("script_fc_weight"), 0.0);
    assert_close(b, &expected("script_fc_bias"), 0.0);
    assert_close(&mrnet_logits(&net, &xs), &expected("script_logits"), 1e-3);
    let (logits, _) = tch::no_grad(|| net.forward(&xs)).expect("forward");
    assert_eq!(logits.size(), vec![2, 2]);
}

#[test]
fn torchscript_problems_are_explained() {
    let wrong = ScriptNet::load(&fixture("script_ok.pt"), "head.weight", &[], Device::Cpu)
        .expect_err("wrong name");
    let message = wrong.to_string();
    assert!(
        matches!(wrong, ScriptError::NoClassifier { .. }),
        "{message}"
    );
    assert!(
        message.contains("head.weight") && message.contains("classifier-shaped weights: fc.weight"),
        "{message}"
    );
    assert!(message.contains("body.0.weight"), "{message}");

    let conv = ScriptNet::load(&fixture("script_ok.pt"), "body.0.weight", &[], Device::Cpu)
        .expect_err("a conv");
    assert!(matches!(conv, ScriptError::BadClassifier { .. }), "{conv}");

    let single = ScriptNet::load(
        &fixture("script_logits_only.pt"),
        "fc.weight",
        &[],
        Device::Cpu,
    )
    .expect("loads");
    let err = single.check(32).expect_err("one output");
    assert!(matches!(err, ScriptError::BadOutput { .. }), "{err}");
    assert!(
        err.to_string().contains("one tensor of shape [1, 2]"),
        "{err}"
    );

    let state = ScriptNet::load(
        &fixture("mrnet_classifer.pt"),
        "fc.weight",
        &[],
        Device::Cpu,
    )
    .expect_err("state dict");
    assert!(
        state
            .to_string()
            .contains("not a TorchScript file (it is a PyTorch state dict)"),
        "{state}"
    );

    let as_weights = load_mrnet(&fixture("script_ok.pt")).expect_err("script as weights");
    assert!(
        matches!(as_weights, WeightsError::TorchScript { .. }),
        "{as_weights}"
    );
}

#[test]
fn a_torchscript_module_with_methods_besides_forward_needs_them_listed() {
    let path = fixture("script_extra_method.pt");
    let methods = kneecam::model::script::script_methods(&path).expect("a readable archive");
    assert!(methods.iter().any(|m| m == "side_door"), "{methods:?}");
    assert!(methods.iter().any(|m| m == "forward"), "{methods:?}");

    let refused = ScriptNet::load(&path, "fc.weight", &[], Device::Cpu).expect_err("unlisted");
    assert!(
        matches!(&refused, ScriptError::UnexpectedMethods { unexpected, .. } if unexpected == &["side_door"]),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("methods = [\"side_door\"]"),
        "{refused}"
    );
    let listed = ["side_door".to_string()];
    let net = ScriptNet::load(&path, "fc.weight", &listed, Device::Cpu).expect("listed");
    assert_eq!(net.classes(), 2);
    // A traced module has forward only and needs nothing listed.
    let traced = kneecam::model::script::script_methods(&fixture("script_ok.pt")).expect("reads");
    assert!(
        traced.iter().all(|m| m == "forward" || m.starts_with("__")),
        "{traced:?}"
    );
}

fn copy_into(dir: &Path, name: &str) -> String {
    std::fs::copy(fixture(name), dir.join(name)).expect("copy");
    manifest::sha256_file(&dir.join(name)).expect("hash")
}

#[test]
fn manifest_entries_load_into_networks_after_their_sha256_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mrnet_sha = copy_into(dir.path(), "mrnet_classifer.pt");
    let script_sha = copy_into(dir.path(), "script_ok.pt");
    let mut m = Manifest::new();
    m.set_model(
        Task::Acl,
        Plane::Sagittal,
        ModelEntry::new(
            "mrnet_classifer.pt",
            Arch::Mrnet,
            2,
            Preprocess::Raw,
            mrnet_sha.clone(),
        ),
    );
    let mut script = ModelEntry::new(
        "script_ok.pt",
        Arch::Torchscript,
        2,
        Preprocess::Raw,
        script_sha,
    );
    script.classifier = Some("fc.weight".into());
    m.set_model(Task::Acl, Plane::Axial, script);
    m.save(dir.path()).expect("save");

    let m = Manifest::load(dir.path()).expect("load");
    let entry = m.model(Task::Acl, Plane::Sagittal).expect("entry");
    match manifest::load_network(dir.path(), entry, Device::Cpu).expect("mrnet") {
        Network::Mrnet(net) => assert_close(
            &mrnet_logits(&net, &expected("x")),
            &expected("logits"),
            1e-4,
        ),
        other => panic!("{other:?}"),
    }
    let entry = m.model(Task::Acl, Plane::Axial).expect("entry");
    assert!(matches!(
        manifest::load_network(dir.path(), entry, Device::Cpu),
        Ok(Network::Script(_))
    ));

    let mut one_class = entry.clone();
    one_class.classes = 1;
    let err = manifest::load_network(dir.path(), &one_class, Device::Cpu).expect_err("classes");
    assert!(
        matches!(
            err,
            ModelError::ClassesMismatch {
                found: 2,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );

    let mut tampered = m.model(Task::Acl, Plane::Sagittal).expect("entry").clone();
    tampered.sha256 = "0".repeat(64);
    let err = manifest::load_network(dir.path(), &tampered, Device::Cpu).expect_err("sha256");
    assert!(matches!(err, ModelError::Sha256Mismatch { .. }), "{err}");
    assert!(err.to_string().contains(&mrnet_sha), "{err}");

    let mut tiny = m.model(Task::Acl, Plane::Sagittal).expect("entry").clone();
    tiny.arch = Arch::Tiny;
    let err =
        manifest::load_network(dir.path(), &tiny, Device::Cpu).expect_err("MRNet weights as tiny");
    assert!(err.to_string().contains("features.0.weight"), "{err}");
    assert!(
        err.to_string()
            .contains("pretrained_model.features.0.weight"),
        "{err}"
    );
}

#[test]
fn a_bare_weights_file_loads_as_mrnet_with_classes_from_its_classifier() {
    let (network, entry, _) =
        manifest::load_weights_file(&fixture("mrnet_classifier.safetensors"), None, Device::Cpu)
            .expect("loads");
    assert_eq!(
        (entry.arch, entry.classes, entry.preprocess),
        (Arch::Mrnet, 2, Preprocess::Raw)
    );
    assert_eq!(
        entry.sha256,
        manifest::sha256_file(&fixture("mrnet_classifier.safetensors")).expect("hash")
    );
    assert_close(
        &mrnet_logits(&network, &expected("x")),
        &expected("logits"),
        1e-4,
    );
}
