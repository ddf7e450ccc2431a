//! Training, combining and predicting on a small real dataset (MRNet layout on disk): positive
//! exams carry a bright blob, negatives do not.
use std::path::Path;
use std::sync::atomic::AtomicBool;

use assert_cmd::Command;
use kneecam::data::dataset::Dataset;
use kneecam::data::npy::write_u8_volume;
use kneecam::data::{Plane, Split, Task};
use kneecam::model::manifest::{self, Manifest};
use kneecam::model::network::GapNetwork;
use kneecam::model::tiny::Tiny;
use kneecam::model::train::{
    lesion_cell_mask, mask_loss, samples, train, Augment, Sample, Selection, TrainConfig,
    TrainError, TrainReport,
};
use kneecam::rng::Rng;
use ndarray::Array3;
use predicates::prelude::*;
use tch::Tensor;

fn volume(positive: bool, rng: &mut Rng) -> Array3<u8> {
    let (cy, cx) = (rng.range(16.0, 48.0), rng.range(16.0, 48.0));
    Array3::from_shape_fn((4, 64, 64), |(s, r, c)| {
        let noise = rng.range(0.0, 60.0);
        let inside = positive && s == 2 && (r as f64 - cy).powi(2) + (c as f64 - cx).powi(2) < 36.0;
        (noise + if inside { 180.0 } else { 40.0 }) as u8
    })
}

/// 16 train and 8 valid exams, every plane, the same label for all three tasks (alternating).
pub(crate) fn dataset(root: &Path) {
    let mut rng = Rng::new(5);
    for (split, ids) in [("train", 0..16u32), ("valid", 16..24)] {
        let mut rows = String::new();
        for id in ids {
            let positive = id % 2 == 1;
            for plane in Plane::ALL {
                let dir = root.join(split).join(plane.name());
                std::fs::create_dir_all(&dir).expect("mkdir");
                write_u8_volume(
                    &dir.join(format!("{id:04}.npy")),
                    &volume(positive, &mut rng),
                )
                .expect("write");
            }
            rows.push_str(&format!("{id:04},{}\n", u8::from(positive)));
        }
        for task in Task::ALL {
            std::fs::write(root.join(format!("{split}-{task}.csv")), &rows).expect("csv");
        }
    }
}

/// libtorch's generator is global and tests run in parallel threads: seed and build under a lock.
fn seeded_tiny(seed: i64) -> Tiny {
    crate::torch_rng(Some(seed), || Tiny::new(tch::Device::Cpu, 2))
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        task: Task::Acl,
        plane: Plane::Sagittal,
        epochs,
        lr: 3e-3,
        weight_decay: 0.0,
        patience: 100,
        lr_patience: 100,
        seed: 1,
        augment: Augment::None,
        device: tch::Device::Cpu,
        select: Selection::Auc,
        mask_weight: 0.0,
    }
}

/// `train` without progress callbacks or a stop request.
fn train_quietly(
    net: &Tiny,
    train_set: &[Sample],
    valid_set: &[Sample],
    config: &TrainConfig,
    best: &Path,
) -> Result<TrainReport, TrainError> {
    let no_stop = AtomicBool::new(false);
    train(
        net,
        &net.vs,
        train_set,
        valid_set,
        config,
        best,
        &no_stop,
        |_, _| {},
        |_| {},
    )
}

/// The small dataset written into `dir`, as acl-sagittal's train and valid samples.
fn acl_sagittal_sets(dir: &Path) -> (Vec<Sample>, Vec<Sample>) {
    dataset(dir);
    let data = Dataset::open(dir).expect("open");
    (
        samples(&data, Split::Train, Task::Acl, Plane::Sagittal),
        samples(&data, Split::Valid, Task::Acl, Plane::Sagittal),
    )
}

#[test]
fn a_short_training_run_lowers_the_loss_and_saves_the_best_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (train_set, valid_set) = acl_sagittal_sets(dir.path());
    assert_eq!((train_set.len(), valid_set.len()), (16, 8));
    let net = seeded_tiny(1);
    let best = dir.path().join("best.safetensors");
    let report = train_quietly(&net, &train_set, &valid_set, &config(8), &best).expect("train");
    let first = report.history.first().expect("an epoch").train_loss;
    let last = report.history.last().expect("an epoch").train_loss;
    assert!(last < first * 0.8, "train loss {first} → {last}");
    assert!(best.is_file());
    assert!(report.best_auc.is_some_and(|a| a > 0.5), "{report:?}");
}

