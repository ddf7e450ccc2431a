//! The kitty and iTerm2 paths, proven at the byte level (Debian's kitty is too old for the
//! placeholders ratatui-image uses, and no terminal here speaks iTerm2's protocol): the explorer
//! headless with the protocol forced (10×20-pixel cells), each frame drawn by the explorer's own
//! `draw_frame` through ratatui's crossterm backend into memory, the bytes read back by a
//! terminal model (`tests/support/graphics.rs`). Checked for each protocol: the image decoded off
//! the wire is, pixel for pixel, the one kneecam composes for that slice (`images::render`), in
//! the cells its pane gives it; a slice flip replaces it (the screen shows the new image alone;
//! kitty is never sent an image twice, so flipping back and forth adds nothing to what it
//! holds); a frame of an unchanged state sends no graphics and prints nothing.
use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;

use image::{DynamicImage, RgbImage, RgbaImage};
use kneecam::config::Config;
use kneecam::tui::action::Action;
use kneecam::tui::images::{self, ImageKey, Raster};
use kneecam::tui::{ui, Driver, Event};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use ratatui_image::picker::{Picker, ProtocolType};

use super::{support, ENGINE, PATIENCE};

#[path = "../support/graphics.rs"]
mod wire;
use wire::{Capture, Frame, Glass};

/// The benchmark's terminal (`benches/protocols.rs`).
const SIZE: (u16, u16) = (100, 40);

/// The defaults without a heat floor: every overlay pixel coloured, so that every image sent
/// shows the CAM's colours whatever slice it is (the floor is tested in `truth.rs`).
fn every_pixel_coloured() -> Config {
    let mut config = Config::defaults();
    config.view.display.heat_floor = 0.0;
    config
}

/// A picker that speaks `protocol` with 10×20-pixel cells (`Picker::halfblocks`'s font size;
/// `from_fontsize` is deprecated), as `graphics.protocol` forces one.
fn picker(protocol: ProtocolType) -> Picker {
    let mut picker = Picker::halfblocks();
    picker.set_protocol_type(protocol);
    picker
}

/// The explorer's terminal: ratatui's crossterm backend writing into memory, read by the glass.
struct Wire {
    terminal: Terminal<CrosstermBackend<Capture>>,
    written: Capture,
    area: Rect,
    last_layout: Option<kneecam::tui::Screen>,
    glass: Glass,
}

impl Wire {
    fn new((width, height): (u16, u16), raster: Raster) -> Wire {
        let area = Rect::new(0, 0, width, height);
        let (terminal, written) = wire::capturing_terminal(area);
        let cell = (u32::from(raster.cell_width), u32::from(raster.cell_height));
        Wire {
            terminal,
            written,
            area,
            last_layout: None,
            glass: Glass::new(width, height, cell),
        }
    }

    /// One turn of the explorer's loop (`tui::run_in`): the encoder brought in line with the
    /// screen, the images on it marked used, the frame drawn; what reached the terminal, as
    /// the terminal read it.
    fn frame(&mut self, driver: &mut Driver) -> Frame {
        driver.sync();
        driver.touch_visible();
        kneecam::tui::draw_frame(&mut self.terminal, self.area, driver, &mut self.last_layout)
            .expect("draws");
        let frame = self.glass.feed(&self.written.take());
        assert_eq!(
            (frame.sync_begin, frame.sync_end),
            (1, 1),
            "each frame is one synchronized update"
        );
        frame
    }
}

/// What one pane should show: its image's key, the cells it takes, its pixels.
struct Shown {
    key: ImageKey,
    cells: Rect,
    pixels: RgbaImage,
}

/// The images the panes show now, composed with kneecam's own functions as the encoder does
/// (the slice with its CAM overlay, fitted to whole cells, scaled to their pixels).
fn shown(driver: &Driver, area: Rect) -> Vec<Shown> {
    let app = driver.app();
    let layout = ui::layout(area, app).expect("the screen is big enough");
    layout
        .panes
        .iter()
        .map(|pane| {
            let key = images::wanted_key(app, pane.plane, pane.image).expect("an image wanted");
            assert!(
                key.overlay.is_some(),
                "the {} CAM is on its slice",
                pane.plane
            );
            let job = images::job_for(app, key, 0).expect("its series and CAM are here");
            let (_, height, width) = job.volume.dim();
            let panels = if key.raw_beside { 2 } else { 1 };
            let raster = app.info().raster;
            let (cols, rows) = images::fit(
                raster,
                (key.cols, key.rows),
                ((panels * width) as u32, height as u32),
            );
            let rgb: RgbImage = images::render(
                &job,
                u32::from(cols) * u32::from(raster.cell_width),
                u32::from(rows) * u32::from(raster.cell_height),
            );
            Shown {
                key,
                cells: ui::image_rect(pane.image, (cols, rows)),
                pixels: DynamicImage::ImageRgb8(rgb).to_rgba8(),
            }
        })
        .collect()
}

