//! The command line: one subcommand a module.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::model::device::DeviceChoice;

mod doctor;

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
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Doctor => doctor::run(cli.device),
    }
}
