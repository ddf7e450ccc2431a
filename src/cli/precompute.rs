//! `kneecam precompute`: every exam × plane × task × method of a dataset into the CAM store,
//! so that the explorer opens any exam at once. Shardable (`--shard i/n`) across machines
//! that share one store; interruptible (every entry is written atomically).
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::cam::store::{Precision, Store};
use crate::cam::Method;
use crate::cli::bad_input;
use crate::config::SplitChoice;
use crate::data::dataset::Exam;
use crate::data::{npy::Volume, Plane, Task};
use crate::model::device::DeviceChoice;
use crate::model::manifest::Manifest;
use crate::paths::Folders;

mod models;

use models::Inputs;
pub(super) use models::{forward_batch, Models};

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
    /// Workers on the CPU, each with its own models and an equal share of the threads
    /// [default: one per thread, so each runs single-threaded]; CUDA always has one.
    #[arg(long)]
    pub workers: Option<usize>,
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
    let batch = args
        .batch
        .unwrap_or(if device.is_cuda() { 4 } else { 1 })
        .max(1);
    let crew = Crew::for_device(device, args.workers);
    let job = Job {
        exams: &exams,
        planes: &planes,
        methods: &methods,
        store: &store,
        bar: &bar,
    };
    let (windows, queue) = mpsc::sync_channel::<Vec<Series>>(crew.workers);
    let queue = Mutex::new(queue);
    let (tally, exams_done) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..crew.workers)
            .map(|_| {
                let models = Models::new(args.models.clone(), manifest.clone(), device);
                let (job, queue) = (&job, &queue);
                scope.spawn(move || job.work(queue, models, crew.threads_each))
            })
            .collect();
        let mut window: Vec<Series> = Vec::new();
        for item in series {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            window.push(item);
            if window.len() >= batch * planes.len()
                && windows.send(std::mem::take(&mut window)).is_err()
            {
                break;
            }
        }
        if !stop.load(Ordering::SeqCst) && !window.is_empty() {
            let _ = windows.send(window);
        }
        drop(windows);
        let mut total = (Tally::default(), 0);
        for handle in handles {
            // A worker that panicked has lost its window; the panic hook has logged it.
            if let Ok((tally, done)) = handle.join() {
                total.0.add(tally);
                total.1 += done;
            }
        }
        total
    });
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

/// How many workers precompute on the device, and with how many threads each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Crew {
    workers: usize,
    /// Intra-op threads per worker; None leaves libtorch's setting (CUDA's one worker).
    threads_each: Option<i32>,
}

impl Crew {
    /// On the CPU, libtorch's small operations on the tiny models scale poorly across
    /// threads (OpenMP spin was 19 % of the samples with two): by default as many
    /// single-threaded workers as libtorch would use threads, each with its own models.
    fn for_device(device: tch::Device, asked: Option<usize>) -> Crew {
        if device.is_cuda() {
            return Crew {
                workers: 1,
                threads_each: None,
            };
        }
        let threads = tch::get_num_threads().max(1) as usize;
        let workers = asked.unwrap_or(threads).max(1);
        Crew {
            workers,
            threads_each: Some((threads / workers).max(1) as i32),
        }
    }
}

/// What every worker shares: the work list and where results go.
struct Job<'a> {
    exams: &'a [Exam],
    planes: &'a [Plane],
    methods: &'a [Method],
    store: &'a Store,
    bar: &'a indicatif::ProgressBar,
}

impl Job<'_> {
    /// One worker: windows from `queue` until it closes; the entries tallied, exams counted.
    fn work(
        &self,
        queue: &Mutex<Receiver<Vec<Series>>>,
        mut models: Models,
        threads: Option<i32>,
    ) -> (Tally, usize) {
        if let Some(threads) = threads {
            // OpenMP's thread count is the calling thread's own setting.
            tch::set_num_threads(threads);
        }
        let mut tally = Tally::default();
        let mut exams_done = 0;
        loop {
            // A worker that panicked poisons the lock; the others go on draining the queue,
            // so while any worker lives the reader is never left blocked on a full one.
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(window) = next else { break };
            tally.add(self.process(&window, &mut models));
            let exams: std::collections::BTreeSet<usize> = window.iter().map(|s| s.exam).collect();
            self.bar.inc(exams.len() as u64);
            exams_done += exams.len();
        }
        (tally, exams_done)
    }

    /// One window of read series: per plane and task, the exams still missing entries go
    /// through the model together.
    fn process(&self, window: &[Series], models: &mut Models) -> Tally {
        let Job {
            exams,
            planes,
            methods,
            store,
            bar,
        } = *self;
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
            let series: Vec<(&Volume, &str)> = group.iter().map(|(_, v, s)| (*v, *s)).collect();
            let volumes = series.iter().map(|(v, _)| *v).collect();
            let mut inputs = Inputs::new(volumes, models.device());
            for task in Task::ALL {
                match models.explain(task, plane, &series, &mut inputs, methods, store) {
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
