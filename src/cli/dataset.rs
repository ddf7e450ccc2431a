//! `kneecam dataset summary DIR`: counts, label balance, slice ranges and every problem found.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Context;

use crate::data::dataset::{Dataset, HeaderScan, Layout, Problem, Severity};
use crate::data::{Plane, Split, Task};

mod series;

#[derive(Debug, clap::Subcommand)]
pub enum DatasetCommand {
    /// Counts, label balance, slice ranges and every problem found in a dataset folder.
    ///
    /// Reads every volume's header and checks its file length, not the voxels. Exits 0 when
    /// the dataset is usable (warnings allowed), 1 when it has errors.
    Summary {
        /// The dataset folder (MRNet layout, one flat folder of planes, or a folder of DICOM or
        /// NIfTI studies).
        dir: std::path::PathBuf,
    },
}

pub fn run(command: DatasetCommand) -> anyhow::Result<ExitCode> {
    match command {
        DatasetCommand::Summary { dir } => {
            let dataset = Dataset::open(&dir).context("cannot summarise the dataset")?;
            let scan = dataset.scan_headers();
            let (text, usable) = summary(&dataset, &scan);
            print!("{}", super::printable(&text));
            Ok(if usable {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// The report, and whether the dataset is usable (no error-severity problems).
pub fn summary(dataset: &Dataset, scan: &HeaderScan) -> (String, bool) {
    let mut out = String::new();
    let layout = match dataset.layout() {
        Layout::Mrnet => "MRNet layout",
        Layout::Flat => "flat folder",
        Layout::Studies => "studies: DICOM or NIfTI",
    };
    let _ = writeln!(out, "dataset  {} ({layout})", dataset.root().display());

    // Exams and planes.
    let splits = dataset.splits();
    let mut table = Table::new(
        ["split", "exams", "axial", "coronal", "sagittal", "masks"],
        [false, true, true, true, true, true],
    );
    for &split in &splits {
        let exams: Vec<_> = dataset.split_exams(split).collect();
        let mut row = vec![split.to_string(), exams.len().to_string()];
        for plane in Plane::ALL {
            row.push(
                exams
                    .iter()
                    .filter(|e| e.path(plane).is_some())
                    .count()
                    .to_string(),
            );
        }
        let masked = exams
            .iter()
            .filter(|e| Plane::ALL.iter().any(|&p| e.mask_path(p).is_some()))
            .count();
        row.push(masked.to_string());
        table.push(row);
    }
    let _ = write!(out, "\n{}", table.render());

    // Labels.
    out.push('\n');
    if dataset.label_sources().is_empty() {
        let _ = writeln!(out, "labels   none found");
    } else {
        let mut table = Table::new(
            ["labels", "rows", "labelled exams", "positive"],
            [false, true, true, true],
        );
        for source in dataset.label_sources() {
            let labelled: Vec<bool> = dataset
                .split_exams(source.split)
                .filter_map(|e| e.labels.get(source.task))
                .collect();
            let positive = labelled.iter().filter(|&&l| l).count();
            let name = source
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| source.path.display().to_string());
            table.push(vec![
                name,
                source.rows.to_string(),
                labelled.len().to_string(),
                percent(positive, labelled.len()),
            ]);
        }
        out.push_str(&table.render());
        let missing: Vec<String> = splits
            .iter()
            .flat_map(|&s| Task::ALL.map(|t| (s, t)))
            .filter(|&(s, t)| !dataset.has_labels(s, t))
            .map(|(s, t)| match s {
                Split::Flat => t.to_string(),
                _ => format!("{s}-{t}"),
            })
            .collect();
        if !missing.is_empty() {
            let _ = writeln!(out, "no labels for {}", missing.join(", "));
        }
    }

    if dataset.layout() == Layout::Studies {
        out.push_str(&series::summary(dataset));
    }

    // Volumes, from their headers.
    let mut stats: BTreeMap<(Split, Plane), PlaneStats> = BTreeMap::new();
    for v in &scan.volumes {
        let s = stats.entry((v.split, v.plane)).or_default();
        s.count += 1;
        s.min_slices = Some(
            s.min_slices
                .map_or(v.header.slices(), |m| m.min(v.header.slices())),
        );
        s.max_slices = s.max_slices.max(v.header.slices());
        *s.sizes
            .entry((v.header.height(), v.header.width()))
            .or_default() += 1;
        *s.dtypes.entry(v.header.dtype.to_string()).or_default() += 1;
        if (v.header.height(), v.header.width()) != (256, 256) {
            s.odd_sizes.push(format!(
                "{:04} {}×{}",
                v.id,
                v.header.height(),
                v.header.width()
            ));
        }
        if v.header.dtype.needs_scaling() {
            s.scaled.push(format!("{:04} {}", v.id, v.header.dtype));
        }
    }
    out.push('\n');
    let mut table = Table::new(
        ["volumes", "readable", "slices", "in-plane", "dtype"],
        [false, true, true, false, false],
    );
    let mut notes = Vec::new();
    for ((split, plane), s) in &stats {
        let name = match split {
            Split::Flat => plane.to_string(),
            _ => format!("{split}/{plane}"),
        };
        let (lo, hi) = plane.mrnet_slice_range();
        let slices = match s.min_slices {
            Some(min) if min == s.max_slices => min.to_string(),
            Some(min) => format!("{min}–{}", s.max_slices),
            None => "-".to_string(),
        };
        table.push(vec![
            name.clone(),
            s.count.to_string(),
            slices,
            counted(&s.sizes, |(h, w)| format!("{h}×{w}")),
            counted(&s.dtypes, Clone::clone),
        ]);
        if s.min_slices.is_some_and(|m| m < lo) || s.max_slices > hi {
            notes.push(format!(
                "{name}: slice counts outside MRNet's {lo}–{hi} for this plane"
            ));
        }
        if !s.odd_sizes.is_empty() {
            notes.push(format!(
                "{name}: in-plane size is not MRNet's 256×256 for {}",
                some_of(&s.odd_sizes, s.count)
            ));
        }
        if !s.scaled.is_empty() {
            notes.push(format!(
                "{name}: not uint8, min-max scaled to 0–255 per series on load: {}",
                some_of(&s.scaled, s.count)
            ));
        }
    }
    if dataset.layout() == Layout::Studies {
        // The series above are the volumes; their headers were read on opening.
    } else if stats.is_empty() {
        let _ = writeln!(out, "volumes  no readable volume headers");
    } else {
        out.push_str(&table.render());
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "note     {note}");
        }
    }

    // Problems.
    let mut problems: Vec<&Problem> = dataset.problems().iter().chain(&scan.problems).collect();
    problems.sort_by_key(|p| p.severity);
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    out.push('\n');
    if problems.is_empty() {
        let _ = writeln!(out, "problems none");
    } else {
        let _ = writeln!(
            out,
            "problems {errors} error{}, {warnings} warning{}",
            plural(errors),
            plural(warnings)
        );
        for p in &problems {
            let _ = writeln!(out, "  {:<8} {p}", p.severity.to_string());
        }
    }
    let usable = errors == 0;
    let _ = writeln!(
        out,
        "\n{}",
        if usable {
            "usable: yes".to_string()
        } else {
            format!("usable: no ({errors} error{})", plural(errors))
        }
    );
    (out, usable)
}

#[derive(Default)]
struct PlaneStats {
    count: usize,
    min_slices: Option<usize>,
    max_slices: usize,
    sizes: BTreeMap<(usize, usize), usize>,
    dtypes: BTreeMap<String, usize>,
    odd_sizes: Vec<String>,
    scaled: Vec<String>,
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "-".to_string()
    } else {
        format!("{part} ({:.1}%)", 100.0 * part as f64 / whole as f64)
    }
}

/// `a` when everything is `a`, else `a (3), b (1)` most common first.
fn counted<K>(counts: &BTreeMap<K, usize>, name: impl Fn(&K) -> String) -> String {
    if counts.len() == 1 {
        return counts.keys().map(&name).collect();
    }
    let mut items: Vec<(&K, &usize)> = counts.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1));
    items
        .iter()
        .map(|(k, n)| format!("{} ({n})", name(k)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `all N volumes`, or `K of N volumes: a, b, ...` (the first few, then how many more).
fn some_of(items: &[String], total: usize) -> String {
    const SHOWN: usize = 8;
    if items.len() == total {
        return format!("all {total} volume{}", plural(total));
    }
    let mut text = format!(
        "{} of {total} volumes: {}",
        items.len(),
        items
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    if items.len() > SHOWN {
        let _ = write!(text, " and {} more", items.len() - SHOWN);
    }
    text
}

/// A plain text table, columns three spaces apart, each left- or right-aligned.
struct Table {
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    fn new<const N: usize>(header: [&str; N], right: [bool; N]) -> Table {
        Table {
            rows: vec![header.iter().map(|h| h.to_string()).collect()],
            right: right.to_vec(),
        }
    }

    fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = " ".repeat(widths[c].saturating_sub(cell.chars().count()));
                if c > 0 {
                    line.push_str("   ");
                }
                if self.right.get(c).copied().unwrap_or(false) {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}
