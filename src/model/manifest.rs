//! A models folder: one weights file per `{task}-{plane}` and `manifest.toml` saying what each
//! is, how its input is prepared, its sha256, and per task how the three planes combine.
//!
//! ```toml
//! format = 1
//! [models.acl-sagittal]
//! file = "acl-sagittal.safetensors"
//! arch = "mrnet"              # "mrnet" | "tiny" | "torchscript"
//! classes = 2                 # 1 or 2
//! preprocess = "raw"          # or "crop224-norm"
//! sha256 = "…"                # of the file, checked on load
//! # classifier = "fc.weight"  # torchscript only
//! # methods = ["_forward_impl"] # torchscript only: methods besides forward its code may have
//! # optional: auc, epochs, seed, data_fingerprint, trained_with
//! [combiners.acl]
//! axial = 3.454
//! coronal = 4.486
//! sagittal = 2.900
//! intercept = -3.624
//! ```
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::data::{Plane, Task};

mod load;
mod schema;
mod studies;

pub use crate::digest::sha256_file;
pub use load::{load_network, load_weights_file, ModelError};
pub use schema::{Arch, Combiner, ModelEntry};

/// The manifest's file name inside a models folder.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// A manifest is a few kilobytes; a larger file is refused unread.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The manifest format this kneecam reads and writes.
pub const FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: no such file; a models folder needs a {MANIFEST_FILE} listing its models", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: {}", path.display(), problems.join(&format!("\n{}: ", path.display())))]
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// The models and combiners of one models folder.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Manifest {
    models: BTreeMap<(Task, Plane), ModelEntry>,
    combiners: BTreeMap<Task, Combiner>,
    /// 2-D image classifiers (`[images.NAME]`, e.g. an ImageNet resnet18 for `cam --image`).
    images: BTreeMap<String, ModelEntry>,
}

/// The file as written: keys as strings, checked after parsing so errors can name them.
#[derive(Serialize)]
struct ManifestFile<'a> {
    format: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    models: BTreeMap<String, &'a ModelEntry>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    combiners: BTreeMap<String, &'a Combiner>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    images: BTreeMap<String, &'a ModelEntry>,
}

fn de_message(e: &toml::de::Error) -> String {
    e.message().trim().to_string()
}

impl Manifest {
    /// An empty manifest.
    pub fn new() -> Self {
        Manifest::default()
    }

