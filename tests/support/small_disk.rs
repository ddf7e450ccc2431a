//! A real full or read-only file system for fault tests: a small tmpfs mounted on a temporary
//! folder. Mounting needs root (CAP_SYS_ADMIN), which CI has; elsewhere `mount` gives `None`
//! and the caller says the test was skipped. As root a failed mount is a test failure, so a CI
//! that lost the capability cannot pass silently.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

fn run(args: &[&str], path: &Path) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .arg(path)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", args[0]));
    assert!(status.success(), "{args:?} {} failed", path.display());
}

impl SmallDisk {
    /// A tmpfs of `kib` KiB, or `None` when not root.
    pub fn mount(kib: u64) -> Option<SmallDisk> {
        if !is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let size = format!("size={kib}k");
        run(&["mount", "-t", "tmpfs", "-o", &size, "tmpfs"], dir.path());
        Some(SmallDisk {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills every free byte with one file, `filler`: every later write fails with ENOSPC
    /// (creating empty files and folders still works, as on a real full disk).
    pub fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path.join("filler")).expect("filler");
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        while file.write_all(&block[..1]).is_ok() {}
    }

    pub fn make_read_only(&self) {
        run(&["mount", "-o", "remount,ro"], &self.path);
    }

    pub fn make_writable(&self) {
        run(&["mount", "-o", "remount,rw"], &self.path);
    }

    /// Frees the space [`SmallDisk::fill`] took.
    pub fn empty(&self) {
        std::fs::remove_file(self.path.join("filler")).expect("the filler goes");
    }

    /// Everything on the disk but the filler, as paths relative to it.
    pub fn contents(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![self.path.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("listing").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path.clone());
                }
                let relative = path.strip_prefix(&self.path).expect("under the disk");
                if relative != Path::new("filler") {
                    found.push(relative.display().to_string());
                }
            }
        }
        found.sort();
        found
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
