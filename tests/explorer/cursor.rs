//! The linked 3-D cursor and the series of a plane, on the state alone (series with geometry
//! made in memory), drawn into a TestBackend, and end to end: a flat `.npy` cohort with
//! geometry files read by the real loader, the cross-hair found in the encoded images.
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use kneecam::config::Config;
use kneecam::data::geometry::VolumeGeometry;
use kneecam::data::Plane;
use kneecam::engine::Priority;
use kneecam::tui::action::Action;
use kneecam::tui::app::{App, CursorView, Effect, Msg, SeriesInfo, SeriesRef};
use kneecam::tui::images::{self, Images};
use kneecam::tui::{ui, Event};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;

use super::{case, small_state, support, Fake, ENGINE, PATIENCE};

/// One plane of a cube of 16 mm (16 × 16 pixels of 1 mm; `slices` spread through it 16 /
/// `slices` mm apart): the three planes meet in it. Sagittal slice s, row r, column c lies at
/// (s·gap, c, 15 − r); coronal at (c, s·gap, 15 − r); axial at (c, r, 15 − s·gap).
fn cube(plane: Plane, slices: usize) -> VolumeGeometry {
    let gap = 16.0 / slices as f64;
    let (origins, column_step, row_step) = match plane {
        Plane::Sagittal => (
            (0..slices).map(|s| [s as f64 * gap, 0.0, 15.0]).collect(),
            [0.0, 1.0, 0.0],
            [0.0, 0.0, -1.0],
        ),
        Plane::Coronal => (
            (0..slices).map(|s| [0.0, s as f64 * gap, 15.0]).collect(),
            [1.0, 0.0, 0.0],
            [0.0, 0.0, -1.0],
        ),
        Plane::Axial => (
            (0..slices)
                .map(|s| [0.0, 0.0, 15.0 - s as f64 * gap])
                .collect(),
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
        ),
    };
    VolumeGeometry {
        origins,
        column_step,
        row_step,
        rows: 16,
        columns: 16,
    }
}

fn with_cube(which: SeriesRef, slices: usize) -> Result<Option<Arc<VolumeGeometry>>, String> {
    Ok(Some(Arc::new(cube(which.plane, slices))))
}

/// The five exams, every series 8 slices of the cube.
fn linked() -> Fake {
    Fake::with(small_state(Config::defaults()), 8, Some(with_cube))
}

fn press(fake: &mut Fake, c: char) {
    let modifiers = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    fake.send(Msg::Key(KeyEvent::new(KeyCode::Char(c), modifiers)));
}

fn located(fake: &Fake, plane: Plane) -> (usize, f64, f64) {
    let voxel = fake.app.cursor_voxel(plane).expect("the cursor lies on it");
    (voxel.slice, voxel.row, voxel.column)
}

