//! `kneecam synth` (to be written)
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output folder (must be empty, or a previous phantom folder with --force).
    #[arg(long)]
    pub out: std::path::PathBuf,
}

pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet: {}", args.out.display())
}
