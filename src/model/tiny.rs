//! `tiny`: a small GAP CNN with MRNet's slice-max-pool head, fast enough to train on phantom
//! data on 2 CPU cores in minutes. It sees each slice at half resolution (128 px for 256), and
//! its 16×16 feature maps give finer CAMs than AlexNet's 7×7.
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use super::network::GapNetwork;
use super::onednn::{self, PackedConv};

pub const FEATURE_CHANNELS: i64 = 64;

#[derive(Debug)]
pub struct Tiny {
    pub vs: nn::VarStore,
    convs: Vec<nn::Conv2D>,
    /// The convolutions' weights (reordered) and biases in oneDNN's layout, for inference on
    /// the CPU: see [`Tiny::prepack_for_cpu`].
    prepacked: Option<Vec<PackedConv>>,
    weight: Tensor,
    bias: Tensor,
}

/// (in, out, kernel, stride, padding) of each conv, and whether a 2×2 max-pool follows it.
const CONVS: [(i64, i64, i64, i64, i64, bool); 4] = [
    (1, 16, 7, 2, 3, true),
    (16, 32, 3, 1, 1, true),
    (32, 64, 3, 1, 1, false),
    (64, 64, 3, 1, 1, false),
];

/// The smallest input side the layers take: walked back from a 1×1 output through each
/// conv (and the 2×2 pools), then the 2×2 average pool in front.
pub const MIN_INPUT_SIDE: usize = {
    let mut side: i64 = 1;
    let mut layer = CONVS.len();
    while layer > 0 {
        layer -= 1;
        let (_, _, kernel, stride, padding, pooled) = CONVS[layer];
        if pooled {
            side *= 2;
        }
        side = (side - 1) * stride + kernel - 2 * padding;
        if side < 1 {
            side = 1;
        }
    }
    (side * 2) as usize
};

impl Tiny {
    pub fn new(device: Device, classes: i64) -> Self {
        let vs = nn::VarStore::new(device);
        let features = vs.root() / "features";
        let convs = CONVS
            .iter()
            .enumerate()
            .map(|(i, &(c_in, c_out, kernel, stride, padding, _))| {
                let config = nn::ConvConfig {
                    stride,
                    padding,
                    ..Default::default()
                };
                nn::conv2d(&features / i.to_string(), c_in, c_out, kernel, config)
            })
            .collect();
        // Named like MRNet's (sic) so that one state-dict reader serves both.
        let linear = nn::linear(
            vs.root() / super::mrnet::CLASSIFIER,
            FEATURE_CHANNELS,
            classes,
            Default::default(),
        );
        Tiny {
            weight: linear.ws,
            bias: linear
                .bs
                .unwrap_or_else(|| Tensor::zeros([classes], (Kind::Float, device))),
            vs,
            convs,
            prepacked: None,
        }
    }

    /// As `Mrnet::prepack_for_cpu`: the convolutions, their ReLUs and the 2×2 max-pools of
    /// forward passes without gradients on the CPU run in oneDNN's blocked layout, weights
    /// reordered once, instead of converting layouts and reordering weights in every
    /// convolution and pooling on strided views (`precompute`'s time with the demo models).
    /// For loaded models only: weights changed afterwards (training) would not be seen.
    pub fn prepack_for_cpu(&mut self) {
        if self.weight.device() != Device::Cpu {
            return;
        }
        let geometry = CONVS
            .iter()
            .map(|&(.., stride, padding, _)| (stride, padding));
        let packed = onednn::pack(self.convs.iter().zip(geometry));
        match packed {
            Ok(packed) => self.prepacked = Some(packed),
            Err(err) => tracing::warn!("oneDNN weights not prepared, dense convolutions: {err}"),
        }
    }

    /// The standardised half-resolution slices the convolutions see.
    fn standardised(x: &Tensor) -> Result<Tensor, tch::TchError> {
        // The three input channels are copies of one MR slice: average them. Standardising
        // over the whole series makes the net indifferent to scanner gain and window.
        let gray = x.f_mean_dim([1i64].as_slice(), true, Kind::Float)?;
        let gray = pool_2x2(&gray, Pool::Average)?;
        Ok((&gray - gray.mean(Kind::Float)) / (gray.std(true) + 1e-3))
    }

    fn features_onednn(&self, x: &Tensor, packed: &[PackedConv]) -> Result<Tensor, tch::TchError> {
        let mut h = Self::standardised(x)?.f_contiguous()?.f_to_mkldnn(None)?;
        for (conv, &(.., pooled)) in packed.iter().zip(CONVS.iter()) {
            h = conv.forward_relu(&h)?;
            if pooled {
                h = h.f_mkldnn_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)?;
            }
        }
        h.f_to_dense(None, false)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    Average,
    Max,
}

