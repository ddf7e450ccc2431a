//! A state dict's tensors under MRNet's names, and how they differ from a model's parameters.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use tch::{nn, Kind, Tensor};

use super::{FileKind, WeightsError};
use crate::model::mrnet::CLASSIFIER;
use crate::model::preprocess::Preprocess;

/// The conventional spelling of the final layer, accepted for the reference code's `classifer`.
const CLASSIFIER_ALIAS: &str = "classifier";
/// torchvision AlexNet's own head, kept in MRNet state dicts but never used by MRNet.
const UNUSED_ALEXNET_HEAD: &str = "pretrained_model.classifier.";
/// `nn.DataParallel` prefixes every key with this.
const DATA_PARALLEL_PREFIX: &str = "module.";
/// Stanford's MRNet code wraps torchvision's AlexNet as `model`: its features' keys.
const STANFORD_FEATURES: &str = "model.features.";
/// … and AlexNet's own head, unused there too.
const STANFORD_UNUSED_HEAD: &str = "model.classifier.";
/// The features' keys in the reference code (and kneecam's MRNet).
const REFERENCE_FEATURES: &str = "pretrained_model.features.";

/// Which code's names a file's MRNet weights use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// The blog series' reference code: `pretrained_model.features.*`, `classifer.*`
    /// (kneecam's own models too).
    Reference,
    /// Stanford's original MRNet code: `model.features.*`, `model.classifier.*` (unused) and
    /// `classifier.*` of shape [1, 256].
    Stanford,
}

impl KeyFamily {
    pub fn name(self) -> &'static str {
        match self {
            KeyFamily::Reference => "the reference code's",
            KeyFamily::Stanford => "Stanford's MRNet code's",
        }
    }

    /// The preprocessing the code that wrote this family trained with.
    pub fn preprocess(self) -> Preprocess {
        match self {
            KeyFamily::Reference => Preprocess::Raw,
            KeyFamily::Stanford => Preprocess::Crop224Norm,
        }
    }
}

/// One way a file's tensors differ from the model's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    Missing {
        name: String,
        expected: Vec<i64>,
    },
    Unexpected {
        name: String,
        found: Vec<i64>,
    },
    Shape {
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    NotFloat {
        name: String,
        kind: String,
    },
    /// Two keys of the file map to the same parameter (e.g. `classifer.*` and `classifier.*`).
    Duplicate {
        name: String,
        keys: Vec<String>,
    },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::Missing { name, expected } => {
                write!(f, "missing {name} (expected shape {expected:?})")
            }
            KeyProblem::Unexpected { name, found } => {
                write!(f, "unexpected {name} (shape {found:?})")
            }
            KeyProblem::Shape {
                name,
                expected,
                found,
            } => write!(
                f,
                "wrong shape for {name}: expected {expected:?}, found {found:?}"
            ),
            KeyProblem::NotFloat { name, kind } => {
                write!(f, "{name} holds {kind}, expected floating-point values")
            }
            KeyProblem::Duplicate { name, keys } => {
                write!(f, "{name} is given twice, as {}", keys.join(" and "))
            }
        }
    }
}

/// A file's tensors, with MRNet's key spellings normalised: a `module.` prefix dropped,
/// `classifier.*` read as `classifer.*`, AlexNet's unused `pretrained_model.classifier.*` left
/// out, and Stanford's `model.features.*` read as `pretrained_model.features.*` (its unused
/// `model.classifier.*` left out). Values are checked finite; dtypes are as stored.
#[derive(Debug)]
pub struct StateDict {
    path: PathBuf,
    pub(super) tensors: BTreeMap<String, Tensor>,
    problems: Vec<KeyProblem>,
    family: KeyFamily,
    kind: FileKind,
}

impl StateDict {
    /// Whose names the file used.
    pub fn family(&self) -> KeyFamily {
        self.family
    }

