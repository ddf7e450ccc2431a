//! CAMs as PNG files: the `cam` command's layout (`slices/{i}.png`, `cams/{i}.png`), used by
//! the headless commands, the explorer's export and `kneecam export`. Every file is written
//! atomically, or into a fresh folder that is renamed into place whole.
use std::path::Path;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use ndarray::{Array3, Axis};
use rayon::prelude::*;

use super::colormap::{reference_blend_table, Colormap};

/// How the files reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// Each file atomically (temporary file, fsync, rename): for a folder others may read.
    Atomic,
    /// Plain files, each flushed to the disk: for a fresh folder of the caller's that is renamed
    /// into place once whole (the rename is the one atomic step).
    IntoFreshFolder,
}

/// One PNG per slice of the raw series and of its overlay (heatmap·0.3 + slice·0.5, as the
/// reference code), under `out/slices` and `out/cams`, encoded on all cores.
pub fn write_pngs(
    out: &Path,
    volume: &Array3<u8>,
    maps: &Array3<u8>,
    colormap: Colormap,
    files: Files,
) -> std::io::Result<()> {
    let (slices, h, w) = volume.dim();
    for dir in ["slices", "cams"] {
        let path = out.join(dir);
        std::fs::create_dir_all(&path).map_err(|e| named(&path, e))?;
    }
    let colors: Vec<[u8; 3]> = (0..=255u8).map(|v| colormap.rgb(v)).collect();
    let blend = reference_blend_table();
    (0..slices).into_par_iter().try_for_each(|s| {
        let slice: Vec<u8> = volume.index_axis(Axis(0), s).iter().copied().collect();
        let heat = maps.index_axis(Axis(0), s);
        let mut overlay = Vec::with_capacity(slice.len() * 3);
        for (&gray, &value) in slice.iter().zip(heat.iter()) {
            let rgb = colors[usize::from(value)];
            overlay.extend(rgb.map(|channel| blend[usize::from(channel)][usize::from(gray)]));
        }
        let (w, h) = (w as u32, h as u32);
        let gray = image::GrayImage::from_raw(w, h, slice).map(image::DynamicImage::ImageLuma8);
        let overlay = image::RgbImage::from_raw(w, h, overlay).map(image::DynamicImage::ImageRgb8);
        let (Some(gray), Some(overlay)) = (gray, overlay) else {
            return Err(std::io::Error::other("a slice and its map differ in size"));
        };
        let save = |path: &Path, picture| match files {
            Files::Atomic => save_png(path, picture),
            Files::IntoFreshFolder => save_png_plain(path, picture),
        };
        save(&out.join("slices").join(format!("{s}.png")), &gray)?;
        save(&out.join("cams").join(format!("{s}.png")), &overlay)
    })
}

/// Encodes in memory (fast deflate: a few per cent larger, several times quicker), then
/// writes atomically; errors name the file.
pub fn save_png(path: &Path, picture: &image::DynamicImage) -> std::io::Result<()> {
    let bytes = encode(path, picture)?;
    crate::fsutil::atomic_write(path, |w| std::io::Write::write_all(w, &bytes))
        .map_err(|e| named(path, e))
}

/// As [`save_png`], as a plain file (flushed to the disk) in a folder no one reads yet.
fn save_png_plain(path: &Path, picture: &image::DynamicImage) -> std::io::Result<()> {
    let bytes = encode(path, picture)?;
    let write = || {
        let mut file = std::fs::File::create(path)?;
        std::io::Write::write_all(&mut file, &bytes)?;
        file.sync_all()
    };
    write().map_err(|e| named(path, e))
}

fn encode(path: &Path, picture: &image::DynamicImage) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut bytes, CompressionType::Fast, FilterType::Adaptive);
    picture
        .write_with_encoder(encoder)
        .map_err(|e| named(path, std::io::Error::other(e)))?;
    Ok(bytes)
}

fn named(path: &Path, err: std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}
