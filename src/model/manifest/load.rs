//! A manifest entry (or a bare weights file) built into a network, after its sha256 is checked.
use std::path::{Path, PathBuf};

use tch::Device;

use super::{Arch, ModelEntry};
use crate::digest::sha256_file;
use crate::model::mrnet::Mrnet;
use crate::model::network::Network;
use crate::model::preprocess::Preprocess;
use crate::model::script::{ScriptError, ScriptNet};
use crate::model::tiny::Tiny;
use crate::model::weights::{self, WeightsError};

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
            Ok(Network::Mrnet(mrnet_from(&state, entry.classes, device)?))
        }
        Arch::Tiny => {
            let state = read_checked_state(&path, entry.classes)?;
            let mut net = Tiny::new(device, entry.classes);
            state.copy_into(&mut net.vs)?;
            net.prepack_for_cpu();
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

/// An MRNet with `state`'s weights, its convolutions prepacked for CPU inference.
fn mrnet_from(
    state: &weights::StateDict,
    classes: i64,
    device: Device,
) -> Result<Mrnet, ModelError> {
    let mut net = Mrnet::new(device, classes);
    state.copy_into(&mut net.vs)?;
    net.prepack_for_cpu();
    Ok(net)
}

/// A bare weights file, without a manifest: MRNet weights in any accepted format, its outputs
/// read from the classifier's shape, preprocessed as `preprocess` says or else as the code that
/// wrote its key family trained (see [`weights::KeyFamily::preprocess`]). Returns the network,
/// the entry a manifest would hold for it, and the key family.
pub fn load_weights_file(
    path: &Path,
    preprocess: Option<Preprocess>,
    device: Device,
) -> Result<(Network, ModelEntry, weights::KeyFamily), ModelError> {
    let sha256 = sha256_file(path).map_err(|error| ModelError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let state = weights::read_state_dict(path)?;
    let classes = state.classes().ok_or_else(|| ModelError::NoClassifier {
        path: path.to_path_buf(),
    })?;
    let net = mrnet_from(&state, classes, device)?;
    let family = state.family();
    let preprocess = preprocess.unwrap_or(family.preprocess());
    let entry = ModelEntry::new(path, Arch::Mrnet, classes, preprocess, sha256);
    Ok((Network::Mrnet(net), entry, family))
}
