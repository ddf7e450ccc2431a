//! Training one model (task × plane) the way the reference script does: one exam per step,
//! BCE with logits weighted by neg/pos, Adam with weight decay, learning rate cut on plateau,
//! early stopping on validation loss, augmentation, the best epoch by validation AUC kept.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::data::dataset::{Dataset, Exam};
use crate::data::{Lesion, Plane, Split, Task};
use crate::model::metrics::auc;
use crate::model::network::{head, positive_probability, GapNetwork};
use crate::model::preprocess::Preprocess;
use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub task: Task,
    pub plane: Plane,
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Epochs without a better validation loss before the learning rate is cut (×0.3).
    pub lr_patience: usize,
    pub seed: u64,
    pub augment: Augment,
    pub device: Device,
    /// Which epoch's weights are kept.
    pub select: Selection,
    /// Weight of the lesion-mask term ([`mask_loss`]); 0 trains on the labels alone.
    pub mask_weight: f64,
}

/// How training varies each exam's slices from epoch to epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Augment {
    /// Rotation, translation and a horizontal flip ([`augment`]).
    #[default]
    Affine,
    /// Only flips, horizontal and vertical, each with probability ½ ([`flip`]); lesion masks
    /// flip with the slices, so the mask loss can be used with it.
    Flips,
    None,
}

/// The epoch whose weights training keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selection {
    /// The first epoch with the highest validation AUC.
    #[default]
    Auc,
    /// The epoch with the lowest validation loss.
    Loss,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub valid_loss: f64,
    pub valid_auc: Option<f64>,
    pub lr: f64,
    pub improved: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    pub history: Vec<EpochReport>,
    pub best_epoch: Option<usize>,
    pub best_auc: Option<f64>,
    pub stopped_early: bool,
    pub interrupted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    NoData(String),
    #[error("{0}")]
    Config(String),
    #[error("{path}: {message}")]
    Exam { path: PathBuf, message: String },
    /// Causes are part of the messages, not `source`s, so an error chain says them once.
    #[error("libtorch: {0}")]
    Torch(tch::TchError),
    #[error("saving {path}: {error}")]
    Save { path: PathBuf, error: tch::TchError },
}

impl From<tch::TchError> for TrainError {
    fn from(error: tch::TchError) -> Self {
        TrainError::Torch(error)
    }
}

/// One labelled series: its file, label and, where the dataset has one, its lesion mask.
#[derive(Debug, Clone)]
pub struct Sample {
    pub path: PathBuf,
    pub label: bool,
    pub mask: Option<PathBuf>,
}

/// The exams of `split` that have a label for `task` and a file for `plane`.
pub fn samples(dataset: &Dataset, split: Split, task: Task, plane: Plane) -> Vec<Sample> {
    dataset
        .exams()
        .iter()
        .filter(|e| e.split == split)
        .filter_map(|e: &Exam| {
            Some(Sample {
                path: e.path(plane)?.to_path_buf(),
                label: e.labels.get(task)?,
                mask: e.mask_path(plane).map(Path::to_path_buf),
            })
        })
        .collect()
}

