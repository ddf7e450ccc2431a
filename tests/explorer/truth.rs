//! Ground truth and the heat floor, end to end on the demo cohort (the phantom's masks, the
//! demo models, the real engine): `M` outlines the tear on the slice and the status line counts
//! the plane's lesion slices as the mask file says; eval-cam's own report gives the shown exam's
//! result; the strip marks the lesion slices; the default heat floor leaves a slice that adds
//! nothing to the logit grey, and `F` cycles the floor.
use std::process::Command;

use kneecam::cam::report::EvalResults;
use kneecam::config::Config;
use kneecam::data::dataset::Dataset;
use kneecam::data::{Lesion, Plane};
use kneecam::tui::action::Action;
use kneecam::tui::images::{self, OUTLINE};
use kneecam::tui::{ui, Driver};
use ndarray::Axis;
use ratatui::layout::Rect;

use super::{explorer, support, ENGINE, PATIENCE};

/// The demo's first ACL-positive exam.
const TORN: &str = "0002";

fn select(driver: &mut Driver, inbox: &std::sync::mpsc::Receiver<kneecam::tui::Event>, name: &str) {
    while driver.app().cases()[driver.app().current().expect("selected")].name != name {
        driver.act(Action::NextPatient);
    }
    driver.settle(inbox, PATIENCE).expect("settles");
}

/// Per slice of `plane` of exam `name`: whether its mask file holds ACL-tear voxels.
fn acl_slices(name: &str, plane: Plane) -> Vec<bool> {
    let dataset = Dataset::open(support::demo_cohort()).expect("opens");
    let exam = dataset
        .exams()
        .iter()
        .find(|e| e.name() == name)
        .expect("the exam");
    let mask = exam.load_mask(plane).expect("reads").expect("a mask");
    mask.data
        .axis_iter(Axis(0))
        .map(|slice| slice.iter().any(|&v| v == Lesion::AclTear.code()))
        .collect()
}

/// The shown plane's image as it is encoded (the pane's pixels, outline and all).
fn shown_image(driver: &Driver) -> image::RgbImage {
    let app = driver.app();
    let (width, height) = app.size();
    let layout = ui::layout(Rect::new(0, 0, width, height), app).expect("fits");
    let key = images::wanted_key(app, app.plane(), layout.panes[0].image).expect("a key");
    let job = images::job_for(app, key, 0).expect("a job");
    images::render(&job, 256, 256)
}

fn outline_pixels(driver: &Driver) -> usize {
    shown_image(driver)
        .pixels()
        .filter(|p| **p == OUTLINE)
        .count()
}

fn status(driver: &Driver) -> String {
    let text = support::text(&support::draw(driver));
    text.lines().last().unwrap_or_default().to_string()
}

fn go_to_slice(driver: &mut Driver, slice: usize) {
    driver.act(Action::FirstSlice);
    for _ in 0..slice {
        driver.act(Action::NextSlice);
    }
}

#[test]
fn m_outlines_the_tear_and_the_status_line_counts_its_slices() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer((160, 40), Config::defaults(), root.path());
    select(&mut driver, &inbox, TORN);
    let plane = driver.app().plane();
    let lesion = acl_slices(TORN, plane);
    let count = lesion.iter().filter(|&&l| l).count();
    assert!(
        count > 0,
        "exam {TORN} is ACL-positive: its {plane} mask has the tear"
    );
    let on = lesion.iter().position(|&l| l).expect("a lesion slice");
    let off = lesion.iter().position(|&l| !l).expect("a slice without");

    go_to_slice(&mut driver, on);
    driver.settle(&inbox, PATIENCE).expect("settles");
    assert_eq!(outline_pixels(&driver), 0, "no outline before M");
    assert!(!status(&driver).contains("ACL tear on"));
    // The strip marks the lesion slices whether M is on or not.
    let screen = support::text(&support::draw(&driver));
    assert!(
        screen.contains('•') || count == 1,
        "lesion marks on the strip:\n{screen}"
    );

    driver.act(Action::GroundTruth);
    driver.settle(&inbox, PATIENCE).expect("settles");
    let ring = outline_pixels(&driver);
    assert!(ring > 20, "a contour around the tear: {ring} pixels");
    let line = status(&driver);
    assert!(
        line.contains(&format!("ACL tear on {count}/{} slices", lesion.len())),
        "{line}"
    );
    go_to_slice(&mut driver, off);
    driver.settle(&inbox, PATIENCE).expect("settles");
    assert_eq!(
        outline_pixels(&driver),
        0,
        "slice {off} has no tear to outline"
    );

    go_to_slice(&mut driver, on);
    driver.act(Action::GroundTruth);
    driver.settle(&inbox, PATIENCE).expect("settles");
    assert_eq!(outline_pixels(&driver), 0, "M again: no outline");
}