/// `avg_pool2d` or `max_pool2d` with a 2×2 window and stride 2 (floor mode). Without gradients,
/// the same values from the four strided quarter views, combined element-wise in the order
/// libtorch's kernels use (sum row by row, then ÷ 4; maximum): its CPU pooling kernels, which
/// loop per output and track indices, were a fifth of `precompute`'s time with the demo models.
/// Training keeps the pooling ops and their gradients.
fn pool_2x2(h: &Tensor, pool: Pool) -> Result<Tensor, tch::TchError> {
    let size = h.size();
    if h.requires_grad() || size.len() != 4 {
        return match pool {
            Pool::Average => h.f_avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>),
            Pool::Max => h.f_max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
        };
    }
    let (rows, cols) = (2 * (size[2] / 2), 2 * (size[3] / 2));
    let quarter = |row: i64, col: i64| -> Result<Tensor, tch::TchError> {
        h.f_slice(2, row, rows, 2)?.f_slice(3, col, cols, 2)
    };
    let (a, b, c, d) = (
        quarter(0, 0)?,
        quarter(0, 1)?,
        quarter(1, 0)?,
        quarter(1, 1)?,
    );
    match pool {
        Pool::Average => ((a.f_add(&b)?).f_add(&c)?.f_add(&d)?).f_div_scalar(4.0),
        Pool::Max => a.f_maximum(&b)?.f_maximum(&c)?.f_maximum(&d),
    }
}

impl GapNetwork for Tiny {
    fn features(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        if let Some(packed) = &self.prepacked {
            if x.device() == Device::Cpu && x.kind() == Kind::Float && !x.requires_grad() {
                return self.features_onednn(x, packed);
            }
        }
        let mut h = Self::standardised(x)?;
        for (conv, &(.., pooled)) in self.convs.iter().zip(CONVS.iter()) {
            h = conv.forward(&h).relu();
            if pooled {
                h = pool_2x2(&h, Pool::Max)?;
            }
        }
        Ok(h)
    }

    fn classifier(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inference_pooling_equals_libtorchs_pooling() {
        tch::manual_seed(1);
        for (rows, cols) in [(8, 8), (7, 9), (64, 64)] {
            let x = Tensor::randn([3, 4, rows, cols], (Kind::Float, Device::Cpu));
            let max = tch::no_grad(|| pool_2x2(&x, Pool::Max)).expect("max");
            let libtorch_max = x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            assert!(max.equal(&libtorch_max), "max {rows}×{cols}");
            let average = tch::no_grad(|| pool_2x2(&x, Pool::Average)).expect("average");
            let libtorch_average = x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>);
            assert!(average.equal(&libtorch_average), "average {rows}×{cols}");
        }
    }

    #[test]
    fn the_onednn_path_gives_the_dense_features_bit_for_bit() {
        // Whatever other tests do to libtorch's generator, the copy makes the weights equal.
        let dense = Tiny::new(Device::Cpu, 2);
        let mut packed = Tiny::new(Device::Cpu, 2);
        packed.vs.copy(&dense.vs).expect("the same weights");
        packed.prepack_for_cpu();
        assert!(packed.prepacked.is_some(), "libtorch's oneDNN");
        let bytes: Vec<u8> = (0..5 * 256 * 256u64)
            .map(|i| ((i * 7919) % 251) as u8)
            .collect();
        let x = Tensor::from_slice(&bytes)
            .to_kind(Kind::Float)
            .view([5, 1, 256, 256])
            .expand([-1, 3, -1, -1], false)
            .contiguous();
        let (a, b) = tch::no_grad(|| (dense.features(&x), packed.features(&x)));
        let (a, b) = (a.expect("dense"), b.expect("oneDNN"));
        assert_eq!(a.size(), vec![5, 64, 16, 16]);
        assert!(a.equal(&b), "max difference {}", (a - b).abs().max());
    }

    #[test]
    fn a_256_pixel_slice_gives_16_by_16_feature_maps() {
        let net = Tiny::new(Device::Cpu, 2);
        let x = Tensor::zeros([2, 3, 256, 256], (Kind::Float, Device::Cpu));
        let a = tch::no_grad(|| net.features(&x)).expect("forward");
        assert_eq!(a.size(), vec![2, 64, 16, 16]);
    }
}
