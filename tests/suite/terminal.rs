//! The explorer in a real terminal: `kneecam demo` runs in xterm (a VT340 with sixel graphics) on
//! a private headless X server, keys are typed into it and the screen is photographed by
//! tests/tools/term-shot. The CAM overlay must really reach the screen as colour, and toggling it
//! off must leave the grey slice. The second test does the same through tmux's passthrough.
//!
//! Needs Xvfb, xterm, xdpyinfo, xdotool, ImageMagick's import and tmux (scripts/setup-test-deps):
//! without them the tests are skipped, unless `CI` is set, where they fail.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const KNEECAM: &str = env!("CARGO_BIN_EXE_kneecam");
const TERM_SHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/term-shot");
const CASES: &str = "8";
/// Columns x rows; at DejaVu Sans Mono 10 xterm's cells are 8 x 17 pixels (960 x 680).
const GEOMETRY: &str = "120x40";

// The most seconds to wait for the screen to settle (term-shot's `settle` step: changed since
// before the key, then unchanged for about a second; the explorer redraws its spinner every
// 100 ms while the engine works, so a still screen is an idle one). The CAMs are computed on the
// CPU in a background thread, maybe beside other tests: the deadlines are generous, and a run
// that goes well waits only as long as the explorer needs.
/// Start-up: loading the demo models, the first exam's CAM (and its neighbours'), the first sixel.
const START_S: &str = "120";
/// After `j`: the next patient's CAM.
const PATIENT_S: &str = "60";
/// After `l`: the next slice.
const SLICE_S: &str = "60";
/// After `o`: the slice redrawn without the overlay.
const TOGGLE_S: &str = "60";
/// After `q`: the explorer restores the terminal and exits (term-shot's `exit` step).
const QUIT_S: &str = "30";

/// A pixel belongs to the heatmap when max(r,g,b) − min(r,g,b) reaches this. The grey slice has
/// ~0; JET blended at the default opacity 0.45 reaches 57–115 (at opacity α: α·128 to α·255).
const HEAT_CHROMA: u8 = 60;
/// Heatmap pixels that toggling the overlay off must remove (the image is hundreds of pixels a side).
const MIN_HEAT: usize = 3000;
/// Saturated pixels that only the overlay-off shot has, as a share of the removed heatmap.
const MAX_OFF_SHARE: f64 = 0.25;
/// Bright pixels (max channel ≥ 64) of any colour: the screen is not black.
const MIN_BRIGHT: usize = 2000;
/// Mid-grey pixels of the slice in the overlay-off shot, and the distinct grey levels among them
/// (flat UI bars have one or two levels, an MRI slice dozens).
const MIN_GREY: usize = 2000;
const MIN_GREY_LEVELS: usize = 16;

/// The tests share X, fonts and the CPU: one at a time.
static TERMINAL: Mutex<()> = Mutex::new(());

/// Environment variables that would make kneecam (ratatui-image) believe it runs in another
/// terminal or inside tmux, inherited from whoever runs the tests.
const FOREIGN_TERMINAL_VARS: [&str; 9] = [
    "TMUX",
    "TMUX_PANE",
    "TERM_PROGRAM",
    "TERM_PROGRAM_VERSION",
    "KITTY_WINDOW_ID",
    "WEZTERM_EXECUTABLE",
    "KONSOLE_VERSION",
    "ITERM_SESSION_ID",
    "STY",
];

#[test]
fn real_xterm_shows_heatmap_only_with_overlay() {
    let _one_at_a_time = TERMINAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !tools_present(&["Xvfb", "xterm", "xdpyinfo", "xdotool", "import"]) {
        return;
    }
    let run = Run::new("real_xterm_shows_heatmap_only_with_overlay");
    run.generate_cohort();
    let shell = run.explorer_shell_command("");
    let shot = run.term_shot(&["sh", "-c", &shell]);
    run.check(shot);
}