    /// What the file was (a state dict, a whole module, which format).
    pub fn kind(&self) -> &FileKind {
        &self.kind
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Outputs of the final linear layer (rows of `classifer.weight`), when it is there.
    pub fn classes(&self) -> Option<i64> {
        let weight = self.tensors.get(&format!("{CLASSIFIER}.weight"))?;
        (weight.dim() == 2).then(|| weight.size()[0])
    }

    /// Copies every tensor into the variable of the same name, as float32 on the variable's
    /// device. The names and shapes must match exactly; all differences are reported at once.
    pub fn copy_into(&self, vs: &mut nn::VarStore) -> Result<(), WeightsError> {
        copy_checked(&self.path, &self.tensors, self.problems.clone(), vs)
    }
}

/// Copies a file's tensors, under the names it stores them by (no renaming: for architectures
/// other than MRNet, e.g. torchvision's), into the variables of `vs` of the same names, as
/// float32. Names and shapes must match exactly; every difference, non-float tensor and
/// repeated name is reported at once, naming `path`.
pub fn copy_named(
    path: &Path,
    raw: Vec<(String, Tensor)>,
    vs: &mut nn::VarStore,
) -> Result<(), WeightsError> {
    let mut tensors = BTreeMap::new();
    let mut problems = Vec::new();
    for (name, t) in raw {
        if !t.is_floating_point() {
            problems.push(KeyProblem::NotFloat {
                name: name.clone(),
                kind: format!("{:?}", t.kind()).to_lowercase(),
            });
        }
        if tensors.insert(name.clone(), t).is_some() {
            problems.push(KeyProblem::Duplicate {
                keys: vec![name.clone(), name.clone()],
                name,
            });
        }
    }
    copy_checked(path, &tensors, problems, vs)
}

/// [`StateDict::copy_into`] and [`copy_named`]: `problems` found so far plus every missing,
/// unexpected and wrongly shaped tensor, or the copy.
fn copy_checked(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    mut problems: Vec<KeyProblem>,
    vs: &mut nn::VarStore,
) -> Result<(), WeightsError> {
    let variables = vs.variables();
    for (name, var) in &variables {
        match tensors.get(name) {
            None => problems.push(KeyProblem::Missing {
                name: name.clone(),
                expected: var.size(),
            }),
            Some(t) if t.size() != var.size() => problems.push(KeyProblem::Shape {
                name: name.clone(),
                expected: var.size(),
                found: t.size(),
            }),
            Some(_) => {}
        }
    }
    for (name, t) in tensors {
        if !variables.contains_key(name) {
            problems.push(KeyProblem::Unexpected {
                name: name.clone(),
                found: t.size(),
            });
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(problem_order);
        return Err(WeightsError::Mismatch {
            path: path.to_path_buf(),
            problems,
        });
    }
    tch::no_grad(|| {
        for (name, var) in &variables {
            let Some(src) = tensors.get(name) else {
                continue;
            };
            let mut var = var.shallow_clone();
            src.f_to_kind(Kind::Float)
                .and_then(|src| var.f_copy_(&src))
                .map_err(|error| WeightsError::Copy {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    error,
                })?;
        }
        Ok(())
    })
}

fn problem_order(problem: &KeyProblem) -> (u8, String) {
    match problem {
        KeyProblem::Missing { name, .. } => (0, name.clone()),
        KeyProblem::Shape { name, .. } => (1, name.clone()),
        KeyProblem::NotFloat { name, .. } => (2, name.clone()),
        KeyProblem::Duplicate { name, .. } => (3, name.clone()),
        KeyProblem::Unexpected { name, .. } => (4, name.clone()),
    }
}

/// Whether `name` (as stored) is AlexNet's head, which no MRNet uses: the reference code's
/// `pretrained_model.classifier.*` or Stanford's `model.classifier.*`, DataParallel's
/// `module.` prefix or not.
pub(super) fn is_unused_head(name: &str) -> bool {
    let name = name.strip_prefix(DATA_PARALLEL_PREFIX).unwrap_or(name);
    name.starts_with(UNUSED_ALEXNET_HEAD) || name.starts_with(STANFORD_UNUSED_HEAD)
}

/// The key family of a file with these tensor names (as stored).
pub(super) fn family_of<'a>(names: impl IntoIterator<Item = &'a str>) -> KeyFamily {
    let stanford = names.into_iter().any(|name| {
        let name = name.strip_prefix(DATA_PARALLEL_PREFIX).unwrap_or(name);
        name.starts_with(STANFORD_FEATURES)
    });
    if stanford {
        KeyFamily::Stanford
    } else {
        KeyFamily::Reference
    }
}

pub(super) fn normalise(path: &Path, raw: Vec<(String, Tensor)>, kind: FileKind) -> StateDict {
    let data_parallel = raw
        .iter()
        .all(|(name, _)| name.starts_with(DATA_PARALLEL_PREFIX));
    let unprefixed = |key: &str| {
        if data_parallel {
            key[DATA_PARALLEL_PREFIX.len()..].to_string()
        } else {
            key.to_string()
        }
    };
    let family = family_of(raw.iter().map(|(key, _)| key.as_str()));
    let mut sources: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut tensors = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, t) in raw {
        let Some(name) = mrnet_name(&unprefixed(&key), family) else {
            continue;
        };
        if !t.is_floating_point() {
            problems.push(KeyProblem::NotFloat {
                name: key.clone(),
                kind: format!("{:?}", t.kind()).to_lowercase(),
            });
        }
        sources.entry(name.clone()).or_default().push(key);
        tensors.insert(name, t);
    }
    for (name, keys) in sources {
        if keys.len() > 1 {
            problems.push(KeyProblem::Duplicate { name, keys });
        }
    }
    StateDict {
        path: path.to_path_buf(),
        tensors,
        problems,
        family,
        kind,
    }
}

/// The name kneecam's MRNet gives the file's key `name` (of `family`); None for AlexNet's
/// unused head, which is left out.
fn mrnet_name(name: &str, family: KeyFamily) -> Option<String> {
    let unused = match family {
        KeyFamily::Reference => UNUSED_ALEXNET_HEAD,
        KeyFamily::Stanford => STANFORD_UNUSED_HEAD,
    };
    if name.starts_with(unused) {
        return None;
    }
    if let Some(rest) = name.strip_prefix(STANFORD_FEATURES) {
        return Some(format!("{REFERENCE_FEATURES}{rest}"));
    }
    Some(match name.strip_prefix(CLASSIFIER_ALIAS) {
        Some(rest) if rest.starts_with('.') => format!("{CLASSIFIER}{rest}"),
        _ => name.to_string(),
    })
}
