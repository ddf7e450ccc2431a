//! torchvision's ImageNet classifiers, built natively for the blog's 2-D walk-through
//! (`kneecam cam --image --arch`): resnet18, densenet161 and squeezenet1_1, their parameters
//! named exactly as torchvision's state dicts name them, batch norm in eval mode.
//!
//! tch ships `tch::vision::{resnet, densenet, squeezenet}` with the same names, but each is one
//! closure from image to logits: the last feature maps, which a CAM needs, are out of reach
//! (and tch's densenet pools with a fixed 7×7 window and `divisor_override = 1`, a sum, where
//! torchvision averages adaptively). These are short rewrites that stop at the feature maps
//! ([`GapNetwork::features`]) and give the classifier separately.
//!
//! A weights file is read with [`weights::read_tensors`] (safetensors, or a `torch.save`d state
//! dict in PyTorch's zip or legacy format: the `.pth` files torchvision publishes), under the
//! names it stores, then: `num_batches_tracked` buffers dropped (tch's batch norm has no such
//! buffer; eval mode never uses it), a DataParallel `module.` prefix dropped, DenseNet's legacy
//! keys (`denselayer1.norm.1.weight`) renamed as torchvision's `_load_state_dict` does
//! (`denselayer1.norm1.weight`), a file of another architecture refused naming the one it is,
//! and every other difference reported at once (missing, unexpected, wrong shape).
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tch::{nn, Device, Tensor};

use super::network::GapNetwork;
use super::weights::{self, WeightsError};

pub mod densenet;
pub mod imagenet;
pub mod resnet;
pub mod squeezenet;

pub use densenet::Densenet161;
pub use resnet::Resnet18;
pub use squeezenet::Squeezenet11;

/// The torchvision architectures kneecam builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisionArch {
    Resnet18,
    Densenet161,
    Squeezenet11,
}

impl VisionArch {
    pub const ALL: [VisionArch; 3] = [
        VisionArch::Resnet18,
        VisionArch::Densenet161,
        VisionArch::Squeezenet11,
    ];

    /// torchvision's name (`torchvision.models.NAME`).
    pub fn name(self) -> &'static str {
        match self {
            VisionArch::Resnet18 => "resnet18",
            VisionArch::Densenet161 => "densenet161",
            VisionArch::Squeezenet11 => "squeezenet1_1",
        }
    }

    /// The name of the classifier's weight in the state dict; its first dimension is K.
    pub fn classifier_key(self) -> &'static str {
        match self {
            VisionArch::Resnet18 => "fc.weight",
            VisionArch::Densenet161 => "classifier.weight",
            VisionArch::Squeezenet11 => "classifier.1.weight",
        }
    }

    /// A key only this architecture's state dicts hold (after the legacy renaming).
    fn signature_key(self) -> &'static str {
        match self {
            VisionArch::Resnet18 => "layer1.0.conv1.weight",
            VisionArch::Densenet161 => "features.denseblock1.denselayer1.conv1.weight",
            VisionArch::Squeezenet11 => "features.3.squeeze.weight",
        }
    }

    /// The smallest input side whose feature maps are at least 1×1.
    pub fn min_input_side(self) -> usize {
        match self {
            VisionArch::Resnet18 => resnet::MIN_INPUT_SIDE,
            VisionArch::Densenet161 => densenet::MIN_INPUT_SIDE,
            VisionArch::Squeezenet11 => squeezenet::MIN_INPUT_SIDE,
        }
    }
}

impl fmt::Display for VisionArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown architecture '{0}': expected resnet18, densenet161 or squeezenet1_1")]
pub struct UnknownArch(pub String);

impl FromStr for VisionArch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        VisionArch::ALL
            .into_iter()
            .find(|a| a.name() == wanted)
            .ok_or_else(|| UnknownArch(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error(
        "{}: holds {found} weights (it has {key}), not {asked}'s; use --arch {found}",
        path.display()
    )]
    WrongArch {
        path: PathBuf,
        asked: VisionArch,
        found: VisionArch,
        key: String,
    },
    #[error("{}: {key} has shape {shape:?}, expected a classifier weight [K, …]", path.display())]
    BadClassifier {
        path: PathBuf,
        key: String,
        shape: Vec<i64>,
    },
}

/// One of the torchvision networks, with its parameters.
#[derive(Debug)]
pub enum VisionNet {
    Resnet18(Resnet18),
    Densenet161(Densenet161),
    Squeezenet11(Squeezenet11),
}

