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
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::Device;

use super::mrnet::Mrnet;
use super::network::Network;
use super::preprocess::Preprocess;
use super::script::{ScriptError, ScriptNet};
use super::tiny::Tiny;
use super::weights::{self, WeightsError};
use crate::data::{Plane, Task};

/// The manifest's file name inside a models folder.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// A manifest is a few kilobytes; a larger file is refused unread.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
/// The manifest format this kneecam reads and writes.
pub const FORMAT: u32 = 1;

/// How a model's network is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The reference MRNet (AlexNet features + linear), from a state dict.
    Mrnet,
    /// kneecam's small CNN for the phantom.
    Tiny,
    /// A TorchScript module (runs code from the file; see `script`).
    Torchscript,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Mrnet => "mrnet",
            Arch::Tiny => "tiny",
            Arch::Torchscript => "torchscript",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One model of the manifest (`[models.{task}-{plane}]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The weights file, relative to the models folder (or absolute).
    pub file: PathBuf,
    pub arch: Arch,
    /// Outputs of the final layer: 2 as the reference code (P = sigmoid(logit 1)), or 1.
    pub classes: i64,
    #[serde(default)]
    pub preprocess: Preprocess,
    /// sha256 of the file, lowercase hex; a file that differs is refused.
    pub sha256: String,
    /// TorchScript only: the classifier's weight parameter, e.g. `fc.weight`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classifier: Option<String>,
    /// TorchScript only: methods besides `forward` the module may define (its code runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auc: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_with: Option<String>,
}

impl ModelEntry {
    /// An entry with no provenance and no classifier name.
    pub fn new(
        file: impl Into<PathBuf>,
        arch: Arch,
        classes: i64,
        preprocess: Preprocess,
        sha256: String,
    ) -> Self {
        ModelEntry {
            file: file.into(),
            arch,
            classes,
            preprocess,
            sha256,
            classifier: None,
            methods: Vec::new(),
            auc: None,
            epochs: None,
            seed: None,
            data_fingerprint: None,
            trained_with: None,
        }
    }

    /// The class whose evidence is P(positive): 1 with two outputs, 0 with one.
    pub fn positive_class(&self) -> usize {
        usize::from(self.classes >= 2)
    }

    /// The weights file, resolved against the models folder `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.file)
    }

    /// What is wrong with this entry, for people.
    /// What is wrong with this entry; `max_classes` is 2 for MRNet tasks (positive or not),
    /// larger for image classifiers.
    fn problems(&self, max_classes: i64) -> Vec<String> {
        let mut problems = Vec::new();
        if self.file.as_os_str().is_empty() {
            problems.push("file is empty".to_string());
        }
        if !(1..=max_classes).contains(&self.classes) {
            problems.push(format!(
                "classes = {}, expected 1 to {max_classes}",
                self.classes
            ));
        }
        if !is_sha256(&self.sha256) {
            problems.push(format!(
                "sha256 '{}' is not 64 hexadecimal digits (compute it with `sha256sum FILE`)",
                self.sha256
            ));
        }
        match (self.arch, &self.classifier) {
            (Arch::Torchscript, None) => problems.push(
                "arch = \"torchscript\" needs classifier = \"<parameter name>\" (e.g. \"fc.weight\")"
                    .into(),
            ),
            (Arch::Torchscript, Some(name)) if name.trim().is_empty() => {
                problems.push("classifier is empty".into())
            }
            (Arch::Mrnet | Arch::Tiny, Some(_)) => problems.push(format!(
                "classifier is only for arch = \"torchscript\" (this is \"{}\")",
                self.arch
            )),
            _ => {}
        }
        if self.arch != Arch::Torchscript && !self.methods.is_empty() {
            problems.push(format!(
                "methods is only for arch = \"torchscript\" (this is \"{}\")",
                self.arch
            ));
        }
        if let Some(auc) = self.auc {
            if !(0.0..=1.0).contains(&auc) {
                problems.push(format!("auc = {auc}, expected a value from 0 to 1"));
            }
        }
        problems
    }
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Logistic regression over one task's three plane probabilities (`[combiners.{task}]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Combiner {
    pub axial: f64,
    pub coronal: f64,
    pub sagittal: f64,
    pub intercept: f64,
}

impl Combiner {
    /// The reference code's published ACL fit.
    pub const REFERENCE_ACL: Combiner = Combiner {
        axial: 3.454,
        coronal: 4.486,
        sagittal: 2.900,
        intercept: -3.624,
    };

    /// sigmoid(axial·p_axial + coronal·p_coronal + sagittal·p_sagittal + intercept), with the
    /// probabilities in `Plane::ALL` order; None when any plane's probability is missing.
    pub fn combine(&self, probabilities: [Option<f32>; 3]) -> Option<f32> {
        let [a, c, s] = probabilities;
        let z = self.axial * f64::from(a?)
            + self.coronal * f64::from(c?)
            + self.sagittal * f64::from(s?)
            + self.intercept;
        Some((1.0 / (1.0 + (-z).exp())) as f32)
    }

