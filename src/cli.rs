//! The command line: one subcommand a module.
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::model::device::DeviceChoice;

mod cam;
mod dataset;
pub mod demo;
mod doctor;
mod eval_cam;
mod export;
mod image_cam;
pub mod models;
mod open;
mod picture;
mod precompute;
mod predict;
mod review;
mod synth;
mod train;
pub mod view;

#[derive(Debug, Parser)]
#[command(name = "kneecam", version, about, long_about = None)]
pub struct Cli {
    /// Where models run: auto (first CUDA device, else CPU), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The demo: a phantom cohort, the shipped demo models, predictions and CAMs.
    Demo(demo::DemoArgs),
    /// Check the installation: libtorch, CUDA, folders, terminal graphics.
    Doctor,
    /// Inspect a dataset folder.
    Dataset {
        #[command(subcommand)]
        command: dataset::DatasetCommand,
    },
    /// Generate a synthetic knee-MRI cohort (MRNet layout) with ground-truth lesion masks.
    Synth(synth::SynthArgs),
    /// CAMs of one exam's series: arrays, a JSON summary, optionally PNGs.
    Cam(cam::CamArgs),
    /// Compute every exam's CAMs into the CAM store ahead of browsing (shardable).
    Precompute(precompute::PrecomputeArgs),
    /// A cohort's slices and CAM overlays as PNGs, in the reference code's tree (pipelined,
    /// resumable, shardable).
    Export(export::ExportArgs),
    /// Probabilities per exam, task and plane, combined per task, with AUCs.
    Predict(predict::PredictArgs),
    /// Train one model (task × plane) and enter it in a models folder's manifest.
    Train(train::TrainArgs),
    /// Fit each task's combination of the three plane probabilities on the valid split.
    FitCombiner(train::FitCombinerArgs),
    /// The explorer: patient list, plane tabs, slices with CAM overlays in the terminal.
    View(view::ViewArgs),
    /// Score CAM localisation and faithfulness against ground-truth lesion masks.
    EvalCam(eval_cam::EvalCamArgs),
    /// Models folders: import checkpoints as training code wrote them.
    Models {
        #[command(subcommand)]
        command: models::ModelsCommand,
    },
    /// Triage verdicts: summary, export, merge.
    Review {
        #[command(subcommand)]
        command: review::ReviewCommand,
    },
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::run(args, cli.device),
        Command::Doctor => doctor::run(cli.device),
        Command::View(args) => view::run(args, cli.device),
        Command::Dataset { command } => dataset::run(command),
        Command::Synth(args) => synth::run(args),
        Command::Cam(args) => cam::run(args, cli.device),
        Command::Precompute(args) => precompute::run(args, cli.device),
        Command::Export(args) => export::run(args, cli.device),
        Command::Predict(args) => predict::run(args, cli.device),
        Command::Train(args) => train::run(args, cli.device),
        Command::FitCombiner(args) => train::fit_combiner(args, cli.device),
        Command::EvalCam(args) => eval_cam::run(args, cli.device),
        Command::Review { command } => review::run(command),
        Command::Models { command } => models::run(command),
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// An error in what the user gave (a file, a flag): exit code 2, where internal failures give 1.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct BadInput(pub anyhow::Error);

/// Refuses an output (`flag`: `--out`, `--cache`, …) inside the dataset or models folder:
/// those are only read (train and fit-combiner write into the models folder they are given).
pub fn outside_inputs(
    flag: &str,
    target: &Path,
    data: Option<&Path>,
    models: Option<&Path>,
) -> anyhow::Result<()> {
    let protected: Vec<(&'static str, &Path)> = [("dataset", data), ("models", models)]
        .into_iter()
        .filter_map(|(what, dir)| dir.map(|dir| (what, dir)))
        .collect();
    crate::paths::ensure_outside(flag, target, &protected).map_err(bad_input)
}

/// `text` safe to print on a terminal: control characters other than newline and tab (an
/// escape sequence hidden in a file name, a CSV cell or a tensor name) are shown escaped
/// (`\u{1b}`) instead of being obeyed by the terminal.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

pub fn bad_input(err: impl Into<anyhow::Error>) -> anyhow::Error {
    BadInput(err.into()).into()
}

/// The exit code for an error: 2 for bad input, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> std::process::ExitCode {
    if err.chain().any(|e| e.is::<BadInput>()) {
        std::process::ExitCode::from(2)
    } else {
        std::process::ExitCode::FAILURE
    }
}
