//! `kneecam review export`: the latest verdicts as CSV, or the readers' consensus per task as
//! MRNet label CSVs (`case,label`, no header) that can replace a dataset's `{split}-{task}.csv`.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};

use super::{dataset_line, datasets, open_dataset, open_input, reviews_path};
use crate::cli::{bad_input, printable};
use crate::data::{Split, Task};
use crate::review::consensus::{self, TaskConsensus};
use crate::review::{iso8601, Query, ReviewStore, Truth, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Every field of each reader's latest verdict per case, with a header row.
    Csv,
    /// Per task, the readers' consensus as an MRNet label CSV.
    Mrnet,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The review database [default: reviews.sqlite in kneecam's data folder].
    #[arg(long, value_name = "FILE")]
    pub reviews: Option<PathBuf>,
    /// The file to write; for mrnet without --task, the folder that gets `{task}.csv`.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Format,
    /// Only this task: abnormal, acl or meniscus.
    #[arg(long)]
    pub task: Option<Task>,
    /// Only this reader's verdicts.
    #[arg(long)]
    pub reader: Option<String>,
    /// Only verdicts on this dataset (needed for mrnet when the file holds several).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Only verdicts on this split: train, valid or flat (needed for mrnet when the verdicts
    /// span several: a label CSV is one split's).
    #[arg(long, value_parser = parse_split)]
    pub split: Option<Split>,
    /// Replace files that exist.
    #[arg(long)]
    pub force: bool,
}

fn parse_split(text: &str) -> Result<Split, String> {
    [Split::Train, Split::Valid, Split::Flat]
        .into_iter()
        .find(|s| s.name() == text)
        .ok_or_else(|| format!("'{text}': expected train, valid or flat"))
}

pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    crate::cli::outside_inputs("--out", &args.out, args.data.as_deref(), None)?;
    let path = reviews_path(args.reviews.clone())?;
    let store = open_input(&path)?;
    let reference = args.data.as_deref().map(open_dataset).transpose()?;
    let query = Query {
        dataset_fingerprint: reference.map(|(_, r)| r.fingerprint),
        task: args.task,
        reader: args.reader.clone(),
    };
    let mut verdicts = store.verdicts(&query).map_err(bad_input)?;
    verdicts.retain(|v| args.split.is_none_or(|split| v.split == split));
    let latest = crate::review::latest(&verdicts);
    match args.format {
        Format::Csv => {
            refuse_existing(&args.out, args.force)?;
            write(&args.out, csv(&latest).as_bytes())?;
            println!(
                "{} verdicts written: {}",
                latest.len(),
                printable(&args.out.display().to_string())
            );
        }
        Format::Mrnet => mrnet(&args, &path, &latest)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The header and one row per verdict.
fn csv(verdicts: &[&Verdict]) -> String {
    let mut text = String::from(
        "uid,dataset_fingerprint,dataset_path,split,exam,task,reader,verdict,note,probability,\
         model_call,threshold,label,models_fingerprint,method,seconds,recorded_at\n",
    );
    let call = |c: Option<bool>| c.map_or(String::new(), |c| Truth::of_call(c).name().into());
    for v in verdicts {
        let fields = [
            v.uid.clone(),
            v.dataset.fingerprint.clone(),
            v.dataset.path.clone(),
            v.split.name().into(),
            v.exam.clone(),
            v.task.name().into(),
            v.reader.clone(),
            v.truth.name().into(),
            v.note.clone().unwrap_or_default(),
            v.probability.map_or(String::new(), |p| p.to_string()),
            call(v.model_call),
            v.threshold.to_string(),
            call(v.label),
            v.models_fingerprint.clone(),
            v.method.clone(),
            v.seconds.to_string(),
            iso8601(v.recorded_at),
        ];
        let cells: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// `field` as one CSV cell (RFC 4180): quoted, inner quotes doubled, when it holds a comma, a
/// quote, a line break or spaces at either end.
fn csv_field(field: &str) -> String {
    let plain = !field.contains([',', '"', '\n', '\r']) && field.trim() == field;
    if plain {
        field.to_string()
    } else {
        format!("\"{}\"", field.replace('"', "\"\""))
    }
}

fn mrnet(args: &ExportArgs, path: &Path, latest: &[&Verdict]) -> anyhow::Result<()> {
    let found = datasets(latest.iter().copied());
    if found.len() > 1 {
        let list: Vec<String> = found
            .iter()
            .map(|(fingerprint, paths)| format!("  {}", dataset_line(fingerprint, paths)))
            .collect();
        return Err(bad_input(anyhow!(
            "{}: verdicts on {} datasets; an MRNet label file is one dataset's: pass --data \
             with one of\n{}",
            path.display(),
            found.len(),
            list.join("\n")
        )));
    }
    let mut splits: Vec<Split> = latest.iter().map(|v| v.split).collect();
    splits.sort();
    splits.dedup();
    if splits.len() > 1 {
        let names: Vec<&str> = splits.iter().map(|s| s.name()).collect();
        return Err(bad_input(anyhow!(
            "{}: verdicts on the {} splits; an MRNet label file is one split's: pass --split",
            path.display(),
            names.join(" and ")
        )));
    }
    for verdict in latest {
        if verdict.exam.parse::<u32>().is_err() {
            return Err(bad_input(anyhow!(
                "{}: verdict {} is on exam '{}', not a case id: MRNet label files want numbers",
                path.display(),
                verdict.uid,
                verdict.exam.escape_default()
            )));
        }
    }
    let tasks = consensus::by_task(latest);
    let targets: Vec<(Task, PathBuf)> = match args.task {
        Some(task) => vec![(task, args.out.clone())],
        None => {
            if args.out.is_file() {
                return Err(bad_input(anyhow!(
                    "{} is a file: without --task, --out is the folder that gets {{task}}.csv",
                    args.out.display()
                )));
            }
            tasks
                .keys()
                .map(|&task| (task, args.out.join(format!("{task}.csv"))))
                .collect()
        }
    };
    if targets.is_empty() || args.task.is_some_and(|t| !tasks.contains_key(&t)) {
        return Err(bad_input(anyhow!(
            "{}: no verdicts to export{}",
            path.display(),
            args.task.map_or(String::new(), |t| format!(" for {t}"))
        )));
    }
    for (_, target) in &targets {
        refuse_existing(target, args.force)?;
    }
    if args.task.is_none() {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating the folder {}", args.out.display()))?;
    }
    let empty = TaskConsensus::default();
    for (task, target) in &targets {
        let consensus = tasks.get(task).unwrap_or(&empty);
        write(target, unique_cases(consensus)?.as_bytes())?;
        println!(
            "{task}: {}: {}",
            report(consensus),
            printable(&target.display().to_string())
        );
    }
    Ok(())
}

/// The CSV, once it is checked that no case appears twice (`7` and `0007` are one case).
fn unique_cases(consensus: &TaskConsensus) -> anyhow::Result<String> {
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for (_, exam, _) in &consensus.labels {
        let id = exam.parse::<u32>().unwrap_or(u32::MAX);
        if let Some(first) = seen.insert(id, exam) {
            return Err(bad_input(anyhow!(
                "exams '{first}' and '{exam}' are one case ({id}) in an MRNet label file"
            )));
        }
    }
    Ok(consensus.mrnet_csv())
}

/// `41 cases written (38 unanimous, 3 by majority), 2 ties and 1 unsure-only left out`.
fn report(c: &TaskConsensus) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut text = format!(
        "{} written ({} unanimous, {} by majority)",
        plural(c.labels.len(), "case", "cases"),
        c.unanimous,
        c.majority
    );
    if c.ties + c.unsure_only > 0 {
        text.push_str(&format!(
            ", {} and {} unsure-only left out",
            plural(c.ties, "tie", "ties"),
            c.unsure_only
        ));
    }
    text
}

fn refuse_existing(target: &Path, force: bool) -> anyhow::Result<()> {
    if target.exists() && !force {
        return Err(bad_input(anyhow!(
            "{} exists: choose another --out, or --force to replace it",
            target.display()
        )));
    }
    Ok(())
}

fn write(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::fsutil::atomic_write(target, |w| w.write_all(bytes))
        .with_context(|| format!("writing {}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"torn\""), "\"say \"\"torn\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(" padded"), "\" padded\"");
    }

    #[test]
    fn the_report_counts_what_was_left_out() {
        let c = TaskConsensus {
            labels: vec![(Split::Train, "0001".into(), true); 41],
            unanimous: 38,
            majority: 3,
            ties: 2,
            unsure_only: 1,
        };
        assert_eq!(
            report(&c),
            "41 cases written (38 unanimous, 3 by majority), 2 ties and 1 unsure-only left out"
        );
        assert_eq!(
            report(&TaskConsensus::default()),
            "0 cases written (0 unanimous, 0 by majority)"
        );
    }
}