impl VisionNet {
    /// A randomly initialised network of `arch` with `classes` outputs on `device`.
    pub fn new(arch: VisionArch, device: Device, classes: i64) -> Self {
        let vs = nn::VarStore::new(device);
        match arch {
            VisionArch::Resnet18 => VisionNet::Resnet18(Resnet18::new(vs, classes)),
            VisionArch::Densenet161 => VisionNet::Densenet161(Densenet161::new(vs, classes)),
            VisionArch::Squeezenet11 => VisionNet::Squeezenet11(Squeezenet11::new(vs, classes)),
        }
    }

    /// The network of `arch` with the weights of `path` (K from its classifier), frozen.
    pub fn load(arch: VisionArch, path: &Path, device: Device) -> Result<Self, VisionError> {
        let tensors = torchvision_names(weights::read_tensors(path)?);
        if let Some(found) = other_arch(arch, &tensors) {
            return Err(VisionError::WrongArch {
                path: path.to_path_buf(),
                asked: arch,
                found,
                key: found.signature_key().to_string(),
            });
        }
        let classes = classes_of(arch, path, &tensors)?;
        let mut net = VisionNet::new(arch, device, classes);
        weights::copy_named(path, tensors, net.vs_mut())?;
        net.vs_mut().freeze();
        Ok(net)
    }

    pub fn arch(&self) -> VisionArch {
        match self {
            VisionNet::Resnet18(_) => VisionArch::Resnet18,
            VisionNet::Densenet161(_) => VisionArch::Densenet161,
            VisionNet::Squeezenet11(_) => VisionArch::Squeezenet11,
        }
    }

    /// The parameters and batch-norm statistics, under torchvision's names.
    pub fn vs(&self) -> &nn::VarStore {
        match self {
            VisionNet::Resnet18(net) => &net.vs,
            VisionNet::Densenet161(net) => &net.vs,
            VisionNet::Squeezenet11(net) => &net.vs,
        }
    }

    fn vs_mut(&mut self) -> &mut nn::VarStore {
        match self {
            VisionNet::Resnet18(net) => &mut net.vs,
            VisionNet::Densenet161(net) => &mut net.vs,
            VisionNet::Squeezenet11(net) => &mut net.vs,
        }
    }

    fn inner(&self) -> &dyn GapNetwork {
        match self {
            VisionNet::Resnet18(net) => net,
            VisionNet::Densenet161(net) => net,
            VisionNet::Squeezenet11(net) => net,
        }
    }
}

impl GapNetwork for VisionNet {
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        self.inner().features(x)
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        self.inner().classifier()
    }

    fn logits(&self, features: &Tensor) -> Result<Tensor, tch::TchError> {
        self.inner().logits(features)
    }
}

/// The tensors under the names torchvision's current modules use: `num_batches_tracked`
/// dropped (batch norm's step counter, unused in eval mode), a `module.` prefix on every key
/// dropped, DenseNet's legacy layer keys renamed.
pub fn torchvision_names(raw: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    let data_parallel = raw.iter().all(|(name, _)| name.starts_with("module."));
    raw.into_iter()
        .filter(|(name, _)| !name.ends_with(".num_batches_tracked"))
        .map(|(name, t)| {
            let name = match data_parallel {
                true => name["module.".len()..].to_string(),
                false => name,
            };
            (densenet_legacy_rename(&name).unwrap_or(name), t)
        })
        .collect()
}

/// torchvision's `_load_state_dict` rename of pre-0.3 DenseNet keys: the regex
/// `^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$`
/// replaced by group 1 + group 2 (`…denselayer1.norm.1.weight` → `…denselayer1.norm1.weight`).
/// None when the key is not of that form.
pub fn densenet_legacy_rename(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    let [.., layer, kind, index, field] = parts.as_slice() else {
        return None;
    };
    let numbered = layer
        .rfind("denselayer")
        .map(|at| &layer[at + "denselayer".len()..])
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let renamed = numbered
        && matches!(*kind, "norm" | "relu" | "conv")
        && matches!(*index, "1" | "2")
        && matches!(*field, "weight" | "bias" | "running_mean" | "running_var");
    renamed.then(|| {
        let head = parts[..parts.len() - 2].join(".");
        format!("{head}{index}.{field}")
    })
}