    /// Reads `dir/manifest.toml`.
    pub fn load(dir: &Path) -> Result<Manifest, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = match crate::fsutil::read_text_at_most(&path, MAX_MANIFEST_BYTES, "a manifest") {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::NotFound { path })
            }
            Err(error) => return Err(ManifestError::Read { path, error }),
        };
        Manifest::parse(&text, &path)
    }

    /// Parses manifest text; `path` names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ManifestError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string().trim_end().to_string(),
                })?;
        let mut problems = Vec::new();
        let mut manifest = Manifest::new();
        match table.get("format") {
            None => problems.push(format!("format: missing; expected format = {FORMAT}")),
            Some(toml::Value::Integer(n)) if *n == i64::from(FORMAT) => {}
            Some(other) => problems.push(format!(
                "format = {other}: this kneecam reads format {FORMAT} only"
            )),
        }
        for (key, value) in &table {
            match key.as_str() {
                "format" => {}
                "models" => manifest.parse_models(value, &mut problems),
                "combiners" => manifest.parse_combiners(value, &mut problems),
                "images" => manifest.parse_images(value, &mut problems),
                other => problems.push(format!(
                    "unknown key '{other}', expected format, models, combiners, images"
                )),
            }
        }
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                problems,
            })
        }
    }

    fn parse_models(&mut self, value: &toml::Value, problems: &mut Vec<String>) {
        let Some(models) = value.as_table() else {
            problems.push("models: expected a table of [models.{task}-{plane}]".into());
            return;
        };
        for (key, value) in models {
            let at = |message: String| format!("models.{key}: {message}");
            let parsed_key = parse_model_key(key);
            let entry = value
                .clone()
                .try_into::<ModelEntry>()
                .map_err(|e| de_message(&e));
            match (parsed_key, entry) {
                (Err(e), _) => problems.push(at(e)),
                (_, Err(e)) => problems.push(at(e)),
                (Ok(key), Ok(entry)) => {
                    let entry_problems = entry.problems(2);
                    if entry_problems.is_empty() {
                        self.models.insert(key, entry);
                    } else {
                        problems.extend(entry_problems.into_iter().map(at));
                    }
                }
            }
        }
    }

    fn parse_images(&mut self, value: &toml::Value, problems: &mut Vec<String>) {
        let Some(images) = value.as_table() else {
            problems.push("images: expected a table of [images.NAME]".into());
            return;
        };
        for (name, value) in images {
            let at = |message: String| format!("images.{name}: {message}");
            match value
                .clone()
                .try_into::<ModelEntry>()
                .map_err(|e| de_message(&e))
            {
                Err(e) => problems.push(at(e)),
                Ok(entry) if entry.arch != Arch::Torchscript => problems.push(at(format!(
                    "arch = \"{}\": image models are TorchScript (arch = \"torchscript\")",
                    entry.arch
                ))),
                Ok(entry) => {
                    let entry_problems = entry.problems(100_000);
                    if entry_problems.is_empty() {
                        self.images.insert(name.clone(), entry);
                    } else {
                        problems.extend(entry_problems.into_iter().map(at));
                    }
                }
            }
        }
    }

    /// The 2-D image model `[images.NAME]`.
    pub fn image(&self, name: &str) -> Option<&ModelEntry> {
        self.images.get(name)
    }

    fn parse_combiners(&mut self, value: &toml::Value, problems: &mut Vec<String>) {
        let Some(combiners) = value.as_table() else {
            problems.push("combiners: expected a table of [combiners.{task}]".into());
            return;
        };
        for (key, value) in combiners {
            let at = |message: String| format!("combiners.{key}: {message}");
            let task = key.parse::<Task>().map_err(|e| e.to_string());
            let combiner = value
                .clone()
                .try_into::<Combiner>()
                .map_err(|e| de_message(&e));
            match (task, combiner) {
                (Err(e), _) | (_, Err(e)) => problems.push(at(e)),
                (Ok(task), Ok(combiner)) => {
                    let combiner_problems = combiner.problems();
                    if combiner_problems.is_empty() {
                        self.combiners.insert(task, combiner);
                    } else {
                        problems.extend(combiner_problems.into_iter().map(at));
                    }
                }
            }
        }
    }

    /// Writes `dir/manifest.toml` atomically (a temporary file renamed into place).
    pub fn save(&self, dir: &Path) -> Result<(), ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let text = self.to_toml();
        crate::fsutil::atomic_write(&path, |w| w.write_all(text.as_bytes()))
            .map_err(|error| ManifestError::Write { path, error })
    }

    /// The manifest as TOML text.
    pub fn to_toml(&self) -> String {
        let file = ManifestFile {
            format: FORMAT,
            models: self
                .models
                .iter()
                .map(|(&(task, plane), entry)| (model_key(task, plane), entry))
                .collect(),
            combiners: self
                .combiners
                .iter()
                .map(|(task, combiner)| (task.name().to_string(), combiner))
                .collect(),
            images: self
                .images
                .iter()
                .map(|(name, entry)| (name.clone(), entry))
                .collect(),
        };
        // Plain data with string keys always serialises; keep the fallback honest anyway.
        toml::to_string(&file).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }

    /// The model for `task` on `plane`, if the folder has one.
    pub fn model(&self, task: Task, plane: Plane) -> Option<&ModelEntry> {
        self.models.get(&(task, plane))
    }

    /// Every model, by (task, plane).
    pub fn models(&self) -> impl Iterator<Item = ((Task, Plane), &ModelEntry)> {
        self.models.iter().map(|(&key, entry)| (key, entry))
    }

    pub fn set_model(&mut self, task: Task, plane: Plane, entry: ModelEntry) {
        self.models.insert((task, plane), entry);
    }

    pub fn remove_model(&mut self, task: Task, plane: Plane) -> Option<ModelEntry> {
        self.models.remove(&(task, plane))
    }

    /// How `task`'s three plane probabilities combine, if the manifest says.
    pub fn combiner(&self, task: Task) -> Option<&Combiner> {
        self.combiners.get(&task)
    }

    pub fn combiners(&self) -> impl Iterator<Item = (Task, &Combiner)> {
        self.combiners.iter().map(|(&task, c)| (task, c))
    }

    pub fn set_combiner(&mut self, task: Task, combiner: Combiner) {
        self.combiners.insert(task, combiner);
    }
}

/// `{task}-{plane}`, the key of a model in the manifest.
pub fn model_key(task: Task, plane: Plane) -> String {
    format!("{}-{}", task.name(), plane.name())
}

fn parse_model_key(key: &str) -> Result<(Task, Plane), String> {
    let Some((task, plane)) = key.split_once('-') else {
        return Err(format!(
            "expected a key {{task}}-{{plane}}, such as acl-sagittal (got '{key}')"
        ));
    };
    let task = task.parse::<Task>().map_err(|e| e.to_string())?;
    let plane = plane.parse::<Plane>().map_err(|e| e.to_string())?;
    Ok((task, plane))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_keys_name_task_then_plane() {
        assert_eq!(
            parse_model_key("acl-sagittal"),
            Ok((Task::Acl, Plane::Sagittal))
        );
        assert_eq!(model_key(Task::Meniscus, Plane::Axial), "meniscus-axial");
        let err = parse_model_key("acl-sagital").expect_err("typo");
        assert!(
            err.contains("unknown plane 'sagital'") && err.contains("axial, coronal, sagittal"),
            "{err}"
        );
        assert!(parse_model_key("acl").is_err());
    }
}
