//! The networks kneecam explains: any CNN whose last convolutional features are globally
//! average-pooled per slice, max-pooled over slices and fed to one linear layer (MRNet's head).
//! A network gives its feature maps and its classifier; the head is shared.
use tch::{Kind, Tensor};

use super::mrnet::Mrnet;
use super::script::ScriptNet;
use super::tiny::Tiny;
use super::vision::VisionNet;

/// The feature extractor and classifier of one model, on its device.
pub trait GapNetwork: std::fmt::Debug {
    /// Feature maps A[S, C, h, w] for a batch of slices x[S, 3, H, W].
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError>;
    /// The final linear layer: weight [K, C], bias [K] (for a 1×1 convolution head, its
    /// weight viewed as [K, C]). The CAM of class k weighs the feature maps by row k.
    fn classifier(&self) -> (&Tensor, &Tensor);
    /// Logits [K] from feature maps A[S, C, h, w]: the network's true head, through which
    /// Grad-CAM's gradients flow. By default MRNet's [`head`] on [`Self::classifier`]; a
    /// network whose head is not linear in the pooled features (SqueezeNet) overrides it.
    fn logits(&self, features: &Tensor) -> Result<Tensor, tch::TchError> {
        let (weight, bias) = self.classifier();
        Ok(head(features, weight, bias))
    }
}

/// MRNet's head on feature maps A[S, C, h, w]: per-slice global average pool, max over
/// slices, linear. Returns logits [K].
pub fn head(features: &Tensor, weight: &Tensor, bias: &Tensor) -> Tensor {
    let pooled = features.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
    let (slice_max, _) = pooled.max_dim(0, false);
    slice_max.matmul(&weight.tr()) + bias
}

/// P(positive) from the logits: sigmoid of logit 1 for two outputs, of logit 0 for one.
pub fn positive_probability(logits: &[f32]) -> f32 {
    let logit = if logits.len() >= 2 {
        logits[1]
    } else {
        logits.first().copied().unwrap_or(0.0)
    };
    1.0 / (1.0 + (-logit).exp())
}

/// The class whose evidence a CAM shows when none is asked for: the top logit for K ≥ 2 (as the
/// reference code does), the only one for K = 1.
pub fn top_class(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// The architectures kneecam builds natively.
#[derive(Debug)]
pub enum Network {
    Mrnet(Mrnet),
    /// kneecam's small CNN (`arch = "tiny"`).
    Tiny(Tiny),
    /// A TorchScript module named by an explicit manifest entry (`arch = "torchscript"`).
    Script(ScriptNet),
    /// A torchvision ImageNet classifier built natively (`cam --image --arch`).
    Vision(Box<VisionNet>),
}

impl Network {
    /// Whether each slice's features depend on that slice alone, so that several series can
    /// share one batch. `tiny` standardises each series as a whole, and a TorchScript module
    /// may do anything.
    pub fn slices_independent(&self) -> bool {
        matches!(self, Network::Mrnet(_))
    }

    /// The smallest slice side, in pixels of its input, that the network takes (smaller ones
    /// make libtorch fail); None when it is not known (a TorchScript module).
    pub fn min_input_side(&self) -> Option<usize> {
        match self {
            Network::Mrnet(_) => Some(super::mrnet::MIN_INPUT_SIDE),
            Network::Tiny(_) => Some(super::tiny::MIN_INPUT_SIDE),
            Network::Script(_) => None,
            Network::Vision(net) => Some(net.arch().min_input_side()),
        }
    }
}

impl GapNetwork for Network {
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        match self {
            Network::Mrnet(net) => net.features(x),
            Network::Tiny(net) => net.features(x),
            Network::Script(net) => net.features(x),
            Network::Vision(net) => net.features(x),
        }
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        match self {
            Network::Mrnet(net) => net.classifier(),
            Network::Tiny(net) => net.classifier(),
            Network::Script(net) => net.classifier(),
            Network::Vision(net) => net.classifier(),
        }
    }

    fn logits(&self, features: &Tensor) -> Result<Tensor, tch::TchError> {
        match self {
            Network::Mrnet(net) => net.logits(features),
            Network::Tiny(net) => net.logits(features),
            Network::Script(net) => net.logits(features),
            Network::Vision(net) => net.logits(features),
        }
    }
}
