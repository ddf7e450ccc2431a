//! `kneecam predict`: per exam and task, the three plane probabilities, their combination and
//! the label, as CSV; then AUCs per task and plane and for the combination.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::cam::store::{CacheKey, Precision, Store};
use crate::cam::Method;
use crate::cli::{bad_input, models::LoadedModel};
use crate::config::SplitChoice;
use crate::data::dataset::{Dataset, Exam};
use crate::data::{Plane, Task};
use crate::model::device::DeviceChoice;
use crate::model::manifest::Manifest;
use crate::model::metrics::auc;

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// The dataset folder (MRNet layout or a flat folder).
    #[arg(long)]
    pub data: PathBuf,
    /// The models folder (weights + manifest.toml).
    #[arg(long)]
    pub models: PathBuf,
    #[arg(long, value_enum, default_value = "valid")]
    pub split: SplitChoice,
    /// The CSV to write (replaced only with --force).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
    /// The CAM store read first: exams already there are not run through the models
    /// [default: cams/ in the cache folder].
    #[arg(long)]
    pub cache: Option<PathBuf>,
}

/// Probabilities of one exam: [task][plane].
type Probabilities = [[Option<f32>; 3]; 3];

/// One exam's outcome: plane probabilities, the combination per task, the labels per task.
pub(crate) struct Record {
    name: String,
    planes: Probabilities,
    combined: [Option<f32>; 3],
    labels: [Option<bool>; 3],
}

