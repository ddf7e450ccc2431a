//! `kneecam cam --image`: the blog's ImageNet walk-through. A photo through a 2-D GAP CNN (a
//! torchvision architecture built natively from its state dict, `--arch NAME --weights FILE`,
//! or a TorchScript `[images.NAME]` entry), the top-k classes, and one CAM overlay per class.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use image::imageops::FilterType;
use tch::{Device, Kind, Tensor};

use crate::cam::colormap::{blend_reference, Colormap};
use crate::cam::{self, CamSpec, Method, Normalization, Placement};
use crate::cli::bad_input;
use crate::model::manifest::{self, Manifest};
use crate::model::network::Network;
use crate::model::vision::{imagenet, VisionArch, VisionNet};

const SIDE: u32 = 224;
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Where the image model comes from.
#[derive(Debug, Clone, Copy)]
pub enum ImageModel<'a> {
    /// `--model MODELS_DIR:NAME`: an `[images.NAME]` TorchScript entry.
    Manifest(&'a str),
    /// `--arch ARCH --weights FILE`: a torchvision network and its state dict.
    Native { arch: VisionArch, weights: &'a Path },
}

impl ImageModel<'_> {
    /// The folder holding the model (which `--out` must stay out of).
    pub fn folder(&self) -> Option<PathBuf> {
        match self {
            ImageModel::Manifest(spec) => split_spec(spec).map(|(dir, _)| PathBuf::from(dir)),
            ImageModel::Native { weights, .. } => weights.parent().map(Path::to_path_buf),
        }
    }

    /// How the model is named in messages.
    fn describe(&self) -> String {
        match self {
            ImageModel::Manifest(spec) => spec.to_string(),
            ImageModel::Native { arch, weights } => format!("{arch} ({})", weights.display()),
        }
    }

    fn open(&self, device: Device) -> anyhow::Result<Network> {
        match *self {
            ImageModel::Manifest(spec) => open_image_model(spec, device),
            ImageModel::Native { arch, weights } => VisionNet::load(arch, weights, device)
                .map(|net| Network::Vision(Box::new(net)))
                .map_err(bad_input),
        }
    }
}

pub struct ImageJob<'a> {
    pub image: &'a Path,
    pub model: ImageModel<'a>,
    pub labels: Option<&'a Path>,
    pub topk: usize,
    pub method: Method,
    pub colormap: Colormap,
    pub out: &'a Path,
}

pub fn run(job: ImageJob<'_>, device: Device) -> anyhow::Result<ExitCode> {
    let network = job.model.open(device)?;
    let picture = image::open(job.image)
        .with_context(|| format!("reading {}", job.image.display()))
        .map_err(bad_input)?
        .to_rgb8();
    let x = imagenet_input(&picture, device);
    let pass =
        cam::forward(&network, &x).with_context(|| format!("running {}", job.model.describe()))?;
    let probabilities = softmax(&pass.logits);
    let labels = read_labels(job.labels, probabilities.len())?;
    let mut ranked: Vec<usize> = (0..probabilities.len()).collect();
    ranked.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    let placement = Placement {
        window: (0, 0, SIDE as usize, SIDE as usize),
        slice: (SIDE as usize, SIDE as usize),
    };
    for (rank, &class) in ranked.iter().take(job.topk.max(1)).enumerate() {
        let spec = CamSpec {
            method: job.method,
            class: Some(class),
            normalization: Normalization::Exam,
        };
        let explanation = cam::explain_forward(&network, &pass, &spec, placement)?;
        let name = format!("{}_{}_{}.png", rank + 1, class, file_safe(&labels[class]));
        let overlay = overlay(&picture, &explanation.maps, job.colormap);
        crate::cam::png::save_png(
            &job.out.join(&name),
            &image::DynamicImage::ImageRgb8(overlay),
        )?;
        println!(
            "{:>2}. {:>5.1} %  class {class:<5} {:<30} {name}",
            rank + 1,
            probabilities[class] * 100.0,
            super::printable(&labels[class])
        );
    }
    println!("wrote {}", job.out.display());
    Ok(ExitCode::SUCCESS)
}