#[test]
fn the_cursor_key_links_every_plane_and_slice_moves_carry_it_through_the_plane() {
    let mut fake = linked();
    let sagittal = Plane::Sagittal;
    assert_eq!(fake.app.plane(), sagittal);
    assert_eq!(fake.app.slice(Plane::Coronal), 4, "the middle slice first");
    // Another coronal slice, so that linking visibly moves it.
    fake.act(Action::Coronal);
    fake.act(Action::FirstSlice);
    fake.act(Action::Sagittal);

    // x: the cursor at the sagittal slice's centre, (8, 7.5, 7.5) mm.
    press(&mut fake, 'x');
    let cursor = fake.app.cursor().expect("set");
    assert_eq!(cursor.point, [8.0, 7.5, 7.5]);
    assert_eq!(located(&fake, sagittal), (4, 7.5, 7.5));
    // y 7.5 is nearest coronal slice 4 (y 8); z 7.5 nearest axial slice 4 (z 7).
    assert_eq!(located(&fake, Plane::Coronal), (4, 7.5, 8.0));
    assert_eq!(located(&fake, Plane::Axial), (4, 7.5, 8.0));
    for plane in Plane::ALL {
        let (slice, _, _) = located(&fake, plane);
        assert_eq!(fake.app.slice(plane), slice, "{plane} jumped to the cursor");
    }
    assert_eq!(fake.app.cursor_pixel(Plane::Coronal), Some((8, 8)));
    fake.app.check_invariants().expect("invariants");

    // The next sagittal slice: the cursor goes with it (x 10); the other planes keep their
    // slices, their cross-hairs move.
    fake.act(Action::NextSlice);
    assert_eq!(fake.app.cursor().expect("set").point, [10.0, 7.5, 7.5]);
    assert_eq!(located(&fake, sagittal), (5, 7.5, 7.5));
    assert_eq!(located(&fake, Plane::Coronal), (4, 7.5, 10.0));
    assert_eq!(fake.app.slice(Plane::Coronal), 4);

    // L: four sagittal columns on (y 11.5): the coronal plane follows to slice 6 (y 12).
    press(&mut fake, 'L');
    assert_eq!(located(&fake, sagittal), (5, 7.5, 11.5));
    assert_eq!(located(&fake, Plane::Coronal).0, 6);
    assert_eq!(fake.app.slice(Plane::Coronal), 6);
    // J K H: down, up, left; nudges stop at the slice's edge.
    press(&mut fake, 'J');
    assert_eq!(located(&fake, sagittal), (5, 11.5, 11.5));
    press(&mut fake, 'K');
    press(&mut fake, 'H');
    assert_eq!(located(&fake, sagittal), (5, 7.5, 7.5));
    for _ in 0..5 {
        press(&mut fake, 'L');
    }
    assert_eq!(located(&fake, sagittal), (5, 7.5, 15.0), "clamped");
    fake.app.check_invariants().expect("invariants");

    // The images mark the cursor's pixel.
    let area = Rect::new(0, 0, 40, 20);
    for plane in Plane::ALL {
        let key = images::wanted_key(&fake.app, plane, area).expect("a key");
        assert_eq!(key.mark, fake.app.cursor_pixel(plane), "{plane}");
        assert!(key.mark.is_some());
    }

    // X: no cursor; every plane stays where the cursor had it.
    let slices = Plane::ALL.map(|plane| fake.app.slice(plane));
    press(&mut fake, 'X');
    assert_eq!(fake.app.cursor(), None);
    assert_eq!(Plane::ALL.map(|plane| fake.app.slice(plane)), slices);
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn the_cursor_belongs_to_one_exam_and_a_task_change_keeps_it() {
    let mut fake = linked();
    press(&mut fake, 'x');
    fake.act(Action::NextTask);
    assert!(
        fake.app.cursor().is_some(),
        "the same exam: the cursor stays"
    );
    fake.act(Action::NextPatient);
    assert_eq!(fake.app.cursor(), None, "another exam: its own (none)");
    fake.act(Action::PrevPatient);
    assert_eq!(
        fake.app.cursor(),
        None,
        "and not the first exam's on return"
    );
    fake.app.check_invariants().expect("invariants");
    press(&mut fake, 'J');
    assert_eq!(fake.app.message(), Some("no cursor: x sets one"));
}

#[test]
fn without_geometry_the_cursor_keys_say_linking_needs_it() {
    let mut fake = super::small_app();
    press(&mut fake, 'x');
    assert_eq!(fake.app.cursor(), None);
    assert_eq!(
        fake.app.message(),
        Some("linking planes needs geometry: this exam's series carry none (MRNet .npy)")
    );
    // A geometry that does not describe the volume (12 slices for 8) is no geometry either,
    // and the message says why.
    fn too_many(which: SeriesRef, _: usize) -> Result<Option<Arc<VolumeGeometry>>, String> {
        Ok(Some(Arc::new(cube(which.plane, 12))))
    }
    let mut fake = Fake::with(small_state(Config::defaults()), 8, Some(too_many));
    press(&mut fake, 'x');
    assert_eq!(fake.app.cursor(), None);
    let message = fake.app.message().unwrap_or_default();
    assert!(
        message.contains("needs geometry") && message.contains("12 slices of 16×16"),
        "{message}"
    );
    fake.app.check_invariants().expect("invariants");
}

/// The screen drawn from the state (no images encoded: the panes say "drawing…").
fn screen(app: &App) -> String {
    let (width, height) = app.size();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal
        .draw(|frame| ui::draw(frame, app, &Images::new(8)))
        .expect("draws");
    support::text(terminal.backend().buffer())
}

#[test]
fn the_three_plane_view_shows_where_the_cursor_is_and_is_not() {
    // The axial stack covers only the cube's top half (z 15 down to 8.5).
    fn short_axial(which: SeriesRef, slices: usize) -> Result<Option<Arc<VolumeGeometry>>, String> {
        let mut geometry = cube(which.plane, slices);
        if which.plane == Plane::Axial {
            for origin in &mut geometry.origins {
                origin[2] = 15.0 - (15.0 - origin[2]) / 2.0;
            }
        }
        Ok(Some(Arc::new(geometry)))
    }
    let mut fake = Fake::with(small_state(Config::defaults()), 8, Some(short_axial));
    fake.send(Msg::Resize(160, 40));
    fake.act(Action::ThreePlane);
    press(&mut fake, 'x');
    press(&mut fake, 'J'); // z 3.5: below the axial stack
    assert_eq!(fake.app.cursor_view(Plane::Axial), CursorView::Outside);
    assert!(matches!(
        fake.app.cursor_view(Plane::Coronal),
        CursorView::Located(_)
    ));
    let text = screen(&fake.app);
    let titles = text
        .lines()
        .find(|l| l.contains("sagittal · "))
        .expect("titles");
    // 42 columns a pane: the method gives way to the cursor's news.
    assert!(
        titles.contains("axial · cursor outside this series"),
        "{titles}"
    );
    assert!(titles.contains("coronal · contrib"), "{titles}");
    assert_eq!(titles.matches("cursor outside").count(), 1, "{titles}");
    let status = text.trim_end().lines().last().unwrap_or_default();
    assert!(status.contains("cursor 8.0, 7.5, 3.5 mm"), "{status}");
    fake.app.check_invariants().expect("invariants");
}

fn click(fake: &mut Fake, column: u16, row: u16) {
    fake.send(Msg::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    }));
}

