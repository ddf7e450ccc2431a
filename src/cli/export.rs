//! `kneecam export`: a cohort's slices and CAM overlays as PNGs in the reference code's tree
//! (`{plane}/{exam}/slices/{i}.png`, `…/cams/{i}.png`), or kneecam's (that, plus per-series JSON
//! and an index), in one process. Three stages overlap: a thread reads exams ahead, the device
//! runs what the CAM store lacks, a thread encodes and writes PNGs. Each series' folder appears
//! whole or not at all, so Ctrl-C leaves only whole exams and a re-run skips what is done.
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::precompute::{forward_batch, read_ahead, report, Models, Series, Shard};
use crate::cam::colormap::Colormap;
use crate::cam::export::{self as files, Layout, SeriesRecord};
use crate::cam::store::{CacheKey, Entry, Precision, Store};
use crate::cam::{self, reference, Explanation, Method, Normalization, Placement};
use crate::cli::bad_input;
use crate::config::SplitChoice;
use crate::data::dataset::Exam;
use crate::data::{npy::Volume, Plane, Task};
use crate::model::device::DeviceChoice;
use crate::model::manifest::Manifest;
use crate::model::network::top_class;
use crate::paths::Folders;

/// Series encoded ahead of the writer (each holds its slices and maps).
const WRITE_QUEUE: usize = 6;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The dataset folder (MRNet layout or a flat folder).
    #[arg(long)]
    pub data: PathBuf,
    /// The models folder (weights + manifest.toml).
    #[arg(long)]
    pub models: PathBuf,
    /// Where the tree goes (created; a re-run into it skips what is there).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "acl")]
    pub task: Task,
    #[arg(long, value_enum, default_value = "valid")]
    pub split: SplitChoice,
    /// Which exams: positives or negatives by the dataset's label, all, the model's calls
    /// against the label (tp, fn, fp, tn: the combined probability at 0.5), or reviewed (a
    /// verdict on this task in the review database).
    #[arg(long, value_enum, default_value = "positives")]
    pub which: Which,
    /// Planes, comma-separated [default: every plane with a model for the task].
    #[arg(long, value_delimiter = ',')]
    pub planes: Vec<Plane>,
    #[arg(long, default_value = "cam")]
    pub method: Method,
    /// exam, slice (the reference code's: each slice spans the full range) or none
    /// [default: slice for --layout reference, exam for kneecam].
    #[arg(long)]
    pub normalize: Option<Normalization>,
    /// The class whose evidence is drawn: the model's top class for each series (the reference
    /// code's) or the task's positive class [default: top for --layout reference, positive
    /// for kneecam].
    #[arg(long, value_enum)]
    pub class: Option<ClassChoice>,
    #[arg(long, default_value = "jet")]
    pub colormap: Colormap,
    #[arg(long, value_enum, default_value = "reference")]
    pub layout: LayoutChoice,
    /// This machine's share of the exams, `i/n` (as precompute's).
    #[arg(long)]
    pub shard: Option<Shard>,
    /// The CAM store read first and filled with what is computed [default: cams/ in the cache
    /// folder].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// With --which reviewed: the review database [default: reviews.sqlite in kneecam's data
    /// folder].
    #[arg(long)]
    pub reviews: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Positives,
    Negatives,
    All,
    Tp,
    Fn,
    Fp,
    Tn,
    Reviewed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClassChoice {
    Top,
    Positive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutChoice {
    Reference,
    Kneecam,
}

impl Which {
    /// Whether the choice needs the model's call, so every plane's model runs.
    fn needs_call(self) -> bool {
        matches!(self, Which::Tp | Which::Fn | Which::Fp | Which::Tn)
    }

    /// Whether an exam is chosen before any model runs (`None`: only its call can say).
    fn by_label(self, label: Option<bool>) -> Option<bool> {
        match self {
            Which::Positives => Some(label == Some(true)),
            Which::Negatives => Some(label == Some(false)),
            Which::All | Which::Reviewed => Some(true),
            _ if label.is_none() => Some(false),
            _ => None,
        }
    }

    fn by_call(self, label: bool, call: bool) -> bool {
        match self {
            Which::Tp => label && call,
            Which::Fn => label && !call,
            Which::Fp => !label && call,
            Which::Tn => !label && !call,
            _ => true,
        }
    }
}

/// What the run is asked for, fixed before it starts.
struct Job {
    task: Task,
    which: Which,
    /// The planes written.
    planes: Vec<Plane>,
    /// The planes run: those written, or every plane of the task when the call decides.
    run_planes: Vec<Plane>,
    method: Method,
    normalization: Normalization,
    class: ClassChoice,
    /// The reference code's per-slice maps, bit for bit ([`reference::slice_maps`]).
    reference_maps: bool,
    colormap: Colormap,
    layout: Layout,
}

/// One series to write, with what its JSON says.
struct WriteJob {
    last_of_exam: bool,
    plane: Plane,
    name: String,
    volume: Volume,
    maps: ndarray::Array3<u8>,
    record: Option<SeriesRecord>,
}

#[derive(Debug, Default)]
struct Tally {
    exported: usize,
    not_chosen: usize,
    failed: usize,
    computed: usize,
    from_store: usize,
}

pub fn run(args: ExportArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let folders = Folders::locate().map_err(bad_input)?;
    let manifest = Manifest::load(&args.models).map_err(bad_input)?;
    let job = plan(&args, &manifest)?;
    super::outside_inputs("--out", &args.out, Some(&args.data), Some(&args.models))?;
    let root = args.cache.clone().unwrap_or_else(|| folders.cam_store());
    super::outside_inputs("--cache", &root, Some(&args.data), Some(&args.models))?;
    let dataset = super::open::dataset_for(&args.data, &manifest, &args.models, None)?;
    let reviewed = match job.which {
        Which::Reviewed => Some(reviewed_exams(&args, &dataset, job.task)?),
        _ => None,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))
        .map_err(bad_input)?;
    let plane_names: Vec<&str> = job.planes.iter().map(|p| p.name()).collect();
    let stale = files::remove_stale_temporaries(&args.out, &plane_names);
    if stale > 0 {
        eprintln!("removed {stale} unfinished folders an interrupted export left");
    }
    let chosen: Vec<Exam> = dataset
        .exams()
        .iter()
        .filter(|e| args.split.includes(e.split))
        .filter(|e| args.shard.is_none_or(|s| s.owns(e)))
        .filter(|e| job.which.by_label(e.labels.get(job.task)) != Some(false))
        .filter(|e| {
            reviewed
                .as_ref()
                .is_none_or(|r| r.contains(&(e.split, e.name())))
        })
        .cloned()
        .collect();
    let (todo, done): (Vec<Exam>, Vec<Exam>) = chosen
        .into_iter()
        .partition(|e| !is_complete(&args, &job, e));
    // The reference maps truncate to 8 bits at feature resolution, where float16's 3 digits
    // would move one cell in several hundred by a step.
    let precision = if job.reference_maps {
        Precision::F32
    } else {
        Precision::F16
    };
    let store = Store::new(&root, precision);
    store
        .check_writable()
        .with_context(|| format!("the CAM store {} cannot be written", root.display()))?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // A second handler cannot be installed in one process; then Ctrl-C simply kills, which
    // the folders' renames make safe too.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let started = Instant::now();
    let bar = crate::cli::progress_bar(todo.len() as u64, "exams");
    let (sender, receiver) = mpsc::sync_channel::<WriteJob>(WRITE_QUEUE);
    let write_failures = Arc::new(AtomicUsize::new(0));
    let writer = spawn_writer(
        receiver,
        args.out.clone(),
        job.colormap,
        bar.clone(),
        Arc::clone(&write_failures),
    )?;
    let series = read_ahead(todo.clone(), job.run_planes.clone(), Arc::clone(&stop))?;
    let mut models = Models::new(args.models.clone(), manifest.clone(), device);
    let mut tally = Tally::default();
    let mut window: Vec<Series> = Vec::new();
    for item in series {
        window.push(item);
        if window.len() < job.run_planes.len() {
            continue;
        }
        let exam = &todo[window[0].exam];
        let context = ExamContext {
            job: &job,
            manifest: &manifest,
            store: &store,
            exam,
        };
        match explain_exam(
            &context,
            &mut models,
            std::mem::take(&mut window),
            &mut tally,
        ) {
            Ok(Some(explained)) => {
                tally.exported += 1;
                let jobs = write_jobs(&context, explained);
                if send_all(&sender, jobs).is_err() {
                    break;
                }
            }
            Ok(None) => {
                tally.not_chosen += 1;
                bar.inc(1);
            }
            Err(err) => {
                tally.failed += 1;
                report(&bar, format!("{}: {err:#}", exam.name()));
                bar.inc(1);
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    drop(sender);
    let written = writer.join().unwrap_or(0);
    bar.finish_and_clear();
    tally.failed += write_failures.load(Ordering::SeqCst);
    if job.layout == Layout::Kneecam {
        files::write_index(&args.out, &plane_names)
            .with_context(|| format!("writing the index in {}", args.out.display()))?;
    }
    print_summary(
        &args,
        &tally,
        written,
        done.len(),
        started,
        stop.load(Ordering::SeqCst),
    );
    Ok(if tally.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The arguments checked against the models folder.
fn plan(args: &ExportArgs, manifest: &Manifest) -> anyhow::Result<Job> {
    let task = args.task;
    let with_model: Vec<Plane> = Plane::ALL
        .into_iter()
        .filter(|p| manifest.model(task, *p).is_some())
        .collect();
    let mut planes = Vec::new();
    for &plane in &args.planes {
        if !with_model.contains(&plane) {
            return Err(bad_input(anyhow::anyhow!(
                "--planes: {} has no {task} {plane} model (it has: {})",
                args.models.display(),
                names(&with_model)
            )));
        }
        if !planes.contains(&plane) {
            planes.push(plane);
        }
    }
    if planes.is_empty() {
        planes.clone_from(&with_model);
    }
    if planes.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "{} has no {task} model",
            args.models.display()
        )));
    }
    let run_planes = if args.which.needs_call() {
        with_model
    } else {
        planes.clone()
    };
    let layout = match args.layout {
        LayoutChoice::Reference => Layout::Reference,
        LayoutChoice::Kneecam => Layout::Kneecam,
    };
    let normalization = args.normalize.unwrap_or(match layout {
        Layout::Reference => Normalization::Slice,
        Layout::Kneecam => Normalization::Exam,
    });
    let class = args.class.unwrap_or(match layout {
        Layout::Reference => ClassChoice::Top,
        Layout::Kneecam => ClassChoice::Positive,
    });
    Ok(Job {
        task,
        which: args.which,
        planes,
        run_planes,
        method: args.method,
        normalization,
        class,
        reference_maps: layout == Layout::Reference && normalization == Normalization::Slice,
        colormap: args.colormap,
        layout,
    })
}

fn names(planes: &[Plane]) -> String {
    if planes.is_empty() {
        return "none".into();
    }
    planes
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// (split, exam name) of every exam with a verdict on `task` in the review database.
fn reviewed_exams(
    args: &ExportArgs,
    dataset: &crate::data::dataset::Dataset,
    task: Task,
) -> anyhow::Result<BTreeSet<(crate::data::Split, String)>> {
    use crate::review::ReviewStore as _;
    let path = super::review::reviews_path(args.reviews.clone())?;
    let store = crate::review::sqlite::SqliteStore::open_read_only(&path).map_err(bad_input)?;
    let query = crate::review::Query {
        dataset_fingerprint: Some(crate::review::DatasetRef::of(dataset).fingerprint),
        task: Some(task),
        reader: None,
    };
    let verdicts = store.verdicts(&query).map_err(bad_input)?;
    Ok(verdicts.into_iter().map(|v| (v.split, v.exam)).collect())
}

/// Whether every written plane of `exam` already has its folder (the exam's series of that
/// plane may be missing: then there is nothing to write).
fn is_complete(args: &ExportArgs, job: &Job, exam: &Exam) -> bool {
    job.planes.iter().all(|plane| {
        exam.path(*plane).is_none()
            || files::series_folder(&args.out, plane.name(), &exam.name()).is_dir()
    })
}

struct ExamContext<'a> {
    job: &'a Job,
    manifest: &'a Manifest,
    store: &'a Store,
    exam: &'a Exam,
}

/// One plane's series with its explanation.
struct Explained {
    plane: Plane,
    volume: Volume,
    explanation: Explanation,
    model_sha256: String,
}

/// The exam's planes explained, or `None` when the model's call leaves it out.
fn explain_exam(
    context: &ExamContext,
    models: &mut Models,
    window: Vec<Series>,
    tally: &mut Tally,
) -> anyhow::Result<Option<(Vec<Explained>, Option<f32>)>> {
    let job = context.job;
    let mut explained = Vec::new();
    for series in window {
        let (volume, sha) = match series.loaded {
            Ok(loaded) => loaded,
            // A plane the exam lacks: nothing to write, and no call from all planes.
            Err(_) if context.exam.path(series.plane).is_none() => continue,
            Err(err) => anyhow::bail!("{err}"),
        };
        let (entry, computed) = entry_for(context, models, series.plane, &volume, &sha)?;
        if computed {
            tally.computed += 1;
        } else {
            tally.from_store += 1;
        }
        let model_sha256 = context
            .manifest
            .model(job.task, series.plane)
            .map(|m| m.sha256.clone())
            .unwrap_or_default();
        explained.push(Explained {
            plane: series.plane,
            explanation: explain(job, &entry),
            volume,
            model_sha256,
        });
    }
    let mut probabilities = [None; 3];
    for e in &explained {
        probabilities[e.plane.index()] = Some(e.explanation.probability);
    }
    let combined = context
        .manifest
        .combiner(job.task)
        .and_then(|c| c.combine(probabilities));
    if job.which.needs_call() {
        let label = context.exam.labels.get(job.task).unwrap_or(false);
        let call = combined.or_else(|| mean(&probabilities)).unwrap_or(0.0) >= 0.5;
        if !job.which.by_call(label, call) {
            return Ok(None);
        }
    }
    explained.retain(|e| job.planes.contains(&e.plane));
    Ok(Some((explained, combined)))
}

fn mean(probabilities: &[Option<f32>; 3]) -> Option<f32> {
    let known: Vec<f32> = probabilities.iter().flatten().copied().collect();
    (!known.is_empty()).then(|| known.iter().sum::<f32>() / known.len() as f32)
}

/// The entry's explanation as the job draws it.
fn explain(job: &Job, entry: &Entry) -> Explanation {
    if !job.reference_maps {
        return entry.explain(job.method, job.normalization);
    }
    let shown = match job.method {
        Method::GradCam | Method::GradCamPlusPlus => entry.raw.mapv(|v| v.max(0.0)),
        Method::Cam | Method::Contrib => entry.raw.clone(),
    };
    entry
        .clone()
        .with_maps(reference::slice_maps(&shown, entry.placement))
}

/// The store's entry for this series and the job's class, else one computed now and stored
/// (`true`: computed). The positive class's entry is looked up (and always stored) first: its
/// logits say which class is top.
fn entry_for(
    context: &ExamContext,
    models: &mut Models,
    plane: Plane,
    volume: &Volume,
    sha: &str,
) -> anyhow::Result<(Entry, bool)> {
    let job = context.job;
    let model_entry = context
        .manifest
        .model(job.task, plane)
        .context("no model for this plane")?;
    let positive = CacheKey::for_model(model_entry, sha, job.method);
    let key_for = |class: usize| CacheKey {
        class,
        ..positive.clone()
    };
    let wanted = |logits: &[f32]| match job.class {
        ClassChoice::Positive => positive.class,
        ClassChoice::Top => top_class(logits),
    };
    let stored = |key: &CacheKey| match context.store.get(key) {
        Ok(found) => found,
        Err(err) => {
            tracing::warn!("{err}; recomputing");
            None
        }
    };
    if let Some(entry) = stored(&positive) {
        let class = wanted(&entry.logits);
        if class == positive.class {
            return Ok((entry, false));
        }
        if let Some(entry) = stored(&key_for(class)) {
            return Ok((entry, false));
        }
    }
    let device = models.device();
    let model = models.model(job.task, plane)?;
    let pass = forward_batch(model, &[model.preprocess.input(&volume.data, device)])?
        .pop()
        .context("the forward pass gave nothing")?;
    let (_, height, width) = volume.data.dim();
    let placement = Placement {
        window: model.preprocess.window(height, width),
        slice: (height, width),
    };
    let entry_of = |class: usize| -> anyhow::Result<Entry> {
        let entry = cam::store_entry(&model.network, &pass, job.method, Some(class), placement)?;
        if let Err(err) = context.store.put(&key_for(class), &entry) {
            tracing::warn!("{err}; the export goes on without storing it");
        }
        Ok(entry)
    };
    let class = wanted(&pass.logits);
    let entry = entry_of(positive.class)?;
    if class == positive.class {
        return Ok((entry, true));
    }
    Ok((entry_of(class)?, true))
}

fn write_jobs(
    context: &ExamContext,
    (explained, combined): (Vec<Explained>, Option<f32>),
) -> Vec<WriteJob> {
    let job = context.job;
    let exam = context.exam;
    let count = explained.len();
    explained
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let record = (job.layout == Layout::Kneecam).then(|| SeriesRecord {
                exam: exam.name(),
                split: exam.split.to_string(),
                task: job.task.to_string(),
                plane: e.plane.to_string(),
                label: exam.labels.get(job.task),
                probability: e.explanation.probability,
                combined,
                logits: e.explanation.logits.clone(),
                class: e.explanation.class,
                method: job.method.name().to_string(),
                normalization: job.normalization.name().to_string(),
                colormap: job.colormap.to_string(),
                model_sha256: e.model_sha256.clone(),
                slice_contributions: e.explanation.scores.clone(),
                bias: e.explanation.bias,
            });
            WriteJob {
                last_of_exam: i + 1 == count,
                plane: e.plane,
                name: exam.name(),
                volume: e.volume,
                maps: e.explanation.maps,
                record,
            }
        })
        .collect()
}

