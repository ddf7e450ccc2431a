//! `kneecam view`: the explorer on a dataset with a models folder.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::Arc;

use crate::cam::report::EvalResults;
use crate::cam::store::{Precision, Store};
use crate::cli::bad_input;
use crate::config::Config;
use crate::data::dataset::{Dataset, Exam};
use crate::data::{PerTaskPlane, Plane, Task};
use crate::engine::Loader;
use crate::model::device::DeviceChoice;
use crate::model::loaded::LoadedModel;
use crate::model::manifest::Manifest;
use crate::paths::Folders;
use crate::tui::app::{Case, Info, ModelFacts, SeriesInfo};
use crate::tui::{Session, StoreSetup};

pub mod reviews;
pub use reviews::ReviewArgs;

#[derive(Debug, clap::Args)]
pub struct ViewArgs {
    /// The dataset folder (MRNet layout or a flat folder).
    #[arg(long)]
    pub data: PathBuf,
    /// The models folder (weights + manifest.toml).
    #[arg(long)]
    pub models: PathBuf,
    /// A config file over the defaults and your config folder's config.toml.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The CAM store to read first and fill [default: cams/ in the cache folder].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// An eval-cam report (`kneecam eval-cam --out`) of this dataset and these models: with the
    /// ground truth shown (`M`), the shown exam's pointing-game and slice-hit results.
    #[arg(long)]
    pub eval_report: Option<PathBuf>,
    #[command(flatten)]
    pub review: ReviewArgs,
}

pub fn run(args: ViewArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let folders = Folders::locate().map_err(bad_input)?;
    let config = Config::load(&folders.config, args.config.as_deref()).map_err(bad_input)?;
    let manifest = Manifest::load(&args.models).map_err(bad_input)?;
    let dataset = super::open::dataset_for(&args.data, &manifest, &args.models, Some(&config))?;
    let store = args.cache.clone().unwrap_or_else(|| folders.cam_store());
    super::outside_inputs("--cache", &store, Some(&args.data), Some(&args.models))?;
    let eval = match &args.eval_report {
        Some(path) => EvalResults::read(path).map_err(bad_input)?,
        None => EvalResults::default(),
    };
    explore(
        &dataset,
        &args.models,
        manifest,
        device,
        config,
        &folders,
        &store,
        &args.review,
        eval,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the explorer on `dataset`'s exams (the config's split) with the models of `dir`,
/// verdicts going to the review database `review` names.
#[allow(clippy::too_many_arguments)]
pub fn explore(
    dataset: &Dataset,
    dir: &Path,
    manifest: Manifest,
    device: tch::Device,
    config: Config,
    folders: &Folders,
    store: &Path,
    review: &ReviewArgs,
    eval: EvalResults,
) -> anyhow::Result<()> {
    let exports = export_folder(&config, folders);
    let flag = "the export folder ([view] export_folder)";
    super::outside_inputs(flag, &exports, Some(dataset.root()), Some(dir))?;
    // Before the terminal check: a review file kneecam must refuse is refused either way.
    let reviews = reviews::setup(review, folders, dataset, dir)?;
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        anyhow::bail!("the explorer needs a terminal: stdout is not one");
    }
    let mut session = session(dataset, dir, manifest, device, config, folders, Some(store));
    session.reviews = Some(reviews);
    session.info.eval = eval;
    crate::tui::run(session)
}

/// Where the explorer's `e` writes: the config's export folder, else `exports/` in the data
/// folder.
fn export_folder(config: &Config, folders: &Folders) -> PathBuf {
    config
        .export_folder
        .clone()
        .unwrap_or_else(|| folders.data.join("exports"))
}

/// The explorer's session for `dataset` and the models of `dir`: the list and the engine's
/// loader, the engine reading the CAM store at `store` first when one is given.
pub fn session(
    dataset: &Dataset,
    dir: &Path,
    manifest: Manifest,
    device: tch::Device,
    config: Config,
    folders: &Folders,
    store: Option<&Path>,
) -> Session {
    let exams: Vec<Exam> = dataset
        .exams()
        .iter()
        .filter(|e| config.view.split.includes(e.split))
        .cloned()
        .collect();
    let cases = exams.iter().map(case_of).collect();
    let info = Info {
        models: dir.display().to_string(),
        data: dataset.root().display().to_string(),
        ..Info::default()
    };
    let models = ModelFacts {
        combiners: Task::ALL.map(|task| manifest.combiner(task).copied()),
        positive_class: PerTaskPlane::from_fn(|task, plane| {
            manifest
                .model(task, plane)
                .map(|entry| entry.positive_class())
        }),
    };
    let export_folder = export_folder(&config, folders);
    Session {
        cases,
        models,
        info,
        exams,
        device,
        loader: loader(dir.to_path_buf(), manifest.clone()),
        config,
        export_folder,
        store: store.map(|root| store_setup(&manifest, root)),
        reviews: None,
    }
}

/// The CAM store at `root`, with what its keys need from each model of `manifest`.
pub fn store_setup(manifest: &Manifest, root: &Path) -> StoreSetup {
    StoreSetup {
        store: Arc::new(Store::new(root, Precision::default())),
        models: PerTaskPlane::from_fn(|task, plane| manifest.model(task, plane).cloned()),
    }
}

fn case_of(exam: &Exam) -> Case {
    Case {
        name: exam.name(),
        split: exam.split,
        labels: Task::ALL.map(|t| exam.labels.get(t)),
        planes: PerTaskPlane::default(),
        failed: None,
        series: Plane::ALL.map(|plane| {
            exam.series[plane.index()]
                .iter()
                .map(|series| SeriesInfo::of(series))
                .collect()
        }),
    }
}

/// Builds a model from the manifest on the engine thread.
pub fn loader(dir: PathBuf, manifest: Manifest) -> Loader {
    Box::new(move |(task, plane), device| {
        LoadedModel::from_loaded_manifest(&dir, &manifest, task, plane, device)
    })
}
