//! Turning an exam's uint8 series into the network's input, per model.
use ndarray::Array3;
use tch::{Device, Kind, Tensor};

/// How a model expects its input (named in the manifest).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Preprocess {
    /// The reference code: raw 0–255 values, no crop, repeated to 3 channels.
    #[default]
    Raw,
    /// Common elsewhere: centre crop 224, per-series min-max to 0–255, (x − 58.09) / 49.73.
    Crop224Norm,
}

pub const MRNET_MEAN: f64 = 58.09;
pub const MRNET_STD: f64 = 49.73;
const CROP: i64 = 224;

impl std::str::FromStr for Preprocess {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "raw" => Ok(Preprocess::Raw),
            "crop224-norm" => Ok(Preprocess::Crop224Norm),
            other => Err(format!(
                "unknown preprocessing '{other}', expected raw or crop224-norm"
            )),
        }
    }
}

impl Preprocess {
    /// What it does, for people.
    pub fn describe(self) -> &'static str {
        match self {
            Preprocess::Raw => "raw 0–255 values, no crop",
            Preprocess::Crop224Norm => {
                "centre crop 224, per-series min-max to 0–255, then (x − 58.09) / 49.73"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preprocess::Raw => "raw",
            Preprocess::Crop224Norm => "crop224-norm",
        }
    }

    /// x[S, 3, H', W'] (float32, on `device`) for a (S, H, W) series.
    pub fn input(self, volume: &Array3<u8>, device: Device) -> Tensor {
        let (s, h, w) = volume.dim();
        let bytes = match volume.as_slice() {
            Some(bytes) => Tensor::from_slice(bytes),
            None => Tensor::from_slice(&volume.iter().copied().collect::<Vec<u8>>()),
        };
        let x = bytes
            .to_device(device)
            .to_kind(Kind::Float)
            .view([s as i64, 1, h as i64, w as i64]);
        let x = match self {
            Preprocess::Raw => x,
            Preprocess::Crop224Norm => {
                let x = centre_crop(&x, CROP);
                let (lo, hi) = (x.min(), x.max());
                let span = (&hi - &lo).clamp_min(1e-6);
                ((x - lo) / span * 255.0 - MRNET_MEAN) / MRNET_STD
            }
        };
        x.expand([-1, 3, -1, -1], false).contiguous()
    }

    /// Where the input's pixels sit in the slice: (top, left, height, width).
    pub fn window(self, height: usize, width: usize) -> (usize, usize, usize, usize) {
        match self {
            Preprocess::Raw => (0, 0, height, width),
            Preprocess::Crop224Norm => {
                let (ch, cw) = (height.min(CROP as usize), width.min(CROP as usize));
                ((height - ch) / 2, (width - cw) / 2, ch, cw)
            }
        }
    }
}

fn centre_crop(x: &Tensor, size: i64) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let (ch, cw) = (h.min(size), w.min(size));
    x.narrow(2, (h - ch) / 2, ch).narrow(3, (w - cw) / 2, cw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_repeats_values_to_three_channels() {
        let volume = Array3::from_shape_fn((2, 4, 4), |(s, r, c)| (s * 16 + r * 4 + c) as u8);
        let x = Preprocess::Raw.input(&volume, Device::Cpu);
        assert_eq!(x.size(), vec![2, 3, 4, 4]);
        assert_eq!(x.double_value(&[1, 2, 3, 1]), 16.0 + 3.0 * 4.0 + 1.0);
        assert_eq!(x.double_value(&[1, 0, 3, 1]), x.double_value(&[1, 2, 3, 1]));
    }

    #[test]
    fn crop224_norm_crops_the_centre_and_standardises() {
        let volume = Array3::from_shape_fn((1, 256, 256), |(_, r, c)| ((r + c) / 2) as u8);
        let x = Preprocess::Crop224Norm.input(&volume, Device::Cpu);
        assert_eq!(x.size(), vec![1, 3, 224, 224]);
        let top_left = x.double_value(&[0, 0, 0, 0]);
        assert!(
            (top_left - (0.0 - MRNET_MEAN) / MRNET_STD).abs() < 1e-4,
            "{top_left}"
        );
        let bottom_right = x.double_value(&[0, 0, 223, 223]);
        assert!(
            (bottom_right - (255.0 - MRNET_MEAN) / MRNET_STD).abs() < 1e-4,
            "{bottom_right}"
        );
        assert_eq!(Preprocess::Crop224Norm.window(256, 256), (16, 16, 224, 224));
    }
}
