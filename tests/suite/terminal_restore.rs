//! The explorer in a real pseudo-terminal (tmux), ended by SIGTERM, SIGHUP (an SSH drop),
//! SIGINT and `q`: it exits 0, and leaves the terminal as it found it: the alternate screen
//! left, mouse reporting off, the cursor shown, the tty modes (`stty -g`) unchanged.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const KNEECAM: &str = env!("CARGO_BIN_EXE_kneecam");
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn have_tmux() -> bool {
    let found = Command::new("tmux").arg("-V").output().is_ok();
    if !found && std::env::var_os("CI").is_some() {
        panic!("tmux is missing: run scripts/setup-test-deps");
    }
    if !found {
        eprintln!("skipped: tmux is not installed (scripts/setup-test-deps installs it)");
    }
    found
}

/// A shared cache folder holding the 8-exam demo cohort, generated once.
fn cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("restore-cache");
        let status = Command::new(KNEECAM)
            .env("KNEECAM_CACHE_DIR", &dir)
            .env("KNEECAM_DATA_DIR", dir.join("data"))
            .env("KNEECAM_CONFIG_DIR", dir.join("config"))
            .args(["--device", "cpu", "demo", "--cases", "8", "--print"])
            .output()
            .expect("kneecam runs");
        assert!(status.status.success(), "{status:?}");
        dir
    })
}

struct Pane {
    socket: PathBuf,
    home: tempfile::TempDir,
}

impl Pane {
    /// Starts the explorer in a detached 100×30 tmux pane, inside a shell that records the
    /// tty modes before and after, and the exit status.
    fn start() -> Pane {
        let home = tempfile::tempdir().expect("tempdir");
        let socket = home.path().join("tmux.sock");
        let conf = home.path().join("tmux.conf");
        std::fs::write(&conf, "set -g status off\n").expect("conf");
        let file = |name: &str| home.path().join(name).display().to_string();
        let script = format!(
            "stty -g > '{before}'; env KNEECAM_CACHE_DIR='{cache}' KNEECAM_DATA_DIR='{data}' \
             KNEECAM_CONFIG_DIR='{config}' '{KNEECAM}' --device cpu demo --cases 8 2> '{err}'; \
             echo $? > '{rc}'; stty -g > '{after}'; sleep 600",
            before = file("stty.before"),
            after = file("stty.after"),
            cache = cache().display(),
            data = file("data"),
            config = file("config"),
            err = file("stderr"),
            rc = file("rc"),
        );
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .arg("-f")
            .arg(&conf)
            .args([
                "new-session",
                "-d",
                "-x",
                "100",
                "-y",
                "30",
                "sh",
                "-c",
                &script,
            ])
            .env_remove("TMUX")
            .status()
            .expect("tmux starts");
        assert!(status.success());
        Pane { socket, home }
    }

