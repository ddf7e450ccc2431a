//! Terminal images: the slice with its CAM overlay composed at the pane's pixel size, the
//! linked cursor's cross-hair drawn on it, and encoded for the terminal's protocol, off the
//! UI thread, cached per (exam, plane, series, slice, cell size, overlay settings, cursor).
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use image::{imageops, DynamicImage, Rgb, RgbImage};
use ratatui::layout::{Rect, Size};
use ratatui_image::picker::cap_parser::Parser;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::halfblocks::Halfblocks;
use ratatui_image::protocol::sixel::Sixel;
use ratatui_image::protocol::Protocol;
use ratatui_image::Resize;

use crate::cam::colormap::{blend, Colormap};
use crate::cam::{floor, Explanation};
use crate::data::Plane;

use super::app::{App, CamKey, GroundTruth, SeriesRef, Volume};
use super::cache::Lru;
use crate::data::Task;

mod outline;
pub use outline::OUTLINE;

/// The overlay part of an image's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OverlayKey {
    pub cam: CamKey,
    pub colormap: Colormap,
    pub opacity_percent: u8,
    /// The heat floor in percent (see [`crate::cam::floor`]).
    pub heat_floor_percent: u8,
}

/// Everything that decides an encoded image's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageKey {
    pub case: usize,
    pub plane: Plane,
    /// Which of the plane's series (see [`SeriesRef`]).
    pub series: usize,
    pub slice: usize,
    pub cols: u16,
    pub rows: u16,
    /// None: the raw slice (overlay off, or its CAM not here yet).
    pub overlay: Option<OverlayKey>,
    pub raw_beside: bool,
    /// The linked cursor's pixel (row, column) on this slice, marked with a cross-hair.
    pub mark: Option<(u16, u16)>,
    /// The task whose ground-truth lesion is outlined (`M`, where the series has a mask).
    pub outline: Option<Task>,
}

impl ImageKey {
    pub fn series_ref(&self) -> SeriesRef {
        SeriesRef {
            case: self.case,
            plane: self.plane,
            series: self.series,
        }
    }
}

/// How the terminal's images fill cells: the pixels of one cell, and whether they are
/// halfblocks (two pixels a cell, any enlargement).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raster {
    pub cell_width: u16,
    pub cell_height: u16,
    pub halfblocks: bool,
}

impl Default for Raster {
    fn default() -> Raster {
        Raster {
            cell_width: 1,
            cell_height: 2,
            halfblocks: true,
        }
    }
}

impl Raster {
    pub fn of(picker: &Picker) -> Raster {
        if picker.protocol_type() == ProtocolType::Halfblocks {
            return Raster::default();
        }
        let font = picker.font_size();
        Raster {
            cell_width: font.width.max(1),
            cell_height: font.height.max(1),
            halfblocks: false,
        }
    }
}

/// The cells an image of `pixels` (width, height) takes in a pane of `cells` (columns, rows):
/// scaled to fit keeping the aspect, in whole cells, at least one. Encoding and the mouse
/// both use it, so a click maps to the pixel drawn under it.
pub fn fit(raster: Raster, cells: (u16, u16), pixels: (u32, u32)) -> (u16, u16) {
    let (cell_w, cell_h) = (
        u32::from(raster.cell_width.max(1)),
        u32::from(raster.cell_height.max(1)),
    );
    let (cols, rows) = (u32::from(cells.0.max(1)), u32::from(cells.1.max(1)));
    let (width, height) = (f64::from(pixels.0.max(1)), f64::from(pixels.1.max(1)));
    let scale = f64::min(
        f64::from(cols * cell_w) / width,
        f64::from(rows * cell_h) / height,
    )
    .min(if raster.halfblocks {
        f64::INFINITY
    } else {
        MAX_SCALE
            .min(f64::from(MAX_SIDE) / width)
            .min(f64::from(MAX_SIDE) / height)
    });
    let fit_cols = ((width * scale) as u32 / cell_w).clamp(1, cols);
    let fit_rows = ((height * scale) as u32 / cell_h).clamp(1, rows);
    (fit_cols as u16, fit_rows as u16)
}

