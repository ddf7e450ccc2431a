//! Reading MRNet-style weights into a [`VarStore`](tch::nn::VarStore), from the files training
//! code writes: `.safetensors`; PyTorch files (`torch.save`) holding a state dict, a checkpoint
//! dict around one, or a whole pickled module (the reference code's `model.MRNet`), as a zip
//! archive (`*/data.pkl` and raw storage records `*/data/N`, PyTorch ≥ 1.6) or in the legacy
//! format (`legacy`: pickles and storages in one stream).
//!
//! A file is judged by its bytes, never its name ([`inspect`]). Nothing pickled is ever
//! executed, and libtorch's reader is not used either (it fails on the `OrderedDict` that every
//! `state_dict()` is):
//!
//! 1. kneecam's own unpickler (`unpickler`) reads the pickle as data: globals are names, objects
//!    are recorded by class with their module state attached, and the only calls carried out
//!    are PyTorch's rebuild functions and containers (`pickled::allowed_call`); any other call
//!    refuses the file, naming the global ([`WeightsError::Refused`]). Memo copies and nesting
//!    are bounded.
//! 2. `module_tree` finds the tensors: a dict of them, a checkpoint around one, or a module
//!    tree's `_parameters` and `_buffers` under dotted names.
//! 3. Each tensor is a view of its storage (`storages`), read no further than its declared
//!    size, little-endian only, the view checked to lie inside it.
//!
//! The names are then normalised (`keys`: a DataParallel `module.` prefix dropped,
//! `classifier.*` read as `classifer.*`, AlexNet's unused head left out, Stanford's
//! `model.features.*` read as `pretrained_model.features.*`, see [`KeyFamily`]), NaN or
//! infinite values refused naming the tensor, and [`StateDict::copy_into`] copies the tensors
//! as float32, after reporting every missing, unexpected, wrongly shaped, duplicated or
//! non-float tensor at once.
use std::path::Path;

use tch::{nn, Kind, TchError, Tensor};

mod error;
mod keys;
mod legacy;
mod module_tree;
mod opcodes;
mod pickled;
mod sniff;
mod storages;
mod torch_zip;
mod unpickler;

pub use error::{venv_python, WeightsError};
pub use keys::{copy_named, KeyFamily, KeyProblem, StateDict};
pub use module_tree::Holds;
pub use sniff::{inspect, FileKind, TorchFormat};

use keys::normalise;
use legacy::{legacy_tensors, parse_legacy, LegacyError};
use torch_zip::read_torch_zip;
use unpickler::UnpickleError;

/// Reads `path` (any accepted format) into the variables of `vs`, an MRNet's var store
/// (`pretrained_model.features.{0,3,6,8,10}.*`, `classifer.*`).
pub fn load_state_dict(vs: &mut nn::VarStore, path: &Path) -> Result<(), WeightsError> {
    read_state_dict(path)?.copy_into(vs)
}

/// Reads the tensors of a weights file, on the CPU, with MRNet's key families normalised
/// (see [`StateDict`]).
pub fn read_state_dict(path: &Path) -> Result<StateDict, WeightsError> {
    // AlexNet's head, which MRNet never uses, is most of a whole-module checkpoint's bytes
    // (230 of 244 MB): it is not read at all.
    let file = read_selected(path, |name| !keys::is_unused_head(name))?;
    Ok(normalise(path, file.tensors, file.kind))
}

/// Whose key names an MRNet weights file uses, from the names alone (its tensors are not read,
/// except in a legacy file, whose storages follow its pickles).
pub fn key_family(path: &Path) -> Result<KeyFamily, WeightsError> {
    let names = match inspect(path)? {
        FileKind::Torch {
            format: TorchFormat::Zip,
            ..
        } => torch_zip::archive_names(path)?,
        _ => read_tensors(path)?
            .into_iter()
            .map(|(name, _)| name)
            .collect(),
    };
    Ok(keys::family_of(names.iter().map(String::as_str)))
}

/// A weights file's tensors under the names it stores them by, and what the file is.
pub struct WeightsFile {
    pub tensors: Vec<(String, Tensor)>,
    pub kind: FileKind,
}

/// Reads every tensor of a weights file, on the CPU, under the names it stores them by (no
/// renaming: for architectures other than MRNet, e.g. torchvision's). Values are checked finite.
pub fn read_tensors(path: &Path) -> Result<Vec<(String, Tensor)>, WeightsError> {
    Ok(read_weights(path)?.tensors)
}

/// [`read_tensors`], with what the file was found to be.
pub fn read_weights(path: &Path) -> Result<WeightsFile, WeightsError> {
    read_selected(path, |_| true)
}

