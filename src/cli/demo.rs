//! `kneecam demo`: the README's main command. Generates the demo phantom cohort into the cache
//! folder (once), loads the shipped demo models and opens the explorer on it; with `--print`
//! (or without a terminal) it prints the predictions and writes the CAMs of the first
//! ACL-positive exam instead.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::io::IsTerminal;

use anyhow::Context;

use crate::cam::report::EvalResults;
use crate::cam::{self, CamSpec, Method, Normalization, Placement};
use crate::cli::{bad_input, models};
use crate::config::Config;
use crate::data::dataset::{Dataset, Exam};
use crate::data::phantom::{self, CohortSpec};
use crate::data::{Plane, Task};
use crate::model::device::DeviceChoice;
use crate::model::manifest::Manifest;
use crate::paths::Folders;

/// The demo cohort's seed; the demo models were trained on seed 1 (models/README.md), so the
/// demo shows them exams they never saw.
pub const DEMO_SEED: u64 = 2026;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Exams in the demo cohort (all in its valid split).
    #[arg(long, default_value_t = 60)]
    pub cases: u32,
    /// The models folder [default: models/demo of this source tree].
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Where the cohort is kept [default: demo/ in the cache folder].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Where the CAM pictures go with --print [default: demo/ in the data folder].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the predictions and write CAM pictures instead of opening the explorer (the
    /// default when stdout is not a terminal).
    #[arg(long)]
    pub print: bool,
    /// A config file for the explorer (over the defaults and your config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// An eval-cam report of the demo cohort and models (as `view --eval-report`) [default:
    /// with the demo models, the one shipped beside them, models/demo/eval-cam-demo-cohort.json].
    #[arg(long)]
    pub eval_report: Option<PathBuf>,
    #[command(flatten)]
    pub review: super::view::ReviewArgs,
}

pub fn default_models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join("demo")
}

/// The eval-cam report of the demo models on the demo cohort (exam N is the same exam at any
/// --cases, so it serves every demo cohort).
pub const DEMO_EVAL_REPORT: &str = "eval-cam-demo-cohort.json";

/// `--eval-report`, or with the demo models the report that ships with them.
fn eval_report(args: &DemoArgs) -> Option<PathBuf> {
    if let Some(path) = &args.eval_report {
        return Some(path.clone());
    }
    let shipped = default_models().join(DEMO_EVAL_REPORT);
    (args.models.is_none() && shipped.is_file()).then_some(shipped)
}

pub fn run(args: DemoArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let folders = Folders::locate().map_err(bad_input)?;
    let models_dir = args.models.clone().unwrap_or_else(default_models);
    let manifest = Manifest::load(&models_dir).map_err(bad_input)?;
    let spec = CohortSpec {
        cases: args.cases,
        valid: args.cases,
        seed: DEMO_SEED,
    };
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(|| folders.cache.join("demo"));
    super::outside_inputs("--cache", &cache, None, Some(&models_dir))?;
    if let Some(out) = &args.out {
        super::outside_inputs("--out", out, None, Some(&models_dir))?;
    }
    let cohort = ensure_cohort(&cache, &spec)?;
    let dataset = Dataset::open(&cohort).map_err(bad_input)?;
    if !args.print && std::io::stdout().is_terminal() {
        let config = Config::load(&folders.config, args.config.as_deref()).map_err(bad_input)?;
        let eval = match eval_report(&args) {
            Some(path) => EvalResults::read(&path).map_err(bad_input)?,
            None => EvalResults::default(),
        };
        let store = folders.cam_store();
        super::view::explore(
            &dataset,
            &models_dir,
            manifest,
            device,
            config,
            &folders,
            &store,
            &args.review,
            eval,
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let store = crate::cam::store::Store::new(folders.cam_store(), Default::default());
    let predictions =
        super::predict::predict_dataset(&dataset, &models_dir, &manifest, device, Some(&store))?;
    super::predict::print_table(&predictions);
    super::predict::print_aucs(&predictions);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| folders.data.join("demo"));
    let Some(exam) = dataset
        .exams()
        .iter()
        .find(|e| e.labels.get(Task::Acl) == Some(true))
    else {
        println!("no ACL-positive exam in the demo cohort: no CAMs written");
        return Ok(ExitCode::SUCCESS);
    };
    let written = write_acl_cams(exam, &models_dir, &manifest, device, &out)?;
    println!(
        "CAMs (contrib, ACL) of exam {} with its ACL tear outlined: {}",
        exam.name(),
        written.display()
    );
    println!(
        "cohort: {}  models: {}",
        cohort.display(),
        models_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The cohort folder for `spec` under `cache`, generated first if it is not complete. A cohort
/// is generated under a temporary name and renamed, so a half-written one is never used.
pub fn ensure_cohort(cache: &Path, spec: &CohortSpec) -> anyhow::Result<PathBuf> {
    // "g": with geometry files (older cached cohorts have none, so they are made again).
    let name = format!(
        "phantom-v{}g-seed{}-{}",
        phantom::FORMAT_VERSION,
        spec.seed,
        spec.cases
    );
    let dir = cache.join(&name);
    if dir.join(phantom::MARKER_FILE).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    // Unique per call too: threads of one process (the tests) may make the same cohort at once.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let tmp = cache.join(format!(".{name}.tmp.{}.{call}", std::process::id()));
    println!(
        "generating the demo cohort ({} exams, seed {}) into {}",
        spec.cases,
        spec.seed,
        dir.display()
    );
    let bar = crate::cli::progress_bar(u64::from(spec.cases), "exams");
    let written = phantom::write_cohort(&tmp, spec, false, || bar.inc(1));
    bar.finish_and_clear();
    if let Err(err) = written.map_err(bad_input).and_then(|_| {
        std::fs::rename(&tmp, &dir).with_context(|| format!("renaming {}", tmp.display()))
    }) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another kneecam may have finished the same cohort meanwhile.
        if dir.join(phantom::MARKER_FILE).is_file() {
            return Ok(dir);
        }
        return Err(err);
    }
    Ok(dir)
}

/// The `contrib` CAM of every plane's ACL model on `exam`, as PNGs (the slice with the highest
/// contribution, slice | overlay side by side, the tear outlined) into `out/exam-NNNN/`.
fn write_acl_cams(
    exam: &Exam,
    models_dir: &Path,
    manifest: &Manifest,
    device: tch::Device,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let dir = out.join(format!("exam-{}", exam.name()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for plane in Plane::ALL {
        if manifest.model(Task::Acl, plane).is_none() || exam.path(plane).is_none() {
            continue;
        }
        let model = models::from_manifest(models_dir, manifest, Task::Acl, plane, device)?;
        let volume = exam.load(plane).map_err(bad_input)?;
        let mask = exam.load_mask(plane).map_err(bad_input)?;
        let (_, h, w) = volume.data.dim();
        let x = model.preprocess.input(&volume.data, device);
        let spec = CamSpec {
            method: Method::Contrib,
            class: Some(1),
            normalization: Normalization::Exam,
        };
        let placement = Placement {
            window: model.preprocess.window(h, w),
            slice: (h, w),
        };
        let explanation = cam::explain(&model.network, &x, &spec, placement)
            .with_context(|| format!("{}: CAM of {}", exam.name(), model.label))?;
        let picture = super::picture::side_by_side(
            &volume.data,
            &explanation,
            mask.as_ref().map(|m| &m.data),
            crate::cam::colormap::Colormap::Jet,
        );
        crate::cam::png::save_png(&dir.join(format!("{plane}.png")), &picture)?;
    }
    Ok(dir)
}