#[test]
fn a_click_on_a_slice_sets_the_cursor_at_the_pixel_drawn_there() {
    let mut fake = linked();
    let (width, height) = fake.app.size();
    let layout = ui::layout(Rect::new(0, 0, width, height), &fake.app).expect("fits");
    let pane = layout.panes[0].image;
    // 16×16 pixels as halfblocks (one pixel a column, two a row) in the pane: a square of
    // `side` columns and side / 2 rows, centred across the pane, from its top.
    let side = pane.width.min(pane.height * 2) / 2 * 2;
    let (left, top) = (pane.x + (pane.width - side) / 2, pane.y);
    click(&mut fake, left, top);
    let (_, row, column) = located(&fake, Plane::Sagittal);
    assert!(row < 0.5 && column < 0.5, "top left: {row} {column}");
    click(&mut fake, left + side - 1, top + side / 2 - 1);
    let (_, row, column) = located(&fake, Plane::Sagittal);
    assert!(row > 14.5 && column > 14.5, "bottom right: {row} {column}");
    click(&mut fake, left + side / 2, top + side / 4);
    let (_, row, column) = located(&fake, Plane::Sagittal);
    assert!(
        (row - 7.5).abs() <= 0.5 && (column - 7.5).abs() <= 0.5,
        "middle: {row} {column}"
    );
    // Beside the image (in the pane, left of the square): nothing changes.
    let before = fake.app.cursor();
    click(&mut fake, left - 1, top);
    assert_eq!(fake.app.cursor(), before);

    // The raw slice beside the overlay: either panel maps to the same pixel.
    fake.act(Action::RawBeside);
    let size = images::fit(Default::default(), (pane.width, pane.height), (32, 16));
    let left = pane.x + (pane.width - size.0) / 2;
    click(&mut fake, left + size.0 / 2, top + size.1 - 1);
    let (_, row, column) = located(&fake, Plane::Sagittal);
    assert!(row > 14.5 && column < 0.5, "right panel: {row} {column}");
    click(&mut fake, left + size.0 / 2 - 1, top);
    let (_, row, column) = located(&fake, Plane::Sagittal);
    assert!(row < 0.5 && column > 14.5, "left panel: {row} {column}");
    fake.act(Action::RawBeside);

    // In the three-plane view a click on the axial slice shows that plane, the cursor there.
    fake.send(Msg::Resize(160, 40));
    fake.act(Action::ThreePlane);
    let layout = ui::layout(Rect::new(0, 0, 160, 40), &fake.app).expect("fits");
    let axial = layout
        .panes
        .iter()
        .find(|p| p.plane == Plane::Axial)
        .expect("an axial pane")
        .image;
    let side = axial.width.min(axial.height * 2) / 2 * 2;
    click(&mut fake, axial.x + (axial.width - side) / 2, axial.y);
    assert_eq!(fake.app.plane(), Plane::Axial);
    let (slice, row, column) = located(&fake, Plane::Axial);
    assert!(row < 0.5 && column < 0.5, "{row} {column}");
    assert_eq!(slice, fake.app.slice(Plane::Axial));
    fake.app.check_invariants().expect("invariants");
}

