//! A series too small for the model, in the real explorer in a real pseudo-terminal (tmux):
//! the exam fails with a plain message on screen; nothing is printed over the explorer, which
//! stays in the alternate screen in raw mode, and quits cleanly. (Before the one panic hook,
//! libtorch's error panicked inside the scorer, the hook left the alternate screen and the
//! default hook printed a backtrace over it.)
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kneecam::data::Plane;

use crate::terminal_restore::have_tmux;
use ndarray::Array3;

const KNEECAM: &str = env!("CARGO_BIN_EXE_kneecam");

fn tmux(socket: &Path, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .env_remove("TMUX")
        .output()
        .expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn wait_for(what: &str, err: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; stderr: {}",
            std::fs::read_to_string(err).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

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
    let socket = file("tmux.sock");
    let conf = file("tmux.conf");
    std::fs::write(&conf, "set -g status off\n").expect("conf");
    let started = Command::new("tmux")
        .arg("-S")
        .arg(&socket)
        .arg("-f")
        .arg(&conf)
        .args([
            "new-session",
            "-d",
            "-x",
            "140",
            "-y",
            "40",
            "sh",
            "-c",
            &script,
        ])
        .env_remove("TMUX")
        .status()
        .expect("tmux starts");
    assert!(started.success());
    let _server = KillOnDrop(socket.clone());
    let err = file("stderr");
    let screen = || tmux(&socket, &["capture-pane", "-p", "-J"]);
    wait_for("the plain-words error on screen", &err, || {
        screen().contains("smaller than the model")
    });
    let text = screen();
    assert!(text.contains("8×8 px"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(
        tmux(&socket, &["display-message", "-p", "#{alternate_on}"]).trim(),
        "1",
        "still in the alternate screen"
    );
    let printed = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(printed.is_empty(), "printed over the explorer: {printed}");

    tmux(&socket, &["send-keys", "q"]);
    let rc = file("rc");
    // The shell creates the file before echo writes into it: complete once its line ends.
    wait_for("the explorer to quit", &err, || {
        std::fs::read_to_string(&rc).is_ok_and(|t| t.ends_with('\n'))
    });
    assert_eq!(std::fs::read_to_string(&rc).expect("rc").trim(), "0");
    assert_eq!(std::fs::read_to_string(&err).unwrap_or_default(), "");
}

struct KillOnDrop(std::path::PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .status();
    }
}
