//! A private tmux server (its socket in a temporary folder) whose sessions are real
//! pseudo-terminals: the explorer runs in them, keys are sent, screens captured.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: PathBuf,
    conf: PathBuf,
}

impl Tmux {
    /// A server to be, its socket and config in `dir` (no status line).
    pub fn new(dir: &Path) -> Tmux {
        let conf = dir.join("tmux.conf");
        std::fs::write(&conf, "set -g status off\n").expect("tmux.conf");
        Tmux {
            socket: dir.join("tmux.sock"),
            conf,
        }
    }

    /// Starts session `name` of `cols` x `rows` running `script` in sh.
    pub fn start(&self, name: &str, (cols, rows): (u16, u16), script: &str) {
        let started = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg(&self.conf)
            .args(["new-session", "-d", "-s", name])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .args(["sh", "-c", script])
            .env_remove("TMUX")
            .status()
            .expect("tmux starts");
        assert!(started.success(), "tmux new-session {name}");
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    pub fn keys(&self, target: &str, keys: &str) {
        self.run(&["send-keys", "-t", target, keys]);
    }

    pub fn screen(&self, target: &str) -> String {
        self.run(&["capture-pane", "-p", "-J", "-t", target])
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .status();
    }
}

/// Waits (at most `seconds`) until `ready`; on timeout fails naming `what` and showing `context`.
pub fn wait_for(
    what: &str,
    seconds: u64,
    context: impl Fn() -> String,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A file the shell writes a line into: complete once its line ends.
pub fn line_in(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|text| text.ends_with('\n'))
        .map(|text| text.trim().to_string())
}