/// Panics unless `decoded` is `expected`, pixel for pixel, and shows a CAM's colours.
fn same_pixels(decoded: &RgbaImage, expected: &RgbaImage, what: &str) {
    assert_eq!(decoded.dimensions(), expected.dimensions(), "{what}: size");
    let differ = decoded
        .pixels()
        .zip(expected.pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differ, 0,
        "{what}: {differ} pixels differ from the composed image"
    );
    let heat = decoded.pixels().filter(|p| p[0] != p[1] || p[1] != p[2]);
    assert!(heat.count() > 0, "{what}: no overlay colour at all");
}

/// The kitty images on screen, each checked against its pane: placeholders filling the cells
/// the pane gives the image, at their own rows and columns, naming an image the terminal holds
/// with a virtual placement of that many cells, its pixels the composed ones. Returns the ids
/// pane by pane.
fn kitty_on_screen(glass: &Glass, shown: &[Shown]) -> Vec<u32> {
    let on_screen = glass.kitty_on_screen();
    assert_eq!(
        on_screen.len(),
        shown.len(),
        "one image per pane on screen, no more: {:?}",
        on_screen.keys()
    );
    let mut by_rect = BTreeMap::new();
    for (id, cells) in &on_screen {
        let rect = wire::placed_rect(cells).unwrap_or_else(|e| panic!("image {id}: {e}"));
        by_rect.insert((rect.x, rect.y, rect.width, rect.height), *id);
    }
    shown
        .iter()
        .map(|want| {
            let rect = want.cells;
            let id = *by_rect
                .get(&(rect.x, rect.y, rect.width, rect.height))
                .unwrap_or_else(|| panic!("no image placed at {rect:?}: {by_rect:?}"));
            let image = glass
                .kitty
                .get(&id)
                .unwrap_or_else(|| panic!("the placeholders name image {id}, never transmitted"));
            assert!(image.virtual_placement, "image {id}: a=T with U=1");
            assert_eq!(
                (image.cols, image.rows),
                (Some(rect.width), Some(rect.height)),
                "image {id}: its placement's size in cells"
            );
            let what = format!(
                "kitty image {id} ({:?} slice {})",
                want.key.plane, want.key.slice
            );
            same_pixels(&image.pixels, &want.pixels, &what);
            id
        })
        .collect()
}

/// The iTerm2 image on screen (one pane): it alone covers the cells the pane gives it, its
/// pixels the composed ones. Returns its index.
fn iterm_on_screen(glass: &Glass, want: &Shown) -> usize {
    let on_screen = glass.iterm_on_screen();
    assert_eq!(
        on_screen.len(),
        1,
        "one inline image showing, no remnant of another: {:?}",
        on_screen.keys()
    );
    let (&index, cells) = on_screen.iter().next().expect("one image");
    let covered = wire::covered_rect(cells).unwrap_or_else(|e| panic!("image {index}: {e}"));
    assert_eq!(covered, want.cells, "image {index}: its cells");
    let image = &glass.iterm[index];
    assert_eq!(image.format, Some(image::ImageFormat::Png), "a PNG file");
    let what = format!("iTerm2 image {index} (slice {})", want.key.slice);
    same_pixels(&image.pixels, &want.pixels, &what);
    index
}

