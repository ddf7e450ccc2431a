//! `kneecam synth`: write a synthetic knee-MRI cohort with ground-truth lesion masks.
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::data::phantom::{self, CohortSpec, Format};
use crate::data::Task;

#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Output folder: new or empty (or a phantom folder made before, with --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of exams in all (ids 0000 upwards).
    #[arg(long, default_value_t = 100)]
    pub cases: u32,
    /// How many of them (the highest ids) form the valid split [default: MRNet's 120/1250 share].
    #[arg(long)]
    pub valid: Option<u32>,
    /// Random seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace a phantom cohort that `kneecam synth` wrote into --out before.
    #[arg(long)]
    pub force: bool,
    /// npy: MRNet's layout; dicom or nifti: a dataset of studies, one folder per exam.
    #[arg(long, default_value_t = Format::Npy)]
    pub format: Format,
}

pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let spec = CohortSpec {
        cases: args.cases,
        valid: args
            .valid
            .unwrap_or_else(|| CohortSpec::default_valid(args.cases)),
        seed: args.seed,
    };
    let bar = crate::cli::progress_bar(u64::from(spec.cases), "exams");
    let started = Instant::now();
    let summary =
        phantom::write_cohort_as(&args.out, &spec, args.format, args.force, || bar.inc(1))
            .with_context(|| format!("kneecam synth --out {}", args.out.display()))?;
    bar.finish_and_clear();
    let layout = match args.format {
        Format::Npy => "MRNet's .npy layout",
        Format::Dicom => "DICOM studies",
        Format::Nifti => "NIfTI studies",
    };
    println!(
        "wrote {} exams ({} train, {} valid) to {} as {layout} in {:.1} s (seed {})",
        spec.cases,
        summary.exams[0],
        summary.exams[1],
        args.out.display(),
        started.elapsed().as_secs_f64(),
        spec.seed
    );
    for task in Task::ALL {
        let [train, valid] = [0, 1].map(|s| summary.positives[s][task.index()]);
        println!(
            "  {:<9} positives: {train} train, {valid} valid",
            task.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}
