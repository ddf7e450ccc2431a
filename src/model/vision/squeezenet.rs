//! torchvision's `squeezenet1_1`: `features.0` (3×3 stride-2 convolution), Fire modules
//! `features.{3,4,6,7,9,10,11,12}.{squeeze, expand1x1, expand3x3}` with 3×3 stride-2 max-pools
//! (ceil mode) before 3, 6 and 9, and the head `classifier.1`, a 1×1 convolution 512 → K. The
//! CAM's features are features(x) [S, 512, h, w] and its weights `classifier.1.weight` viewed as
//! [K, 512]; the logits are the true head (convolution, ReLU, global average: not linear in the
//! pooled features), see [`GapNetwork::logits`].
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::model::network::GapNetwork;

/// Channels of the last Fire module's output.
pub const FEATURE_CHANNELS: i64 = 512;
/// The stride-2 3×3 convolution (no padding) and three ceil-mode 3×3/2 pools: 31 px give
/// 15 after the convolution, then 7, 3 and 1.
pub const MIN_INPUT_SIDE: usize = 31;

/// (index in `features`, in, squeeze, expand1x1, expand3x3) of each Fire module.
const FIRES: [(usize, i64, i64, i64, i64); 8] = [
    (3, 64, 16, 64, 64),
    (4, 128, 16, 64, 64),
    (6, 128, 32, 128, 128),
    (7, 256, 32, 128, 128),
    (9, 256, 48, 192, 192),
    (10, 384, 48, 192, 192),
    (11, 384, 64, 256, 256),
    (12, 512, 64, 256, 256),
];

/// A 1×1 squeeze convolution, then 1×1 and 3×3 expand convolutions side by side, all with ReLU.
#[derive(Debug)]
struct Fire {
    index: usize,
    squeeze: nn::Conv2D,
    expand1x1: nn::Conv2D,
    expand3x3: nn::Conv2D,
}

impl Fire {
    fn new(p: nn::Path, (index, c_in, squeeze, e1, e3): (usize, i64, i64, i64, i64)) -> Self {
        let padded = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Fire {
            index,
            squeeze: nn::conv2d(&p / "squeeze", c_in, squeeze, 1, Default::default()),
            expand1x1: nn::conv2d(&p / "expand1x1", squeeze, e1, 1, Default::default()),
            expand3x3: nn::conv2d(&p / "expand3x3", squeeze, e3, 3, padded),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let s = self.squeeze.forward(x).relu();
        let e1 = self.expand1x1.forward(&s).relu();
        let e3 = self.expand3x3.forward(&s).relu();
        Tensor::cat(&[e1, e3], 1)
    }
}

/// squeezenet1_1 with its parameters in `vs`.
#[derive(Debug)]
pub struct Squeezenet11 {
    pub vs: nn::VarStore,
    conv0: nn::Conv2D,
    fires: Vec<Fire>,
    /// `classifier.1`: weight [K, 512, 1, 1], bias [K].
    head: nn::Conv2D,
    /// The head's weight viewed as [K, 512] (shares its storage).
    weight: Tensor,
    bias: Tensor,
}

impl Squeezenet11 {
    pub fn new(vs: nn::VarStore, classes: i64) -> Self {
        let f = vs.root() / "features";
        let stride2 = nn::ConvConfig {
            stride: 2,
            ..Default::default()
        };
        let head = nn::conv2d(
            vs.root() / "classifier" / "1",
            FEATURE_CHANNELS,
            classes,
            1,
            Default::default(),
        );
        let weight = head.ws.detach().view([classes, FEATURE_CHANNELS]);
        let bias = match &head.bs {
            Some(bs) => bs.shallow_clone(),
            None => Tensor::zeros([classes], (Kind::Float, vs.device())),
        };
        Squeezenet11 {
            conv0: nn::conv2d(&f / "0", 3, 64, 3, stride2),
            fires: FIRES
                .iter()
                .map(|&spec| Fire::new(&f / spec.0.to_string(), spec))
                .collect(),
            head,
            weight,
            bias,
            vs,
        }
    }
}

fn pool(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], true)
}

impl GapNetwork for Squeezenet11 {
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        let mut x = self.conv0.forward(x).relu();
        for fire in &self.fires {
            if matches!(fire.index, 3 | 6 | 9) {
                x = pool(&x);
            }
            x = fire.forward(&x);
        }
        Ok(x)
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }

    /// torchvision's head in eval mode (dropout is the identity): the 1×1 convolution, ReLU and
    /// global average pool on each slice, then the max over slices. [K].
    fn logits(&self, features: &Tensor) -> Result<Tensor, tch::TchError> {
        let per_slice = self.head.forward(features).relu().f_mean_dim(
            [2i64, 3].as_slice(),
            false,
            Kind::Float,
        )?;
        Ok(per_slice.f_max_dim(0, false)?.0)
    }
}
