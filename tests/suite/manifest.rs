//! manifest.toml: the fixtures under tests/manifests (valid_*.toml must load; every other file
//! must fail with the messages listed here), saving, the sha256 check and the combiner.
use std::path::{Path, PathBuf};

use kneecam::data::{Plane, Task};
use kneecam::model::manifest::{
    self, Arch, Combiner, Manifest, ManifestError, ModelEntry, ModelError, MANIFEST_FILE,
};
use kneecam::model::mrnet::Mrnet;
use kneecam::model::network::Network;
use kneecam::model::preprocess::Preprocess;
use tch::{Device, Tensor};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/manifests");

/// What each invalid fixture's error must say (besides naming the file).
const INVALID: &[(&str, &[&str])] = &[
    (
        "unknown_plane.toml",
        &[
            "models.acl-sagital: unknown plane 'sagital'",
            "axial, coronal, sagittal",
        ],
    ),
    (
        "unknown_task.toml",
        &[
            "models.knee-axial: unknown task 'knee'",
            "abnormal, acl, meniscus",
        ],
    ),
    (
        "key_without_dash.toml",
        &["models.acl_axial: expected a key {task}-{plane}"],
    ),
    (
        "unknown_field.toml",
        &["models.acl-axial: unknown field `fiel`"],
    ),
    (
        "unknown_top_key.toml",
        &["unknown key 'version', expected format, models, combiners"],
    ),
    (
        "bad_format.toml",
        &["format = 2: this kneecam reads format 1 only"],
    ),
    (
        "missing_format.toml",
        &["format: missing; expected format = 1"],
    ),
    (
        "bad_classes.toml",
        &["models.acl-axial: classes = 3, expected 1 to 2"],
    ),
    (
        "bad_sha256.toml",
        &["models.acl-axial: sha256 'abc123' is not 64 hexadecimal digits"],
    ),
    (
        "missing_sha256.toml",
        &["models.acl-axial: missing field `sha256`"],
    ),
    (
        "bad_arch.toml",
        &[
            "models.acl-axial: unknown variant `vgg`",
            "mrnet",
            "torchscript",
        ],
    ),
    (
        "bad_preprocess.toml",
        &[
            "models.acl-axial: unknown variant `crop256`",
            "crop224-norm",
        ],
    ),
    (
        "torchscript_without_classifier.toml",
        &["models.acl-axial: arch = \"torchscript\" needs classifier"],
    ),
    (
        "classifier_on_mrnet.toml",
        &["models.acl-axial: classifier is only for arch = \"torchscript\""],
    ),
    (
        "methods_on_mrnet.toml",
        &["models.acl-axial: methods is only for arch = \"torchscript\""],
    ),
    (
        "bad_auc.toml",
        &["models.acl-axial: auc = 1.5, expected a value from 0 to 1"],
    ),
    (
        "bad_combiner.toml",
        &["combiners.acl: unknown field `bias`"],
    ),
    (
        "bad_combiner_task.toml",
        &["combiners.knee: unknown task 'knee'"],
    ),
    ("syntax_error.toml", &["TOML parse error", "line 3"]),
    (
        "several_problems.toml",
        &[
            "models.acl-axial: classes = 5",
            "models.acl-sagital: unknown plane",
        ],
    ),
];

/// Copies a fixture into a fresh folder as manifest.toml and loads it.
fn load_fixture(name: &str) -> (tempfile::TempDir, Result<Manifest, ManifestError>) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        Path::new(FIXTURES).join(name),
        dir.path().join(MANIFEST_FILE),
    )
    .expect("copy");
    let result = Manifest::load(dir.path());
    (dir, result)
}

#[test]
fn every_invalid_fixture_fails_naming_the_file_and_the_key() {
    let mut names: Vec<String> = std::fs::read_dir(FIXTURES)
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml") && !n.starts_with("valid"))
        .collect();
    names.sort();
    let mut listed: Vec<String> = INVALID.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        names, listed,
        "every invalid fixture needs its expected messages here"
    );
    for (name, expected) in INVALID {
        let (_dir, result) = load_fixture(name);
        let message = result.expect_err(name).to_string();
        assert!(message.contains(MANIFEST_FILE), "{name}: {message}");
        for want in *expected {
            assert!(
                message.contains(want),
                "{name}: {want:?} not in:\n{message}"
            );
        }
    }
}