/// Trains `net` (whose variables live in `vs`) and saves the best epoch by validation AUC to
/// `best_path` (safetensors, written to a temporary name and renamed). `stop` ends training
/// after the current exam; the best model so far stays saved.
#[allow(clippy::too_many_arguments)]
pub fn train(
    net: &dyn GapNetwork,
    vs: &nn::VarStore,
    train_set: &[Sample],
    valid_set: &[Sample],
    config: &TrainConfig,
    best_path: &Path,
    stop: &AtomicBool,
    mut on_step: impl FnMut(usize, f64),
    mut on_epoch: impl FnMut(&EpochReport),
) -> Result<TrainReport, TrainError> {
    if config.mask_weight > 0.0 && config.augment == Augment::Affine {
        return Err(TrainError::Config(
            "the lesion-mask loss needs the masks to move with the slices: \
             use it with --augment flips or none, not affine"
                .into(),
        ));
    }
    let positives = train_set.iter().filter(|s| s.label).count();
    if positives == 0 || positives == train_set.len() {
        return Err(TrainError::NoData(format!(
            "the train split has {positives} positive and {} negative {}-{} exams: need both",
            train_set.len() - positives,
            config.task,
            config.plane
        )));
    }
    if valid_set.is_empty() {
        return Err(TrainError::NoData(format!(
            "the valid split has no labelled {}-{} exams",
            config.task, config.plane
        )));
    }
    let pos_weight = (train_set.len() - positives) as f64 / positives as f64;
    let mut optimizer = nn::Adam {
        wd: config.weight_decay,
        ..Default::default()
    }
    .build(vs, config.lr)?;
    let mut rng = Rng::derive(
        config.seed,
        &[config.task.index() as u64, config.plane.index() as u64],
    );
    let mut report = TrainReport {
        history: Vec::new(),
        best_epoch: None,
        best_auc: None,
        stopped_early: false,
        interrupted: false,
    };
    let (mut lr, mut best_loss, mut since_better) = (config.lr, f64::INFINITY, 0usize);
    let mut kept_loss = f64::INFINITY;
    for epoch in 1..=config.epochs {
        let order = rng.shuffled(train_set.len());
        let mut loss_sum = 0.0;
        for (step, &i) in order.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                report.interrupted = true;
                return Ok(report);
            }
            let sample = &train_set[i];
            let x = load_input(sample, config.device)?;
            let mut flips = Vec::new();
            let x = match config.augment {
                Augment::Affine => augment(&x, &mut rng),
                Augment::Flips => {
                    flips = random_flips(&mut rng);
                    flip(&x, &flips)
                }
                Augment::None => x,
            };
            let features = net.features(&x)?;
            let (weight, bias) = net.classifier();
            let mut loss = weighted_loss(&head(&features, weight, bias), sample.label, pos_weight);
            if config.mask_weight > 0.0 && sample.label {
                if let Some(lesion) = lesion_cells(sample, config, &flips, &x, &features)? {
                    loss += mask_loss(&features, weight, &lesion) * config.mask_weight;
                }
            }
            optimizer.backward_step(&loss);
            let value = loss.double_value(&[]);
            loss_sum += value;
            on_step(step + 1, value);
        }
        let (valid_loss, valid_auc) = evaluate(net, valid_set, pos_weight, config.device)?;
        let better = match config.select {
            Selection::Auc => valid_auc.is_some_and(|a| report.best_auc.is_none_or(|b| a > b)),
            Selection::Loss => valid_loss < kept_loss,
        };
        if better || report.best_epoch.is_none() {
            save(vs, best_path)?;
            report.best_epoch = Some(epoch);
            report.best_auc = valid_auc;
            kept_loss = valid_loss;
        }
        let epoch_report = EpochReport {
            epoch,
            train_loss: loss_sum / train_set.len() as f64,
            valid_loss,
            valid_auc,
            lr,
            improved: better,
        };
        on_epoch(&epoch_report);
        report.history.push(epoch_report);
        if valid_loss < best_loss - 1e-4 {
            (best_loss, since_better) = (valid_loss, 0);
        } else {
            since_better += 1;
            if since_better % config.lr_patience == 0 {
                lr *= 0.3;
                optimizer.set_lr(lr);
            }
            if since_better >= config.patience {
                report.stopped_early = true;
                break;
            }
        }
    }
    Ok(report)
}

fn load_input(sample: &Sample, device: Device) -> Result<Tensor, TrainError> {
    let volume = crate::data::npy::read_volume(&sample.path).map_err(|e| TrainError::Exam {
        path: sample.path.clone(),
        message: e.detail(),
    })?;
    Ok(Preprocess::Raw.input(&volume.data, device))
}

/// The same random rotation (±25°), translation (±11 %) and horizontal flip for every slice.
pub fn augment(x: &Tensor, rng: &mut Rng) -> Tensor {
    let angle = rng.range(-25.0, 25.0).to_radians();
    let (tx, ty) = (rng.range(-0.22, 0.22), rng.range(-0.22, 0.22));
    let flip = if rng.chance(0.5) { -1.0 } else { 1.0 };
    let (sin, cos) = (angle.sin(), angle.cos());
    let theta = Tensor::from_slice(&[
        (cos * flip) as f32,
        -sin as f32,
        tx as f32,
        (sin * flip) as f32,
        cos as f32,
        ty as f32,
    ])
    .view([1, 2, 3])
    .to_device(x.device());
    let slices = x.size()[0];
    let theta = theta.expand([slices, 2, 3], false);
    let grid = Tensor::affine_grid_generator(&theta, x.size(), false);
    x.grid_sampler_2d(&grid, 0, 0, false)
}

/// Which axes of the slices to flip: vertical (-2) and horizontal (-1), each with probability ½.
pub fn random_flips(rng: &mut Rng) -> Vec<i64> {
    let (horizontal, vertical) = (rng.chance(0.5), rng.chance(0.5));
    [(vertical, -2), (horizontal, -1)]
        .into_iter()
        .filter_map(|(on, dim)| on.then_some(dim))
        .collect()
}

/// `x` flipped along `dims` (the same for every slice).
pub fn flip(x: &Tensor, dims: &[i64]) -> Tensor {
    if dims.is_empty() {
        x.shallow_clone()
    } else {
        x.flip(dims)
    }
}