/// One image to encode.
pub struct ImageJob {
    pub key: ImageKey,
    pub volume: Volume,
    pub explanation: Option<Arc<Explanation>>,
    /// The series' lesion mask, when the key outlines it.
    pub truth: Option<Arc<GroundTruth>>,
    pub generation: u64,
}

/// An encoder's answer; `image` is None when the job was skipped as stale.
pub struct Encoded {
    pub key: ImageKey,
    pub image: Option<Result<Protocol, String>>,
}

/// The explorer's encoded images and what is being encoded.
pub struct Images {
    pub store: Lru<ImageKey, Protocol>,
    pub pending: HashSet<ImageKey>,
    /// Bumped whenever the wanted images change; older jobs are skipped.
    pub generation: u64,
    /// The last image drawn per plane, shown until its replacement is encoded.
    pub last: [Option<ImageKey>; 3],
}

impl Images {
    pub fn new(capacity: usize) -> Images {
        Images {
            store: Lru::new(capacity),
            pending: HashSet::new(),
            generation: 0,
            last: [None; 3],
        }
    }

    /// The image to draw for `plane`: the wanted one, else the previous one while it encodes.
    pub fn for_pane(&self, wanted: Option<ImageKey>, plane: Plane) -> Option<&Protocol> {
        wanted.and_then(|key| self.store.peek(&key)).or_else(|| {
            self.last[plane.index()]
                .filter(|key| Some(key.plane) == wanted.map(|w| w.plane))
                .and_then(|key| self.store.peek(&key))
        })
    }

    /// Stores an encoded image; `on_screen` says it is one the panes want now (it then stays
    /// shown until its successor is encoded). Returns the encoding error, if any.
    pub fn received(&mut self, encoded: Encoded, on_screen: bool) -> Option<String> {
        self.pending.remove(&encoded.key);
        match encoded.image? {
            Ok(protocol) => {
                if on_screen {
                    self.last[encoded.key.plane.index()] = Some(encoded.key);
                }
                self.store.insert(encoded.key, protocol, 1);
                None
            }
            Err(err) => Some(err),
        }
    }
}

/// The image key for `plane` drawn into `area`, when its series is loaded.
pub fn wanted_key(app: &App, plane: Plane, area: Rect) -> Option<ImageKey> {
    let case = app.current()?;
    let count = app.volume(case, plane)?.dim().0;
    if area.width == 0 || area.height == 0 || count == 0 {
        return None;
    }
    let slice = app.slice(plane);
    let display = app.display();
    let series = app.series_index(case, plane);
    let cam = app.cam_key(case, plane, display.method);
    let overlay = (display.overlay && app.cams().contains(&cam)).then_some(OverlayKey {
        cam,
        colormap: display.colormap,
        opacity_percent: (display.opacity * 100.0).round() as u8,
        heat_floor_percent: (display.heat_floor * 100.0).round() as u8,
    });
    let outline = (app.truth_shown() && app.truth(case, plane).is_some()).then_some(app.task());
    Some(ImageKey {
        case,
        plane,
        series,
        slice,
        cols: area.width,
        rows: area.height,
        overlay,
        raw_beside: display.raw_beside,
        mark: app.cursor_pixel(plane),
        outline,
    })
}

/// The job for `key`, from the app's loaded series and CAMs.
pub fn job_for(app: &App, key: ImageKey, generation: u64) -> Option<ImageJob> {
    let volume = app.volume_at(key.series_ref())?.clone();
    let explanation = key
        .overlay
        .and_then(|overlay| app.cams().peek(&overlay.cam).cloned());
    let truth = key
        .outline
        .and_then(|_| app.truth(key.case, key.plane).cloned());
    Some(ImageJob {
        key,
        volume,
        explanation,
        truth,
        generation,
    })
}

