//! The CAM maths on device tensors: A[S, C, h, w] features, weight [K, C], bias [K].
use tch::{Kind, Tensor};

use super::{blas_order, Method, Normalization, Placement};
use crate::model::network::GapNetwork;

/// Raw per-slice maps [S, h, w] for class `class` (before ReLU or normalisation).
pub fn raw_maps(
    method: Method,
    net: &dyn GapNetwork,
    features: &Tensor,
    class: i64,
) -> Result<Tensor, tch::TchError> {
    Attribution::new(net, features, class).raw_maps(method)
}

/// One forward pass's features and a class, from which every method's raw maps come: the
/// logit's gradient, which Grad-CAM and Grad-CAM++ share, is computed once, on first need.
pub struct Attribution<'a> {
    net: &'a dyn GapNetwork,
    features: &'a Tensor,
    class: i64,
    gradient: std::cell::OnceCell<Tensor>,
}

impl<'a> Attribution<'a> {
    pub fn new(net: &'a dyn GapNetwork, features: &'a Tensor, class: i64) -> Attribution<'a> {
        Attribution {
            net,
            features,
            class,
            gradient: std::cell::OnceCell::new(),
        }
    }

    /// `method`'s raw maps [S, h, w] at feature resolution.
    pub fn raw_maps(&self, method: Method) -> Result<Tensor, tch::TchError> {
        let (weight, _) = self.net.classifier();
        let w = weight.get(self.class);
        let features = self.features;
        match method {
            Method::Cam => tch::no_grad(|| cam_maps(&w, features)),
            Method::Contrib => Ok(tch::no_grad(|| {
                let winners = winning_slices(features);
                let per_slice_weight = winners * w.unsqueeze(0);
                Tensor::einsum(
                    "sc,schw->shw",
                    &[&per_slice_weight, features],
                    None::<&[i64]>,
                )
            })),
            Method::GradCam | Method::GradCamPlusPlus => {
                let grads = self.gradient()?;
                Ok(tch::no_grad(|| {
                    let channel_weights = if method == Method::GradCam {
                        grads.mean_dim([2i64, 3].as_slice(), false, Kind::Float)
                    } else {
                        gradcam_plus_plus_weights(features, &grads)
                    };
                    Tensor::einsum(
                        "sc,schw->shw",
                        &[&channel_weights, features],
                        None::<&[i64]>,
                    )
                }))
            }
        }
    }

    fn gradient(&self) -> Result<Tensor, tch::TchError> {
        if let Some(grads) = self.gradient.get() {
            return Ok(grads.shallow_clone());
        }
        let grads = logit_gradient(self.net, self.features, self.class)?;
        Ok(self.gradient.get_or_init(|| grads).shallow_clone())
    }
}

/// Σ_c w[c]·A[s, c] for every slice: summed in NumPy's order on the CPU where
/// [`blas_order`] reproduces it (the reference code's CAMs, bit for bit), else by einsum.
fn cam_maps(w: &Tensor, features: &Tensor) -> Result<Tensor, tch::TchError> {
    let by_einsum = || Tensor::f_einsum("c,schw->shw", &[w, features], None::<&[i64]>);
    let size = features.size();
    let [slices, channels, height, width] = size[..] else {
        return by_einsum();
    };
    let cells = (height * width) as usize;
    if features.kind() != Kind::Float || !blas_order::supports(channels as usize, cells) {
        return by_einsum();
    }
    let weight = Vec::<f32>::try_from(&w.to_device(tch::Device::Cpu))?;
    let host = Vec::<f32>::try_from(&features.to_device(tch::Device::Cpu).contiguous().view(-1))?;
    let fused = blas_order::fused_tail();
    let per_slice = channels as usize * cells;
    let maps: Vec<f32> = host
        .chunks_exact(per_slice)
        .flat_map(|slice| blas_order::weighted_sum(&weight, slice, cells, fused))
        .collect();
    Ok(Tensor::from_slice(&maps)
        .view([slices, height, width])
        .to_device(features.device()))
}

