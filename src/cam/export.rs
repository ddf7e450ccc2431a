//! A cohort export's files. Per plane and exam, the reference code's folder
//! (`{plane}/{exam}/slices/{i}.png`, `{plane}/{exam}/cams/{i}.png`); kneecam's layout adds an
//! `exam.json` beside them and an `index.csv` over all of them. Each folder is written under a
//! temporary name and renamed: it is whole or absent, so an interrupted export leaves no half
//! exam and a re-run knows what is done by what exists.
use std::path::{Path, PathBuf};

use ndarray::Array3;
use serde::{Deserialize, Serialize};

use super::colormap::Colormap;

/// Which tree an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Exactly the reference code's tree (what its dashboard reads).
    #[default]
    Reference,
    /// The reference tree, plus `exam.json` per folder and `index.csv`.
    Kneecam,
}

/// What kneecam's layout says of one exam's series, in its `exam.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesRecord {
    pub exam: String,
    pub split: String,
    pub task: String,
    pub plane: String,
    /// The dataset's label for the task, where its CSV gives one.
    pub label: Option<bool>,
    /// This plane's model's P(positive).
    pub probability: f32,
    /// The task's combined probability (the models folder's combiner over the three planes),
    /// when every plane's model ran.
    pub combined: Option<f32>,
    pub logits: Vec<f32>,
    /// The class explained.
    pub class: usize,
    pub method: String,
    pub normalization: String,
    pub colormap: String,
    pub model_sha256: String,
    /// Each slice's share of the explained logit (the classifier's bias apart).
    pub slice_contributions: Vec<f32>,
    pub bias: f32,
}

pub const RECORD_FILE: &str = "exam.json";
pub const INDEX_FILE: &str = "index.csv";
const TEMPORARY_MARK: &str = ".export-tmp.";

/// Where the series of `plane` of exam `name` goes.
pub fn series_folder(out: &Path, plane: &str, name: &str) -> PathBuf {
    out.join(plane).join(name)
}

/// Writes one series' folder whole: PNGs of every slice and overlay (and, given a record, its
/// `exam.json`) under a temporary name in the same folder, then renamed into place. A folder
/// already there (another shard wrote it) is left as it is.
pub fn write_series(
    out: &Path,
    plane: &str,
    name: &str,
    volume: &Array3<u8>,
    maps: &Array3<u8>,
    colormap: Colormap,
    record: Option<&SeriesRecord>,
) -> std::io::Result<()> {
    let parent = out.join(plane);
    std::fs::create_dir_all(&parent).map_err(|e| named(&parent, e))?;
    let target = parent.join(name);
    let tmp = parent.join(format!(".{name}{TEMPORARY_MARK}{}", owner_tag()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| named(&tmp, e))?;
    }
    let written = write_into(&tmp, volume, maps, colormap, record).and_then(|()| {
        match std::fs::rename(&tmp, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.is_dir() => Ok(()),
            Err(e) => Err(named(&target, e)),
        }
    });
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    written
}

fn write_into(
    folder: &Path,
    volume: &Array3<u8>,
    maps: &Array3<u8>,
    colormap: Colormap,
    record: Option<&SeriesRecord>,
) -> std::io::Result<()> {
    super::png::write_pngs(
        folder,
        volume,
        maps,
        colormap,
        super::png::Files::IntoFreshFolder,
    )?;
    if let Some(record) = record {
        let path = folder.join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
        crate::fsutil::atomic_write(&path, |w| std::io::Write::write_all(w, &json))
            .map_err(|e| named(&path, e))?;
    }
    Ok(())
}

/// This process on this machine, in a temporary folder's name: a stale one (its process gone)
/// can be told from one a live export (another shard's, on a shared folder) is writing.
fn owner_tag() -> String {
    format!("{}.{}", host_name(), std::process::id())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().replace(['/', '.'], "_"))
        .unwrap_or_else(|_| "host".to_string())
}

