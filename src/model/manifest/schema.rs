//! The entries of a manifest: what each model is, and how a task's planes combine.
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::preprocess::Preprocess;

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
    /// `models import`: the name of the file this one was converted from …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// … and that file's sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_sha256: Option<String>,
    /// How a DICOM or NIfTI series' values become this model's 0–255 input: "minmax" (the
    /// default), "percentile:LO,HI" or "identity".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<String>,
    /// The training protocol's series description (e.g. "T2 FS"): a study's series whose
    /// description holds it is chosen for this plane.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
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
            imported_from: None,
            imported_sha256: None,
            intensity: None,
            protocol: None,
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
    pub(super) fn problems(&self, max_classes: i64) -> Vec<String> {
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
        if let Some(intensity) = &self.intensity {
            if let Err(why) = intensity.parse::<crate::data::study::Intensity>() {
                problems.push(why);
            }
        }
        if self
            .protocol
            .as_deref()
            .is_some_and(|p| p.trim().is_empty())
        {
            problems.push("protocol is empty: leave it out, or name the series description".into());
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

    pub(super) fn problems(&self) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