/// `Selection::Loss` keeps the epoch with the lowest validation loss, `Auc` the first with the
/// highest validation AUC; each is the epoch the report names.
#[test]
fn the_kept_epoch_is_the_one_the_selection_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (train_set, valid_set) = acl_sagittal_sets(dir.path());
    for select in [Selection::Auc, Selection::Loss] {
        let net = seeded_tiny(3);
        let best = dir.path().join("best.safetensors");
        let report = train_quietly(
            &net,
            &train_set,
            &valid_set,
            &TrainConfig {
                select,
                ..config(6)
            },
            &best,
        )
        .expect("train");
        let history = &report.history;
        let expected = match select {
            Selection::Loss => history
                .iter()
                .min_by(|a, b| a.valid_loss.total_cmp(&b.valid_loss))
                .map(|e| e.epoch),
            Selection::Auc => {
                let best_auc = history.iter().filter_map(|e| e.valid_auc).reduce(f64::max);
                history
                    .iter()
                    .find(|e| e.valid_auc == best_auc)
                    .map(|e| e.epoch)
            }
        };
        assert_eq!(report.best_epoch, expected, "{select:?}: {history:?}");
    }
}

#[test]
fn training_refuses_a_split_without_both_classes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (train_set, valid_set) = acl_sagittal_sets(dir.path());
    let only_negatives: Vec<_> = train_set.into_iter().filter(|s| !s.label).collect();
    let net = seeded_tiny(2);
    let err = train_quietly(
        &net,
        &only_negatives,
        &valid_set,
        &config(1),
        &dir.path().join("x.safetensors"),
    )
    .expect_err("no positives");
    assert!(
        err.to_string()
            .contains("0 positive and 8 negative acl-sagittal exams"),
        "{err}"
    );
}

#[test]
fn train_fit_combiner_predict_and_cam_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let models = dir.path().join("models");
    dataset(&data);
    let kneecam = || {
        let mut cmd = Command::cargo_bin("kneecam").expect("binary");
        cmd.env("KNEECAM_DATA_DIR", dir.path().join("home"))
            .args(["--device", "cpu"]);
        cmd
    };
    for plane in Plane::ALL {
        kneecam()
            .args([
                "train",
                "--task",
                "acl",
                "--epochs",
                "2",
                "--no-augment",
                "--lr",
                "0.003",
                "--plane",
                plane.name(),
                "--data",
            ])
            .arg(&data)
            .arg("--out")
            .arg(&models)
            .assert()
            .success()
            .stdout(predicate::str::contains("best epoch"));
    }
    let manifest = Manifest::load(&models).expect("manifest");
    let entry = manifest
        .model(Task::Acl, Plane::Sagittal)
        .expect("acl-sagittal entry");
    assert_eq!(entry.arch, manifest::Arch::Tiny);
    assert!(
        entry.auc.is_some() && entry.data_fingerprint.is_some() && entry.trained_with.is_some()
    );
    manifest::load_network(&models, entry, tch::Device::Cpu).expect("the saved model loads");

    kneecam()
        .args(["fit-combiner", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .assert()
        .success();
    assert!(Manifest::load(&models)
        .expect("manifest")
        .combiner(Task::Acl)
        .is_some());

    let preds = dir.path().join("preds.csv");
    kneecam()
        .args(["predict", "--data"])
        .arg(&data)
        .arg("--models")
        .arg(&models)
        .arg("--out")
        .arg(&preds)
        .assert()
        .success()
        .stdout(predicate::str::contains("AUC").and(predicate::str::contains("acl")));
    let csv = std::fs::read_to_string(&preds).expect("preds");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows[0],
        "exam,split,task,label,p_axial,p_coronal,p_sagittal,p_combined"
    );
    assert_eq!(rows.len(), 1 + 8 * 3, "8 valid exams × 3 tasks");
    let acl_row = rows
        .iter()
        .find(|r| r.contains(",acl,"))
        .expect("an acl row");
    assert_eq!(
        acl_row.split(',').filter(|f| !f.is_empty()).count(),
        8,
        "all probabilities present: {acl_row}"
    );

    let out = dir.path().join("cam");
    kneecam()
        .args(["cam", "--method", "gradcam", "--model"])
        .arg(format!("{}:acl:sagittal", models.display()))
        .arg("--exam")
        .arg(data.join("valid/sagittal/0017.npy"))
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    assert!(out.join("summary.json").is_file());
}

