//! CAMs as PNG files: the `cam` command's layout (`slices/{i}.png`, `cams/{i}.png`), used by
//! the headless commands and the explorer's export. Every file is written atomically.
use std::path::Path;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use ndarray::Array3;
use rayon::prelude::*;

use super::colormap::{blend_reference, Colormap};

/// One PNG per slice of the raw series and of its overlay (heatmap·0.3 + slice·0.5, as the
/// reference code), under `out/slices` and `out/cams`, encoded on all cores.
pub fn write_pngs(
    out: &Path,
    volume: &Array3<u8>,
    maps: &Array3<u8>,
    colormap: Colormap,
) -> std::io::Result<()> {
    let (slices, h, w) = volume.dim();
    for dir in ["slices", "cams"] {
        let path = out.join(dir);
        std::fs::create_dir_all(&path).map_err(|e| named(&path, e))?;
    }
    (0..slices).into_par_iter().try_for_each(|s| {
        let gray = image::GrayImage::from_fn(w as u32, h as u32, |x, y| {
            image::Luma([volume[[s, y as usize, x as usize]]])
        });
        let overlay = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let (r, c) = (y as usize, x as usize);
            image::Rgb(blend_reference(
                volume[[s, r, c]],
                colormap.rgb(maps[[s, r, c]]),
            ))
        });
        save_png(
            &out.join("slices").join(format!("{s}.png")),
            &image::DynamicImage::ImageLuma8(gray),
        )?;
        save_png(
            &out.join("cams").join(format!("{s}.png")),
            &image::DynamicImage::ImageRgb8(overlay),
        )
    })
}

/// Encodes in memory (fast deflate: a few per cent larger, several times quicker), then
/// writes atomically; errors name the file.
pub fn save_png(path: &Path, picture: &image::DynamicImage) -> std::io::Result<()> {
    let mut bytes = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Adaptive);
    picture
        .write_with_encoder(encoder)
        .map_err(|e| named(path, std::io::Error::other(e)))?;
    crate::fsutil::atomic_write(path, |w| std::io::Write::write_all(w, &bytes))
        .map_err(|e| named(path, e))
}

fn named(path: &Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}