pub fn run(args: PredictArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    super::outside_inputs("--out", &args.out, Some(&args.data), Some(&args.models))?;
    if let Some(cache) = &args.cache {
        super::outside_inputs("--cache", cache, Some(&args.data), Some(&args.models))?;
    }
    if args.out.exists() && !args.force {
        return Err(bad_input(anyhow::anyhow!(
            "{} exists: choose another --out, or --force to replace it",
            args.out.display()
        )));
    }
    let manifest = Manifest::load(&args.models).map_err(bad_input)?;
    let dataset = Dataset::open(&args.data).map_err(bad_input)?;
    let exams: Vec<&Exam> = dataset
        .exams()
        .iter()
        .filter(|e| args.split.includes(e.split))
        .collect();
    if exams.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "{}: no exams in the {:?} split",
            args.data.display(),
            args.split
        )));
    }
    let models = load_models(&args.models, &manifest, device)?;
    let folders = crate::paths::Folders::locate().map_err(bad_input)?;
    let store = Store::new(
        args.cache.clone().unwrap_or_else(|| folders.cam_store()),
        Precision::default(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    // A second Ctrl-C handler cannot be installed in one process; then Ctrl-C simply kills.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    let bar = crate::cli::progress_bar(exams.len() as u64, "exams");
    let mut records: Vec<Record> = Vec::new();
    // Written through a temporary file renamed into place at the end (also after Ctrl-C), so
    // the CSV is never seen half-written.
    crate::fsutil::atomic_write(&args.out, |w| {
        writeln!(
            w,
            "exam,split,task,label,p_axial,p_coronal,p_sagittal,p_combined"
        )?;
        for exam in &exams {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let record = record_exam(exam, &models, &manifest, Some(&store))
                .map_err(std::io::Error::other)?;
            for task in Task::ALL {
                let cell = |p: Option<f32>| p.map_or(String::new(), |p| format!("{p:.6}"));
                let label = exam
                    .labels
                    .get(task)
                    .map_or(String::new(), |l| u8::from(l).to_string());
                let [a, c, s] = record.planes[task.index()].map(cell);
                writeln!(
                    w,
                    "{},{},{task},{label},{a},{c},{s},{}",
                    record.name,
                    exam.split,
                    cell(record.combined[task.index()])
                )?;
            }
            records.push(record);
            bar.inc(1);
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", args.out.display()))?;
    bar.finish_and_clear();
    if stop.load(Ordering::SeqCst) {
        eprintln!("interrupted: kept the {} exams done so far", records.len());
    }
    print_aucs(&records);
    println!("wrote {} ({} exams)", args.out.display(), records.len());
    Ok(ExitCode::SUCCESS)
}

/// Every valid exam of `dataset` through every model of the manifest.
pub(crate) fn predict_dataset(
    dataset: &Dataset,
    models_dir: &Path,
    manifest: &Manifest,
    device: tch::Device,
    store: Option<&Store>,
) -> anyhow::Result<Vec<Record>> {
    let models = load_models(models_dir, manifest, device)?;
    let exams: Vec<&Exam> = dataset
        .exams()
        .iter()
        .filter(|e| SplitChoice::Valid.includes(e.split))
        .collect();
    let bar = crate::cli::progress_bar(exams.len() as u64, "exams");
    let mut records = Vec::with_capacity(exams.len());
    for exam in exams {
        records.push(record_exam(exam, &models, manifest, store)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(records)
}

/// One exam through every model, each task's planes combined, with its labels.
fn record_exam(
    exam: &Exam,
    models: &BTreeMap<(Task, Plane), LoadedModel>,
    manifest: &Manifest,
    store: Option<&Store>,
) -> anyhow::Result<Record> {
    let planes = predict_exam(exam, models, manifest, store)?;
    let combined = Task::ALL.map(|t| {
        manifest
            .combiner(t)
            .and_then(|c| c.combine(planes[t.index()]))
    });
    Ok(Record {
        name: exam.name(),
        planes,
        combined,
        labels: Task::ALL.map(|t| exam.labels.get(t)),
    })
}

/// One line per exam: the labels and each task's combined probability, marked where the call
/// at 0.5 is wrong.
pub(crate) fn print_table(records: &[Record]) {
    println!(
        "{:<6} {:>14} {:>14} {:>14}",
        "exam", "abnormal", "acl", "meniscus"
    );
    for record in records {
        let cells = Task::ALL.map(|task| {
            let label = record.labels[task.index()].map_or("?", |l| if l { "+" } else { "-" });
            match record.combined[task.index()] {
                Some(p) => {
                    let wrong = record.labels[task.index()].is_some_and(|l| l != (p >= 0.5));
                    format!("{label} {p:.3}{}", if wrong { " !" } else { "  " })
                }
                None => format!("{label} -"),
            }
        });
        println!(
            "{:<6} {:>14} {:>14} {:>14}",
            record.name, cells[0], cells[1], cells[2]
        );
    }
    println!("(label +/-, combined P(positive); ! marks a wrong call at 0.5)");
}

fn load_models(
    dir: &Path,
    manifest: &Manifest,
    device: tch::Device,
) -> anyhow::Result<BTreeMap<(Task, Plane), LoadedModel>> {
    let mut models = BTreeMap::new();
    for ((task, plane), _) in manifest.models() {
        models.insert(
            (task, plane),
            LoadedModel::from_loaded_manifest(dir, manifest, task, plane, device)?,
        );
    }
    if models.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "{}: manifest.toml lists no models",
            dir.display()
        )));
    }
    Ok(models)
}

/// Each plane's series is read once and run through every task's model for that plane,
/// unless the CAM store already holds that model's result for it. An unreadable plane is
/// skipped with a warning.
fn predict_exam(
    exam: &Exam,
    models: &BTreeMap<(Task, Plane), LoadedModel>,
    manifest: &Manifest,
    store: Option<&Store>,
) -> anyhow::Result<Probabilities> {
    let mut run = |task, plane, volume: &ndarray::Array3<u8>| match models.get(&(task, plane)) {
        Some(model) => model.probability(volume).with_context(|| exam.name()),
        None => Err(anyhow::anyhow!("{task}-{plane}: no model loaded")),
    };
    let (probabilities, unreadable) = exam_probabilities(exam, manifest, store, &mut run)?;
    for err in unreadable {
        tracing::warn!("{err}");
        eprintln!("warning: {}", super::printable(&err.to_string()));
    }
    Ok(probabilities)
}

/// Runs a (task, plane) model on a series: P(positive).
pub(crate) type RunModel<'a> =
    dyn FnMut(Task, Plane, &ndarray::Array3<u8>) -> anyhow::Result<f32> + 'a;

/// An exam's P(positive) per task and plane for every model of `manifest`: each plane's
/// series read once, each result taken from the CAM store when it is there, else from `run`
/// (task, plane, series). Also returns why planes that could not be read were skipped.
pub(crate) fn exam_probabilities(
    exam: &Exam,
    manifest: &Manifest,
    store: Option<&Store>,
    run: &mut RunModel<'_>,
) -> anyhow::Result<(Probabilities, Vec<String>)> {
    let mut probabilities: Probabilities = [[None; 3]; 3];
    let mut unreadable = Vec::new();
    for plane in Plane::ALL {
        let tasks: Vec<Task> = Task::ALL
            .into_iter()
            .filter(|t| manifest.model(*t, plane).is_some())
            .collect();
        if tasks.is_empty() || exam.path(plane).is_none() {
            continue;
        }
        let (volume, sha) = match exam.load_hashed(plane) {
            Ok(loaded) => loaded,
            Err(err) => {
                unreadable.push(err.to_string());
                continue;
            }
        };
        for task in tasks {
            let stored = store.and_then(|s| stored_probability(s, manifest, task, plane, &sha));
            let probability = match stored {
                Some(p) => p,
                None => run(task, plane, &volume.data)?,
            };
            probabilities[task.index()][plane.index()] = Some(probability);
        }
    }
    Ok((probabilities, unreadable))
}

/// P(positive) from any method's entry in the store (they share the forward pass).
pub(crate) fn stored_probability(
    store: &Store,
    manifest: &Manifest,
    task: Task,
    plane: Plane,
    exam_sha256: &str,
) -> Option<f32> {
    let entry = manifest.model(task, plane)?;
    Method::ALL.into_iter().find_map(|method| {
        let key = CacheKey::for_model(entry, exam_sha256, method);
        store.get(&key).ok().flatten().map(|e| e.probability)
    })
}

pub(crate) fn print_aucs(records: &[Record]) {
    println!(
        "{:<9} {:>7} {:>7} {:>8} {:>9}",
        "AUC", "axial", "coronal", "sagittal", "combined"
    );
    for task in Task::ALL {
        let column = |pick: &dyn Fn(&Record) -> Option<f32>| {
            let (scores, labels): (Vec<f64>, Vec<bool>) = records
                .iter()
                .filter_map(|r| Some((f64::from(pick(r)?), r.labels[task.index()]?)))
                .unzip();
            auc(&scores, &labels).map_or("-".to_string(), |a| format!("{a:.3}"))
        };
        let planes = Plane::ALL.map(|plane| column(&|r| r.planes[task.index()][plane.index()]));
        let combined = column(&|r| r.combined[task.index()]);
        println!(
            "{:<9} {:>7} {:>7} {:>8} {:>9}",
            task.name(),
            planes[0],
            planes[1],
            planes[2],
            combined
        );
    }
}
