//! MRNet as the blog series' reference PyTorch code defines it: torchvision AlexNet `features`
//! on every slice, then the shared head (see `network::head`). Parameter names match its state
//! dicts: `pretrained_model.features.{0,3,6,8,10}.{weight,bias}` and `classifer.{weight,bias}`.
use tch::nn::{self, Module};
use tch::{Device, Tensor};

use super::network::GapNetwork;
use super::onednn::{self, PackedConv};

/// Feature channels of AlexNet's last convolution.
pub const FEATURE_CHANNELS: i64 = 256;
/// The reference code's (sic) name for the final linear layer.
pub const CLASSIFIER: &str = "classifer";

/// The smallest input side AlexNet's `features` take: conv 11/4 pad 2, then three 3/2
/// max-pools (a 1×1 output needs 3 px before the last, 7 before the second, 15 before the
/// first, (15 − 1)·4 + 11 − 2·2 = 63 before the first conv).
pub const MIN_INPUT_SIDE: usize = 63;

#[derive(Debug)]
pub struct Mrnet {
    pub vs: nn::VarStore,
    convs: Vec<nn::Conv2D>,
    weight: Tensor,
    bias: Tensor,
    /// The convolutions' weights (reordered) and biases in oneDNN's layout, for CPU inference:
    /// see [`Mrnet::prepack_for_cpu`].
    prepacked: Option<Vec<PackedConv>>,
}

/// torchvision AlexNet `features`: (index, in, out, kernel, stride, padding) of each conv.
const ALEXNET_CONVS: [(usize, i64, i64, i64, i64, i64); 5] = [
    (0, 3, 64, 11, 4, 2),
    (3, 64, 192, 5, 1, 2),
    (6, 192, 384, 3, 1, 1),
    (8, 384, 256, 3, 1, 1),
    (10, 256, 256, 3, 1, 1),
];

impl Mrnet {
    /// A randomly initialised MRNet with `classes` outputs (2 as the reference code, or 1).
    pub fn new(device: Device, classes: i64) -> Self {
        let vs = nn::VarStore::new(device);
        let features = vs.root() / "pretrained_model" / "features";
        let convs = ALEXNET_CONVS
            .iter()
            .map(|&(index, c_in, c_out, kernel, stride, padding)| {
                let config = nn::ConvConfig {
                    stride,
                    padding,
                    ..Default::default()
                };
                nn::conv2d(&features / index.to_string(), c_in, c_out, kernel, config)
            })
            .collect();
        let linear = nn::linear(
            vs.root() / CLASSIFIER,
            FEATURE_CHANNELS,
            classes,
            Default::default(),
        );
        Mrnet {
            prepacked: None,
            vs,
            convs,
            weight: linear.ws,
            bias: linear
                .bs
                .unwrap_or_else(|| Tensor::zeros([classes], (tch::Kind::Float, device))),
        }
    }

    pub fn classes(&self) -> i64 {
        self.weight.size()[0]
    }

    /// Keeps the convolutions in oneDNN's blocked layout with their weights reordered once, so
    /// that forward passes without gradients on the CPU run there end to end (as PyTorch's
    /// `torch.utils.mkldnn.to_mkldnn` does) instead of converting layouts and reordering weights
    /// in every convolution: 1.28× faster warm on 2 cores (`cargo bench --bench cam`), the same
    /// values bit for bit. For loaded models only: weights changed afterwards (training) would
    /// not be seen. Where libtorch has no oneDNN, the dense path stays.
    pub fn prepack_for_cpu(&mut self) {
        if self.weight.device() != Device::Cpu {
            return;
        }
        let geometry = ALEXNET_CONVS
            .iter()
            .map(|&(.., stride, padding)| (stride, padding));
        let packed = onednn::pack(self.convs.iter().zip(geometry));
        match packed {
            Ok(packed) => self.prepacked = Some(packed),
            Err(err) => tracing::warn!("oneDNN weights not prepared, dense convolutions: {err}"),
        }
    }

    fn features_onednn(&self, x: &Tensor, packed: &[PackedConv]) -> Result<Tensor, tch::TchError> {
        let conv = |x: &Tensor, layer: usize| packed[layer].forward_relu(x);
        let pool = |t: Tensor| t.f_mkldnn_max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
        let x = x.f_contiguous()?.f_to_mkldnn(None)?;
        let x = pool(conv(&x, 0)?)?;
        let x = pool(conv(&x, 1)?)?;
        let x = conv(&x, 2)?;
        let x = conv(&x, 3)?;
        pool(conv(&x, 4)?)?.f_to_dense(None, false)
    }
}

impl GapNetwork for Mrnet {
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        if let Some(packed) = &self.prepacked {
            if x.device() == Device::Cpu && x.kind() == tch::Kind::Float && !x.requires_grad() {
                return self.features_onednn(x, packed);
            }
        }
        let pool = |t: Tensor| t.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
        let [c0, c3, c6, c8, c10] = [0, 1, 2, 3, 4].map(|i| &self.convs[i]);
        let x = pool(c0.forward(x).relu());
        let x = pool(c3.forward(&x).relu());
        let x = c6.forward(&x).relu();
        let x = c8.forward(&x).relu();
        Ok(pool(c10.forward(&x).relu()))
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_and_shapes_match_the_reference_state_dict() {
        let net = Mrnet::new(Device::Cpu, 2);
        let mut names: Vec<(String, Vec<i64>)> = net
            .vs
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.size()))
            .collect();
        names.sort();
        let expected = [
            ("classifer.bias", vec![2]),
            ("classifer.weight", vec![2, 256]),
            ("pretrained_model.features.0.bias", vec![64]),
            ("pretrained_model.features.0.weight", vec![64, 3, 11, 11]),
            ("pretrained_model.features.10.bias", vec![256]),
            ("pretrained_model.features.10.weight", vec![256, 256, 3, 3]),
            ("pretrained_model.features.3.bias", vec![192]),
            ("pretrained_model.features.3.weight", vec![192, 64, 5, 5]),
            ("pretrained_model.features.6.bias", vec![384]),
            ("pretrained_model.features.6.weight", vec![384, 192, 3, 3]),
            ("pretrained_model.features.8.bias", vec![256]),
            ("pretrained_model.features.8.weight", vec![256, 384, 3, 3]),
        ];
        let expected: Vec<(String, Vec<i64>)> = expected
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_256_pixel_slice_gives_7_by_7_feature_maps() {
        let net = Mrnet::new(Device::Cpu, 2);
        let x = Tensor::zeros([3, 3, 256, 256], (tch::Kind::Float, Device::Cpu));
        let a = tch::no_grad(|| net.features(&x)).expect("forward");
        assert_eq!(a.size(), vec![3, 256, 7, 7]);
    }
}