#[test]
fn the_valid_fixtures_load_with_every_field() {
    let (_dir, minimal) = load_fixture("valid_minimal.toml");
    let minimal = minimal.expect("minimal");
    assert_eq!(minimal.models().count(), 0);
    assert!(minimal.combiner(Task::Acl).is_none());

    let (_dir, m) = load_fixture("valid.toml");
    let m = m.expect("valid");
    let sagittal = m.model(Task::Acl, Plane::Sagittal).expect("acl-sagittal");
    assert_eq!(sagittal.file, PathBuf::from("acl-sagittal.safetensors"));
    assert_eq!(
        (sagittal.arch, sagittal.classes, sagittal.preprocess),
        (Arch::Mrnet, 2, Preprocess::Raw)
    );
    assert_eq!(
        (sagittal.auc, sagittal.epochs, sagittal.seed),
        (Some(0.91), Some(50), Some(7))
    );
    assert_eq!(sagittal.trained_with.as_deref(), Some("kneecam 0.1.0"));
    let axial = m.model(Task::Acl, Plane::Axial).expect("acl-axial");
    assert_eq!(
        (axial.arch, axial.classes, axial.preprocess),
        (Arch::Torchscript, 1, Preprocess::Crop224Norm)
    );
    assert_eq!(axial.classifier.as_deref(), Some("net.fc.weight"));
    assert!(
        m.model(Task::Acl, Plane::Coronal).is_none(),
        "missing models are allowed"
    );
    assert!(m.model(Task::Meniscus, Plane::Axial).is_none());
    assert_eq!(m.combiner(Task::Acl), Some(&Combiner::REFERENCE_ACL));
    assert!(m.combiner(Task::Abnormal).is_none());
}

#[test]
fn saving_writes_a_manifest_that_loads_back_equal_and_leaves_no_temporary_file() {
    let (_src, m) = load_fixture("valid.toml");
    let m = m.expect("valid");
    let dir = tempfile::tempdir().expect("tempdir");
    m.save(dir.path()).expect("save");
    assert_eq!(Manifest::load(dir.path()).expect("reload"), m);
    let files: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, vec![MANIFEST_FILE.to_string()]);
    let text = std::fs::read_to_string(dir.path().join(MANIFEST_FILE)).expect("text");
    assert!(text.starts_with("format = 1\n"), "{text}");
    assert!(
        text.contains("[models.acl-sagittal]") && text.contains("[combiners.acl]"),
        "{text}"
    );
    assert!(
        !text.contains("classifier") || text.contains("classifier = \"net.fc.weight\""),
        "{text}"
    );

    let mut changed = m.clone();
    changed.set_combiner(
        Task::Meniscus,
        Combiner {
            axial: 1.0,
            coronal: 2.0,
            sagittal: 3.0,
            intercept: -4.0,
        },
    );
    changed.remove_model(Task::Acl, Plane::Axial);
    changed.save(dir.path()).expect("save again");
    let reloaded = Manifest::load(dir.path()).expect("reload");
    assert_eq!(reloaded, changed);
    assert!(reloaded.model(Task::Acl, Plane::Axial).is_none());
}

#[test]
fn a_folder_without_a_manifest_says_what_it_needs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = Manifest::load(dir.path()).expect_err("no manifest");
    assert!(matches!(err, ManifestError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("manifest.toml: no such file"),
        "{err}"
    );
}

