//! Convolutions kept in oneDNN's blocked layout for inference on the CPU, as PyTorch's
//! `torch.utils.mkldnn.to_mkldnn` keeps them: weights reordered once at load instead of in
//! every convolution, activations converted once per forward pass. The values are libtorch's
//! dense convolutions' bit for bit (its CPU convolutions are oneDNN's too).
use tch::nn;
use tch::{Device, Kind, Tensor};

/// A convolution's weight (reordered) and bias, both oneDNN tensors, with its geometry.
#[derive(Debug)]
pub struct PackedConv {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    padding: i64,
}

/// `convs` with their (stride, padding), packed; an error where libtorch lacks oneDNN.
pub fn pack<'a>(
    convs: impl IntoIterator<Item = (&'a nn::Conv2D, (i64, i64))>,
) -> Result<Vec<PackedConv>, tch::TchError> {
    tch::no_grad(|| {
        convs
            .into_iter()
            .map(|(conv, (stride, padding))| {
                let weight = conv.ws.f_to_mkldnn(None)?.f_mkldnn_reorder_conv2d_weight(
                    [padding, padding],
                    [stride, stride],
                    [1, 1],
                    1,
                    None::<&[i64]>,
                )?;
                let bias = match &conv.bs {
                    Some(bias) => bias.shallow_clone(),
                    None => Tensor::zeros([conv.ws.size()[0]], (Kind::Float, Device::Cpu)),
                };
                Ok(PackedConv {
                    weight,
                    bias: bias.f_to_mkldnn(None)?,
                    stride,
                    padding,
                })
            })
            .collect()
    })
}

impl PackedConv {
    /// The convolution, then ReLU, of a oneDNN tensor.
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        let (stride, padding) = (self.stride, self.padding);
        x.f_mkldnn_convolution(
            &self.weight,
            Some(&self.bias),
            [padding, padding],
            [stride, stride],
            [1, 1],
            1,
        )?
        .f_relu()
    }
}