/// The slice (and its overlay) at the series' own resolution: raw | overlay when asked.
pub fn compose(job: &ImageJob) -> RgbImage {
    let (_, h, w) = job.volume.dim();
    let slice = job.key.slice;
    let panels = if job.key.raw_beside { 2 } else { 1 };
    let mut canvas = RgbImage::new((panels * w) as u32, h as u32);
    let overlay = job
        .key
        .overlay
        .zip(job.explanation.as_ref())
        .filter(|(_, explanation)| explanation.maps.dim() == job.volume.dim());
    let threshold = overlay.map_or(0, |(settings, explanation)| {
        let zero = floor::zero_level(
            &explanation.raw,
            slice,
            settings.cam.method,
            settings.cam.normalization,
        );
        floor::threshold(zero, f32::from(settings.heat_floor_percent) / 100.0)
    });
    for r in 0..h {
        for c in 0..w {
            let gray = job.volume[[slice, r, c]];
            let pixel = match overlay {
                Some((settings, explanation)) => blend(
                    gray,
                    explanation.maps[[slice, r, c]],
                    settings.colormap,
                    f32::from(settings.opacity_percent) / 100.0,
                    threshold,
                ),
                None => [gray; 3],
            };
            let x = if panels == 2 { w + c } else { c };
            canvas.put_pixel(x as u32, r as u32, Rgb(pixel));
            if panels == 2 {
                canvas.put_pixel(c as u32, r as u32, Rgb([gray; 3]));
            }
        }
    }
    canvas
}

/// The most an MRI slice is enlarged: more adds bytes, not detail (and a sixel over 1 MiB is
/// dropped by tmux's passthrough).
const MAX_SCALE: f64 = 2.0;
/// Pixels on a side at most: xterm drops larger sixel images (its `maxGraphicSize` defaults
/// to 1000×1000).
const MAX_SIDE: u32 = 1000;

/// Composes, scales to fit the pane (keeping the aspect, smooth filter, whole cells), marks
/// the cursor and encodes for `picker`'s protocol. Halfblocks are made straight from one pixel
/// per half cell, not from a font-sized picture.
pub fn encode(picker: &Picker, job: &ImageJob) -> Result<Protocol, String> {
    let (_, h, w) = job.volume.dim();
    let panels = if job.key.raw_beside { 2 } else { 1 };
    let raster = Raster::of(picker);
    let (fit_cols, fit_rows) = fit(
        raster,
        (job.key.cols, job.key.rows),
        ((panels * w) as u32, h as u32),
    );
    let resized = render(
        job,
        u32::from(fit_cols) * u32::from(raster.cell_width),
        u32::from(fit_rows) * u32::from(raster.cell_height),
    );
    let size = Size::new(fit_cols, fit_rows);
    let failed = |e: ratatui_image::errors::Errors| format!("encoding the image: {e}");
    match picker.protocol_type() {
        ProtocolType::Halfblocks => Halfblocks::new(DynamicImage::ImageRgb8(resized), size)
            .map(Protocol::Halfblocks)
            .map_err(failed),
        ProtocolType::Sixel => sixel(&resized, size, picker.tmux_detected()).map(Protocol::Sixel),
        _ => picker
            .new_protocol(DynamicImage::ImageRgb8(resized), size, Resize::Fit(None))
            .map_err(failed),
    }
}

/// The composed slice scaled to `width` × `height` pixels (smooth filter), with the lesion's
/// outline and the cursor's cross-hair drawn in each panel.
pub fn render(job: &ImageJob, width: u32, height: u32) -> RgbImage {
    let composed = compose(job);
    let (width, height) = (width.max(1), height.max(1));
    let mut resized = if width >= composed.width() && height >= composed.height() {
        enlarge_bilinear(&composed, width, height)
    } else {
        imageops::resize(&composed, width, height, imageops::FilterType::Triangle)
    };
    let panels = if job.key.raw_beside { 2 } else { 1 };
    if let (Some(task), Some(truth)) = (job.key.outline, &job.truth) {
        outline::draw(&mut resized, &truth.mask, job.key.slice, task, panels);
    }
    if let Some(pixel) = job.key.mark {
        let (_, h, w) = job.volume.dim();
        mark(&mut resized, pixel, (h, w), panels);
    }
    resized
}

/// The cross-hair's colour: magenta, which none of the heat colormaps (jet, turbo, inferno,
/// gray) has, nor their blends with the gray slice.
pub const MARK: Rgb<u8> = Rgb([255, 0, 255]);

/// The geometry of the cross-hair for a panel `side` pixels across: (gap, arm, thickness).
/// Four arms around the point, a gap at the centre so the voxel itself stays visible.
pub fn mark_shape(side: u32) -> (i64, i64, i64) {
    let side = i64::from(side);
    ((side / 40).max(2), (side / 10).max(3), (side / 250).max(1))
}