#[test]
fn the_combiner_is_the_reference_acl_logistic_regression() {
    let (_dir, m) = load_fixture("valid.toml");
    let m = m.expect("valid");
    let acl = m.combiner(Task::Acl).expect("acl");
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    for [a, c, s] in [
        [0.2f32, 0.9, 0.6],
        [0.0, 0.0, 0.0],
        [1.0, 1.0, 1.0],
        [0.05, 0.5, 0.95],
    ] {
        let want =
            sigmoid(3.454 * f64::from(a) + 4.486 * f64::from(c) + 2.900 * f64::from(s) - 3.624);
        let got = acl
            .combine([Some(a), Some(c), Some(s)])
            .expect("all planes");
        assert!(
            (f64::from(got) - want).abs() < 1e-6,
            "{a} {c} {s}: {got} vs {want}"
        );
    }
    // 0.2, 0.9, 0.6 by hand: z = 0.6908 + 4.0374 + 1.74 − 3.624 = 2.8442.
    let by_hand = acl
        .combine([Some(0.2), Some(0.9), Some(0.6)])
        .expect("all planes");
    assert!((by_hand - 0.945_0).abs() < 1e-4, "{by_hand}");
    for missing in 0..3 {
        let mut p = [Some(0.5f32); 3];
        p[missing] = None;
        assert_eq!(acl.combine(p), None);
    }
}

#[test]
fn sha256_file_is_the_lowercase_hex_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("abc.txt");
    std::fs::write(&path, b"abc").expect("write");
    assert_eq!(
        manifest::sha256_file(&path).expect("hash"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

/// A models folder with one MRNet written by kneecam itself (no Python needed).
fn folder_with_mrnet(classes: i64) -> (tempfile::TempDir, ModelEntry) {
    let dir = tempfile::tempdir().expect("tempdir");
    let net = crate::torch_rng(None, || Mrnet::new(Device::Cpu, classes));
    let tensors: Vec<(String, Tensor)> = net.vs.variables().into_iter().collect();
    let path = dir.path().join("acl-coronal.safetensors");
    Tensor::write_safetensors(&tensors, &path).expect("write weights");
    let sha = manifest::sha256_file(&path).expect("hash");
    let entry = ModelEntry::new(
        "acl-coronal.safetensors",
        Arch::Mrnet,
        classes,
        Preprocess::Raw,
        sha,
    );
    let mut m = Manifest::new();
    m.set_model(Task::Acl, Plane::Coronal, entry.clone());
    m.save(dir.path()).expect("save");
    (dir, entry)
}

#[test]
fn a_model_loads_only_when_its_file_matches_the_sha256() {
    let (dir, _) = folder_with_mrnet(1);
    let m = Manifest::load(dir.path()).expect("load");
    let entry = m.model(Task::Acl, Plane::Coronal).expect("entry");
    match crate::torch_rng(None, || {
        manifest::load_network(dir.path(), entry, Device::Cpu)
    })
    .expect("loads")
    {
        Network::Mrnet(net) => assert_eq!(net.classes(), 1),
        other => panic!("{other:?}"),
    }

    let weights = dir.path().join("acl-coronal.safetensors");
    let mut bytes = std::fs::read(&weights).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&weights, bytes).expect("tamper");
    let err = crate::torch_rng(None, || {
        manifest::load_network(dir.path(), entry, Device::Cpu)
    })
    .expect_err("tampered");
    assert!(matches!(err, ModelError::Sha256Mismatch { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("acl-coronal.safetensors") && message.contains(&entry.sha256),
        "{message}"
    );

    std::fs::remove_file(&weights).expect("remove");
    let err = crate::torch_rng(None, || {
        manifest::load_network(dir.path(), entry, Device::Cpu)
    })
    .expect_err("missing file");
    assert!(
        matches!(err, ModelError::Read { .. })
            && err.to_string().contains("acl-coronal.safetensors"),
        "{err}"
    );
}

#[test]
fn a_manifest_whose_classes_disagree_with_the_file_is_refused() {
    let (dir, mut entry) = folder_with_mrnet(2);
    entry.classes = 1;
    let err = crate::torch_rng(None, || {
        manifest::load_network(dir.path(), &entry, Device::Cpu)
    })
    .expect_err("classes");
    assert!(
        matches!(
            err,
            ModelError::ClassesMismatch {
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("classes = 1"), "{err}");
}
