//! `kneecam eval-cam`: how well each CAM method localises the lesion (pointing game, energy
//! share, slice hit) and how faithful it is (deletion curve against a random order), on the
//! positive exams of a split that has ground-truth masks (a phantom cohort).
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use crate::cam::evaluation::{evaluate_exam, has_lesion, lesion_of, EvalInput, ExamEvaluation};
use crate::cam::Method;
use crate::cli::{
    bad_input,
    models::{self, LoadedModel},
};
use crate::data::dataset::{Dataset, Exam};
use crate::data::{Plane, Task};
use crate::model::device::DeviceChoice;
use crate::model::manifest::Manifest;

#[derive(Debug, clap::Args)]
pub struct EvalCamArgs {
    /// A dataset with ground-truth masks (`kneecam synth` writes them).
    #[arg(long)]
    pub data: PathBuf,
    #[arg(long)]
    pub models: PathBuf,
    /// cam, contrib, gradcam, gradcam++, or all.
    #[arg(long, default_value = "all")]
    pub method: String,
    /// abnormal, acl, meniscus, or all.
    #[arg(long, default_value = "all")]
    pub task: String,
    /// axial, coronal, sagittal, or all.
    #[arg(long, default_value = "all")]
    pub plane: String,
    #[arg(long, value_enum, default_value = "valid")]
    pub split: crate::config::SplitChoice,
    /// Deletion steps (10: 10 % of the voxels per step).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Evaluate at most this many positive exams per task and plane.
    #[arg(long)]
    pub limit: Option<usize>,
    /// The JSON report to write (replaced only with --force).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub force: bool,
}

/// Means over the exams of one task × plane × method.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub task: &'static str,
    pub plane: &'static str,
    pub method: &'static str,
    pub exams: usize,
    pub pointing_game: Option<f64>,
    pub energy_share: Option<f64>,
    pub slice_hit: Option<f64>,
    pub deletion_auc: Option<f64>,
    pub random_deletion_auc: Option<f64>,
    pub per_exam: Vec<ExamRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExamRow {
    pub exam: String,
    pub probability: f32,
    pub pointing: Option<bool>,
    pub energy_share: Option<f64>,
    pub slice_hit: Option<bool>,
    pub deletion_auc: f64,
    pub random_deletion_auc: f64,
}

#[derive(Serialize)]
struct Report<'a> {
    data: String,
    models: String,
    split: String,
    steps: usize,
    rows: &'a [Row],
}

fn parse_all<T: std::str::FromStr + Copy>(text: &str, all: &[T]) -> anyhow::Result<Vec<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    if text == "all" {
        return Ok(all.to_vec());
    }
    text.split(',')
        .map(|part| part.trim().parse::<T>().map_err(bad_input))
        .collect()
}

pub fn run(args: EvalCamArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let methods = parse_all(&args.method, &Method::ALL)?;
    let tasks = parse_all(&args.task, &Task::ALL)?;
    let planes = parse_all(&args.plane, &Plane::ALL)?;
    super::outside_inputs("--out", &args.out, Some(&args.data), Some(&args.models))?;
    if args.out.exists() && !args.force {
        return Err(bad_input(anyhow::anyhow!(
            "{} exists: choose another --out, or --force to replace it",
            args.out.display()
        )));
    }
    if args.steps == 0 {
        return Err(bad_input(anyhow::anyhow!("--steps must be at least 1")));
    }
    let manifest = Manifest::load(&args.models).map_err(bad_input)?;
    let dataset = super::open::dataset_for(&args.data, &manifest, &args.models, None)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    let mut rows = Vec::new();
    for task in tasks {
        let exams = positive_exams(&dataset, task, args.split, args.limit);
        for &plane in &planes {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Some(_) = manifest.model(task, plane) else {
                eprintln!("skipping {task}-{plane}: no model in the manifest");
                continue;
            };
            let model = models::from_manifest(&args.models, &manifest, task, plane, device)?;
            let job = Job {
                model: &model,
                task,
                plane,
                methods: &methods,
                steps: args.steps,
                stop: &stop,
            };
            rows.extend(evaluate_model(&job, &exams)?);
        }
    }
    if rows.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "{}: no positive exam with a lesion mask for the tasks and planes asked",
            args.data.display()
        )));
    }
    print_table(&rows);
    write_report(&args, &rows)?;
    if stop.load(Ordering::SeqCst) {
        eprintln!("interrupted: the report holds the exams done so far");
    }
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn positive_exams(
    dataset: &Dataset,
    task: Task,
    split: crate::config::SplitChoice,
    limit: Option<usize>,
) -> Vec<&Exam> {
    dataset
        .exams()
        .iter()
        .filter(|e| split.includes(e.split) && e.labels.get(task) == Some(true))
        .take(limit.unwrap_or(usize::MAX))
        .collect()
}

