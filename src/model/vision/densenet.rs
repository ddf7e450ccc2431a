//! torchvision's `densenet161` (growth 48, 96 initial features, blocks of 6, 12, 36 and 24
//! layers, bottleneck 4·48): `features.{conv0, norm0}`,
//! `features.denseblock{1..4}.denselayer{n}.{norm1, conv1, norm2, conv2}`,
//! `features.transition{1..3}.{norm, conv}`, `features.norm5`, `classifier`. The CAM's features
//! are relu(features(x)) [S, 2208, h, w]; the logits are their global average · `classifier`.
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::{conv_no_bias, linear};
use crate::model::network::GapNetwork;

const GROWTH: i64 = 48;
const BOTTLENECK: i64 = 4;
const INITIAL_FEATURES: i64 = 96;
const BLOCKS: [i64; 4] = [6, 12, 36, 24];
/// Channels of norm5's output: 96 + 6·48 halved, + 12·48 halved, + 36·48 halved, + 24·48.
pub const FEATURE_CHANNELS: i64 = 2208;
/// The stem's stride-2 convolution and pool, then three 2×2 average pools: 29 px give 8×8
/// after the stem, 1×1 at the last block.
pub const MIN_INPUT_SIDE: usize = 29;

/// batch norm, ReLU, 1×1 convolution to 4·48 channels, batch norm, ReLU, 3×3 convolution to
/// 48 new channels, appended to its input.
#[derive(Debug)]
struct DenseLayer {
    norm1: nn::BatchNorm,
    conv1: nn::Conv2D,
    norm2: nn::BatchNorm,
    conv2: nn::Conv2D,
}

impl DenseLayer {
    fn new(p: nn::Path, c_in: i64) -> Self {
        let inner = BOTTLENECK * GROWTH;
        DenseLayer {
            norm1: nn::batch_norm2d(&p / "norm1", c_in, Default::default()),
            conv1: conv_no_bias(&p / "conv1", c_in, inner, 1, 1, 0),
            norm2: nn::batch_norm2d(&p / "norm2", inner, Default::default()),
            conv2: conv_no_bias(&p / "conv2", inner, GROWTH, 3, 1, 1),
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let y = self.conv1.forward(&self.norm1.forward_t(x, false).relu());
        let y = self.conv2.forward(&self.norm2.forward_t(&y, false).relu());
        Tensor::cat(&[x, &y], 1)
    }
}

/// batch norm, ReLU, 1×1 convolution halving the channels, 2×2 average pool.
#[derive(Debug)]
struct Transition {
    norm: nn::BatchNorm,
    conv: nn::Conv2D,
}

impl Transition {
    fn forward(&self, x: &Tensor) -> Tensor {
        let y = self.conv.forward(&self.norm.forward_t(x, false).relu());
        y.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
    }
}

/// densenet161 with its parameters in `vs`.
#[derive(Debug)]
pub struct Densenet161 {
    pub vs: nn::VarStore,
    conv0: nn::Conv2D,
    norm0: nn::BatchNorm,
    blocks: Vec<Vec<DenseLayer>>,
    /// After each block but the last.
    transitions: Vec<Transition>,
    norm5: nn::BatchNorm,
    weight: Tensor,
    bias: Tensor,
}

impl Densenet161 {
    pub fn new(vs: nn::VarStore, classes: i64) -> Self {
        let f = vs.root() / "features";
        let mut channels = INITIAL_FEATURES;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (i, &layers) in BLOCKS.iter().enumerate() {
            let p = &f / format!("denseblock{}", i + 1);
            let block = (0..layers)
                .map(|n| {
                    DenseLayer::new(&p / format!("denselayer{}", n + 1), channels + n * GROWTH)
                })
                .collect();
            blocks.push(block);
            channels += layers * GROWTH;
            if i + 1 < BLOCKS.len() {
                let t = &f / format!("transition{}", i + 1);
                transitions.push(Transition {
                    norm: nn::batch_norm2d(&t / "norm", channels, Default::default()),
                    conv: conv_no_bias(&t / "conv", channels, channels / 2, 1, 1, 0),
                });
                channels /= 2;
            }
        }
        let (weight, bias) = linear(vs.root() / "classifier", channels, classes);
        Densenet161 {
            conv0: conv_no_bias(&f / "conv0", 3, INITIAL_FEATURES, 7, 2, 3),
            norm0: nn::batch_norm2d(&f / "norm0", INITIAL_FEATURES, Default::default()),
            blocks,
            transitions,
            norm5: nn::batch_norm2d(&f / "norm5", channels, Default::default()),
            weight,
            bias,
            vs,
        }
    }
}

impl GapNetwork for Densenet161 {
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        let stem = self.norm0.forward_t(&self.conv0.forward(x), false).relu();
        let mut x = stem.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for (i, block) in self.blocks.iter().enumerate() {
            for layer in block {
                x = layer.forward(&x);
            }
            if let Some(transition) = self.transitions.get(i) {
                x = transition.forward(&x);
            }
        }
        Ok(self.norm5.forward_t(&x, false).relu())
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}