/// Removes the temporary folders that processes of this machine left when they were killed
/// (a live process's, or another machine's, are kept). Returns how many went.
pub fn remove_stale_temporaries(out: &Path, planes: &[&str]) -> usize {
    let host = host_name();
    let mut removed = 0;
    for plane in planes {
        let Ok(entries) = std::fs::read_dir(out.join(plane)) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().to_string();
            let Some((_, tag)) = file_name.split_once(TEMPORARY_MARK) else {
                continue;
            };
            let Some((tag_host, pid)) = tag.rsplit_once('.') else {
                continue;
            };
            let alive = Path::new("/proc").join(pid).exists();
            if tag_host == host && !alive && std::fs::remove_dir_all(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// `index.csv` over every `exam.json` under `out` (this run's and earlier runs' or other
/// shards'), one row per exam and plane, sorted.
pub fn write_index(out: &Path, planes: &[&str]) -> std::io::Result<usize> {
    let mut rows = Vec::new();
    for plane in planes {
        let Ok(entries) = std::fs::read_dir(out.join(plane)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path().join(RECORD_FILE);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let record: SeriesRecord = serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?;
            let folder = format!("{plane}/{}", entry.file_name().to_string_lossy());
            rows.push(index_row(&record, &folder));
        }
    }
    rows.sort();
    let path = out.join(INDEX_FILE);
    let mut text = String::from(
        "exam,split,task,plane,label,probability,combined,method,normalization,slices,folder\n",
    );
    for row in &rows {
        text.push_str(row);
        text.push('\n');
    }
    crate::fsutil::atomic_write(&path, |w| std::io::Write::write_all(w, text.as_bytes()))
        .map_err(|e| named(&path, e))?;
    Ok(rows.len())
}

fn index_row(record: &SeriesRecord, folder: &str) -> String {
    let label = record
        .label
        .map(|l| u8::from(l).to_string())
        .unwrap_or_default();
    let combined = record
        .combined
        .map(|p| format!("{p:.6}"))
        .unwrap_or_default();
    format!(
        "{},{},{},{},{label},{:.6},{combined},{},{},{},{}",
        csv_field(&record.exam),
        record.split,
        record.task,
        record.plane,
        record.probability,
        record.method,
        record.normalization,
        record.slice_contributions.len(),
        csv_field(folder)
    )
}

/// A study's name may hold a comma or a quote: quoted as RFC 4180 says.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn named(path: &Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(exam: &str) -> SeriesRecord {
        SeriesRecord {
            exam: exam.into(),
            split: "valid".into(),
            task: "acl".into(),
            plane: "sagittal".into(),
            label: Some(true),
            probability: 0.75,
            combined: None,
            logits: vec![-1.0, 1.0],
            class: 1,
            method: "cam".into(),
            normalization: "slice".into(),
            colormap: "jet".into(),
            model_sha256: "ab".into(),
            slice_contributions: vec![0.5, 1.5],
            bias: 0.1,
        }
    }

    #[test]
    fn a_series_folder_is_whole_and_the_index_lists_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let volume = Array3::from_elem((2, 8, 8), 100u8);
        let maps = Array3::from_elem((2, 8, 8), 255u8);
        let rec = record("0003");
        write_series(
            dir.path(),
            "sagittal",
            "0003",
            &volume,
            &maps,
            Colormap::Jet,
            Some(&rec),
        )
        .expect("write");
        let folder = series_folder(dir.path(), "sagittal", "0003");
        for file in [
            "slices/0.png",
            "slices/1.png",
            "cams/0.png",
            "cams/1.png",
            RECORD_FILE,
        ] {
            assert!(folder.join(file).is_file(), "{file}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sagittal"))
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("0003")]);
        assert_eq!(
            write_index(dir.path(), &["axial", "sagittal"]).expect("index"),
            1
        );
        let index = std::fs::read_to_string(dir.path().join(INDEX_FILE)).expect("read");
        assert_eq!(
            index.lines().nth(1),
            Some("0003,valid,acl,sagittal,1,0.750000,,cam,slice,2,sagittal/0003")
        );
    }

    #[test]
    fn a_dead_process_temporary_goes_and_a_live_ones_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = host_name();
        let dead = dir
            .path()
            .join(format!("axial/.0001{TEMPORARY_MARK}{host}.4000000000"));
        let live = dir.path().join(format!(
            "axial/.0002{TEMPORARY_MARK}{host}.{}",
            std::process::id()
        ));
        let other_machine = dir
            .path()
            .join(format!("axial/.0003{TEMPORARY_MARK}elsewhere.1"));
        for path in [&dead, &live, &other_machine] {
            std::fs::create_dir_all(path).expect("mkdir");
        }
        assert_eq!(remove_stale_temporaries(dir.path(), &["axial"]), 1);
        assert!(!dead.exists() && live.exists() && other_machine.exists());
    }

    #[test]
    fn study_names_are_quoted_in_the_index() {
        assert_eq!(csv_field("knee, left"), "\"knee, left\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
        assert_eq!(csv_field("0007"), "0007");
    }
}