/// [`read_weights`] of the tensors whose names `keep` keeps (all of them in a safetensors file).
fn read_selected(path: &Path, keep: fn(&str) -> bool) -> Result<WeightsFile, WeightsError> {
    // A legacy file is read and parsed once, not once to judge it and again for its tensors.
    if sniff::is_legacy(path)? {
        let (tensors, holds) = read_legacy_file(path, keep)?;
        let kind = FileKind::Torch {
            format: TorchFormat::Legacy,
            holds,
        };
        return checked(path, WeightsFile { tensors, kind });
    }
    let kind = inspect(path)?;
    let tensors = match &kind {
        FileKind::Safetensors => Tensor::read_safetensors(path).map_err(|e| unreadable(path, e))?,
        FileKind::Torch {
            format: TorchFormat::Zip,
            ..
        } => read_torch_zip(path, keep)?.0,
        FileKind::Torch {
            format: TorchFormat::Legacy,
            ..
        } => read_legacy_file(path, keep)?.0,
        FileKind::Refused { global, how } => {
            return Err(WeightsError::Refused {
                path: path.to_path_buf(),
                global: global.clone(),
                how,
            })
        }
        FileKind::TorchScript => {
            return Err(WeightsError::TorchScript {
                path: path.to_path_buf(),
            })
        }
        FileKind::Other(what) => {
            return Err(WeightsError::NotWeights {
                path: path.to_path_buf(),
                what: what.clone(),
            })
        }
    };
    checked(path, WeightsFile { tensors, kind })
}

/// `file`, if it holds tensors and they are all finite.
fn checked(path: &Path, file: WeightsFile) -> Result<WeightsFile, WeightsError> {
    if file.tensors.is_empty() {
        return Err(WeightsError::NotWeights {
            path: path.to_path_buf(),
            what: "it holds no tensors".into(),
        });
    }
    check_finite(path, &file.tensors)?;
    Ok(file)
}

fn check_finite(path: &Path, tensors: &[(String, Tensor)]) -> Result<(), WeightsError> {
    for (name, t) in tensors {
        if t.is_floating_point() {
            let bad = t
                .f_isfinite()
                .and_then(|finite| finite.logical_not().f_sum(Kind::Int64))
                .and_then(|n| i64::try_from(&n))
                .map_err(|e| unreadable(path, e))?;
            if bad > 0 {
                return Err(WeightsError::NonFinite {
                    path: path.to_path_buf(),
                    name: name.clone(),
                    count: bad,
                });
            }
        }
    }
    Ok(())
}

fn read_legacy_file(
    path: &Path,
    keep: fn(&str) -> bool,
) -> Result<(Vec<(String, Tensor)>, Holds), WeightsError> {
    let bytes = std::fs::read(path).map_err(|error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let legacy = |why: String| WeightsError::LegacyFormat {
        path: path.to_path_buf(),
        why,
    };
    let parsed = parse_legacy(&bytes).map_err(|e| match e {
        LegacyError::Pickle(UnpickleError::Call { global, how }) => WeightsError::Refused {
            path: path.to_path_buf(),
            global,
            how,
        },
        LegacyError::Pickle(UnpickleError::Malformed(why)) | LegacyError::Layout(why) => {
            legacy(why)
        }
    })?;
    let holds = parsed.holds.clone();
    Ok((legacy_tensors(parsed, &bytes, keep).map_err(legacy)?, holds))
}

/// The tensors of a PyTorch zip archive held in `bytes`, `path` naming it in errors: what
/// [`read_tensors`] does with such a file once read (the `torch_zip` fuzz target's entry point).
pub fn read_torch_archive(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<(String, Tensor)>, WeightsError> {
    Ok(torch_zip::read_archive(path, std::io::Cursor::new(bytes), |_| true)?.0)
}

/// The name and shape of every tensor a pickle (an archive's `data.pkl`) describes, found by
/// the restricted unpickler without reading any storage (the `pickle` fuzz target's entry point).
pub fn pickle_tensor_shapes(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<(String, Vec<i64>)>, WeightsError> {
    let fail = |message: String| WeightsError::Unreadable {
        path: path.to_path_buf(),
        message: format!("data.pkl: {message}"),
    };
    let value = unpickler::run(bytes).map_err(|e| torch_zip::refusal(path, e))?;
    let (entries, _) = module_tree::state_dict_entries(value).map_err(fail)?;
    Ok(entries
        .into_iter()
        .map(|(name, t)| (name, t.size))
        .collect())
}

fn unreadable(path: &Path, e: TchError) -> WeightsError {
    // libtorch appends a C++ backtrace to its messages; the first line says what went wrong.
    let message = e.to_string();
    let message = message.lines().next().unwrap_or_default().to_string();
    WeightsError::Unreadable {
        path: path.to_path_buf(),
        message,
    }
}