fn info(description: &str, choice: &str) -> SeriesInfo {
    SeriesInfo {
        description: description.into(),
        number: None,
        choice: choice.into(),
    }
}

/// Two exams; the first has three sagittal series.
fn with_series() -> Fake {
    let mut first = case("0000", true, 0.9);
    first.series[Plane::Sagittal.index()] = vec![
        info("SAG PD", "chosen: proton density, the reference's sagittal"),
        info("SAG T2 FS", "not chosen: fat-saturated"),
        info("", "not chosen: a localiser"),
    ];
    let cases = vec![first, case("0001", false, 0.1)];
    let models = kneecam::tui::app::ModelFacts::every_model();
    let app = App::new(cases, models, &Config::defaults(), Default::default());
    Fake::with(app, 8, Some(with_cube))
}

#[test]
fn the_series_key_cycles_a_planes_series_and_their_cams_never_mix() {
    let mut fake = with_series();
    let (stale_id, stale) = fake.interactive().expect("series 1's CAM asked for");
    assert_eq!((stale.plane, stale.series), (Plane::Sagittal, 0));
    press(&mut fake, 'x');

    press(&mut fake, 'S');
    assert_eq!(
        fake.app.message(),
        Some("sagittal series 2/3: SAG T2 FS — not chosen: fat-saturated")
    );
    assert_eq!(fake.app.series_index(0, Plane::Sagittal), 1);
    assert!(
        fake.cancelled.contains(&stale_id),
        "series 0's CAM is wanted no more"
    );
    let (id, key) = fake.interactive().expect("series 1's CAM asked for");
    assert_eq!((key.plane, key.series), (Plane::Sagittal, 1));
    assert!(
        fake.app
            .series_at(SeriesRef {
                case: 0,
                plane: Plane::Sagittal,
                series: 1
            })
            .is_some(),
        "series 1 read"
    );
    // The cursor is a point in the patient: it holds across series.
    assert!(fake.app.cursor_voxel(Plane::Sagittal).is_some());

    // Series 0's late answer is dropped; series 1's is shown for series 1 only, and leaves
    // the list's probability (the chosen series') alone.
    let probability = *fake.app.cases()[0]
        .planes
        .get(kneecam::data::Task::Acl, Plane::Sagittal);
    fake.answer(stale_id, stale, Priority::Interactive, vec![1.0; 8]);
    assert!(fake.app.cams().peek(&stale).is_none());
    fake.answer(id, key, Priority::Interactive, vec![0.5; 8]);
    let shown = fake
        .app
        .explanation(Plane::Sagittal)
        .expect("series 1's CAM");
    assert_eq!(shown.scores, vec![0.5; 8]);
    assert_eq!(
        *fake.app.cases()[0]
            .planes
            .get(kneecam::data::Task::Acl, Plane::Sagittal),
        probability
    );
    let text = screen(&fake.app);
    assert!(
        text.contains("sagittal · contrib · series 2/3: SAG T2 FS"),
        "{text}"
    );

    // The third series has no description; then round to the first, whose CAM is not the
    // second's.
    press(&mut fake, 'S');
    assert!(
        fake.app
            .message()
            .unwrap_or_default()
            .starts_with("sagittal series 3/3: (no description) — not chosen: a localiser"),
        "{:?}",
        fake.app.message()
    );
    press(&mut fake, 'S');
    assert_eq!(fake.app.series_index(0, Plane::Sagittal), 0);
    assert!(fake
        .app
        .explanation(Plane::Sagittal)
        .is_none_or(|e| e.scores != vec![0.5; 8]));
    fake.app.check_invariants().expect("invariants");

    // One series only.
    fake.act(Action::Axial);
    press(&mut fake, 'S');
    assert_eq!(fake.app.message(), Some("only one axial series"));
    fake.act(Action::NextPatient);
    fake.act(Action::Sagittal);
    press(&mut fake, 'S');
    assert_eq!(fake.app.message(), Some("only one sagittal series"));
    // Back on the first exam, its choice of series is remembered.
    fake.act(Action::PrevPatient);
    press(&mut fake, 'S');
    assert_eq!(fake.app.series_index(0, Plane::Sagittal), 1);
    fake.app.check_invariants().expect("invariants");
}

