//! `--model` for the headless commands: a weights file, or `MODELS_DIR:task:plane`.
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::bad_input;
use crate::data::{Plane, Task};
use crate::model::manifest::{self, Manifest};
use crate::model::network::{GapNetwork, Network};
use crate::model::preprocess::Preprocess;

/// A model ready on its device, with what the outputs need to say about it.
#[derive(Debug)]
pub struct LoadedModel {
    pub network: Network,
    pub preprocess: Preprocess,
    /// How the user named it (file, or folder:task:plane).
    pub label: String,
    pub sha256: String,
}

impl LoadedModel {
    pub fn open(spec: &str, device: tch::Device) -> anyhow::Result<Self> {
        match parse_spec(spec)? {
            ModelSpec::File(path) => Self::from_file(&path, device),
            ModelSpec::Entry { dir, task, plane } => Self::from_manifest(&dir, task, plane, device),
        }
    }

    /// A bare weights file: an MRNet state dict, outputs from its classifier, raw preprocessing.
    pub fn from_file(path: &Path, device: tch::Device) -> anyhow::Result<Self> {
        let (network, entry) = manifest::load_weights_file(path, device).map_err(bad_input)?;
        Ok(LoadedModel {
            network,
            preprocess: entry.preprocess,
            label: path.display().to_string(),
            sha256: entry.sha256,
        })
    }

    pub fn from_manifest(
        dir: &Path,
        task: Task,
        plane: Plane,
        device: tch::Device,
    ) -> anyhow::Result<Self> {
        let manifest = Manifest::load(dir).map_err(bad_input)?;
        Self::from_loaded_manifest(dir, &manifest, task, plane, device)
    }

    /// As `from_manifest`, with the manifest already read.
    pub fn from_loaded_manifest(
        dir: &Path,
        manifest: &Manifest,
        task: Task,
        plane: Plane,
        device: tch::Device,
    ) -> anyhow::Result<Self> {
        let entry = manifest.model(task, plane).ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "{}: manifest.toml has no model for {task}-{plane}",
                dir.display()
            ))
        })?;
        let network = manifest::load_network(dir, entry, device).map_err(bad_input)?;
        Ok(LoadedModel {
            network,
            preprocess: entry.preprocess,
            label: format!("{}:{task}:{plane}", dir.display()),
            sha256: entry.sha256.clone(),
        })
    }

    /// P(positive) for one series.
    pub fn probability(&self, volume: &ndarray::Array3<u8>) -> anyhow::Result<f32> {
        let device = self.network.classifier().0.device();
        let x = self.preprocess.input(volume, device);
        let pass = crate::cam::forward(&self.network, &x)
            .with_context(|| format!("running {}", self.label))?;
        Ok(crate::model::network::positive_probability(&pass.logits))
    }
}

/// What a spec names, found without loading the model (no tch).
pub struct SpecInfo {
    /// The file's sha256 (an entry's from the manifest, which loading checks against the file).
    pub sha256: String,
    /// The (task, plane) of a manifest entry; None for a bare file.
    pub key: Option<(Task, Plane)>,
    pub preprocess: Preprocess,
}

pub fn describe_spec(spec: &str) -> anyhow::Result<SpecInfo> {
    match parse_spec(spec)? {
        ModelSpec::File(path) => Ok(SpecInfo {
            sha256: manifest::sha256_file(&path)
                .with_context(|| format!("hashing {}", path.display()))?,
            key: None,
            preprocess: Preprocess::Raw,
        }),
        ModelSpec::Entry { dir, task, plane } => {
            let manifest = Manifest::load(&dir).map_err(bad_input)?;
            let entry = manifest.model(task, plane).ok_or_else(|| {
                bad_input(anyhow::anyhow!(
                    "{}: manifest.toml has no model for {task}-{plane}",
                    dir.display()
                ))
            })?;
            Ok(SpecInfo {
                sha256: entry.sha256.clone(),
                key: Some((task, plane)),
                preprocess: entry.preprocess,
            })
        }
    }
}

enum ModelSpec {
    File(PathBuf),
    Entry {
        dir: PathBuf,
        task: Task,
        plane: Plane,
    },
}

/// The models folder a `--model` spec names: `DIR` of `DIR:task:plane`, or a weights file's
/// folder when it holds a manifest (a loose weights file has no models folder).
pub(crate) fn spec_folder(spec: &str) -> Option<PathBuf> {
    match parse_spec(spec).ok()? {
        ModelSpec::Entry { dir, .. } => Some(dir),
        ModelSpec::File(path) => {
            let folder = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
                _ => PathBuf::from("."),
            };
            folder
                .join(crate::model::manifest::MANIFEST_FILE)
                .is_file()
                .then_some(folder)
        }
    }
}

fn parse_spec(spec: &str) -> anyhow::Result<ModelSpec> {
    let as_path = PathBuf::from(spec);
    if as_path.is_file() {
        return Ok(ModelSpec::File(as_path));
    }
    let mut parts = spec.rsplitn(3, ':');
    let (plane, task, dir) = (parts.next(), parts.next(), parts.next());
    match (dir, task, plane) {
        (Some(dir), Some(task), Some(plane)) => Ok(ModelSpec::Entry {
            dir: PathBuf::from(dir),
            task: task.parse().map_err(bad_input)?,
            plane: plane.parse().map_err(bad_input)?,
        }),
        _ => Err(bad_input(anyhow::anyhow!(
            "--model {spec}: no such file; expected a weights file or MODELS_DIR:task:plane (e.g. models/demo:acl:sagittal)"
        ))),
    }
}
