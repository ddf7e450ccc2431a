//! A model ready on its device: the network, its preprocessing, and what outputs say of it.
use std::path::{Path, PathBuf};

use crate::cam::CamError;
use crate::data::{Plane, Task};
use crate::model::manifest::{self, Manifest, ManifestError, ModelError};
use crate::model::network::{GapNetwork, Network};
use crate::model::preprocess::Preprocess;

#[derive(Debug)]
pub struct LoadedModel {
    pub network: Network,
    pub preprocess: Preprocess,
    /// How people name it: a file, or `folder:task:plane`.
    pub label: String,
    pub sha256: String,
}

/// Why a model could not be loaded. Each names the model once.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: manifest.toml has no model for {task}-{plane}", dir.display())]
    NoEntry {
        dir: PathBuf,
        task: Task,
        plane: Plane,
    },
    #[error(transparent)]
    Manifest(Box<ManifestError>),
    /// A bare weights file: its error names the file (a bare file has no task or plane).
    #[error(transparent)]
    File(Box<ModelError>),
    /// A manifest entry whose network could not be built.
    /// (`error`, not `source`: the message prints it, so it is no source of the chain.)
    #[error("could not load the {task} {plane} model of {}: {error}", dir.display())]
    Entry {
        dir: PathBuf,
        task: Task,
        plane: Plane,
        error: Box<ModelError>,
    },
    /// A loader of the caller's own (tests, tools) said why.
    #[error("{0}")]
    Other(String),
}

/// A series smaller than the network can take (libtorch would fail on it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the series of {height}×{width} px is smaller than the model's input needs (at least \
     {min}×{min} px)"
)]
pub struct TooSmall {
    pub height: usize,
    pub width: usize,
    pub min: usize,
}

impl LoadedModel {
    /// A bare weights file: MRNet weights, outputs from its classifier, preprocessed as
    /// `preprocess` says or else as its key family's code trained.
    pub fn from_file(
        path: &Path,
        preprocess: Option<Preprocess>,
        device: tch::Device,
    ) -> Result<Self, LoadError> {
        let label = path.display().to_string();
        let (network, entry, _) = manifest::load_weights_file(path, preprocess, device)
            .map_err(|e| LoadError::File(Box::new(e)))?;
        Ok(LoadedModel {
            network,
            preprocess: entry.preprocess,
            label,
            sha256: entry.sha256,
        })
    }

    /// The (task, plane) entry of the manifest in `dir`, read now.
    pub fn from_manifest(
        dir: &Path,
        task: Task,
        plane: Plane,
        device: tch::Device,
    ) -> Result<Self, LoadError> {
        let manifest = Manifest::load(dir).map_err(|e| LoadError::Manifest(Box::new(e)))?;
        Self::from_loaded_manifest(dir, &manifest, task, plane, device)
    }

    /// As `from_manifest`, with the manifest already read.
    pub fn from_loaded_manifest(
        dir: &Path,
        manifest: &Manifest,
        task: Task,
        plane: Plane,
        device: tch::Device,
    ) -> Result<Self, LoadError> {
        let entry = manifest
            .model(task, plane)
            .ok_or_else(|| LoadError::NoEntry {
                dir: dir.to_path_buf(),
                task,
                plane,
            })?;
        let label = format!("{}:{task}:{plane}", dir.display());
        let network =
            manifest::load_network(dir, entry, device).map_err(|error| LoadError::Entry {
                dir: dir.to_path_buf(),
                task,
                plane,
                error: Box::new(error),
            })?;
        Ok(LoadedModel {
            network,
            preprocess: entry.preprocess,
            label,
            sha256: entry.sha256.clone(),
        })
    }

    /// The device its weights are on.
    pub fn device(&self) -> tch::Device {
        self.network.classifier().0.device()
    }

    /// Whether the series' slices, as the network sees them, are large enough for it
    /// (checked before libtorch, which would fail on them; unknown for TorchScript).
    pub fn check_input(&self, volume: &ndarray::Array3<u8>) -> Result<(), TooSmall> {
        let (_, height, width) = volume.dim();
        let (_, _, seen_height, seen_width) = self.preprocess.window(height, width);
        match self.network.min_input_side() {
            Some(min) if seen_height < min || seen_width < min => Err(TooSmall {
                height: seen_height,
                width: seen_width,
                min,
            }),
            _ => Ok(()),
        }
    }

    /// P(positive) for one series.
    pub fn probability(&self, volume: &ndarray::Array3<u8>) -> Result<f32, CamError> {
        let x = self.preprocess.input(volume, self.device());
        let pass = crate::cam::forward(&self.network, &x)?;
        Ok(crate::model::network::positive_probability(&pass.logits))
    }
}