#[test]
fn the_loader_is_told_which_series_to_read() {
    let mut fake = with_series();
    let effects = fake.app.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('S'),
        KeyModifiers::SHIFT,
    )));
    let wanted = effects
        .iter()
        .find_map(|effect| match effect {
            Effect::LoadSeries(wanted) => Some(wanted.clone()),
            _ => None,
        })
        .expect("a series to read");
    assert_eq!(
        wanted,
        vec![SeriesRef {
            case: 0,
            plane: Plane::Sagittal,
            series: 1
        }]
    );
}

// ---------------------------------------------------------------- end to end

/// Geometry files for every exam of `cohort` (a flat `.npy` dataset): each plane's slices
/// spread through one 128 mm cube, so the three planes meet.
fn write_geometry(cohort: &std::path::Path) {
    for split in ["train", "valid"] {
        for plane in Plane::ALL {
            let folder = cohort.join(split).join(plane.name());
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            let out = cohort.join(split).join("geometry").join(plane.name());
            std::fs::create_dir_all(&out).expect("the geometry folder");
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "npy") {
                    continue;
                }
                let header = kneecam::data::npy::read_header(&path).expect("a header");
                let [slices, rows, columns] = header.shape;
                let mut geometry = cube(plane, slices);
                let mm = 128.0 / rows as f64;
                geometry.rows = rows;
                geometry.columns = columns;
                geometry.column_step = geometry.column_step.map(|v| v * mm);
                geometry.row_step = geometry.row_step.map(|v| v * mm);
                for origin in &mut geometry.origins {
                    *origin = origin.map(|v| v * 8.0);
                }
                let json = serde_json::to_string(&geometry).expect("json");
                let name = path.with_extension("json");
                let name = name.file_name().expect("a name");
                std::fs::write(out.join(name), json).expect("written");
            }
        }
    }
}

/// Cells of `area` drawn in the cross-hair's colour (halfblocks: either half).
fn marked_cells(buffer: &ratatui::buffer::Buffer, area: Rect) -> usize {
    let [r, g, b] = images::MARK.0;
    let mark = ratatui::style::Color::Rgb(r, g, b);
    let mut count = 0;
    for y in area.y..area.y + area.height {
        for x in area.x..area.x + area.width {
            let cell = &buffer[(x, y)];
            count += usize::from(cell.fg == mark || cell.bg == mark);
        }
    }
    count
}

#[test]
fn geometry_files_link_the_three_planes_of_an_npy_cohort_and_the_images_mark_the_cursor() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let cohort = support::own_cohort(root.path());
    write_geometry(&cohort);
    let session = support::session(&cohort, Config::defaults(), root.path(), None);
    let (mut driver, inbox) = support::start(
        session,
        ratatui_image::picker::Picker::halfblocks(),
        (160, 40),
    );
    driver.act(Action::ThreePlane);
    for plane in Plane::ALL {
        assert!(driver.app().geometry(plane).is_some(), "{plane}: read");
    }
    let image_areas = |driver: &kneecam::tui::Driver| {
        let layout = ui::layout(Rect::new(0, 0, 160, 40), driver.app()).expect("fits");
        layout.panes.iter().map(|p| p.image).collect::<Vec<_>>()
    };
    driver.settle(&inbox, PATIENCE).expect("settles");
    let buffer = support::draw(&driver);
    for area in image_areas(&driver) {
        assert_eq!(marked_cells(&buffer, area), 0, "no cursor, no mark");
    }

    driver.handle(Event::Key(KeyEvent::new(
        KeyCode::Char('x'),
        KeyModifiers::NONE,
    )));
    driver.settle(&inbox, PATIENCE).expect("settles");
    driver.app().check_invariants().expect("invariants");
    let buffer = support::draw(&driver);
    for (plane, area) in Plane::ALL.into_iter().zip(image_areas(&driver)) {
        let voxel = driver.app().cursor_voxel(plane).expect("located");
        assert_eq!(driver.app().slice(plane), voxel.slice);
        assert!(
            marked_cells(&buffer, area) >= 4,
            "{plane}: the cross-hair drawn\n{}",
            support::text(&buffer)
        );
    }
}