/// Two more frames of the same state: no graphics command in either and the screen as it was;
/// the first may print again only the cell that carried a kitty transmission (ratatui-image
/// drops it from that cell's symbol once sent), the second prints nothing: only the frame's
/// bracket (synchronized update, colours reset, cursor hidden).
fn unchanged(wire: &mut Wire, driver: &mut Driver, images: usize) {
    let before = wire.glass.cells().to_vec();
    let again = wire.frame(driver);
    assert!(again.graphics.is_empty(), "redrawn: {:?}", again.graphics);
    assert!(
        again.printed <= images,
        "redrawn: {} cells printed for {images} images",
        again.printed
    );
    assert!(
        wire.glass.cells() == before.as_slice(),
        "a redraw changed the screen"
    );
    let still = wire.frame(driver);
    assert!(still.graphics.is_empty(), "{:?}", still.graphics);
    assert_eq!(still.printed, 0, "a frame of the same state prints nothing");
    assert!(
        still.bytes <= 64,
        "a frame of the same state: {} bytes, more than its bracket",
        still.bytes
    );
}

/// The explorer at `size` cells with `protocol` forced, the first exam settled (its CAMs
/// computed, its image encoded), and a wire that has drawn nothing yet.
fn explorer(
    protocol: ProtocolType,
    root: &std::path::Path,
    size: (u16, u16),
) -> (Driver, Receiver<Event>, Wire) {
    let session = support::session(support::demo_cohort(), every_pixel_coloured(), root, None);
    let picker = picker(protocol);
    let raster = Raster::of(&picker);
    let (driver, inbox) = support::start(session, picker, size);
    (driver, inbox, Wire::new(size, raster))
}

/// `action`, and everything it sets going handled (headless, images are encoded inline).
fn act(driver: &mut Driver, inbox: &Receiver<Event>, action: Action) {
    driver.act(action);
    driver.settle(inbox, PATIENCE).expect("settles");
}

/// The slices a walk visits: the first, then forward `steps` (or to the end), then back and
/// forth between the last two `rounds` times.
fn walk(count: usize, steps: usize, rounds: usize) -> Vec<(Action, usize)> {
    let mut moves = vec![(Action::FirstSlice, 0)];
    let last = steps.min(count - 1);
    moves.extend((1..=last).map(|slice| (Action::NextSlice, slice)));
    for round in 0..rounds {
        moves.push(if round % 2 == 0 {
            (Action::PrevSlice, last - 1)
        } else {
            (Action::NextSlice, last)
        });
    }
    moves
}

#[test]
fn kitty_sends_the_composed_slice_once_and_a_flip_replaces_it() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox, mut wire) = explorer(ProtocolType::Kitty, root.path(), SIZE);

    // The first frame: the screen cleared, the image transmitted once (raw RGBA in chunks of
    // 4096 base64 bytes, as ratatui-image sends it to a terminal that was not asked for
    // compression), shown by placeholders.
    let first = wire.frame(&mut driver);
    assert_eq!(first.clears, 1, "the first frame clears the screen");
    let sent = first.kitty_transmits();
    assert_eq!(sent.len(), 1, "{:?}", first.graphics);
    let ids = kitty_on_screen(&wire.glass, &shown(&driver, wire.area));
    assert_eq!(ids, sent);
    let image = &wire.glass.kitty[&ids[0]];
    assert_eq!((image.format, image.compressed), (32, false));
    assert!(image.chunks > 1, "a whole slice does not fit one chunk");
    unchanged(&mut wire, &mut driver, 1);

    // Flips: a slice shown for the first time is transmitted once, under a new id; one shown
    // before is only placed again (the terminal holds it), so flipping back and forth adds
    // nothing. Either way the screen shows that image alone, and the terminal holds no more
    // images than slices were shown.
    let plane = driver.app().plane();
    let mut sent_for: BTreeMap<usize, u32> = BTreeMap::from([(driver.app().slice(plane), ids[0])]);
    for (action, slice) in walk(driver.app().slice_count(plane), 8, 6) {
        act(&mut driver, &inbox, action);
        assert_eq!(driver.app().slice(plane), slice);
        let frame = wire.frame(&mut driver);
        assert_eq!(frame.clears, 0, "a flip keeps the layout: no clear");
        let ids = kitty_on_screen(&wire.glass, &shown(&driver, wire.area));
        let sent = frame.kitty_transmits();
        match sent_for.get(&slice) {
            Some(&id) => {
                assert!(sent.is_empty(), "slice {slice} was sent before: {sent:?}");
                assert_eq!(ids, [id], "slice {slice}: its image of before");
            }
            None => {
                assert_eq!(sent, ids, "slice {slice}: its new image sent once");
                assert!(
                    !sent_for.values().any(|&id| id == ids[0]),
                    "slice {slice}: a new id"
                );
                sent_for.insert(slice, ids[0]);
            }
        }
        assert!(
            wire.glass.kitty.len() <= sent_for.len(),
            "the terminal holds {} images for {} slices shown",
            wire.glass.kitty.len(),
            sent_for.len()
        );
    }
    assert!(
        sent_for.len() >= 9,
        "the walk showed {} slices",
        sent_for.len()
    );
    unchanged(&mut wire, &mut driver, 1);
}