/// Draws the cross-hair on `image` (of `panels` side by side, each a slice of `dim` rows ×
/// columns) centred on slice pixel (row, column).
fn mark(image: &mut RgbImage, (row, column): (u16, u16), dim: (usize, usize), panels: u32) {
    let (rows, columns) = (dim.0.max(1) as f64, dim.1.max(1) as f64);
    let panel_w = image.width() / panels;
    let panel_h = image.height();
    let (gap, arm, thick) = mark_shape(panel_w.min(panel_h));
    let cy = ((f64::from(row) + 0.5) / rows * f64::from(panel_h)) as i64;
    for panel in 0..panels {
        let left = i64::from(panel * panel_w);
        let cx = left + ((f64::from(column) + 0.5) / columns * f64::from(panel_w)) as i64;
        let mut put = |x: i64, y: i64| {
            let inside = (left..left + i64::from(panel_w)).contains(&x)
                && (0..i64::from(panel_h)).contains(&y);
            if inside {
                image.put_pixel(x as u32, y as u32, MARK);
            }
        };
        for along in gap..gap + arm {
            for across in -(thick / 2)..thick - thick / 2 {
                put(cx - along, cy + across);
                put(cx + along, cy + across);
                put(cx + across, cy - along);
                put(cx + across, cy + along);
            }
        }
    }
}

/// Bilinear enlargement with half-pixel centres (as OpenCV's resize), several times faster
/// than `imageops::resize` for the 1–2× enlargements the panes need.
pub fn enlarge_bilinear(source: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (src_w, src_h) = (source.width() as usize, source.height() as usize);
    let taps = |out: u32, src: usize| -> Vec<(usize, usize, f32)> {
        let ratio = src as f32 / out as f32;
        (0..out)
            .map(|i| {
                let at = ((i as f32 + 0.5) * ratio - 0.5).clamp(0.0, (src - 1) as f32);
                let low = at.floor() as usize;
                (low, (low + 1).min(src - 1), at - low as f32)
            })
            .collect()
    };
    let (columns, rows) = (taps(width, src_w), taps(height, src_h));
    let pixels = source.as_raw();
    let mut out = vec![0u8; width as usize * height as usize * 3];
    for (y, &(top, bottom, wy)) in rows.iter().enumerate() {
        let line = &mut out[y * width as usize * 3..(y + 1) * width as usize * 3];
        for (x, &(left, right, wx)) in columns.iter().enumerate() {
            for channel in 0..3 {
                let at = |r: usize, c: usize| f32::from(pixels[(r * src_w + c) * 3 + channel]);
                let upper = at(top, left) + (at(top, right) - at(top, left)) * wx;
                let lower = at(bottom, left) + (at(bottom, right) - at(bottom, left)) * wx;
                line[x * 3 + channel] = (upper + (lower - upper) * wy).round() as u8;
            }
        }
    }
    RgbImage::from_raw(width, height, out).unwrap_or_else(|| RgbImage::new(width, height))
}

/// A sixel image as ratatui-image's `Sixel` protocol draws it (its cells erased first, the
/// whole wrapped for tmux passthrough), encoded without dithering: half the time of
/// ratatui-image's default and half the bytes, with a 256-colour palette.
fn sixel(image: &RgbImage, size: Size, is_tmux: bool) -> Result<Sixel, String> {
    let rgba = DynamicImage::ImageRgb8(image.clone()).to_rgba8();
    let options = icy_sixel::EncodeOptions {
        diffusion: 0.0,
        ..icy_sixel::EncodeOptions::default()
    };
    let encoded = icy_sixel::sixel_encode(
        rgba.as_raw(),
        image.width() as usize,
        image.height() as usize,
        &options,
    )
    .map_err(|e| format!("sixel encoding: {e}"))?;
    let (start, escape, end) = Parser::tmux_start_escape_end(is_tmux);
    let mut data = String::with_capacity(encoded.len() + 64 * usize::from(size.height));
    data.push_str(start);
    // Erase the image's cells first, as ratatui-image does.
    if size.height == 1 {
        data.push_str(&format!("{escape}[{}X", size.width));
    } else {
        for _ in 0..size.height {
            data.push_str(&format!("{escape}[{}X{escape}[1B", size.width));
        }
        data.push_str(&format!("{escape}[{}A", size.height));
    }
    if is_tmux {
        // Inside the passthrough every ESC is doubled, the sixel's own included.
        data.push_str(&encoded.replace('\x1b', "\x1b\x1b"));
    } else {
        data.push_str(&encoded);
    }
    data.push_str(end);
    Ok(Sixel {
        data,
        size,
        is_tmux,
    })
}

