//! `kneecam train` and `kneecam fit-combiner`.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::cli::bad_input;
use crate::data::dataset::Dataset;
use crate::data::{Plane, Split, Task};
use crate::model::combine::fit_logistic;
use crate::model::device::{self, DeviceChoice};
use crate::model::manifest::{sha256_file, Arch, Combiner, Manifest, ModelEntry};
use crate::model::mrnet::Mrnet;
use crate::model::preprocess::Preprocess;
use crate::model::tiny::Tiny;
use crate::model::train::{samples, train, Augment, Sample, Selection, TrainConfig};
use crate::model::weights;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchChoice {
    Tiny,
    Mrnet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AugmentChoice {
    /// Rotation (±25°), translation (±11 %) and a horizontal flip, as the reference code.
    Affine,
    /// Horizontal and vertical flips only.
    Flips,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SelectChoice {
    Auc,
    Loss,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The dataset folder (MRNet layout: trains on train, validates on valid).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub task: Task,
    #[arg(long)]
    pub plane: Plane,
    #[arg(long, value_enum, default_value = "tiny")]
    pub arch: ArchChoice,
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Learning rate [default: 3e-4 for tiny, 1e-5 for mrnet, as the reference code].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Adam's weight decay [default: 0 for tiny, 0.01 for mrnet, as the reference code]. At
    /// tiny's larger learning rate, 0.01 shrinks its weights to nothing within an epoch.
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long, default_value_t = 5)]
    pub patience: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Start from these weights: an MRNet from ImageNet AlexNet features you have, a tiny model
    /// from one trained on another plane (the demo's coronal models start from the sagittal).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Which epoch is kept: the first with the best validation AUC, or the one with the lowest
    /// validation loss (which keeps improving after the AUC reaches 1).
    #[arg(long, value_enum, default_value = "auc")]
    pub select: SelectChoice,
    /// How each exam's slices vary from epoch to epoch.
    #[arg(long, value_enum, default_value = "affine")]
    pub augment: AugmentChoice,
    /// Train without augmentation: `--augment none`.
    #[arg(long, conflicts_with = "augment")]
    pub no_augment: bool,
    /// Also train the positive class's CAM onto the lesion: for each positive exam with a
    /// ground-truth mask (`masks/{plane}/NNNN.npy`, as `kneecam synth` writes), add this weight
    /// times the share of the CAM's heat outside the lesion (grown by one feature cell, as the
    /// pointing game grows it). Needs `--augment flips` or `none`.
    #[arg(long, default_value_t = 0.0)]
    pub mask_loss: f64,
    /// The models folder: weights go to {task}-{plane}.safetensors, the entry into manifest.toml.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: TrainArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let dataset = Dataset::open(&args.data).map_err(bad_input)?;
    super::outside_inputs("--out", &args.out, Some(&args.data), None)?;
    let train_set = samples(&dataset, Split::Train, args.task, args.plane);
    let valid_set = samples(&dataset, Split::Valid, args.task, args.plane);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let file = format!("{}-{}.safetensors", args.task, args.plane);
    let best_path = args.out.join(&file);
    let config = TrainConfig {
        task: args.task,
        plane: args.plane,
        epochs: args.epochs,
        lr: args.lr.unwrap_or(if args.arch == ArchChoice::Tiny {
            3e-4
        } else {
            1e-5
        }),
        weight_decay: args
            .weight_decay
            .unwrap_or(if args.arch == ArchChoice::Tiny {
                0.0
            } else {
                0.01
            }),
        patience: args.patience,
        lr_patience: 3,
        seed: args.seed,
        augment: match (args.no_augment, args.augment) {
            (true, _) | (_, AugmentChoice::None) => Augment::None,
            (false, AugmentChoice::Affine) => Augment::Affine,
            (false, AugmentChoice::Flips) => Augment::Flips,
        },
        device,
        mask_weight: args.mask_loss,
        select: match args.select {
            SelectChoice::Auc => Selection::Auc,
            SelectChoice::Loss => Selection::Loss,
        },
    };
    tch::manual_seed(args.seed as i64);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    println!(
        "training {} {}-{} on {} ({} train, {} valid exams)",
        args.arch.name(),
        args.task,
        args.plane,
        device::describe(device),
        train_set.len(),
        valid_set.len()
    );
    let bar = crate::cli::progress_bar(train_set.len() as u64, "exams");
    let on_step = |step: usize, loss: f64| {
        bar.set_position(step as u64);
        bar.set_message(format!("loss {loss:.3}"));
    };
    let on_epoch = |e: &crate::model::train::EpochReport| {
        bar.suspend(|| {
            let auc = e.valid_auc.map_or("-".into(), |a| format!("{a:.3}"));
            let mark = if e.improved { " *" } else { "" };
            println!(
                "epoch {:>3}  train loss {:.4}  valid loss {:.4}  valid AUC {auc}  lr {:.1e}{mark}",
                e.epoch, e.train_loss, e.valid_loss, e.lr
            );
        });
    };
    let report = match args.arch {
        ArchChoice::Tiny => {
            let mut net = Tiny::new(device, 2);
            if let Some(init) = &args.init {
                weights::load_state_dict(&mut net.vs, init).map_err(bad_input)?;
            }
            train(
                &net, &net.vs, &train_set, &valid_set, &config, &best_path, &stop, on_step,
                on_epoch,
            )
        }
        ArchChoice::Mrnet => {
            let mut net = Mrnet::new(device, 2);
            if let Some(init) = &args.init {
                weights::load_state_dict(&mut net.vs, init).map_err(bad_input)?;
            }
            train(
                &net, &net.vs, &train_set, &valid_set, &config, &best_path, &stop, on_step,
                on_epoch,
            )
        }
    }
    .map_err(|e| match e {
        crate::model::train::TrainError::NoData(_)
        | crate::model::train::TrainError::Config(_)
        | crate::model::train::TrainError::Exam { .. } => bad_input(e),
        other => anyhow::Error::new(other),
    })?;
    bar.finish_and_clear();
    let Some(best_epoch) = report.best_epoch else {
        println!("stopped before the first epoch ended: nothing saved");
        return Ok(ExitCode::FAILURE);
    };
    let mut entry = ModelEntry::new(
        &file,
        if args.arch == ArchChoice::Tiny {
            Arch::Tiny
        } else {
            Arch::Mrnet
        },
        2,
        Preprocess::Raw,
        sha256_file(&best_path).with_context(|| format!("hashing {}", best_path.display()))?,
    );
    entry.auc = report.best_auc;
    entry.epochs = Some(best_epoch as u32);
    entry.seed = Some(args.seed);
    entry.data_fingerprint = Some(fingerprint(&train_set, &valid_set));
    entry.trained_with = Some(format!(
        "kneecam {} train --task {} --plane {} --arch {} --epochs {} --lr {} --weight-decay {} --patience {} --seed {}{}{}{mask}{init}",
        env!("CARGO_PKG_VERSION"),
        args.task,
        args.plane,
        args.arch.name(),
        args.epochs,
        config.lr,
        config.weight_decay,
        args.patience,
        args.seed,
        match config.augment {
            Augment::Affine => "",
            Augment::Flips => " --augment flips",
            Augment::None => " --no-augment",
        },
        if args.select == SelectChoice::Loss { " --select loss" } else { "" },
        mask = if args.mask_loss > 0.0 {
            format!(" --mask-loss {}", args.mask_loss)
        } else {
            String::new()
        },
        init = args.init.as_ref().map_or(String::new(), |init| {
            format!(" --init {}", init.display())
        })
    ));
    update_manifest(&args.out, |manifest| {
        // What the entry says about the series it reads is the user's, not training's: kept.
        if let Some(old) = manifest.model(args.task, args.plane) {
            entry.intensity = old.intensity.clone();
            entry.protocol = old.protocol.clone();
        }
        manifest.set_model(args.task, args.plane, entry);
        Ok(())
    })?;
    let auc = report.best_auc.map_or("-".into(), |a| format!("{a:.3}"));
    let how = if report.interrupted {
        " (interrupted)"
    } else if report.stopped_early {
        " (stopped early)"
    } else {
        ""
    };
    println!(
        "best epoch {best_epoch}, valid AUC {auc}{how}: {}",
        best_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

impl ArchChoice {
    fn name(self) -> &'static str {
        match self {
            ArchChoice::Tiny => "tiny",
            ArchChoice::Mrnet => "mrnet",
        }
    }
}

/// Reads `dir`'s manifest (or starts one), lets `change` change it, and writes it back, all
/// under an exclusive lock: several trainings or imports may write into one models folder at
/// once, and no entry may be lost.
pub(crate) fn update_manifest(
    dir: &Path,
    change: impl FnOnce(&mut Manifest) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let lock_path = dir.join(".manifest.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let mut manifest = load_or_new(dir)?;
    change(&mut manifest)?;
    manifest
        .save(dir)
        .with_context(|| format!("writing {}", dir.join("manifest.toml").display()))?;
    drop(lock);
    Ok(())
}

fn load_or_new(dir: &Path) -> anyhow::Result<Manifest> {
    if dir.join("manifest.toml").exists() {
        Manifest::load(dir).map_err(bad_input)
    } else {
        Ok(Manifest::new())
    }
}

/// sha256 over the training and validation files' names, sizes and labels.
fn fingerprint(train_set: &[Sample], valid_set: &[Sample]) -> String {
    let mut hasher = Sha256::new();
    for (split, set) in [("train", train_set), ("valid", valid_set)] {
        for sample in set {
            let size = std::fs::metadata(&sample.path)
                .map(|m| m.len())
                .unwrap_or(0);
            let name = sample
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            hasher.update(format!(
                "{split},{name},{size},{}\n",
                u8::from(sample.label)
            ));
        }
    }
    format!("sha256:{:x}", hasher.finalize())
}

#[derive(Debug, clap::Args)]
pub struct FitCombinerArgs {
    #[arg(long)]
    pub data: PathBuf,
    /// The models folder whose manifest receives the combiners.
    #[arg(long)]
    pub models: PathBuf,
}

/// Per task, a logistic regression over the three plane probabilities on the valid split.
pub fn fit_combiner(
    args: FitCombinerArgs,
    device_choice: DeviceChoice,
) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let dataset = Dataset::open(&args.data).map_err(bad_input)?;
    let mut manifest = Manifest::load(&args.models).map_err(bad_input)?;
    for task in Task::ALL {
        let mut rows = Vec::new();
        let models: Vec<_> = Plane::ALL
            .iter()
            .map(|&plane| {
                crate::cli::models::from_manifest(&args.models, &manifest, task, plane, device).ok()
            })
            .collect();
        if models.iter().any(Option::is_none) {
            println!("{task:<9} skipped: not all three planes have a model");
            continue;
        }
        for exam in dataset.exams().iter().filter(|e| e.split == Split::Valid) {
            let Some(label) = exam.labels.get(task) else {
                continue;
            };
            let mut features = [0.0f64; 3];
            let mut complete = true;
            for (plane, model) in Plane::ALL.iter().zip(models.iter().flatten()) {
                match exam.load(*plane) {
                    Ok(volume) => {
                        features[plane.index()] = f64::from(model.probability(&volume.data)?)
                    }
                    Err(_) => complete = false,
                }
            }
            if complete {
                rows.push((features, label));
            }
        }
        let positives = rows.iter().filter(|r| r.1).count();
        if positives == 0 || positives == rows.len() {
            println!(
                "{task:<9} skipped: the valid split needs positive and negative exams ({} rows)",
                rows.len()
            );
            continue;
        }
        let [axial, coronal, sagittal, intercept] = fit_logistic(&rows);
        let combiner = Combiner {
            axial,
            coronal,
            sagittal,
            intercept,
        };
        println!(
            "{task:<9} {axial:>8.3} {coronal:>8.3} {sagittal:>8.3} {intercept:>9.3}  ({} exams)",
            rows.len()
        );
        manifest.set_combiner(task, combiner);
    }
    manifest
        .save(&args.models)
        .with_context(|| format!("writing {}", args.models.join("manifest.toml").display()))?;
    Ok(ExitCode::SUCCESS)
}
