//! A series too small for the model, in the real explorer in a real pseudo-terminal (tmux):
//! the exam fails with a plain message on screen; nothing is printed over the explorer, which
//! stays in the alternate screen in raw mode, and quits cleanly. (Before the one panic hook,
//! libtorch's error panicked inside the scorer, the hook left the alternate screen and the
//! default hook printed a backtrace over it.)

use kneecam::data::Plane;

use crate::terminal_restore::have_tmux;
use crate::tmux::{line_in, wait_for, Tmux};
use ndarray::Array3;

const KNEECAM: &str = env!("CARGO_BIN_EXE_kneecam");

#[test]
fn a_series_too_small_for_the_model_is_a_message_on_screen_not_a_wrecked_terminal() {
    if !have_tmux() {
        return;
    }
    let home = tempfile::tempdir().expect("tempdir");
    let data = home.path().join("flat");
    for plane in Plane::ALL {
        let folder = data.join(plane.name());
        std::fs::create_dir_all(&folder).expect("plane folder");
        let volume = Array3::from_shape_fn((20, 8, 8), |(s, r, c)| (s * 10 + r * 3 + c) as u8);
        kneecam::data::npy::write_u8_volume(&folder.join("0000.npy"), &volume).expect("npy");
    }
    let file = |name: &str| home.path().join(name);
    let script = format!(
        "env KNEECAM_CACHE_DIR='{cache}' KNEECAM_DATA_DIR='{state}' KNEECAM_CONFIG_DIR='{config}' \
         '{KNEECAM}' --device cpu view --data '{data}' --models '{models}' 2> '{err}'; \
         echo $? > '{rc}'; sleep 600",
        cache = file("cache").display(),
        state = file("state").display(),
        config = file("config").display(),
        data = data.display(),
        models = kneecam::cli::demo::default_models().display(),
        err = file("stderr").display(),
        rc = file("rc").display(),
    );
    let tmux = Tmux::new(home.path());
    tmux.start("explorer", (140, 40), &script);
    let err = file("stderr");
    let printed = || std::fs::read_to_string(&err).unwrap_or_default();
    let screen = || tmux.screen("explorer");
    wait_for(
        "the plain-words error on screen",
        90,
        || format!("stderr: {}", printed()),
        || screen().contains("smaller than the model"),
    );
    let text = screen();
    assert!(text.contains("8×8 px"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(
        tmux.run(&["display-message", "-p", "-t", "explorer", "#{alternate_on}"])
            .trim(),
        "1",
        "still in the alternate screen"
    );
    let stderr = printed();
    assert!(stderr.is_empty(), "printed over the explorer: {stderr}");

    tmux.keys("explorer", "q");
    let rc = file("rc");
    wait_for(
        "the explorer to quit",
        90,
        || format!("stderr: {}", printed()),
        || line_in(&rc).is_some(),
    );
    assert_eq!(line_in(&rc).as_deref(), Some("0"));
    assert_eq!(printed(), "");
}
