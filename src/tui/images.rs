//! Terminal images: the slice with its CAM overlay composed at the pane's pixel size and
//! encoded for the terminal's protocol, off the UI thread, cached per (exam, plane, slice,
//! cell size, overlay settings).
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;

use image::{imageops, DynamicImage, Rgb, RgbImage};
use ratatui::layout::{Rect, Size};
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::halfblocks::Halfblocks;
use ratatui_image::protocol::Protocol;
use ratatui_image::Resize;

use crate::cam::colormap::{blend, Colormap};
use crate::cam::Explanation;
use crate::data::Plane;

use super::app::{App, CamKey, Volume};
use super::cache::Lru;

/// The overlay part of an image's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OverlayKey {
    pub cam: CamKey,
    pub colormap: Colormap,
    pub opacity_percent: u8,
    pub heat_floor: u8,
}

/// Everything that decides an encoded image's pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImageKey {
    pub case: usize,
    pub plane: Plane,
    pub slice: usize,
    pub cols: u16,
    pub rows: u16,
    /// None: the raw slice (overlay off, or its CAM not here yet).
    pub overlay: Option<OverlayKey>,
    pub raw_beside: bool,
}

/// One image to encode.
pub struct ImageJob {
    pub key: ImageKey,
    pub volume: Volume,
    pub explanation: Option<Arc<Explanation>>,
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
    let count = app.volume(case, plane)?.as_ref().ok()?.dim().0;
    if area.width == 0 || area.height == 0 || count == 0 {
        return None;
    }
    let slice = app.slices[plane.index()].min(count - 1);
    let cam = app.cam_key(case, plane, app.display.method);
    let overlay = (app.display.overlay && app.cams.contains(&cam)).then_some(OverlayKey {
        cam,
        colormap: app.display.colormap,
        opacity_percent: (app.display.opacity * 100.0).round() as u8,
        heat_floor: app.display.heat_floor,
    });
    Some(ImageKey {
        case,
        plane,
        slice,
        cols: area.width,
        rows: area.height,
        overlay,
        raw_beside: app.display.raw_beside,
    })
}

/// The job for `key`, from the app's loaded series and CAMs.
pub fn job_for(app: &App, key: ImageKey, generation: u64) -> Option<ImageJob> {
    let volume = app.volume(key.case, key.plane)?.as_ref().ok()?.clone();
    let explanation = key
        .overlay
        .and_then(|overlay| app.cams.peek(&overlay.cam).cloned());
    Some(ImageJob {
        key,
        volume,
        explanation,
        generation,
    })
}

/// The slice (and its overlay) at the series' own resolution: raw | overlay when asked.
pub fn compose(job: &ImageJob) -> RgbImage {
    let (_, h, w) = job.volume.dim();
    let slice = job.key.slice;
    let panels = if job.key.raw_beside { 2 } else { 1 };
    let mut canvas = RgbImage::new((panels * w) as u32, h as u32);
    let overlay = job.key.overlay.zip(job.explanation.as_ref());
    for r in 0..h {
        for c in 0..w {
            let gray = job.volume[[slice, r, c]];
            let pixel = match overlay {
                Some((settings, explanation)) if explanation.maps.dim() == job.volume.dim() => {
                    blend(
                        gray,
                        explanation.maps[[slice, r, c]],
                        settings.colormap,
                        f32::from(settings.opacity_percent) / 100.0,
                        settings.heat_floor,
                    )
                }
                _ => [gray; 3],
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

/// Composes, scales to fit the pane (keeping the aspect, smooth filter, whole cells) and
/// encodes for `picker`'s protocol. Halfblocks are made straight from one pixel per half
/// cell, not from a font-sized picture.
pub fn encode(picker: &Picker, job: &ImageJob) -> Result<Protocol, String> {
    let composed = compose(job);
    let halfblocks = picker.protocol_type() == ProtocolType::Halfblocks;
    let (cell_w, cell_h) = if halfblocks {
        (1, 2)
    } else {
        let font = picker.font_size();
        (u32::from(font.width.max(1)), u32::from(font.height.max(1)))
    };
    let (cols, rows) = (u32::from(job.key.cols), u32::from(job.key.rows));
    let (width, height) = (f64::from(composed.width()), f64::from(composed.height()));
    let scale = f64::min(
        f64::from(cols * cell_w) / width,
        f64::from(rows * cell_h) / height,
    )
    .min(if halfblocks { f64::INFINITY } else { MAX_SCALE });
    let fit_cols = ((width * scale) as u32 / cell_w).clamp(1, cols);
    let fit_rows = ((height * scale) as u32 / cell_h).clamp(1, rows);
    let resized = imageops::resize(
        &composed,
        fit_cols * cell_w,
        fit_rows * cell_h,
        imageops::FilterType::Triangle,
    );
    let size = Size::new(fit_cols as u16, fit_rows as u16);
    let image = DynamicImage::ImageRgb8(resized);
    if halfblocks {
        return Halfblocks::new(image, size)
            .map(Protocol::Halfblocks)
            .map_err(|e| format!("encoding the image: {e}"));
    }
    picker
        .new_protocol(image, size, Resize::Fit(None))
        .map_err(|e| format!("encoding the image: {e}"))
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
                slice: 1,
                cols: 10,
                rows: 5,
                overlay: overlay.then_some(OverlayKey {
                    cam,
                    colormap: Colormap::Jet,
                    opacity_percent: 100,
                    heat_floor: 0,
                }),
                raw_beside,
            },
            volume,
            explanation: Some(Arc::new(explanation)),
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