    fn format(&self, format: &str) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["display-message", "-p", format])
            .output()
            .expect("tmux answers");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn wait_for(&self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ready() {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; {}",
                self.diagnosis()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What a timed-out wait saw: the screen, the pane's size, the exit status if the
    /// explorer ended, its stderr and the end of its log.
    fn diagnosis(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.home.path().join(name));
        let log = read("data/logs/kneecam.log").unwrap_or_default();
        let log_tail: Vec<&str> = log.lines().rev().take(30).collect();
        format!(
            "pane {}; alternate screen {}; rc {:?}; stderr: {}\nscreen:\n{}\nlog (newest first):\n{}",
            self.format("#{pane_width}x#{pane_height}"),
            self.format("#{alternate_on}"),
            read("rc").ok(),
            read("stderr").unwrap_or_default(),
            self.capture(),
            log_tail.join("\n")
        )
    }

    /// Waits until the explorer has drawn its first frame (the list header is on screen).
    fn wait_until_drawn(&self) {
        self.wait_for("the alternate screen", || {
            self.format("#{alternate_on}") == "1"
        });
        self.wait_for("the first frame", || {
            self.capture().contains("reviewed 0/8 · 8/8")
        });
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["capture-pane", "-p"])
            .output()
            .expect("tmux answers");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn kneecam_pid(&self) -> String {
        let shell = self.format("#{pane_pid}");
        let out = Command::new("pgrep")
            .args(["-P", &shell])
            .output()
            .expect("pgrep");
        let pids = String::from_utf8_lossy(&out.stdout);
        let mut found = pids.lines().map(str::to_string);
        found.next().expect("kneecam is the shell's child")
    }

    fn send_keys(&self, keys: &str) {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["send-keys", keys])
            .status()
            .expect("tmux send-keys");
    }

    /// After the explorer exits: its status, and the terminal state it left.
    fn check_restored(&self, how: &str) {
        let rc = self.home.path().join("rc");
        // A file the shell writes: complete once its line ends.
        let written = |path: &Path| std::fs::read_to_string(path).is_ok_and(|t| t.ends_with('\n'));
        self.wait_for("the explorer to exit", || written(&rc));
        let status = std::fs::read_to_string(&rc).expect("rc");
        let stderr = std::fs::read_to_string(self.home.path().join("stderr")).unwrap_or_default();
        assert_eq!(status.trim(), "0", "{how}: exit status; stderr: {stderr}");
        let after = self.home.path().join("stty.after");
        self.wait_for("stty", || written(&after));
        let before = std::fs::read_to_string(self.home.path().join("stty.before")).expect("b");
        assert_eq!(
            before,
            std::fs::read_to_string(after).expect("a"),
            "{how}: tty modes"
        );
        assert_eq!(
            self.format("#{alternate_on}"),
            "0",
            "{how}: alternate screen"
        );
        assert_eq!(
            self.format("#{mouse_any_flag}"),
            "0",
            "{how}: mouse reporting"
        );
        assert_eq!(self.format("#{cursor_flag}"), "1", "{how}: cursor shown");
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

fn ended_by_signal(signal: &str) {
    if !have_tmux() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pane = Pane::start();
    pane.wait_until_drawn();
    assert_eq!(
        pane.format("#{mouse_any_flag}"),
        "1",
        "mouse reporting while running"
    );
    let pid = pane.kneecam_pid();
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    pane.check_restored(signal);
}

#[test]
fn sigterm_restores_the_terminal() {
    ended_by_signal("TERM");
}

#[test]
fn sighup_restores_the_terminal() {
    ended_by_signal("HUP");
}

#[test]
fn sigint_restores_the_terminal() {
    ended_by_signal("INT");
}

#[test]
fn q_and_ctrl_c_restore_the_terminal() {
    if !have_tmux() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for keys in ["q", "C-c"] {
        let pane = Pane::start();
        pane.wait_until_drawn();
        pane.send_keys("j");
        pane.send_keys(keys);
        pane.check_restored(keys);
    }
}

#[test]
fn a_tiny_terminal_says_so_and_a_resize_recovers() {
    if !have_tmux() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let pane = Pane::start();
    pane.wait_until_drawn();
    let resize = |x: &str, y: &str| {
        Command::new("tmux")
            .arg("-S")
            .arg(&pane.socket)
            .args(["resize-window", "-x", x, "-y", y])
            .status()
            .expect("resize");
    };
    resize("40", "10");
    pane.wait_for("the too-small message", || {
        pane.capture().contains("terminal too small")
    });
    // A resize storm, then a usable size again.
    for (x, y) in [
        ("120", "40"),
        ("61", "17"),
        ("30", "5"),
        ("200", "60"),
        ("90", "30"),
    ] {
        resize(x, y);
    }
    pane.wait_for("the explorer again", || {
        pane.capture().contains("reviewed 0/8 · 8/8")
    });
    pane.send_keys("q");
    pane.check_restored("resize");
}

/// Slice flips (each encodes a new image on the encoder thread) interleaved with window
/// resizes (SIGWINCH) and no pause between them, then SIGHUP (an SSH drop) in the middle of
/// it all: the explorer still leaves a restored terminal and exit status 0. Then the same
/// storm followed by `q`: it still answers keys afterwards.
#[test]
fn resizes_while_images_encode_then_an_ssh_drop_restore_the_terminal() {
    if !have_tmux() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for ending in ["HUP", "q"] {
        let pane = Pane::start();
        pane.wait_until_drawn();
        let sizes = [(120, 40), (61, 17), (30, 5), (200, 60), (90, 30), (100, 31)];
        for round in 0..30 {
            let (x, y) = sizes[round % sizes.len()];
            // `j`, not `Down`: one byte, so a loaded machine cannot split an escape sequence
            // into Esc, `[` (threshold down) and `B` between the explorer's reads.
            pane.send_keys(if round % 3 == 0 { "j" } else { "l" });
            Command::new("tmux")
                .arg("-S")
                .arg(&pane.socket)
                .args(["resize-window", "-x", &x.to_string(), "-y", &y.to_string()])
                .status()
                .expect("resize");
        }
        if ending == "HUP" {
            let status = Command::new("kill")
                .args(["-HUP", &pane.kneecam_pid()])
                .status()
                .expect("kill");
            assert!(status.success());
        } else {
            pane.wait_for("the explorer after the storm", || {
                pane.capture().contains("reviewed 0/8 · 8/8")
            });
            pane.send_keys("q");
        }
        pane.check_restored(&format!("resize storm, then {ending}"));
    }
}
