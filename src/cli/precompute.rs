//! `kneecam precompute`: every exam × plane × task × method of a dataset into the CAM store,
//! so that the explorer opens any exam at once. Shardable (`--shard i/n`) across machines
//! that share one store; interruptible (every entry is written atomically).
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::cam::store::{CacheKey, Precision, Store};
use crate::cam::{self, Method, Placement};
use crate::cli::bad_input;
use crate::config::SplitChoice;
use crate::data::dataset::Exam;
use crate::data::{npy::Volume, Plane, Task};
use crate::model::cache::ModelCache;
use crate::model::device::DeviceChoice;
use crate::model::loaded::LoadedModel;
use crate::model::manifest::Manifest;
use crate::model::network::GapNetwork;
use crate::paths::Folders;

/// Exams read ahead of the device.
const READ_AHEAD: usize = 4;

#[derive(Debug, clap::Args)]
pub struct PrecomputeArgs {
    /// The dataset folder (MRNet layout or a flat folder).
    #[arg(long)]
    pub data: PathBuf,
    /// The models folder (weights + manifest.toml).
    #[arg(long)]
    pub models: PathBuf,
    /// Methods, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    pub methods: String,
    #[arg(long, value_enum, default_value = "valid")]
    pub split: SplitChoice,
    /// This machine's share of the work, `i/n` with 0 ≤ i < n (a stable split by exam).
    #[arg(long)]
    pub shard: Option<Shard>,
    /// The CAM store [default: cams/ in the cache folder]; a shared folder for many machines.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// How raw maps are stored.
    #[arg(long, value_enum, default_value = "f16")]
    pub precision: PrecisionChoice,
    /// Exams per forward pass (their slices in one batch) [default: 1 on the CPU, 4 on CUDA].
    #[arg(long)]
    pub batch: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionChoice {
    F16,
    F32,
}

/// `--shard i/n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(text: &str) -> Result<Shard, String> {
        let expected = || format!("'{text}': expected i/n with 0 ≤ i < n, e.g. 0/4");
        let (i, n) = text.split_once('/').ok_or_else(expected)?;
        let index: u64 = i.trim().parse().map_err(|_| expected())?;
        let count: u64 = n.trim().parse().map_err(|_| expected())?;
        if count == 0 || index >= count {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether `exam` is this shard's: by a hash of its split and id (a study's: its name), the
    /// same on every machine and independent of which other exams exist.
    pub fn owns(&self, exam: &Exam) -> bool {
        let key = match &exam.study {
            Some(name) => format!("{}/study/{name}", exam.split),
            None => format!("{}/{}", exam.split, exam.id),
        };
        let digest = Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first) % self.count == self.index
    }
}

/// One plane's series, read (and hashed) ahead of the device.
pub(super) struct Series {
    pub exam: usize,
    pub plane: Plane,
    pub loaded: Result<(Volume, String), String>,
}

/// What a run did, entries counted per (exam, plane, task, method).
#[derive(Debug, Default)]
struct Tally {
    computed: usize,
    reused: usize,
    replaced: usize,
    failed: usize,
}

