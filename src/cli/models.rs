//! `--model` for the headless commands: a weights file, or `MODELS_DIR:task:plane`.
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::bad_input;
use crate::data::{Plane, Task};
use crate::model::manifest::{self, Manifest};
use crate::model::preprocess::Preprocess;
use crate::model::weights::{self, KeyFamily};

pub use crate::model::loaded::{LoadError, LoadedModel};

pub mod import;

/// `kneecam models …`
#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Turn checkpoints as training code wrote them (whole pickled modules, state dicts,
    /// Stanford's, legacy files) into a models folder: safetensors files and manifest entries.
    Import(import::ImportArgs),
}

pub fn run(command: ModelsCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        ModelsCommand::Import(args) => import::run(args),
    }
}

/// The model a `--model` spec names, loaded on `device`; a bad file or entry is bad input.
pub fn open(spec: &str, device: tch::Device) -> anyhow::Result<LoadedModel> {
    parse_spec(spec)?;
    load(spec, None, device).map_err(bad_input)
}

/// [`open`] for the engine's loader: the error typed, a spec that does not parse said as is.
/// `preprocess` overrides a bare file's (a manifest entry states its own).
pub fn load(
    spec: &str,
    preprocess: Option<Preprocess>,
    device: tch::Device,
) -> Result<LoadedModel, LoadError> {
    match parse_spec(spec).map_err(|e| LoadError::Other(format!("{e:#}")))? {
        ModelSpec::File(path) => LoadedModel::from_file(&path, preprocess, device),
        ModelSpec::Entry { dir, task, plane } => {
            LoadedModel::from_manifest(&dir, task, plane, device)
        }
    }
}

/// A manifest's (task, plane) model on `device`; a bad entry or file is bad input.
pub fn from_manifest(
    dir: &Path,
    manifest: &Manifest,
    task: Task,
    plane: Plane,
    device: tch::Device,
) -> anyhow::Result<LoadedModel> {
    LoadedModel::from_loaded_manifest(dir, manifest, task, plane, device).map_err(bad_input)
}

/// What a spec names, found without loading the model (no tch).
pub struct SpecInfo {
    /// The file's sha256 (an entry's from the manifest, which loading checks against the file).
    pub sha256: String,
    /// The (task, plane) of a manifest entry; None for a bare file.
    pub key: Option<(Task, Plane)>,
    pub preprocess: Preprocess,
    /// How a DICOM or NIfTI exam is converted for it (an entry's manifest states it).
    pub study_options: crate::data::study::StudyOptions,
}

/// `preprocess` overrides a bare file's; a bare file of Stanford's key family (whose code
/// trained on centre-cropped, standardised slices) gets that preprocessing by default, and a
/// note on stderr says so.
pub fn describe_spec(spec: &str, preprocess: Option<Preprocess>) -> anyhow::Result<SpecInfo> {
    match parse_spec(spec)? {
        ModelSpec::File(path) => {
            let family = weights::key_family(&path).map_err(bad_input)?;
            if preprocess.is_none() && family != KeyFamily::Reference {
                eprintln!(
                    "note: {} has {} key names: using its preprocessing, {} ({}); \
                     --preprocess overrides",
                    path.display(),
                    family.name(),
                    family.preprocess().name(),
                    family.preprocess().describe()
                );
            }
            Ok(SpecInfo {
                sha256: manifest::sha256_file(&path)
                    .with_context(|| format!("hashing {}", path.display()))?,
                key: None,
                preprocess: preprocess.unwrap_or(family.preprocess()),
                study_options: Default::default(),
            })
        }
        ModelSpec::Entry { .. } if preprocess.is_some() => Err(bad_input(anyhow::anyhow!(
            "--preprocess is for a bare weights file; the manifest entry {spec} states its own"
        ))),
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
                study_options: super::open::study_options(&manifest, &dir, None)?,
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