#[test]
fn kitty_three_planes_are_three_images_each_in_its_pane() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox, mut wire) = explorer(ProtocolType::Kitty, root.path(), (160, 40));
    act(&mut driver, &inbox, Action::ThreePlane);
    let first = wire.frame(&mut driver);
    let ids = kitty_on_screen(&wire.glass, &shown(&driver, wire.area));
    assert_eq!(ids.len(), 3);
    let mut sent = first.kitty_transmits();
    sent.sort_unstable();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(sent, unique, "three images, three ids, each sent once");
    unchanged(&mut wire, &mut driver, 3);

    // A flip of the current plane replaces its image only; the other two stay as they were.
    let current = driver.app().plane();
    let pane = shown(&driver, wire.area)
        .iter()
        .position(|s| s.key.plane == current)
        .expect("the current plane's pane");
    let slice = driver.app().slice(current);
    let flip = if slice + 1 < driver.app().slice_count(current) {
        Action::NextSlice
    } else {
        Action::PrevSlice
    };
    act(&mut driver, &inbox, flip);
    let frame = wire.frame(&mut driver);
    let after = kitty_on_screen(&wire.glass, &shown(&driver, wire.area));
    assert_eq!(frame.kitty_transmits(), [after[pane]]);
    for (n, (before, after)) in ids.iter().zip(&after).enumerate() {
        assert_eq!(before == after, n != pane, "pane {n}: {before} → {after}");
    }
}

#[test]
fn iterm2_sends_the_composed_slice_as_a_png_and_a_flip_covers_it() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox, mut wire) = explorer(ProtocolType::Iterm2, root.path(), SIZE);

    let first = wire.frame(&mut driver);
    assert_eq!(first.iterm_images().len(), 1, "{:?}", first.graphics);
    let mut showing = iterm_on_screen(&wire.glass, &shown(&driver, wire.area)[0]);
    unchanged(&mut wire, &mut driver, 1);

    // iTerm2 images have no ids: every flip, to a new slice or back, sends the whole file,
    // drawn over the one before, which no cell shows any more.
    let plane = driver.app().plane();
    for (action, slice) in walk(driver.app().slice_count(plane), 8, 6) {
        act(&mut driver, &inbox, action);
        assert_eq!(driver.app().slice(plane), slice);
        let frame = wire.frame(&mut driver);
        assert_eq!(frame.clears, 0, "a flip keeps the layout: no clear");
        let sent = frame.iterm_images();
        assert_eq!(sent.len(), 1, "slice {slice}: {:?}", frame.graphics);
        let now = iterm_on_screen(&wire.glass, &shown(&driver, wire.area)[0]);
        assert_eq!(now, sent[0], "slice {slice}: the image just sent shows");
        assert!(now > showing);
        showing = now;
    }
    unchanged(&mut wire, &mut driver, 1);
}

#[test]
fn kitty_an_image_under_a_cam_error_still_reaches_the_terminal() {
    // The error is in the caption, never over the image's cells: the kitty image's one-time
    // transmission rides in its first cell.
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let session = support::failing_session(root.path());
    let picker = picker(ProtocolType::Kitty);
    let raster = Raster::of(&picker);
    let (mut driver, _inbox) = support::start(session, picker, SIZE);
    let mut wire = Wire::new(SIZE, raster);
    let first = wire.frame(&mut driver);
    let on_screen = wire.glass.kitty_on_screen();
    assert!(!on_screen.is_empty(), "the raw slice is shown");
    for id in on_screen.keys() {
        assert!(
            wire.glass.kitty.contains_key(id),
            "placeholders name image {id}, which never reached the terminal: {:?}",
            first.graphics
        );
    }
}