/// `MODELS_DIR:NAME` split into the folder and the name.
pub(crate) fn split_spec(spec: &str) -> Option<(&str, &str)> {
    spec.rsplit_once(':')
}

/// `MODELS_DIR:NAME`, an `[images.NAME]` TorchScript entry of the manifest.
fn open_image_model(spec: &str, device: Device) -> anyhow::Result<Network> {
    let (dir, name) = split_spec(spec).ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "--model {spec}: with --image, expected MODELS_DIR:NAME naming an [images.NAME] entry"
        ))
    })?;
    let dir = Path::new(dir);
    let manifest = Manifest::load(dir).map_err(bad_input)?;
    let entry = manifest.image(name).ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "{}: manifest.toml has no [images.{name}] entry",
            dir.display()
        ))
    })?;
    manifest::load_network(dir, entry, device).map_err(bad_input)
}

/// Resized to 224×224, scaled to 0..1 and normalised with ImageNet's mean and std: x[1, 3, 224, 224].
fn imagenet_input(picture: &image::RgbImage, device: Device) -> Tensor {
    let resized = image::imageops::resize(picture, SIDE, SIDE, FilterType::Triangle);
    let side = SIDE as usize;
    let mut planes = vec![0f32; 3 * side * side];
    for (x, y, pixel) in resized.enumerate_pixels() {
        for c in 0..3 {
            let value = f32::from(pixel[c]) / 255.0;
            planes[c * side * side + y as usize * side + x as usize] =
                (value - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    Tensor::from_slice(&planes)
        .view([1, 3, SIDE as i64, SIDE as i64])
        .to_kind(Kind::Float)
        .to_device(device)
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|&l| (l - top).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.iter().map(|e| e / total).collect()
}

/// One label per line; without a file, ImageNet's names for 1,000 classes, else the class
/// indices.
fn read_labels(path: Option<&Path>, classes: usize) -> anyhow::Result<Vec<String>> {
    let Some(path) = path else {
        if classes == imagenet::CLASSES {
            return Ok(imagenet::class_names()
                .into_iter()
                .map(String::from)
                .collect());
        }
        return Ok((0..classes).map(|k| format!("class {k}")).collect());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(bad_input)?;
    let labels: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if labels.len() != classes {
        return Err(bad_input(anyhow::anyhow!(
            "{}: {} labels, but the model has {classes} classes (expected one label per line)",
            path.display(),
            labels.len()
        )));
    }
    Ok(labels)
}

/// Letters, digits, '-' and '_' only, at most 40 characters: safe in any file name.
fn file_safe(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    if cleaned.is_empty() {
        "class".into()
    } else {
        cleaned
    }
}

/// The map, resized to the photo, as a JET heatmap ·0.3 + photo ·0.5 (the blog's blend).
fn overlay(
    picture: &image::RgbImage,
    maps: &ndarray::Array3<u8>,
    colormap: Colormap,
) -> image::RgbImage {
    let (_, h, w) = maps.dim();
    let map = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
        image::Luma([maps[[0, y as usize, x as usize]]])
    });
    let map = image::imageops::resize(
        &map,
        picture.width(),
        picture.height(),
        FilterType::Triangle,
    );
    image::RgbImage::from_fn(picture.width(), picture.height(), |x, y| {
        let heat = colormap.rgb(map.get_pixel(x, y)[0]);
        let pixel = picture.get_pixel(x, y);
        image::Rgb(std::array::from_fn(|c| blend_reference(pixel[c], heat)[c]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_the_order() {
        let p = softmax(&[1.0, 3.0, 2.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[2] && p[2] > p[0]);
    }

    #[test]
    fn labels_become_safe_file_names() {
        assert_eq!(file_safe("golden retriever"), "golden_retriever");
        assert_eq!(file_safe("../../etc/passwd"), "______etc_passwd");
        assert_eq!(file_safe(""), "class");
    }
}
