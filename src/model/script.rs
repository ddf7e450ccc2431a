//! TorchScript models: any CNN exported with `torch.jit.save` whose `forward(x)` returns
//! `(logits [N, K], features [N, C, h, w])`, with the final linear layer named in the manifest
//! (`classifier = "fc.weight"`; the bias is the same prefix + `.bias`, zero when absent).
//!
//! Loading a TorchScript file runs code from it (its TorchScript methods), so kneecam loads one
//! only through an explicit manifest entry with `arch = "torchscript"`, never by guessing.
use std::fmt;
use std::path::{Path, PathBuf};

use tch::{CModule, Device, IValue, Kind, TchError, Tensor};

use super::network::GapNetwork;
use super::weights::{self, FileKind};

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error(transparent)]
    Inspect(#[from] weights::WeightsError),
    #[error(
        "{}: not a TorchScript file (it is {kind}); make one with torch.jit.save, e.g. \
         examples/export_torchscript.py",
        path.display()
    )]
    NotScript { path: PathBuf, kind: String },
    #[error(
        "{}: the TorchScript module has method(s) besides forward: {}; kneecam runs only \
         forward, and loads a module with other methods only when its manifest entry lists \
         them, e.g. methods = [{}]",
        path.display(),
        unexpected.join(", "),
        unexpected.iter().map(|m| format!("\"{m}\"")).collect::<Vec<_>>().join(", ")
    )]
    UnexpectedMethods {
        path: PathBuf,
        unexpected: Vec<String>,
    },
    #[error("{}: cannot read the TorchScript archive: {message}", path.display())]
    Archive { path: PathBuf, message: String },
    #[error("{}: libtorch cannot load this TorchScript module: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error(
        "{}: no parameter named {name} (the manifest's classifier); {}",
        path.display(),
        describe_parameters(candidates, available)
    )]
    NoClassifier {
        path: PathBuf,
        name: String,
        /// Parameters shaped like a classifier's weight ([K, C] or [K, C, 1, 1]).
        candidates: Vec<String>,
        available: Vec<String>,
    },
    #[error(
        "{}: classifier {name} has shape {shape:?}; expected a linear layer's weight [K, C] (or a \
         1×1 convolution's [K, C, 1, 1])",
        path.display()
    )]
    BadClassifier {
        path: PathBuf,
        name: String,
        shape: Vec<i64>,
    },
    #[error("{}: {name} has shape {shape:?}, expected [{classes}] to match the classifier", path.display())]
    BadBias {
        path: PathBuf,
        name: String,
        shape: Vec<i64>,
        classes: i64,
    },
    #[error(
        "{}: forward(x) must return a tuple (logits [N, K], features [N, C, h, w]); it returned {found}",
        path.display()
    )]
    BadOutput { path: PathBuf, found: String },
    #[error(
        "{}: forward(x) gives features with {found} channels, but classifier {name} takes {expected}",
        path.display()
    )]
    ChannelMismatch {
        path: PathBuf,
        name: String,
        expected: i64,
        found: i64,
    },
    #[error("{}: forward(x) on a [1, 3, {side}, {side}] input failed: {message}", path.display())]
    Forward {
        path: PathBuf,
        side: i64,
        message: String,
    },
}

/// A TorchScript module on its device, with its classifier's weight [K, C] and bias [K].
pub struct ScriptNet {
    module: CModule,
    path: PathBuf,
    classifier: String,
    weight: Tensor,
    bias: Tensor,
}

impl fmt::Debug for ScriptNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptNet")
            .field("path", &self.path)
            .field("classifier", &self.classifier)
            .field("weight", &self.weight.size())
            .field("device", &self.weight.device())
            .finish()
    }
}

fn describe_parameters(candidates: &[String], available: &[String]) -> String {
    if available.is_empty() {
        return "the module has no parameters".into();
    }
    let all = format!("all its parameters: {}", available.join(", "));
    if candidates.is_empty() {
        all
    } else {
        format!(
            "classifier-shaped weights: {}; {all}",
            candidates.join(", ")
        )
    }
}

/// A TorchScript archive's `data.pkl` and code files are kilobytes; larger ones are refused.
const MAX_CODE_BYTES: u64 = 16 << 20;