#[test]
fn real_xterm_in_tmux_shows_heatmap_only_with_overlay() {
    let _one_at_a_time = TERMINAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !tools_present(&["Xvfb", "xterm", "xdpyinfo", "xdotool", "import", "tmux"]) {
        return;
    }
    let run = Run::new("real_xterm_in_tmux_shows_heatmap_only_with_overlay");
    run.generate_cohort();
    let conf = run.home.path().join("tmux.conf");
    // No status line: a green bar is a solid block of saturated pixels. allow-passthrough lets
    // the sixels (wrapped in DCS tmux; …) and the capability queries through to xterm.
    std::fs::write(
        &conf,
        "set -g allow-passthrough on\n\
         set -g status off\n\
         set -g default-terminal tmux-256color\n\
         set -g default-shell /bin/sh\n\
         set -g escape-time 10\n",
    )
    .expect("tmux.conf");
    // A private server whose socket lives in the tempdir: no clash, nothing left in /tmp/tmux-UID.
    let server = TmuxServer(run.home.path().join("tmux.sock"));
    // The pane's command is started by the tmux server, whose environment is only the
    // client's by accident of who started it: name kneecam's folders on the command line.
    let env = format!(
        "env KNEECAM_CACHE_DIR={} KNEECAM_DATA_DIR={} KNEECAM_CONFIG_DIR={}",
        quote(&run.cache()),
        quote(&run.data()),
        quote(&run.config()),
    );
    let shell = run.explorer_shell_command(&env);
    let (cols, rows) = GEOMETRY.split_once('x').expect("COLSxROWS");
    let conf = conf.to_str().expect("a UTF-8 temporary path");
    let socket = server.0.to_str().expect("a UTF-8 temporary path");
    let shot = run.term_shot(&[
        "tmux",
        "-S",
        socket,
        "-f",
        conf,
        "new-session",
        "-x",
        cols,
        "-y",
        rows,
        &shell,
    ]);
    drop(server);
    run.check(shot);
}

/// Whether the programs are on PATH; when not: a skip note, or under CI a failure.
fn tools_present(tools: &[&str]) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let note = format!(
        "the real-terminal test needs {}: run scripts/setup-test-deps",
        missing.join(", ")
    );
    assert!(std::env::var_os("CI").is_none(), "{note}");
    eprintln!("skipped: {note}");
    false
}

/// One explorer session: kneecam's folders, the screenshots and the exit status, in a tempdir.
struct Run {
    name: &'static str,
    home: tempfile::TempDir,
}

/// What term-shot left behind.
struct ShotRun {
    output: Output,
}

