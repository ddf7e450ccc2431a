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

/// A TorchScript archive's code files are kilobytes; larger ones are refused.
const MAX_CODE_BYTES: u64 = 16 << 20;

/// Every method (`def NAME(` inside a `class`) of the archive's own classes, sorted, once
/// each: the code its modules carry besides PyTorch's. PyTorch's own module classes
/// (`code/__torch__/torch/…`, generated from torch's library) are not listed. Read from the
/// zip before libtorch sees the file, in the folder libtorch reads (its first entry's); an
/// archive with two entries of one name, or a `def` this cannot name, is refused.
pub fn script_methods(path: &Path) -> Result<Vec<String>, ScriptError> {
    let archive_error = |message: String| ScriptError::Archive {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| archive_error(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| archive_error(e.to_string()))?;
    if archive.file_names().count() != archive.len() {
        return Err(archive_error("two entries share a name".into()));
    }
    let first = archive
        .by_index(0)
        .map_err(|e| archive_error(e.to_string()))?
        .name()
        .to_string();
    let folder = first.split_once('/').map_or("", |(folder, _)| folder);
    let code = format!("{folder}/code/");
    let torch_own = format!("{code}__torch__/torch/");
    let names: Vec<String> = archive
        .file_names()
        .filter(|n| n.starts_with(&code) && n.ends_with(".py") && !n.starts_with(&torch_own))
        .map(str::to_string)
        .collect();
    let mut methods = std::collections::BTreeSet::new();
    for name in names {
        let entry = archive
            .by_name(&name)
            .map_err(|e| archive_error(format!("{name}: {e}")))?;
        let text = crate::fsutil::read_bounded(entry, MAX_CODE_BYTES, "a TorchScript code file")
            .map_err(|e| archive_error(format!("{name}: {e}")))?;
        let found = class_methods(&String::from_utf8_lossy(&text))
            .map_err(|line| archive_error(format!("{name}: cannot read the def in: {line}")))?;
        methods.extend(found);
    }
    Ok(methods.into_iter().collect())
}

/// The methods of the classes in one code file: a `def` indented deeper than the `class`
/// above it. Indentation decides (any amount, spaces or tabs); comments and blank lines do
/// not end a class. Err: a `def` line without a name.
fn class_methods(code: &str) -> Result<Vec<String>, String> {
    let mut class_indent: Option<usize> = None;
    let mut methods = Vec::new();
    for line in code.lines() {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let indent = line.len() - body.len();
        if class_indent.is_some_and(|class| indent <= class) {
            class_indent = None;
        }
        if keyword(body, "class").is_some() {
            class_indent = Some(indent);
        } else if let Some(rest) = keyword(body, "def") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                return Err(line.trim().to_string());
            }
            if class_indent.is_some() {
                methods.push(name);
            }
        }
    }
    Ok(methods)
}

/// The rest of `line` after `word` and the whitespace that must follow it.
fn keyword<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    rest.starts_with(char::is_whitespace)
        .then(|| rest.trim_start())
}

fn first_line(e: &TchError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl ScriptNet {
    /// Loads the TorchScript module at `path` onto `device` in evaluation mode and reads the
    /// classifier parameter `classifier` (e.g. `fc.weight`) and its bias. The module's own
    /// classes may define `forward` and the methods in `allowed` only (see [`script_methods`]).
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
            .filter(|m| m != "forward" && !allowed.contains(m))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_found_however_the_code_is_laid_out() {
        let code = "class Evil (Module):\n    training : bool\n# a comment at column 0\n    def  forward(self, x):\n        return x\n\tdef side_door(self):\n\t\treturn 1\ndef helper(x):\n  return x\nclass Other:\n  def __setstate__(self, state):\n    pass\n";
        assert_eq!(
            class_methods(code).expect("readable"),
            ["forward", "side_door", "__setstate__"]
        );
        assert!(class_methods("class A(Module):\n  def (self):\n").is_err());
        assert_eq!(
            class_methods("def free(x):\n  return x\n").expect("readable"),
            Vec::<String>::new()
        );
    }
}