/// The encoder thread's handle; dropping it ends the thread.
pub struct Encoder {
    jobs: Sender<ImageJob>,
    latest: Arc<AtomicU64>,
}

impl Encoder {
    /// Starts the thread; `deliver` gets every answer (on the encoder thread).
    pub fn spawn(
        picker: Picker,
        mut deliver: impl FnMut(Encoded) + Send + 'static,
    ) -> std::io::Result<Encoder> {
        let (jobs, inbox) = mpsc::channel::<ImageJob>();
        let latest = Arc::new(AtomicU64::new(0));
        let newest = Arc::clone(&latest);
        std::thread::Builder::new()
            .name("kneecam-encoder".into())
            .spawn(move || {
                while let Ok(first) = inbox.recv() {
                    let batch: Vec<ImageJob> =
                        std::iter::once(first).chain(inbox.try_iter()).collect();
                    for job in batch {
                        let stale = job.generation < newest.load(Ordering::SeqCst);
                        let image = (!stale).then(|| encode(&picker, &job));
                        deliver(Encoded {
                            key: job.key,
                            image,
                        });
                    }
                }
            })?;
        Ok(Encoder { jobs, latest })
    }

    pub fn submit(&self, job: ImageJob) -> bool {
        self.latest.fetch_max(job.generation, Ordering::SeqCst);
        self.jobs.send(job).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array3;

    use super::*;
    use crate::cam::{Method, Normalization};
    use crate::data::Task;

    fn job(overlay: bool, raw_beside: bool) -> ImageJob {
        let volume = Arc::new(Array3::from_shape_fn((3, 8, 8), |(s, r, _)| {
            (s * 40 + r * 10) as u8
        }));
        let cam = CamKey {
            case: 0,
            series: 0,
            task: Task::Acl,
            plane: Plane::Axial,
            method: Method::Cam,
            normalization: Normalization::Exam,
        };
        let explanation = Explanation {
            logits: vec![0.0, 1.0],
            probability: 0.7,
            class: 1,
            raw: Array3::zeros((3, 2, 2)),
            scores: vec![0.0, 1.0, -1.0],
            maps: Array3::from_elem((3, 8, 8), 255),
            bias: 0.0,
        };
        ImageJob {
            key: ImageKey {
                case: 0,
                plane: Plane::Axial,
                series: 0,
                slice: 1,
                cols: 10,
                rows: 5,
                overlay: overlay.then_some(OverlayKey {
                    cam,
                    colormap: Colormap::Jet,
                    opacity_percent: 100,
                    heat_floor_percent: 0,
                }),
                raw_beside,
                mark: None,
                outline: None,
            },
            volume,
            explanation: Some(Arc::new(explanation)),
            truth: None,
            generation: 1,
        }
    }

    #[test]
    fn overlay_colours_the_slice_and_raw_stays_gray() {
        let plain = compose(&job(false, false));
        assert!(plain.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
        let hot = compose(&job(true, true));
        assert_eq!(hot.dimensions(), (16, 8));
        assert_eq!(hot.get_pixel(0, 3), &Rgb([70; 3]), "left panel: raw slice");
        assert_eq!(
            hot.get_pixel(8, 3),
            &Rgb(Colormap::Jet.rgb(255)),
            "right: heat"
        );
    }

    #[test]
    fn the_cross_hair_is_drawn_at_the_cursors_pixel_in_each_panel_with_a_gap() {
        let mut marked = job(true, true);
        // Row 2, column 5 of the 8×8 slice; drawn 8× larger: 128×64 for the two panels.
        marked.key.mark = Some((2, 5));
        let image = render(&marked, 128, 64);
        let (gap, arm, _) = mark_shape(64);
        let (cx, cy) = (5 * 8 + 4, 2 * 8 + 4);
        for left in [0, 64] {
            let at = |dx: i64, dy: i64| *image.get_pixel((left + cx + dx) as u32, (cy + dy) as u32);
            for (dx, dy) in [(gap, 0), (-gap, 0), (0, gap), (0, -gap)] {
                assert_eq!(at(dx, dy), MARK, "arm at {dx},{dy} (panel at {left})");
            }
            assert_ne!(at(0, 0), MARK, "the voxel itself stays visible");
            assert_ne!(at(gap + arm + 1, 0), MARK, "a small cross, not a line");
        }
        let plain = render(&job(true, true), 128, 64);
        assert!(plain.pixels().all(|p| *p != MARK), "no cursor, no mark");
        // By the edge: clipped to its own panel (the right arm of the left panel stops at
        // its edge, the up arms at the top).
        marked.key.mark = Some((0, 7));
        let image = render(&marked, 128, 64);
        assert_eq!(*image.get_pixel(63, 4), MARK);
        assert_eq!(*image.get_pixel(60, 4 + gap as u32), MARK);
        assert_ne!(*image.get_pixel(64, 4), MARK);
    }

    #[test]
    fn the_cross_hair_colour_is_none_of_the_colormaps() {
        for colormap in Colormap::ALL {
            for value in 0..=255 {
                let [r, g, b] = colormap.rgb(value);
                let like_mark = r >= 160 && b >= 160 && i32::from(g) + 100 < i32::from(r.min(b));
                assert!(
                    !like_mark,
                    "{colormap:?} {value}: {r},{g},{b} looks like the mark"
                );
            }
        }
    }

    #[test]
    fn bilinear_enlargement_matches_opencv_half_pixel_centres() {
        let source = RgbImage::from_fn(2, 1, |x, _| Rgb([if x == 0 { 0 } else { 100 }; 3]));
        let wide = enlarge_bilinear(&source, 4, 2);
        let row: Vec<u8> = (0..4).map(|x| wide.get_pixel(x, 1)[0]).collect();
        assert_eq!(row, [0, 25, 75, 100]);
        let flat = RgbImage::from_pixel(3, 3, Rgb([7, 8, 9]));
        assert!(enlarge_bilinear(&flat, 7, 5)
            .pixels()
            .all(|p| *p == Rgb([7, 8, 9])));
    }

    #[test]
    fn sixel_is_wrapped_for_tmux_with_every_escape_doubled() {
        let image = RgbImage::from_pixel(8, 12, Rgb([200, 10, 10]));
        let plain = sixel(&image, Size::new(2, 2), false).expect("sixel");
        assert!(plain.data.contains("\x1bP") && plain.data.ends_with("\x1b\\"));
        let wrapped = sixel(&image, Size::new(2, 2), true).expect("sixel");
        assert!(
            wrapped.data.starts_with("\x1bPtmux;\x1b\x1b["),
            "{:?}",
            &wrapped.data[..12]
        );
        let inner = &wrapped.data["\x1bPtmux;".len()..wrapped.data.len() - 2];
        assert!(inner.split("\x1b\x1b").all(|part| !part.contains('\x1b')));
    }

    #[test]
    fn encoding_fits_the_pane_keeping_the_aspect() {
        let picker = Picker::halfblocks();
        // 8×8 pixels into 10×5 cells of 1×2 pixels: 10×10 pixels, 10×5 cells.
        let protocol = encode(&picker, &job(true, false)).expect("halfblocks");
        let area = protocol.size();
        assert_eq!((area.width, area.height), (10, 5));
        // Side by side, 16×8 into 10×5: 10 wide, 5 pixels high → 2 rows.
        let protocol = encode(&picker, &job(true, true)).expect("halfblocks");
        assert_eq!((protocol.size().width, protocol.size().height), (10, 2));
        let mut sixel = Picker::halfblocks();
        sixel.set_protocol_type(ProtocolType::Sixel);
        // 10×20-pixel cells: 8×8 pixels at most doubled: 16×16 pixels → 1×0.8 cells → 1×1.
        let protocol = encode(&sixel, &job(true, false)).expect("sixel");
        assert_eq!((protocol.size().width, protocol.size().height), (1, 1));
    }
}
