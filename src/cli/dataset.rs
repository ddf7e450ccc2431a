//! `kneecam dataset ...` (to be written)
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum DatasetCommand {
    /// Counts, label balance, slice ranges and every problem found in a dataset folder.
    Summary {
        /// The dataset folder (MRNet layout, or one flat folder of planes).
        dir: std::path::PathBuf,
    },
}

pub fn run(command: DatasetCommand) -> anyhow::Result<ExitCode> {
    match command {
        DatasetCommand::Summary { dir } => anyhow::bail!("not yet: {}", dir.display()),
    }
}