fn send_all(sender: &mpsc::SyncSender<WriteJob>, jobs: Vec<WriteJob>) -> Result<(), ()> {
    for job in jobs {
        sender.send(job).map_err(|_| ())?;
    }
    Ok(())
}

/// The writing stage: every series it is sent, whole, in order; returns how many it wrote.
fn spawn_writer(
    receiver: mpsc::Receiver<WriteJob>,
    out: PathBuf,
    colormap: Colormap,
    bar: indicatif::ProgressBar,
    failures: Arc<AtomicUsize>,
) -> anyhow::Result<std::thread::JoinHandle<usize>> {
    let handle = std::thread::Builder::new()
        .name("kneecam-export-writer".into())
        .spawn(move || {
            let mut written = 0;
            for job in receiver {
                let outcome = files::write_series(
                    &out,
                    job.plane.name(),
                    &job.name,
                    &job.volume.data,
                    &job.maps,
                    colormap,
                    job.record.as_ref(),
                );
                match outcome {
                    Ok(()) => written += 1,
                    Err(err) => {
                        failures.fetch_add(1, Ordering::SeqCst);
                        report(&bar, format!("{} {}: {err}", job.name, job.plane));
                    }
                }
                if job.last_of_exam {
                    bar.inc(1);
                }
            }
            written
        })?;
    Ok(handle)
}

fn print_summary(
    args: &ExportArgs,
    tally: &Tally,
    written: usize,
    already: usize,
    started: Instant,
    interrupted: bool,
) {
    let seconds = started.elapsed().as_secs_f64();
    if interrupted {
        println!("interrupted: every exam written so far is whole; run again to finish");
    }
    let handled = tally.exported + tally.not_chosen + tally.failed;
    println!(
        "{} exams exported ({written} series folders) in {seconds:.1} s ({:.2} exams/s); {} \
         already there, {} not chosen by --which, {} failed; {} series from the CAM store, {} \
         computed; wrote {}",
        tally.exported,
        handled as f64 / seconds.max(1e-9),
        already,
        tally.not_chosen,
        tally.failed,
        tally.from_store,
        tally.computed,
        args.out.display()
    );
}