/// The methods (`def NAME(`) of the archive's top-level module class, sorted: what a caller
/// of the module could run besides `forward`. Read from the zip (the class named first in
/// `data.pkl`, its code in `code/`), before libtorch sees the file. Submodules' and helpers'
/// code is reachable only through those methods.
pub fn script_methods(path: &Path) -> Result<Vec<String>, ScriptError> {
    let archive_error = |message: String| ScriptError::Archive {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| archive_error(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| archive_error(e.to_string()))?;
    let pickle_name = archive
        .file_names()
        .find(|n| {
            n.split_once('/')
                .is_some_and(|(_, rest)| rest == "data.pkl")
        })
        .map(str::to_string)
        .ok_or_else(|| archive_error("no */data.pkl inside".into()))?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    let pickle = read_entry(&mut archive, &pickle_name).map_err(archive_error)?;
    let globals = weights::pickle_globals(&pickle)
        .map_err(|e| archive_error(format!("{pickle_name}: {e}")))?;
    let root = globals
        .iter()
        .find(|g| g.starts_with("__torch__."))
        .ok_or_else(|| archive_error(format!("{pickle_name} names no __torch__ class")))?;
    let (module, class) = root.rsplit_once('.').unwrap_or((root, ""));
    let code_name = format!("{prefix}code/{}.py", module.replace('.', "/"));
    let code = read_entry(&mut archive, &code_name).map_err(archive_error)?;
    let code = String::from_utf8_lossy(&code);
    let mut methods: Vec<String> = class_methods(&code, class).collect();
    methods.sort();
    methods.dedup();
    Ok(methods)
}

fn read_entry(archive: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<Vec<u8>, String> {
    let mut entry = archive.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    if entry.size() > MAX_CODE_BYTES {
        return Err(format!("{name} is {} bytes", entry.size()));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes).map_err(|e| format!("{name}: {e}"))?;
    Ok(bytes)
}

/// The `def`s directly inside `class CLASS(` of TorchScript's generated code (two-space
/// indented, the class ending at the next unindented line).
fn class_methods<'a>(code: &'a str, class: &'a str) -> impl Iterator<Item = String> + 'a {
    let header = format!("class {class}(");
    code.lines()
        .skip_while(move |line| !line.starts_with(&header))
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .filter_map(|line| {
            let rest = line.strip_prefix("  def ")?;
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
}

fn is_dunder(name: &str) -> bool {
    name.len() > 4 && name.starts_with("__") && name.ends_with("__")
}

fn first_line(e: &TchError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl ScriptNet {
    /// Loads the TorchScript module at `path` onto `device` in evaluation mode and reads the
    /// classifier parameter `classifier` (e.g. `fc.weight`) and its bias. The module's code
    /// may define `forward` (and dunder methods) and the methods in `allowed` only.
    pub fn load(
        path: &Path,
        classifier: &str,
        allowed: &[String],
        device: Device,
    ) -> Result<Self, ScriptError> {
        match weights::inspect(path)? {
            FileKind::TorchScript => {}
            other => {
                return Err(ScriptError::NotScript {
                    path: path.to_path_buf(),
                    kind: other.to_string(),
                })
            }
        }
        let unexpected: Vec<String> = script_methods(path)?
            .into_iter()
            .filter(|m| m != "forward" && !is_dunder(m) && !allowed.contains(m))
            .collect();
        if !unexpected.is_empty() {
            return Err(ScriptError::UnexpectedMethods {
                path: path.to_path_buf(),
                unexpected,
            });
        }
        let mut module = CModule::load_on_device(path, device).map_err(|e| ScriptError::Load {
            path: path.to_path_buf(),
            message: first_line(&e),
        })?;
        module.f_set_eval().map_err(|e| ScriptError::Load {
            path: path.to_path_buf(),
            message: first_line(&e),
        })?;
        let parameters = module.named_parameters().map_err(|e| ScriptError::Load {
            path: path.to_path_buf(),
            message: first_line(&e),
        })?;
        let find = |name: &str| {
            parameters
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.detach())
        };
        let Some(weight) = find(classifier) else {
            return Err(ScriptError::NoClassifier {
                path: path.to_path_buf(),
                name: classifier.to_string(),
                candidates: parameters
                    .iter()
                    .filter(|(_, t)| matches!(t.size().as_slice(), [_, _] | [_, _, 1, 1]))
                    .map(|(n, _)| n.clone())
                    .collect(),
                available: parameters.iter().map(|(n, _)| n.clone()).collect(),
            });
        };
        let shape = weight.size();
        let weight = match shape.as_slice() {
            [k, c] if *k > 0 && *c > 0 => weight,
            [k, c, 1, 1] if *k > 0 && *c > 0 => weight.reshape([*k, *c]),
            _ => {
                return Err(ScriptError::BadClassifier {
                    path: path.to_path_buf(),
                    name: classifier.to_string(),
                    shape,
                })
            }
        };
        let classes = weight.size()[0];
        let bias_name = match classifier.strip_suffix("weight") {
            Some(prefix) => format!("{prefix}bias"),
            None => format!("{classifier}.bias"),
        };
        let bias = match find(&bias_name) {
            Some(bias) if bias.size() == [classes] => bias,
            Some(bias) => {
                return Err(ScriptError::BadBias {
                    path: path.to_path_buf(),
                    name: bias_name,
                    shape: bias.size(),
                    classes,
                })
            }
            None => Tensor::zeros([classes], (Kind::Float, device)),
        };
        Ok(ScriptNet {
            module,
            path: path.to_path_buf(),
            classifier: classifier.to_string(),
            weight: weight.to_kind(Kind::Float),
            bias: bias.to_kind(Kind::Float),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Outputs of the classifier (K).
    pub fn classes(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Feature channels the classifier takes (C).
    pub fn channels(&self) -> i64 {
        self.weight.size()[1]
    }

    /// Runs the module: (logits [N, K], features [N, C, h, w]) for x [N, 3, H, W].
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor), ScriptError> {
        let output = self
            .module
            .forward_is(&[IValue::Tensor(x.shallow_clone())])
            .map_err(|e| ScriptError::Forward {
                path: self.path.clone(),
                side: x.size().last().copied().unwrap_or_default(),
                message: first_line(&e),
            })?;
        let bad = |found: String| ScriptError::BadOutput {
            path: self.path.clone(),
            found,
        };
        let (logits, features) = match output {
            IValue::Tuple(items) | IValue::GenericList(items) if items.len() == 2 => {
                let mut items = items.into_iter();
                match (items.next(), items.next()) {
                    (Some(IValue::Tensor(l)), Some(IValue::Tensor(f))) => (l, f),
                    _ => return Err(bad("a pair that is not two tensors".into())),
                }
            }
            IValue::TensorList(items) if items.len() == 2 => {
                let mut items = items.into_iter();
                match (items.next(), items.next()) {
                    (Some(l), Some(f)) => (l, f),
                    _ => return Err(bad("a list that is not two tensors".into())),
                }
            }
            IValue::Tensor(t) => return Err(bad(format!("one tensor of shape {:?}", t.size()))),
            IValue::Tuple(items) | IValue::GenericList(items) => {
                return Err(bad(format!("{} values", items.len())))
            }
            other => return Err(bad(describe(&other))),
        };
        if logits.dim() != 2 || features.dim() != 4 {
            return Err(bad(format!(
                "tensors of shapes {:?} and {:?}",
                logits.size(),
                features.size()
            )));
        }
        let found = features.size()[1];
        if found != self.channels() {
            return Err(ScriptError::ChannelMismatch {
                path: self.path.clone(),
                name: self.classifier.clone(),
                expected: self.channels(),
                found,
            });
        }
        Ok((logits, features))
    }

    /// Runs one blank `side`×`side` slice through the module to check that it returns what
    /// kneecam needs and that its features fit the classifier.
    pub fn check(&self, side: i64) -> Result<(), ScriptError> {
        let x = Tensor::zeros([1, 3, side, side], (Kind::Float, self.weight.device()));
        tch::no_grad(|| self.forward(&x)).map(|_| ())
    }
}

fn describe(value: &IValue) -> String {
    match value {
        IValue::None => "None".into(),
        IValue::Double(_) | IValue::Int(_) | IValue::Bool(_) => "a number".into(),
        IValue::String(_) => "a string".into(),
        IValue::GenericDict(_) => "a dict".into(),
        IValue::Object(_) => "an object".into(),
        _ => "a list".into(),
    }
}

impl GapNetwork for ScriptNet {
    fn features(&self, x: &Tensor) -> Result<Tensor, TchError> {
        self.forward(x)
            .map(|(_, features)| features)
            .map_err(|e| TchError::Shape(e.to_string()))
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}
