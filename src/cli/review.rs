//! `kneecam review summary|export|merge`: what readers' verdicts in a review database add up
//! to, the verdicts as CSV or the consensus as MRNet label CSVs, and databases combined.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{bad_input, printable};
use crate::data::dataset::Dataset;
use crate::data::Task;
use crate::review::sqlite::SqliteStore;
use crate::review::summary::{self, Agreement, TaskSummary};
use crate::review::{DatasetRef, Query, ReviewStore, Verdict};

mod export;
mod merge;

#[derive(Debug, clap::Subcommand)]
pub enum ReviewCommand {
    /// Per task and reader: cases reviewed, verdicts, agreement with the model's call and
    /// with the labels, median seconds per case; Cohen's κ between readers; disagreements.
    Summary(SummaryArgs),
    /// The latest verdicts as CSV, or the readers' consensus as MRNet label CSVs.
    Export(export::ExportArgs),
    /// Combine review databases into one (union of verdicts and undos).
    Merge(merge::MergeArgs),
}

#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    /// The review database [default: reviews.sqlite in kneecam's data folder].
    #[arg(long, value_name = "FILE")]
    pub reviews: Option<PathBuf>,
    /// Only this dataset's verdicts, counted against its exams and current labels.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Only this task: abnormal, acl or meniscus.
    #[arg(long)]
    pub task: Option<Task>,
}

pub fn run(command: ReviewCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReviewCommand::Summary(args) => summary(args),
        ReviewCommand::Export(args) => export::run(args),
        ReviewCommand::Merge(args) => merge::run(args),
    }
}

/// `--reviews`, else the data folder's reviews.sqlite.
pub(super) fn reviews_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(path) => Ok(path),
        None => Ok(crate::paths::Folders::locate()
            .map_err(bad_input)?
            .data
            .join("reviews.sqlite")),
    }
}

/// A review database to read; anything but one is bad input, left as it was.
fn open_input(path: &Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open_read_only(path).map_err(bad_input)
}

/// The dataset at `dir` and how verdicts name it.
fn open_dataset(dir: &Path) -> anyhow::Result<(Dataset, DatasetRef)> {
    let dataset = Dataset::open(dir).map_err(bad_input)?;
    let reference = DatasetRef::of(&dataset);
    Ok((dataset, reference))
}

/// The datasets `verdicts` are about: fingerprint → the paths it was seen at.
fn datasets<'a>(
    verdicts: impl IntoIterator<Item = &'a Verdict>,
) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
    let mut found: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for verdict in verdicts {
        found
            .entry(verdict.dataset.fingerprint.as_str())
            .or_default()
            .insert(verdict.dataset.path.as_str());
    }
    found
}

/// `dataset  PATH (also PATH…)  FINGERPRINT`.
fn dataset_line(fingerprint: &str, paths: &BTreeSet<&str>) -> String {
    let mut paths = paths.iter();
    let mut line = format!("dataset  {}", paths.next().copied().unwrap_or("?"));
    let others: Vec<&str> = paths.copied().collect();
    if !others.is_empty() {
        let _ = write!(line, " (also recorded as {})", others.join(", "));
    }
    let _ = write!(line, "  {fingerprint}");
    line
}

fn summary(args: SummaryArgs) -> anyhow::Result<ExitCode> {
    let path = reviews_path(args.reviews)?;
    let store = open_input(&path)?;
    let opened = args.data.as_deref().map(open_dataset).transpose()?;
    let query = Query {
        dataset_fingerprint: opened.as_ref().map(|(_, r)| r.fingerprint.clone()),
        task: args.task,
        reader: None,
    };
    let verdicts = store.verdicts(&query).map_err(bad_input)?;
    let latest = crate::review::latest(&verdicts);
    let mut out = format!("reviews  {}\n", path.display());
    match &opened {
        Some((dataset, reference)) => {
            let paths = BTreeSet::from([reference.path.as_str()]);
            let _ = writeln!(out, "{}", dataset_line(&reference.fingerprint, &paths));
            if latest.is_empty() {
                out.push_str("no verdicts on this dataset\n");
            }
            // The dataset's label as it is now, else the one recorded with the verdict.
            let label_of = |v: &Verdict| {
                v.exam
                    .parse::<u32>()
                    .ok()
                    .and_then(|id| dataset.exam(v.split, id))
                    .and_then(|exam| exam.labels.get(v.task))
                    .or(v.label)
            };
            let total = dataset.exams().len();
            print_tasks(
                &mut out,
                &summary::summarize(&latest, label_of),
                Some(total),
            );
        }
        None => {
            if latest.is_empty() {
                out.push_str("no verdicts\n");
            }
            for (fingerprint, paths) in datasets(latest.iter().copied()) {
                let _ = writeln!(out, "\n{}", dataset_line(fingerprint, &paths));
                let of_dataset: Vec<&Verdict> = latest
                    .iter()
                    .copied()
                    .filter(|v| v.dataset.fingerprint == fingerprint)
                    .collect();
                print_tasks(
                    &mut out,
                    &summary::summarize(&of_dataset, |v| v.label),
                    None,
                );
            }
        }
    }
    print!("{}", printable(&out));
    Ok(ExitCode::SUCCESS)
}

/// One block per task: the readers' table, κ per pair, the disagreements.
fn print_tasks(out: &mut String, tasks: &[TaskSummary], total: Option<usize>) {
    let fraction = |a: Agreement| match a.fraction() {
        Some(f) => format!("{f:.3} ({}/{})", a.agree, a.n),
        None => "-".to_string(),
    };
    for task in tasks {
        let _ = writeln!(out, "\n{}", task.task);
        let width = task
            .readers
            .iter()
            .map(|r| r.reader.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>9}  {:>8}  {:>8}  {:>6}  {:<16}  {:<16}  {:>8}",
            "reader",
            "reviewed",
            "positive",
            "negative",
            "unsure",
            "model agrees",
            "label agrees",
            "median s"
        );
        for r in &task.readers {
            let reviewed = match total {
                Some(total) => format!("{}/{total}", r.reviewed),
                None => r.reviewed.to_string(),
            };
            let median = r.median_seconds.map_or("-".into(), |s| format!("{s:.1}"));
            let _ = writeln!(
                out,
                "  {:<width$}  {:>9}  {:>8}  {:>8}  {:>6}  {:<16}  {:<16}  {:>8}",
                r.reader,
                reviewed,
                r.positive,
                r.negative,
                r.unsure,
                fraction(r.model),
                fraction(r.label),
                median
            );
        }
        for pair in &task.pairs {
            let kappa = pair.kappa.kappa.map_or("n/a".into(), |k| format!("{k:.3}"));
            let observed = pair
                .kappa
                .observed
                .map_or(String::new(), |p| format!(", observed agreement {p:.3}"));
            let _ = writeln!(
                out,
                "  κ {} / {}: {kappa} (n {}{observed})",
                pair.first, pair.second, pair.kappa.n
            );
        }
        if !task.disagreements.is_empty() {
            let _ = writeln!(out, "  disagreements ({}):", task.disagreements.len());
            for case in &task.disagreements {
                let verdicts: Vec<String> = case
                    .verdicts
                    .iter()
                    .map(|(reader, truth)| format!("{reader} {}", truth.name()))
                    .collect();
                let _ = writeln!(
                    out,
                    "    {} {} {}: {}",
                    case.exam,
                    case.split,
                    task.task,
                    verdicts.join(", ")
                );
            }
        }
    }
}