#[test]
fn an_eval_cam_report_gives_the_shown_exams_result_beside_the_count() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let report = root.path().join("eval.json");
    let models = kneecam::cli::demo::default_models();
    let ran = Command::new(env!("CARGO_BIN_EXE_kneecam"))
        .env("KNEECAM_CACHE_DIR", root.path().join("cache"))
        .env("KNEECAM_DATA_DIR", root.path().join("data"))
        .env("KNEECAM_CONFIG_DIR", root.path().join("config"))
        .args(["--device", "cpu", "eval-cam", "--data"])
        .arg(support::demo_cohort())
        .arg("--models")
        .arg(&models)
        .args([
            "--method", "contrib", "--task", "acl", "--plane", "sagittal",
        ])
        .args(["--steps", "2", "--out"])
        .arg(&report)
        .output()
        .expect("eval-cam runs");
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let eval = EvalResults::read(&report).expect("eval-cam's report reads back");
    let mark = eval
        .get(
            TORN,
            kneecam::data::Task::Acl,
            Plane::Sagittal,
            kneecam::cam::Method::Contrib,
        )
        .expect("the torn exam is in the report");

    let mut session = support::session(
        support::demo_cohort(),
        Config::defaults(),
        root.path(),
        None,
    );
    session.info.eval = eval;
    let (mut driver, inbox) = support::start(
        session,
        ratatui_image::picker::Picker::halfblocks(),
        (200, 40),
    );
    select(&mut driver, &inbox, TORN);
    assert_eq!(driver.app().plane(), Plane::Sagittal);
    driver.act(Action::GroundTruth);
    driver.settle(&inbox, PATIENCE).expect("settles");
    let said = |hit: Option<bool>| match hit {
        Some(true) => "✓",
        Some(false) => "✗",
        None => "–",
    };
    let want = format!(
        "eval-cam contrib: pointing {} slice hit {}",
        said(mark.pointing),
        said(mark.slice_hit)
    );
    let line = status(&driver);
    assert!(line.contains(&want), "{want:?} in {line}");
}

#[test]
fn the_default_floor_leaves_a_slice_that_adds_nothing_grey_and_f_cycles_it() {
    let _one = ENGINE.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().expect("tempdir");
    let (mut driver, inbox) = explorer((120, 40), Config::defaults(), root.path());
    assert_eq!(driver.app().display().heat_floor, 0.2, "the default");
    // A slice whose contribution is zero: no channel takes its maximum there.
    let mut found = None;
    for _ in 0..driver.app().cases().len() {
        let plane = driver.app().plane();
        let explanation = driver.app().contributions(plane).expect("contrib computed");
        let zero = (0..explanation.raw.dim().0).find(|&s| {
            explanation
                .raw
                .index_axis(Axis(0), s)
                .iter()
                .all(|&v| v == 0.0)
        });
        if let Some(slice) = zero {
            found = Some(slice);
            break;
        }
        driver.act(Action::NextPatient);
        driver.settle(&inbox, PATIENCE).expect("settles");
    }
    let slice = found.expect("some demo exam has a slice that no channel peaks on");
    go_to_slice(&mut driver, slice);
    driver.settle(&inbox, PATIENCE).expect("settles");
    let grey = |image: &image::RgbImage| image.pixels().all(|p| p[0] == p[1] && p[1] == p[2]);
    let composed = |driver: &Driver| {
        let app = driver.app();
        let (width, height) = app.size();
        let layout = ui::layout(Rect::new(0, 0, width, height), app).expect("fits");
        let key = images::wanted_key(app, app.plane(), layout.panes[0].image).expect("key");
        assert!(key.overlay.is_some(), "the overlay is on");
        images::compose(&images::job_for(app, key, 0).expect("job"))
    };
    assert!(
        grey(&composed(&driver)),
        "floor 0.2: slice {slice} shows grey anatomy"
    );
    driver.act(Action::NextHeatFloor);
    assert_eq!(driver.app().display().heat_floor, 0.4);
    driver.act(Action::NextHeatFloor);
    assert_eq!(driver.app().display().heat_floor, 0.0);
    assert!(
        !grey(&composed(&driver)),
        "floor 0: the zero level is coloured, as the reference code colours it"
    );
    driver.act(Action::NextHeatFloor);
    assert_eq!(driver.app().display().heat_floor, 0.2);
    assert!(
        status(&driver).contains("jet 45% ≥0.2"),
        "{}",
        status(&driver)
    );
}