impl Run {
    fn new(name: &'static str) -> Run {
        Run {
            name,
            home: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn config(&self) -> PathBuf {
        self.home.path().join("config")
    }
    fn cache(&self) -> PathBuf {
        self.home.path().join("cache")
    }
    fn data(&self) -> PathBuf {
        self.home.path().join("data")
    }
    fn exit_status_file(&self) -> PathBuf {
        self.home.path().join("kneecam.rc")
    }
    /// The explorer's stderr (a panic message would otherwise vanish with the terminal).
    fn stderr_file(&self) -> PathBuf {
        self.home.path().join("kneecam.stderr")
    }
    fn shot(&self, name: &str) -> PathBuf {
        self.home.path().join(format!("shot-{name}.png"))
    }
    fn log(&self) -> PathBuf {
        self.data().join("logs/kneecam.log")
    }

    /// kneecam's folders in the tempdir, and nothing that says "another terminal" or "tmux".
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("KNEECAM_CONFIG_DIR", self.config())
            .env("KNEECAM_CACHE_DIR", self.cache())
            .env("KNEECAM_DATA_DIR", self.data());
        for var in FOREIGN_TERMINAL_VARS {
            cmd.env_remove(var);
        }
        cmd
    }

    /// `kneecam demo --print`: the phantom cohort into the cache folder, the table printed, no
    /// terminal needed. The explorer then opens the cached cohort.
    fn generate_cohort(&self) {
        let output = self
            .command(KNEECAM)
            .args(["--device", "cpu", "demo", "--cases", CASES, "--print"])
            .output()
            .expect("run kneecam");
        assert!(
            output.status.success(),
            "kneecam demo --print failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    /// The shell line that opens the explorer (drawing on stdout, stderr to a file) and records
    /// its exit status.
    fn explorer_shell_command(&self, env_prefix: &str) -> String {
        format!(
            "{env_prefix} {} --device cpu demo --cases {CASES} 2> {}; echo $? > {}",
            quote(Path::new(KNEECAM)),
            quote(&self.stderr_file()),
            quote(&self.exit_status_file()),
        )
        .trim_start()
        .to_string()
    }

    /// Runs term-shot: start, two patients on (exam 0002, ACL-positive: under the default heat
    /// floor an exam without evidence shows grey anatomy), next slice, back to the top slice,
    /// shot `on`, overlay off, shot `off`, quit.
    fn term_shot(&self, command: &[&str]) -> ShotRun {
        let steps = [
            format!("settle:{START_S}"),
            "shot:start".to_string(),
            "key:j".to_string(),
            format!("settle:{PATIENT_S}"),
            "key:j".to_string(),
            format!("settle:{PATIENT_S}"),
            "key:l".to_string(),
            format!("settle:{SLICE_S}"),
            "key:g".to_string(),
            format!("settle:{SLICE_S}"),
            "shot:on".to_string(),
            "key:o".to_string(),
            format!("settle:{TOGGLE_S}"),
            "shot:off".to_string(),
            "key:q".to_string(),
            format!("exit:{QUIT_S}"),
        ]
        .join(",");
        let prefix = self.home.path().join("shot");
        let output = self
            .command(TERM_SHOT)
            .arg("-g")
            .arg(GEOMETRY)
            .arg(&prefix)
            .arg(&steps)
            .arg("--")
            .args(command)
            .output()
            .expect("run tests/tools/term-shot");
        ShotRun { output }
    }

    /// The assertions on the screenshots and the exit status; on failure the shots, the log
    /// and term-shot's output are kept in target/term-shots/<test>/.
    fn check(&self, shot: ShotRun) {
        let mut failures = Vec::new();
        if !shot.output.status.success() {
            failures.push(format!("term-shot failed ({})", shot.output.status));
        }
        match std::fs::read_to_string(self.exit_status_file()) {
            Ok(rc) if rc.trim() == "0" => {}
            Ok(rc) => failures.push(format!("kneecam exited with status {}", rc.trim())),
            Err(_) => failures.push(format!(
                "kneecam had not exited {QUIT_S} s after q (or never ran)"
            )),
        }
        let load = |name: &str| -> Option<pixels::Frame> {
            let picture = image::open(self.shot(name)).ok()?.to_rgb8();
            Some(pixels::Frame {
                width: picture.width() as usize,
                height: picture.height() as usize,
                rgb: picture.into_raw(),
            })
        };
        match (load("start"), load("on"), load("off")) {
            (start, Some(on), Some(off)) => {
                let report = pixels::Report::of(&on, &off);
                let start_bright = start.as_ref().map(pixels::bright);
                println!(
                    "{}: {report:?}, bright pixels at start {start_bright:?}",
                    self.name
                );
                failures.extend(report.failures());
            }
            _ => failures.push("a screenshot is missing".to_string()),
        }
        if failures.is_empty() {
            return;
        }
        let kept = self.keep_artifacts(&shot);
        panic!(
            "{}:\n  {}\nscreenshots, log and term-shot output kept in {}\n\
             term-shot: {}{}\nkneecam's stderr (tail):\n{}\nkneecam.log (tail):\n{}",
            self.name,
            failures.join("\n  "),
            kept.display(),
            String::from_utf8_lossy(&shot.output.stdout),
            String::from_utf8_lossy(&shot.output.stderr),
            tail(&self.stderr_file()),
            tail(&self.log()),
        );
    }

    fn keep_artifacts(&self, shot: &ShotRun) -> PathBuf {
        // CARGO_TARGET_TMPDIR is <target>/tmp, wherever the target folder is.
        let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .unwrap_or(Path::new("target"));
        let dir = target.join("term-shots").join(self.name);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
        for name in ["start", "on", "off"] {
            let _ = std::fs::copy(self.shot(name), dir.join(format!("{name}.png")));
        }
        let _ = std::fs::copy(self.log(), dir.join("kneecam.log"));
        let _ = std::fs::copy(self.stderr_file(), dir.join("kneecam.stderr"));
        let mut output = shot.output.stdout.clone();
        output.extend_from_slice(&shot.output.stderr);
        let _ = std::fs::write(dir.join("term-shot.txt"), output);
        dir
    }
}

/// A private tmux server by its socket, killed however the test ends (its session would
/// outlive xterm).
struct TmuxServer(PathBuf);

impl Drop for TmuxServer {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .arg("kill-server")
            .output();
    }
}

/// The last lines of a text file.
fn tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        }
        Err(_) => "(none)".to_string(),
    }
}

/// A path in single quotes for sh.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Pixel counting on screenshots, std only. A pixel counts as part of a region only when its
/// eight neighbours qualify too: thin strokes (the UI's coloured or white text) drop out, the
/// image's solid areas stay.
mod pixels {
    pub struct Frame {
        pub width: usize,
        pub height: usize,
        /// Row-major RGB, 3 bytes a pixel.
        pub rgb: Vec<u8>,
    }

    fn chroma(p: &[u8]) -> u8 {
        let max = p[0].max(p[1]).max(p[2]);
        let min = p[0].min(p[1]).min(p[2]);
        max - min
    }

    fn value(p: &[u8]) -> u8 {
        p[0].max(p[1]).max(p[2])
    }

    fn saturated(p: &[u8]) -> bool {
        chroma(p) >= super::HEAT_CHROMA
    }

    fn is_bright(p: &[u8]) -> bool {
        value(p) >= 64
    }