/// `train --init` starts a tiny model from another model's weights (the demo's coronal models
/// start from other planes' and tasks'): at learning rate 0 the saved model is the one it started
/// from. The manifest records `--init` and `--select`.
#[test]
fn a_tiny_model_starts_from_the_weights_init_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    dataset(&data);
    let train_into = |out: &Path, plane: &str, extra: &[&str]| {
        let mut cmd = Command::cargo_bin("kneecam").expect("binary");
        cmd.env("OMP_NUM_THREADS", "1")
            .env("KNEECAM_DATA_DIR", dir.path().join("home"))
            .args(["--device", "cpu", "train", "--task", "acl", "--epochs", "1"])
            .args(["--no-augment", "--plane", plane, "--data"])
            .arg(&data)
            .arg("--out")
            .arg(out)
            .args(extra);
        cmd.assert()
    };
    let first = dir.path().join("first");
    train_into(&first, "sagittal", &["--lr", "0.003", "--select", "loss"]).success();
    let start = first.join("acl-sagittal.safetensors");
    let second = dir.path().join("second");
    let init = start.to_str().expect("utf-8 path");
    train_into(&second, "coronal", &["--lr", "0", "--init", init]).success();

    let logits = |models: &Path, plane: Plane| {
        let manifest = Manifest::load(models).expect("manifest");
        let entry = manifest.model(Task::Acl, plane).expect("entry").clone();
        let net = manifest::load_network(models, &entry, tch::Device::Cpu).expect("loads");
        let x = entry
            .preprocess
            .input(&volume(true, &mut Rng::new(5)), tch::Device::Cpu);
        (
            kneecam::cam::forward(&net, &x).expect("forward").logits,
            entry,
        )
    };
    let (started_from, _) = logits(&first, Plane::Sagittal);
    let (trained, entry) = logits(&second, Plane::Coronal);
    assert_eq!(trained, started_from, "lr 0: the init weights unchanged");
    let recorded = entry.trained_with.expect("trained_with");
    assert!(recorded.contains(&format!("--init {init}")), "{recorded}");
    let first_entry = Manifest::load(&first).expect("manifest");
    let first_recorded = first_entry
        .model(Task::Acl, Plane::Sagittal)
        .and_then(|m| m.trained_with.clone())
        .expect("trained_with");
    assert!(first_recorded.contains("--select loss"), "{first_recorded}");

    let missing = dir.path().join("no-such.safetensors");
    train_into(
        &second,
        "coronal",
        &["--init", missing.to_str().expect("utf-8")],
    )
    .failure()
    .stderr(predicate::str::contains("no-such.safetensors"));
}

/// The mask term is the share of the positive class's positive CAM outside the lesion cells.
#[test]
fn the_mask_loss_is_the_share_of_the_heat_outside_the_lesion() {
    // Two slices of 2×2 cells, two channels; the positive class weighs channel 0 by 2 and
    // channel 1 by −1, so the CAM is 2·A₀ − A₁.
    let features = Tensor::from_slice(&[
        1.0f32, 0.0, 0.0, 3.0, // slice 0, channel 0
        0.0, 0.0, 0.0, 7.0, // slice 0, channel 1: cell (1,1) heat 6 − 7 < 0, no heat
        0.0, 2.0, 0.0, 0.0, // slice 1, channel 0
        0.0, 0.0, 0.0, 0.0,
    ])
    .view([2, 2, 2, 2]);
    let weight = Tensor::from_slice(&[0.0f32, 0.0, 2.0, -1.0]).view([2, 2]);
    let lesion = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]).view([2, 2, 2]);
    // Heat: slice 0 cell (0,0) 2, slice 1 cell (0,1) 4; only the first is on the lesion.
    let share = mask_loss(&features, &weight, &lesion).double_value(&[]);
    assert!((share - 4.0 / 6.0).abs() < 1e-6, "{share}");
    let everywhere = lesion.ones_like();
    assert!(
        mask_loss(&features, &weight, &everywhere)
            .double_value(&[])
            .abs()
            < 1e-9
    );
}