    fn problems(&self) -> Vec<String> {
        [
            ("axial", self.axial),
            ("coronal", self.coronal),
            ("sagittal", self.sagittal),
            ("intercept", self.intercept),
        ]
        .iter()
        .filter(|(_, v)| !v.is_finite())
        .map(|(name, v)| format!("{name} = {v}, expected a finite number"))
        .collect()
    }
}

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

/// The sha256 of a file's bytes, lowercase hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "{}: sha256 is {found}, but the manifest says {expected}: the file changed after the \
         manifest was written (put the new sha256 in the manifest only if you trust the new file)",
        path.display()
    )]
    Sha256Mismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{}: the classifier has {found} output(s), but the manifest says classes = {expected}", path.display())]
    ClassesMismatch {
        path: PathBuf,
        expected: i64,
        found: i64,
    },
    #[error(
        "{}: no classifer.weight (or classifier.weight) of shape [K, 256]: not an MRNet state dict",
        path.display()
    )]
    NoClassifier { path: PathBuf },
    #[error(
        "{}: arch = \"torchscript\" needs the manifest's classifier = \"<parameter name>\"",
        path.display()
    )]
    NoClassifierName { path: PathBuf },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(transparent)]
    Script(#[from] ScriptError),
}

/// The input side a preprocessing gives MRNet's slices, for checking a TorchScript module.
fn probe_side(preprocess: Preprocess) -> i64 {
    match preprocess {
        Preprocess::Raw => 256,
        Preprocess::Crop224Norm => 224,
    }
}

/// A state dict whose classifier has the entry's number of outputs.
fn read_checked_state(path: &Path, classes: i64) -> Result<weights::StateDict, ModelError> {
    let state = weights::read_state_dict(path)?;
    match state.classes() {
        Some(found) if found != classes => Err(ModelError::ClassesMismatch {
            path: path.to_path_buf(),
            expected: classes,
            found,
        }),
        _ => Ok(state),
    }
}

/// Builds the network of a manifest entry on `device`, after checking the file's sha256.
pub fn load_network(dir: &Path, entry: &ModelEntry, device: Device) -> Result<Network, ModelError> {
    let path = entry.path(dir);
    let found = sha256_file(&path).map_err(|error| ModelError::Read {
        path: path.clone(),
        error,
    })?;
    if !found.eq_ignore_ascii_case(&entry.sha256) {
        return Err(ModelError::Sha256Mismatch {
            path,
            expected: entry.sha256.clone(),
            found,
        });
    }
    match entry.arch {
        Arch::Mrnet => {
            let state = read_checked_state(&path, entry.classes)?;
            let mut net = Mrnet::new(device, entry.classes);
            state.copy_into(&mut net.vs)?;
            Ok(Network::Mrnet(net))
        }
        Arch::Tiny => {
            let state = read_checked_state(&path, entry.classes)?;
            let mut net = Tiny::new(device, entry.classes);
            state.copy_into(&mut net.vs)?;
            Ok(Network::Tiny(net))
        }
        Arch::Torchscript => {
            let Some(classifier) = entry.classifier.as_deref() else {
                return Err(ModelError::NoClassifierName { path });
            };
            let net = ScriptNet::load(&path, classifier, &entry.methods, device)?;
            if net.classes() != entry.classes {
                return Err(ModelError::ClassesMismatch {
                    path,
                    expected: entry.classes,
                    found: net.classes(),
                });
            }
            net.check(probe_side(entry.preprocess))?;
            Ok(Network::Script(net))
        }
    }
}

/// A bare weights file, without a manifest: an MRNet state dict (safetensors or PyTorch), its
/// outputs read from the classifier's shape, raw preprocessing. Returns the network and the
/// entry a manifest would hold for it.
pub fn load_weights_file(path: &Path, device: Device) -> Result<(Network, ModelEntry), ModelError> {
    let sha256 = sha256_file(path).map_err(|error| ModelError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let state = weights::read_state_dict(path)?;
    let classes = state.classes().ok_or_else(|| ModelError::NoClassifier {
        path: path.to_path_buf(),
    })?;
    let mut net = Mrnet::new(device, classes);
    state.copy_into(&mut net.vs)?;
    let entry = ModelEntry::new(path, Arch::Mrnet, classes, Preprocess::Raw, sha256);
    Ok((Network::Mrnet(net), entry))
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

    #[test]
    fn combine_is_logistic_regression_and_needs_every_plane() {
        let c = Combiner::REFERENCE_ACL;
        let p = c
            .combine([Some(0.5), Some(0.5), Some(0.5)])
            .expect("all planes");
        let z: f64 = 3.454 * 0.5 + 4.486 * 0.5 + 2.900 * 0.5 - 3.624;
        assert!((f64::from(p) - 1.0 / (1.0 + (-z).exp())).abs() < 1e-6);
        assert_eq!(c.combine([Some(0.5), None, Some(0.5)]), None);
    }
}