    /// A slice's grey: no colour, neither black nor text white.
    fn mid_grey(p: &[u8]) -> bool {
        chroma(p) < 30 && (24..=240).contains(&value(p))
    }

    impl Frame {
        /// Per pixel, whether it qualifies.
        fn mask(&self, qualifies: impl Fn(&[u8]) -> bool) -> Vec<bool> {
            self.rgb.chunks_exact(3).map(qualifies).collect()
        }

        /// Per pixel, whether it and its 8 neighbours qualify (the border never does).
        fn solid(&self, qualifies: impl Fn(&[u8]) -> bool) -> Vec<bool> {
            let raw = self.mask(qualifies);
            let (w, h) = (self.width, self.height);
            let mut solid = vec![false; raw.len()];
            for y in 1..h.saturating_sub(1) {
                for x in 1..w.saturating_sub(1) {
                    solid[y * w + x] =
                        (y - 1..=y + 1).all(|yy| (x - 1..=x + 1).all(|xx| raw[yy * w + xx]));
                }
            }
            solid
        }
    }

    pub fn bright(frame: &Frame) -> usize {
        frame.solid(is_bright).iter().filter(|&&b| b).count()
    }

    #[derive(Debug)]
    pub struct Report {
        /// Solid saturated pixels in each shot.
        pub heat_on: usize,
        pub heat_off: usize,
        /// Solid saturated in `on` where `off` has no colour: the overlay that `o` removed.
        pub removed: usize,
        /// Solid saturated in `off` where `on` had no colour.
        pub appeared: usize,
        /// Solid bright pixels of any colour in `on`.
        pub bright_on: usize,
        /// Solid mid-grey pixels in `off`, and their distinct levels.
        pub grey_off: usize,
        pub grey_levels_off: usize,
    }

    impl Report {
        /// Static coloured UI (badges, bars) is saturated in both shots at the same place and
        /// cancels out of `removed` and `appeared`.
        pub fn of(on: &Frame, off: &Frame) -> Report {
            assert_eq!(
                (on.width, on.height),
                (off.width, off.height),
                "the shots differ in size"
            );
            let solid_on = on.solid(saturated);
            let solid_off = off.solid(saturated);
            let raw_on = on.mask(saturated);
            let raw_off = off.mask(saturated);
            let count = |mask: &[bool]| mask.iter().filter(|&&b| b).count();
            let removed = (0..raw_on.len())
                .filter(|&i| solid_on[i] && !raw_off[i])
                .count();
            let appeared = (0..raw_on.len())
                .filter(|&i| solid_off[i] && !raw_on[i])
                .count();
            let grey = off.solid(mid_grey);
            let mut levels = [false; 256];
            for (i, &g) in grey.iter().enumerate() {
                if g {
                    levels[usize::from(value(&off.rgb[3 * i..3 * i + 3]))] = true;
                }
            }
            Report {
                heat_on: count(&solid_on),
                heat_off: count(&solid_off),
                removed,
                appeared,
                bright_on: bright(on),
                grey_off: count(&grey),
                grey_levels_off: levels.iter().filter(|&&l| l).count(),
            }
        }

        pub fn failures(&self) -> Vec<String> {
            let mut failures = Vec::new();
            if self.bright_on <= super::MIN_BRIGHT {
                failures.push(format!(
                    "the overlay-on shot is (nearly) black: {} bright pixels, want > {}",
                    self.bright_on,
                    super::MIN_BRIGHT
                ));
            }
            if self.removed < super::MIN_HEAT {
                failures.push(format!(
                    "no heatmap that `o` removes: {} pixels coloured with the overlay and grey without, want ≥ {} \
                     (saturated pixels: {} with the overlay, {} without)",
                    self.removed,
                    super::MIN_HEAT,
                    self.heat_on,
                    self.heat_off
                ));
            }
            if self.appeared > 0
                && self.appeared as f64 >= super::MAX_OFF_SHARE * self.removed as f64
            {
                failures.push(format!(
                    "colour with the overlay off: {} saturated pixels only in the off shot, want < {:.0}% of {}",
                    self.appeared,
                    100.0 * super::MAX_OFF_SHARE,
                    self.removed
                ));
            }
            if self.grey_off <= super::MIN_GREY || self.grey_levels_off < super::MIN_GREY_LEVELS {
                failures.push(format!(
                    "no grey slice with the overlay off: {} mid-grey pixels in {} levels, want > {} in ≥ {}",
                    self.grey_off,
                    self.grey_levels_off,
                    super::MIN_GREY,
                    super::MIN_GREY_LEVELS
                ));
            }
            failures
        }
    }
} // mod pixels
