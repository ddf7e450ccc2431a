//! A PNG montage of one phantom exam, so a person can check that it looks like a knee MRI:
//! one row per plane (axial, coronal, sagittal); left the middle slice, right the slice with the
//! most lesion voxels; lesion masks outlined (red ACL tear, yellow meniscal tear, cyan other).
//!
//!     cargo run --release --example phantom_montage -- [--seed S] [--id N] [--out FILE.png]
//!         [--lesion 1|2|3]
//!
//! Without --id it picks the first exam of the seed with an ACL tear. --lesion picks the right
//! column's slice by the voxels of one mask code only (1 ACL, 2 meniscus, 3 other).
use anyhow::{bail, Context};
use image::{Rgb, RgbImage};
use kneecam::data::phantom::ExamPlan;
use kneecam::data::{Lesion, Plane};
use ndarray::{Array3, Axis};

const SIZE: u32 = 256;

fn main() -> anyhow::Result<()> {
    let (seed, id, out, only) = parse_args()?;
    let id = match id {
        Some(id) => id,
        None => (0..10_000)
            .find(|&i| ExamPlan::new(seed, i).labels()[1])
            .context("no ACL tear found")?,
    };
    let plan = ExamPlan::new(seed, id);
    let mut canvas = RgbImage::new(2 * SIZE, 3 * SIZE);
    for (row, plane) in Plane::ALL.into_iter().enumerate() {
        let (image, mask) = plan.scan(plane);
        let middle = image.dim().0 / 2;
        let lesion = lesion_slice(&mask, only).unwrap_or(middle);
        for (col, slice) in [middle, lesion].into_iter().enumerate() {
            paste(
                &mut canvas,
                &image,
                &mask,
                slice,
                col as u32 * SIZE,
                row as u32 * SIZE,
            );
        }
        println!(
            "{plane}: {} slices; middle {middle}, lesion slice {lesion}",
            image.dim().0
        );
    }
    canvas
        .save(&out)
        .with_context(|| format!("writing {out}"))?;
    println!(
        "exam {id:04} (seed {seed}) labels abnormal/acl/meniscus = {:?}; lesions {:?}",
        plan.labels(),
        plan.lesions()
    );
    println!("wrote {out}");
    Ok(())
}

fn parse_args() -> anyhow::Result<(u64, Option<u32>, String, Option<u8>)> {
    let (mut seed, mut id, mut out) = (0, None, "phantom-montage.png".to_string());
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seed" => seed = value.parse().context("--seed: expected an integer")?,
            "--id" => id = Some(value.parse().context("--id: expected an integer")?),
            "--out" => out = value,
            "--lesion" => only = Some(value.parse().context("--lesion: expected 1, 2 or 3")?),
            _ => bail!("unknown flag {flag}: expected --seed, --id, --out or --lesion"),
        }
    }
    Ok((seed, id, out, only))
}

fn lesion_slice(mask: &Array3<u8>, only: Option<u8>) -> Option<usize> {
    let counts: Vec<usize> = mask
        .axis_iter(Axis(0))
        .map(|s| {
            s.iter()
                .filter(|&&v| v > 0 && only.is_none_or(|o| v == o))
                .count()
        })
        .collect();
    let (best, &count) = counts.iter().enumerate().max_by_key(|&(_, c)| *c)?;
    (count > 0).then_some(best)
}

fn paste(
    canvas: &mut RgbImage,
    image: &Array3<u8>,
    mask: &Array3<u8>,
    slice: usize,
    x0: u32,
    y0: u32,
) {
    let n = SIZE as usize;
    for r in 0..n {
        for c in 0..n {
            let v = image[[slice, r, c]];
            let label = mask[[slice, r, c]];
            let edge = label > 0
                && [(0, 1), (2, 1), (1, 0), (1, 2)].iter().any(|&(dr, dc)| {
                    let (rr, cc) = ((r + dr).wrapping_sub(1), (c + dc).wrapping_sub(1));
                    rr >= n || cc >= n || mask[[slice, rr, cc]] != label
                });
            let pixel = match (edge, Lesion::from_code(label)) {
                (true, Some(Lesion::AclTear)) => Rgb([255, 40, 40]),
                (true, Some(Lesion::MeniscalTear)) => Rgb([255, 230, 0]),
                (true, _) => Rgb([0, 220, 255]),
                _ => Rgb([v, v, v]),
            };
            canvas.put_pixel(x0 + c as u32, y0 + r as u32, pixel);
        }
    }
}
