//! The command line: one subcommand a module.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::model::device::DeviceChoice;

mod dataset;
mod doctor;
mod synth;

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
    /// Check the installation: libtorch, CUDA, folders, terminal graphics.
    Doctor,
    /// Inspect a dataset folder.
    Dataset {
        #[command(subcommand)]
        command: dataset::DatasetCommand,
    },
    /// Generate a synthetic knee-MRI cohort (MRNet layout) with ground-truth lesion masks.
    Synth(synth::SynthArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Doctor => doctor::run(cli.device),
        Command::Dataset { command } => dataset::run(command),
        Command::Synth(args) => synth::run(args),
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