struct Job<'a> {
    model: &'a LoadedModel,
    task: Task,
    plane: Plane,
    methods: &'a [Method],
    steps: usize,
    stop: &'a AtomicBool,
}

/// One row per method for one model, over the exams whose mask shows the lesion in this plane.
fn evaluate_model(job: &Job, exams: &[&Exam]) -> anyhow::Result<Vec<Row>> {
    let bar = crate::cli::progress_bar(exams.len() as u64, "exams");
    bar.set_message(format!("{}-{}", job.task, job.plane));
    let mut done: Vec<(String, ExamEvaluation)> = Vec::new();
    for exam in exams {
        if job.stop.load(Ordering::SeqCst) {
            break;
        }
        if let Some(evaluation) = evaluate_one(job, exam)? {
            done.push((exam.name(), evaluation));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(job
        .methods
        .iter()
        .enumerate()
        .map(|(i, &method)| summarise(job, method, i, &done))
        .collect())
}

fn evaluate_one(job: &Job, exam: &Exam) -> anyhow::Result<Option<ExamEvaluation>> {
    let Some(path) = exam.path(job.plane) else {
        return Ok(None);
    };
    let Some(mask) = exam.load_mask(job.plane).map_err(bad_input)? else {
        return Ok(None);
    };
    let volume = exam.load(job.plane).map_err(bad_input)?;
    let lesion = lesion_of(job.task, &mask.data);
    if !has_lesion(&lesion) {
        return Ok(None);
    }
    if lesion.dim() != volume.data.dim() {
        return Err(bad_input(anyhow::anyhow!(
            "{}: mask shape {:?} differs from the volume's {:?}",
            path.display(),
            lesion.dim(),
            volume.data.dim()
        )));
    }
    let input = EvalInput {
        net: &job.model.network,
        preprocess: job.model.preprocess,
        volume: &volume.data,
        lesion: &lesion,
        steps: job.steps,
        seed: u64::from(exam.id),
    };
    let evaluation = evaluate_exam(&input, job.methods)
        .with_context(|| format!("{}: evaluating {}", path.display(), job.model.label))?;
    Ok(Some(evaluation))
}

fn summarise(job: &Job, method: Method, index: usize, done: &[(String, ExamEvaluation)]) -> Row {
    let per_exam: Vec<ExamRow> = done
        .iter()
        .map(|(name, e)| {
            let s = &e.scores[index];
            ExamRow {
                exam: name.clone(),
                probability: s.probability,
                pointing: s.pointing,
                energy_share: s.energy_share,
                slice_hit: s.slice_hit,
                deletion_auc: s.deletion_auc,
                random_deletion_auc: e.random_deletion_auc,
            }
        })
        .collect();
    let share = |hits: Vec<Option<bool>>| mean(hits.into_iter().flatten().map(f64::from));
    Row {
        task: job.task.name(),
        plane: job.plane.name(),
        method: method.name(),
        exams: per_exam.len(),
        pointing_game: share(per_exam.iter().map(|r| r.pointing).collect()),
        energy_share: mean(per_exam.iter().filter_map(|r| r.energy_share)),
        slice_hit: share(per_exam.iter().map(|r| r.slice_hit).collect()),
        deletion_auc: mean(per_exam.iter().map(|r| r.deletion_auc)),
        random_deletion_auc: mean(per_exam.iter().map(|r| r.random_deletion_auc)),
        per_exam,
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<9} {:<9} {:<10} {:>5} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "task", "plane", "method", "exams", "pointing", "energy", "slice-hit", "deletion", "random"
    );
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    for r in rows {
        println!(
            "{:<9} {:<9} {:<10} {:>5} {:>9} {:>7} {:>9} {:>9} {:>9}",
            r.task,
            r.plane,
            r.method,
            r.exams,
            cell(r.pointing_game),
            cell(r.energy_share),
            cell(r.slice_hit),
            cell(r.deletion_auc),
            cell(r.random_deletion_auc)
        );
    }
}

fn write_report(args: &EvalCamArgs, rows: &[Row]) -> anyhow::Result<()> {
    let split = clap::ValueEnum::to_possible_value(&args.split)
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let report = Report {
        data: args.data.display().to_string(),
        models: args.models.display().to_string(),
        split,
        steps: args.steps,
        rows,
    };
    let json = serde_json::to_string_pretty(&report)?;
    crate::fsutil::atomic_write(&args.out, |w| std::io::Write::write_all(w, json.as_bytes()))
        .with_context(|| format!("writing {}", args.out.display()))
}