/// The sample's lesion (the voxels that count for the task) at the features' resolution,
/// grown by one cell as the pointing game grows it: (S, h, w), 1 in the lesion. None without
/// a mask or without lesion voxels; an error when the mask's shape is not the series' (`input`,
/// (S, channels, H, W)).
fn lesion_cells(
    sample: &Sample,
    config: &TrainConfig,
    flips: &[i64],
    input: &Tensor,
    features: &Tensor,
) -> Result<Option<Tensor>, TrainError> {
    let Some(path) = &sample.mask else {
        return Ok(None);
    };
    let mask = crate::data::npy::read_volume(path).map_err(|e| TrainError::Exam {
        path: path.clone(),
        message: e.detail(),
    })?;
    let (slices, height, width) = mask.data.dim();
    let series = input.size();
    let series = (series[0], series[2], series[3]);
    if series != (slices as i64, height as i64, width as i64) {
        return Err(TrainError::Exam {
            path: path.clone(),
            message: format!(
                "the mask is {slices}×{height}×{width} (slices × rows × columns), the series \
                 {}×{}×{}: expected the same shape",
                series.0, series.1, series.2
            ),
        });
    }
    let size = features.size();
    Ok(lesion_cell_mask(
        &mask.data,
        config.task,
        flips,
        (size[2], size[3]),
        features.device(),
    ))
}

/// `mask`'s voxels that count for `task`, flipped along `flips` as the slices were, at `cells`
/// (the features' rows × columns; a cell holds the lesion if any of its voxels does) and grown
/// by one cell: (S, rows, columns), 1 in the lesion. None without such voxels.
pub fn lesion_cell_mask(
    mask: &ndarray::Array3<u8>,
    task: Task,
    flips: &[i64],
    (rows, columns): (i64, i64),
    device: Device,
) -> Option<Tensor> {
    let (slices, height, width) = mask.dim();
    let lesion: Vec<f32> = mask
        .iter()
        .map(|&code| {
            let counts = Lesion::from_code(code).is_some_and(|l| l.counts_for(task));
            f32::from(u8::from(counts))
        })
        .collect();
    if !lesion.iter().any(|&v| v > 0.0) {
        return None;
    }
    let lesion = Tensor::from_slice(&lesion)
        .view([slices as i64, 1, height as i64, width as i64])
        .to_device(device);
    let cells = flip(&lesion, flips)
        .adaptive_max_pool2d([rows, columns])
        .0
        .max_pool2d([3, 3], [1, 1], [1, 1], [1, 1], false);
    Some(cells.squeeze_dim(1))
}

/// The share of the positive class's CAM (its positive part, over every slice) that lies
/// outside `lesion`: 0 when all the heat is on the lesion. Training on it alongside the labels
/// ("right for the right reasons") keeps a model from answering beside the evidence, which
/// global average pooling leaves free.
pub fn mask_loss(features: &Tensor, weight: &Tensor, lesion: &Tensor) -> Tensor {
    let classes = weight.size()[0];
    let channels = features.size()[1];
    let positive = weight.get(classes - 1).view([1, channels, 1, 1]);
    let heat = (features * positive)
        .sum_dim_intlist(1, false, Kind::Float)
        .relu();
    let outside = (&heat * (lesion.ones_like() - lesion)).sum(Kind::Float);
    outside / (heat.sum(Kind::Float) + 1e-6)
}

fn exam_logits(net: &dyn GapNetwork, x: &Tensor) -> Result<Tensor, TrainError> {
    let features = net.features(x)?;
    let (weight, bias) = net.classifier();
    Ok(head(&features, weight, bias))
}

/// BCE with logits on [1 − y, y] for two outputs (on y for one), positives weighted by neg/pos.
fn weighted_loss(logits: &Tensor, label: bool, pos_weight: f64) -> Tensor {
    let y = f32::from(u8::from(label));
    let k = logits.size()[0];
    let target = if k >= 2 {
        Tensor::from_slice(&[1.0 - y, y])
    } else {
        Tensor::from_slice(&[y])
    }
    .to_device(logits.device());
    let weight = if label { pos_weight } else { 1.0 };
    logits.binary_cross_entropy_with_logits::<Tensor>(&target, None, None, tch::Reduction::Mean)
        * weight
}

/// Mean validation loss and AUC, without gradients.
pub fn evaluate(
    net: &dyn GapNetwork,
    valid_set: &[Sample],
    pos_weight: f64,
    device: Device,
) -> Result<(f64, Option<f64>), TrainError> {
    let mut loss_sum = 0.0;
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for sample in valid_set {
        let x = load_input(sample, device)?;
        let logits = tch::no_grad(|| exam_logits(net, &x))?;
        loss_sum += weighted_loss(&logits, sample.label, pos_weight).double_value(&[]);
        let values = Vec::<f32>::try_from(logits.to_kind(Kind::Float).to_device(Device::Cpu))?;
        scores.push(f64::from(positive_probability(&values)));
        labels.push(sample.label);
    }
    Ok((loss_sum / valid_set.len() as f64, auc(&scores, &labels)))
}

fn save(vs: &nn::VarStore, path: &Path) -> Result<(), TrainError> {
    crate::fsutil::atomic_save(path, |tmp| vs.save(tmp)).map_err(|error| TrainError::Save {
        path: path.to_path_buf(),
        error,
    })
}