/// Another architecture whose signature key the file holds while it lacks `arch`'s.
fn other_arch(arch: VisionArch, tensors: &[(String, Tensor)]) -> Option<VisionArch> {
    let has = |key: &str| tensors.iter().any(|(name, _)| name == key);
    if has(arch.signature_key()) {
        return None;
    }
    VisionArch::ALL
        .into_iter()
        .find(|&other| other != arch && has(other.signature_key()))
}

/// K: the first dimension of the file's classifier weight; 1,000 when it has none (the copy
/// then reports it missing).
fn classes_of(
    arch: VisionArch,
    path: &Path,
    tensors: &[(String, Tensor)],
) -> Result<i64, VisionError> {
    let key = arch.classifier_key();
    let Some((_, weight)) = tensors.iter().find(|(name, _)| name == key) else {
        return Ok(imagenet::CLASSES as i64);
    };
    let shape = weight.size();
    let fits = match arch {
        VisionArch::Squeezenet11 => shape.len() == 4 && shape[2..] == [1, 1],
        _ => shape.len() == 2,
    };
    if !fits || shape[0] < 1 {
        return Err(VisionError::BadClassifier {
            path: path.to_path_buf(),
            key: key.to_string(),
            shape,
        });
    }
    Ok(shape[0])
}

/// A 2-D convolution without bias (ResNet's and DenseNet's).
fn conv_no_bias(
    path: nn::Path,
    c_in: i64,
    c_out: i64,
    kernel: i64,
    stride: i64,
    padding: i64,
) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ..Default::default()
    };
    nn::conv2d(path, c_in, c_out, kernel, config)
}

/// A linear layer's weight [K, C] and bias [K].
fn linear(path: nn::Path, c_in: i64, classes: i64) -> (Tensor, Tensor) {
    let layer = nn::linear(path, c_in, classes, Default::default());
    let device = layer.ws.device();
    let bias = layer
        .bs
        .unwrap_or_else(|| Tensor::zeros([classes], (tch::Kind::Float, device)));
    (layer.ws, bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_densenet_keys_are_renamed_as_torchvision_does() {
        let rename = densenet_legacy_rename;
        assert_eq!(
            rename("features.denseblock1.denselayer1.norm.1.weight").as_deref(),
            Some("features.denseblock1.denselayer1.norm1.weight")
        );
        assert_eq!(
            rename("features.denseblock4.denselayer24.conv.2.weight").as_deref(),
            Some("features.denseblock4.denselayer24.conv2.weight")
        );
        assert_eq!(
            rename("features.denseblock2.denselayer3.norm.2.running_var").as_deref(),
            Some("features.denseblock2.denselayer3.norm2.running_var")
        );
        for untouched in [
            "features.denseblock1.denselayer1.norm1.weight",
            "features.denseblock1.denselayer1.norm.3.weight",
            "features.denseblock1.denselayer.norm.1.weight",
            "features.denseblock1.denselayer1.norm.1.num_batches_tracked",
            "features.transition1.norm.weight",
            "norm.1.weight",
        ] {
            assert_eq!(rename(untouched), None, "{untouched}");
        }
    }

    #[test]
    fn batch_counters_and_data_parallel_prefixes_are_dropped() {
        let t = || Tensor::zeros([1], (tch::Kind::Float, Device::Cpu));
        let raw = vec![
            ("module.bn1.weight".to_string(), t()),
            ("module.bn1.num_batches_tracked".to_string(), t()),
            ("module.features.denselayer2.conv.1.weight".to_string(), t()),
        ];
        let names: Vec<String> = torchvision_names(raw).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["bn1.weight", "features.denselayer2.conv1.weight"]);
    }

    #[test]
    fn arch_names_parse_back() {
        for arch in VisionArch::ALL {
            assert_eq!(arch.name().parse::<VisionArch>(), Ok(arch));
        }
        assert!("resnet50".parse::<VisionArch>().is_err());
    }

    #[test]
    fn the_smallest_input_gives_one_by_one_feature_maps() {
        for arch in VisionArch::ALL {
            let net = VisionNet::new(arch, Device::Cpu, 10);
            let side = arch.min_input_side() as i64;
            let x = Tensor::zeros([1, 3, side, side], (tch::Kind::Float, Device::Cpu));
            let a = tch::no_grad(|| net.features(&x)).expect("forward");
            assert_eq!(&a.size()[2..], [1, 1], "{arch}");
            let logits = tch::no_grad(|| net.logits(&a)).expect("logits");
            assert_eq!(logits.size(), [10], "{arch}");
        }
    }
}
