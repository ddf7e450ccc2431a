//! torchvision's `resnet18`: `conv1, bn1`, four layers of two basic blocks
//! (`layer{1..4}.{0,1}.{conv1,bn1,conv2,bn2}`, `layer{2,3,4}.0.downsample.{0,1}`), `fc`. The CAM's
//! features are layer4's output [S, 512, h, w]; the logits are its global average · `fc`.
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::{conv_no_bias, linear};
use crate::model::network::GapNetwork;

/// Channels of layer4's output.
pub const FEATURE_CHANNELS: i64 = 512;
/// Any side works: every convolution and pool is padded, a 1-pixel input stays 1×1.
pub const MIN_INPUT_SIDE: usize = 1;

/// One basic block: two 3×3 convolutions with batch norm, and a shortcut (a strided 1×1
/// convolution and batch norm where the shape changes).
#[derive(Debug)]
struct Block {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    downsample: Option<(nn::Conv2D, nn::BatchNorm)>,
}

impl Block {
    fn new(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> Self {
        let downsample = (stride != 1 || c_in != c_out).then(|| {
            let d = &p / "downsample";
            (
                conv_no_bias(&d / "0", c_in, c_out, 1, stride, 0),
                nn::batch_norm2d(&d / "1", c_out, Default::default()),
            )
        });
        Block {
            conv1: conv_no_bias(&p / "conv1", c_in, c_out, 3, stride, 1),
            bn1: nn::batch_norm2d(&p / "bn1", c_out, Default::default()),
            conv2: conv_no_bias(&p / "conv2", c_out, c_out, 3, 1, 1),
            bn2: nn::batch_norm2d(&p / "bn2", c_out, Default::default()),
            downsample,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let y = self.bn1.forward_t(&self.conv1.forward(x), false).relu();
        let y = self.bn2.forward_t(&self.conv2.forward(&y), false);
        let shortcut = match &self.downsample {
            Some((conv, bn)) => bn.forward_t(&conv.forward(x), false),
            None => x.shallow_clone(),
        };
        (y + shortcut).relu()
    }
}

/// resnet18 with its parameters in `vs`.
#[derive(Debug)]
pub struct Resnet18 {
    pub vs: nn::VarStore,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    /// layer1..layer4, two blocks each.
    layers: Vec<Vec<Block>>,
    weight: Tensor,
    bias: Tensor,
}

impl Resnet18 {
    pub fn new(vs: nn::VarStore, classes: i64) -> Self {
        let root = vs.root();
        let widths = [64, 64, 128, 256, 512];
        let layers = (1..=4)
            .map(|i| {
                let p = &root / format!("layer{i}");
                let stride = if i == 1 { 1 } else { 2 };
                vec![
                    Block::new(&p / "0", widths[i - 1], widths[i], stride),
                    Block::new(&p / "1", widths[i], widths[i], 1),
                ]
            })
            .collect();
        let (weight, bias) = linear(&root / "fc", FEATURE_CHANNELS, classes);
        Resnet18 {
            conv1: conv_no_bias(&root / "conv1", 3, 64, 7, 2, 3),
            bn1: nn::batch_norm2d(&root / "bn1", 64, Default::default()),
            layers,
            weight,
            bias,
            vs,
        }
    }
}

impl GapNetwork for Resnet18 {
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        let stem = self.bn1.forward_t(&self.conv1.forward(x), false).relu();
        let mut x = stem.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        for block in self.layers.iter().flatten() {
            x = block.forward(&x);
        }
        Ok(x)
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}