pub fn run(args: PrecomputeArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let methods = parse_methods(&args.methods).map_err(bad_input)?;
    let folders = Folders::locate().map_err(bad_input)?;
    let manifest = Manifest::load(&args.models).map_err(bad_input)?;
    let dataset = super::open::dataset_for(&args.data, &manifest, &args.models, None)?;
    let exams: Vec<Exam> = dataset
        .exams()
        .iter()
        .filter(|e| args.split.includes(e.split))
        .filter(|e| args.shard.is_none_or(|s| s.owns(e)))
        .cloned()
        .collect();
    let root = args.cache.clone().unwrap_or_else(|| folders.cam_store());
    super::outside_inputs("--cache", &root, Some(&args.data), Some(&args.models))?;
    let precision = match args.precision {
        PrecisionChoice::F16 => Precision::F16,
        PrecisionChoice::F32 => Precision::F32,
    };
    let store = Store::new(&root, precision);
    store
        .check_writable()
        .with_context(|| format!("the CAM store {} cannot be written", root.display()))?;
    let planes: Vec<Plane> = Plane::ALL
        .into_iter()
        .filter(|p| Task::ALL.iter().any(|t| manifest.model(*t, *p).is_some()))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // A second handler cannot be installed in one process; then Ctrl-C simply kills, which
    // the atomic writes make safe too.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    let started = Instant::now();
    let bar = crate::cli::progress_bar(exams.len() as u64, "exams");
    let series = read_ahead(exams.clone(), planes.clone(), Arc::clone(&stop))?;
    let mut models = Models::new(args.models.clone(), manifest, device);
    let batch = args
        .batch
        .unwrap_or(if device.is_cuda() { 4 } else { 1 })
        .max(1);
    let mut tally = Tally::default();
    let mut exams_done = 0;
    let mut window: Vec<Series> = Vec::new();
    let mut flush = |window: &mut Vec<Series>, tally: &mut Tally| {
        let done = process(window, &exams, &planes, &methods, &store, &mut models, &bar);
        tally.add(done);
        let count = window
            .iter()
            .map(|s| s.exam)
            .collect::<std::collections::BTreeSet<_>>();
        bar.inc(count.len() as u64);
        window.clear();
        count.len()
    };
    for item in series {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        window.push(item);
        if window.len() >= batch * planes.len() {
            exams_done += flush(&mut window, &mut tally);
        }
    }
    if !stop.load(Ordering::SeqCst) {
        exams_done += flush(&mut window, &mut tally);
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if stop.load(Ordering::SeqCst) {
        println!("interrupted: the store holds every entry finished so far");
    }
    println!(
        "{exams_done} exams in {seconds:.1} s ({:.2} exams/s): {} entries computed, {} already \
         in the store, {} corrupt ones replaced, {} failed; store: {}",
        exams_done as f64 / seconds.max(1e-9),
        tally.computed,
        tally.reused,
        tally.replaced,
        tally.failed,
        root.display()
    );
    Ok(if tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.computed += other.computed;
        self.reused += other.reused;
        self.replaced += other.replaced;
        self.failed += other.failed;
    }
}

/// One window of read series: per plane and task, the exams still missing entries go
/// through the model together.
fn process(
    window: &[Series],
    exams: &[Exam],
    planes: &[Plane],
    methods: &[Method],
    store: &Store,
    models: &mut Models,
    bar: &indicatif::ProgressBar,
) -> Tally {
    let mut tally = Tally::default();
    for &plane in planes {
        let mut group = Vec::new();
        for series in window.iter().filter(|s| s.plane == plane) {
            match &series.loaded {
                Ok((volume, sha)) => group.push((series.exam, volume, sha.as_str())),
                Err(err) => {
                    tally.failed += methods.len();
                    report(bar, format!("skipped: {err}"));
                }
            }
        }
        if group.is_empty() {
            continue;
        }
        for task in Task::ALL {
            let series: Vec<(&Volume, &str)> = group.iter().map(|(_, v, s)| (*v, *s)).collect();
            match models.explain(task, plane, &series, methods, store) {
                Ok(done) => tally.add(done),
                Err(err) => {
                    tally.failed += methods.len() * group.len();
                    let names: Vec<String> =
                        group.iter().map(|(e, _, _)| exams[*e].name()).collect();
                    report(
                        bar,
                        format!("{}: {task} {plane}: {err:#}", names.join(", ")),
                    );
                }
            }
        }
    }
    tally
}

/// A line above the progress bar, or on stderr when the bar is hidden (not a terminal).
pub(super) fn report(bar: &indicatif::ProgressBar, line: String) {
    let line = super::printable(&line);
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

pub fn parse_methods(text: &str) -> anyhow::Result<Vec<Method>> {
    if text.trim() == "all" {
        return Ok(Method::ALL.to_vec());
    }
    let mut methods = Vec::new();
    for name in text.split(',') {
        let method: Method = name.parse()?;
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    Ok(methods)
}

/// Reads each exam's planes on a thread of its own, `READ_AHEAD` exams ahead, so the device
/// never waits for the disk.
pub(super) fn read_ahead(
    exams: Vec<Exam>,
    planes: Vec<Plane>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Receiver<Series>> {
    let (sender, receiver) = mpsc::sync_channel(READ_AHEAD * planes.len().max(1));
    std::thread::Builder::new()
        .name("kneecam-read-ahead".into())
        .spawn(move || {
            for (index, exam) in exams.iter().enumerate() {
                for &plane in &planes {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let loaded = exam.load_hashed(plane).map_err(|e| e.to_string());
                    let series = Series {
                        exam: index,
                        plane,
                        loaded,
                    };
                    if sender.send(series).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok(receiver)
}

/// The manifest's models, loaded on first use and kept.
pub(super) struct Models {
    dir: PathBuf,
    manifest: Manifest,
    device: tch::Device,
    loaded: ModelCache,
}

impl Models {
    pub(super) fn new(dir: PathBuf, manifest: Manifest, device: tch::Device) -> Models {
        Models {
            dir,
            manifest,
            device,
            loaded: ModelCache::new(),
        }
    }

    /// Every missing method's entry for some series under one task's model: the series that
    /// miss any go through the network in one batch (when their slices have one size).
    fn explain(
        &mut self,
        task: Task,
        plane: Plane,
        series: &[(&Volume, &str)],
        methods: &[Method],
        store: &Store,
    ) -> anyhow::Result<Tally> {
        let Some(entry) = self.manifest.model(task, plane).cloned() else {
            return Ok(Tally::default());
        };
        let class = entry.positive_class();
        let key = |exam_sha256: &str, method| CacheKey::for_model(&entry, exam_sha256, method);
        let mut tally = Tally::default();
        let mut todo: Vec<(&Volume, &str, Vec<Method>)> = Vec::new();
        for &(volume, sha) in series {
            let mut missing = Vec::new();
            for &method in methods {
                match store.get(&key(sha, method)) {
                    Ok(Some(_)) => tally.reused += 1,
                    Ok(None) => missing.push(method),
                    Err(err) => {
                        tracing::warn!("{err}; recomputing");
                        tally.replaced += 1;
                        missing.push(method);
                    }
                }
            }
            if !missing.is_empty() {
                todo.push((volume, sha, missing));
            }
        }
        if todo.is_empty() {
            return Ok(tally);
        }
        let model = self.model(task, plane)?;
        let volumes: Vec<&Volume> = todo.iter().map(|(v, _, _)| *v).collect();
        let passes = forward_batch(model, &volumes)?;
        for ((volume, sha, missing), pass) in todo.iter().zip(&passes) {
            let (_, height, width) = volume.data.dim();
            let placement = Placement {
                window: model.preprocess.window(height, width),
                slice: (height, width),
            };
            for &method in missing {
                let entry = cam::store_entry(&model.network, pass, method, Some(class), placement)?;
                store.put(&key(sha, method), &entry)?;
                tally.computed += 1;
            }
        }
        Ok(tally)
    }

    pub(super) fn model(&mut self, task: Task, plane: Plane) -> anyhow::Result<&LoadedModel> {
        let (dir, manifest, device) = (&self.dir, &self.manifest, self.device);
        self.loaded
            .get_or_load((task, plane), |(task, plane)| {
                LoadedModel::from_loaded_manifest(dir, manifest, task, plane, device)
            })
            .map_err(bad_input)
    }
}

/// The forward passes of several series: one batch of all their slices when the network
/// treats slices independently and the inputs share a size, else one pass each. The features of each series are its slices' share of
/// the batch, and its logits come from its own slices only.
pub(super) fn forward_batch(
    model: &LoadedModel,
    volumes: &[&Volume],
) -> anyhow::Result<Vec<cam::Forward>> {
    let device = model.network.classifier().0.device();
    let inputs: Vec<tch::Tensor> = volumes
        .iter()
        .map(|v| model.preprocess.input(&v.data, device))
        .collect();
    let same_size = inputs
        .windows(2)
        .all(|pair| pair[0].size()[1..] == pair[1].size()[1..]);
    let one_each = |inputs: &[tch::Tensor]| {
        inputs
            .iter()
            .map(|x| cam::forward(&model.network, x).map_err(Into::into))
            .collect()
    };
    if inputs.len() == 1 || !same_size || !model.network.slices_independent() {
        return one_each(&inputs);
    }
    let all = match cam::forward(&model.network, &tch::Tensor::cat(&inputs, 0)) {
        Ok(all) => all,
        // A batch the device has no room for: smaller ones (one series each) may fit.
        Err(err) if crate::engine::is_out_of_memory(&err.to_string()) => {
            tracing::warn!("{err}; this batch of {} goes one at a time", inputs.len());
            return one_each(&inputs);
        }
        Err(err) => return Err(err.into()),
    };
    let mut start = 0;
    let mut passes = Vec::new();
    for x in &inputs {
        let slices = x.size()[0];
        let features = all.features.narrow(0, start, slices);
        start += slices;
        let logits = tch::no_grad(|| model.network.logits(&features))?;
        let logits =
            Vec::<f32>::try_from(logits.to_kind(tch::Kind::Float).to_device(tch::Device::Cpu))?;
        passes.push(cam::Forward { features, logits });
    }
    Ok(passes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("1/4".parse(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn methods_parse() {
        assert_eq!(parse_methods("all").expect("all").len(), 4);
        assert_eq!(
            parse_methods("contrib,cam,contrib").expect("list"),
            vec![Method::Contrib, Method::Cam]
        );
        assert!(parse_methods("cam,lime").is_err());
    }
}