/// One-hot [S, C]: 1 where slice s holds channel c's maximum of the pooled features (the slice
/// whose value the max over slices passes on).
pub fn winning_slices(features: &Tensor) -> Tensor {
    let pooled = features.mean_dim([2i64, 3].as_slice(), false, Kind::Float);
    let (_, argmax) = pooled.max_dim(0, false);
    let slices = features.size()[0];
    let index = Tensor::arange(slices, (Kind::Int64, features.device())).unsqueeze(1);
    index.eq_tensor(&argmax.unsqueeze(0)).to_kind(Kind::Float)
}

/// ∂ logit[class] / ∂A through the network's head alone ([`GapNetwork::logits`]: for MRNet
/// pooling, max, linear; for SqueezeNet its 1×1 convolution, ReLU and pooling): no graph
/// through the feature extractor, so this costs a fraction of the forward pass.
fn logit_gradient(
    net: &dyn GapNetwork,
    features: &Tensor,
    class: i64,
) -> Result<Tensor, tch::TchError> {
    let leaf = features.detach().set_requires_grad(true);
    let logit = net.logits(&leaf)?.get(class);
    let mut grads = Tensor::f_run_backward(&[&logit], &[&leaf], false, false)?;
    grads
        .pop()
        .ok_or_else(|| tch::TchError::Torch("autograd returned no gradient".into()))
}

/// Grad-CAM++ channel weights [S, C] (as pytorch-grad-cam computes them).
fn gradcam_plus_plus_weights(features: &Tensor, grads: &Tensor) -> Tensor {
    let grads2 = grads * grads;
    let grads3 = &grads2 * grads;
    let sum_activations = features.sum_dim_intlist([2i64, 3].as_slice(), true, Kind::Float);
    let denominator = &grads2 * 2.0 + sum_activations * &grads3 + 1e-6;
    let alpha = (&grads2 / denominator).where_self(&grads.ne(0.0), &grads.zeros_like());
    (grads.relu() * alpha).sum_dim_intlist([2i64, 3].as_slice(), false, Kind::Float)
}

/// Display maps [S, H, W] (uint8): ReLU for the gradient methods, normalisation, bilinear
/// upsampling with half-pixel centres to the input window, zero outside it.
pub fn display_maps(
    raw: &Tensor,
    method: Method,
    normalization: Normalization,
    placement: Placement,
) -> Tensor {
    let maps = match method {
        Method::GradCam | Method::GradCamPlusPlus => raw.relu(),
        Method::Cam | Method::Contrib => raw.shallow_clone(),
    };
    let unit = normalise(&maps, normalization);
    let (top, left, height, width) = placement.window;
    let (slice_h, slice_w) = placement.slice;
    let up = unit
        .unsqueeze(1)
        .upsample_bilinear2d([height as i64, width as i64], false, None, None)
        .squeeze_dim(1);
    let padding = [
        left as i64,
        (slice_w - left - width) as i64,
        top as i64,
        (slice_h - top - height) as i64,
    ];
    let placed = if padding.iter().all(|&p| p == 0) {
        up
    } else {
        up.constant_pad_nd(padding)
    };
    (placed * 255.0)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
}

/// Maps to 0..1 (or, for `None`, to 0..255 units unchanged: scaled by 1/255 so that ×255 restores them).
fn normalise(maps: &Tensor, normalization: Normalization) -> Tensor {
    match normalization {
        Normalization::None => maps / 255.0,
        Normalization::Exam => {
            let (lo, hi) = (maps.min(), maps.max());
            (maps - &lo) / (hi - lo).clamp_min(1e-12)
        }
        Normalization::Slice => {
            let flat = maps.flatten(1, -1);
            let lo = flat.amin([1i64].as_slice(), true).unsqueeze(2);
            let hi = flat.amax([1i64].as_slice(), true).unsqueeze(2);
            (maps - &lo) / (hi - lo).clamp_min(1e-12)
        }
    }
}
