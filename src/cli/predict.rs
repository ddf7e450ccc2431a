//! `kneecam predict`: per exam and task, the three plane probabilities, their combination and
//! the label, as CSV; then AUCs per task and plane and for the combination.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;

use crate::cam::store::{Precision, Store};
use crate::cli::bad_input;
use crate::config::SplitChoice;
use crate::data::dataset::{Dataset, Exam};
use crate::data::{PerTaskPlane, Plane, Task};
use crate::engine::score::exam_scores;
use crate::engine::ModelKey;
use crate::model::cache::ModelCache;
use crate::model::device::DeviceChoice;
use crate::model::loaded::LoadedModel;
use crate::model::manifest::Manifest;
use crate::model::manifest::ModelEntry;
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

/// Probabilities of one exam per task and plane.
type Probabilities = PerTaskPlane<Option<f32>>;

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
    let dataset = super::open::dataset_for(&args.data, &manifest, &args.models, None)?;
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
    let mut models = load_models(&args.models, &manifest, device)?;
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
            let record = record_exam(exam, &mut models, &manifest, Some(&store))
                .map_err(std::io::Error::other)?;
            for task in Task::ALL {
                let cell = |p: Option<f32>| p.map_or(String::new(), |p| format!("{p:.6}"));
                let label = exam
                    .labels
                    .get(task)
                    .map_or(String::new(), |l| u8::from(l).to_string());
                let [a, c, s] = record.planes.row(task).map(cell);
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
    let mut models = load_models(models_dir, manifest, device)?;
    let exams: Vec<&Exam> = dataset
        .exams()
        .iter()
        .filter(|e| SplitChoice::Valid.includes(e.split))
        .collect();
    let bar = crate::cli::progress_bar(exams.len() as u64, "exams");
    let mut records = Vec::with_capacity(exams.len());
    for exam in exams {
        records.push(record_exam(exam, &mut models, manifest, store)?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(records)
}

/// One exam through every model, each task's planes combined, with its labels.
fn record_exam(
    exam: &Exam,
    models: &mut Models,
    manifest: &Manifest,
    store: Option<&Store>,
) -> anyhow::Result<Record> {
    let planes = predict_exam(exam, models, store)?;
    let combined = Task::ALL.map(|t| manifest.combiner(t).and_then(|c| c.combine(*planes.row(t))));
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

/// Every model of the manifest, loaded now (a bad one stops the command before any work).
fn load_models(dir: &Path, manifest: &Manifest, device: tch::Device) -> anyhow::Result<Models> {
    let mut cache = ModelCache::new();
    let mut listed = Vec::new();
    for (key, entry) in manifest.models() {
        cache
            .get_or_load(key, |(task, plane)| {
                LoadedModel::from_loaded_manifest(dir, manifest, task, plane, device)
            })
            .map_err(bad_input)?;
        listed.push((key, Some(entry.clone())));
    }
    if listed.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "{}: manifest.toml lists no models",
            dir.display()
        )));
    }
    Ok(Models { cache, listed })
}

/// The loaded models, and the list the scorer takes (keys with their manifest entries).
pub(crate) struct Models {
    cache: ModelCache,
    listed: Vec<(ModelKey, Option<ModelEntry>)>,
}

/// Each plane's series is read once and run through every task's model for that plane,
/// unless the CAM store already holds that model's result for it. An unreadable plane is
/// skipped with a warning.
fn predict_exam(
    exam: &Exam,
    models: &mut Models,
    store: Option<&Store>,
) -> anyhow::Result<Probabilities> {
    let cache = &mut models.cache;
    let scores = exam_scores(exam, &models.listed, store, |key, volume| {
        let model = cache
            .take(key)
            .ok_or_else(|| anyhow::anyhow!("{} {}: no model loaded", key.0, key.1))?;
        let probability = match model.check_input(volume) {
            Ok(()) => model.probability(volume).map_err(anyhow::Error::from),
            Err(small) => Err(bad_input(small)),
        }
        .with_context(|| format!("exam {}, {} {}", exam.name(), key.0, key.1));
        cache.put(key, model);
        probability
    })?;
    for err in &scores.unreadable {
        tracing::warn!("{err}");
        eprintln!("warning: {}", super::printable(err));
    }
    Ok(scores.probabilities)
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
        let planes = Plane::ALL.map(|plane| column(&|r| *r.planes.get(task, plane)));
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