/// A positive's bright disk (the lesion, in `masks/`) and, in every exam, a bright square in
/// one corner: the square tells nothing, so the labels alone leave the heat free to sit on
/// it or between the two, while the mask term pulls it onto the disk.
fn masked_dataset(root: &Path) {
    let mut rng = Rng::new(9);
    for (split, ids) in [("train", 0..16u32), ("valid", 16..24)] {
        let mut rows = String::new();
        for id in ids {
            let positive = id % 2 == 1;
            let (cy, cx) = (rng.range(64.0, 112.0), rng.range(64.0, 112.0));
            let disk = |s: usize, r: usize, c: usize| {
                positive && s == 2 && (r as f64 - cy).powi(2) + (c as f64 - cx).powi(2) < 64.0
            };
            let square = |r: usize, c: usize| (8..40).contains(&r) && (8..40).contains(&c);
            let image = Array3::from_shape_fn((4, 128, 128), |(s, r, c)| {
                let bright = disk(s, r, c) || square(r, c);
                (rng.range(0.0, 60.0) + if bright { 180.0 } else { 40.0 }) as u8
            });
            let mask = Array3::from_shape_fn((4, 128, 128), |(s, r, c)| u8::from(disk(s, r, c)));
            for (folder, volume) in [("sagittal", &image), ("masks/sagittal", &mask)] {
                let dir = root.join(split).join(folder);
                std::fs::create_dir_all(&dir).expect("mkdir");
                write_u8_volume(&dir.join(format!("{id:04}.npy")), volume).expect("write");
            }
            rows.push_str(&format!("{id:04},{}\n", u8::from(positive)));
        }
        std::fs::write(root.join(format!("{split}-acl.csv")), &rows).expect("csv");
    }
}

#[test]
fn training_with_the_mask_loss_moves_the_heat_onto_the_lesion() {
    let dir = tempfile::tempdir().expect("temp dir");
    masked_dataset(dir.path());
    let data = Dataset::open(dir.path()).expect("open");
    let train_set = samples(&data, Split::Train, Task::Acl, Plane::Sagittal);
    assert!(train_set.iter().all(|s| s.mask.is_some()), "masks found");
    let heat_outside = |mask_weight: f64| {
        let net = seeded_tiny(4);
        let best = dir.path().join(format!("best-{mask_weight}.safetensors"));
        let config = TrainConfig {
            mask_weight,
            ..config(6)
        };
        train_quietly(&net, &train_set, &train_set, &config, &best).expect("train");
        let mut shares = Vec::new();
        for sample in train_set.iter().filter(|s| s.label) {
            let volume = kneecam::data::npy::read_volume(&sample.path).expect("series");
            let mask = kneecam::data::npy::read_volume(sample.mask.as_deref().expect("mask"))
                .expect("mask");
            let x =
                kneecam::model::preprocess::Preprocess::Raw.input(&volume.data, tch::Device::Cpu);
            let features = tch::no_grad(|| net.features(&x)).expect("features");
            let (weight, _) = net.classifier();
            let lesion = lesion_cell_mask(&mask.data, Task::Acl, &[], (8, 8), tch::Device::Cpu)
                .expect("a positive's lesion");
            shares.push(mask_loss(&features, weight, &lesion).double_value(&[]));
        }
        shares.iter().sum::<f64>() / shares.len() as f64
    };
    let (labels_only, with_masks) = (heat_outside(0.0), heat_outside(1.0));
    assert!(
        with_masks < 0.5 * labels_only && with_masks < 0.2,
        "share of the heat outside the lesion: {labels_only:.3} from the labels alone, \
         {with_masks:.3} with the mask term"
    );
}

/// The error of one epoch with the mask loss on the masked dataset in `dir`.
fn mask_training_error(dir: &Path, augment: Augment) -> TrainError {
    let data = Dataset::open(dir).expect("open");
    let train_set = samples(&data, Split::Train, Task::Acl, Plane::Sagittal);
    let config = TrainConfig {
        mask_weight: 1.0,
        augment,
        ..config(1)
    };
    train_quietly(
        &seeded_tiny(1),
        &train_set,
        &train_set,
        &config,
        &dir.join("x.safetensors"),
    )
    .expect_err("training fails")
}

#[test]
fn the_mask_loss_refuses_affine_augmentation() {
    let dir = tempfile::tempdir().expect("temp dir");
    masked_dataset(dir.path());
    let err = mask_training_error(dir.path(), Augment::Affine);
    assert!(err.to_string().contains("--augment flips or none"), "{err}");
}

#[test]
fn a_mask_of_another_shape_than_its_series_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    masked_dataset(dir.path());
    let wrong = dir.path().join("train/masks/sagittal/0001.npy");
    write_u8_volume(&wrong, &Array3::<u8>::ones((4, 64, 64))).expect("write");
    let message = mask_training_error(dir.path(), Augment::None).to_string();
    assert!(message.contains("0001.npy"), "{message}");
    assert!(
        message.contains("4×64×64") && message.contains("4×128×128"),
        "{message}"
    );
}
