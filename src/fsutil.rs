//! kneecam's own writes are atomic: write a temporary file beside the target, then rename.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `path` through `fill` into a temporary file in the same folder, then renames it into
/// place, so readers see either the old file or the whole new one, never a half-written one.
pub fn atomic_write(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_then_rename(path, fill, true)
}

/// As [`atomic_write`], without waiting for the disk: for bulk outputs that can be regenerated
/// (other processes still never see a half-written file; a power cut may lose the newest ones).
pub fn atomic_write_unsynced(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_then_rename(path, fill, false)
}

/// Reads `path` whole when it holds at most `limit` bytes; a larger file is an
/// `InvalidData` error saying so, read no further than `limit + 1` bytes (a file that grows
/// while it is read is caught too).
pub fn read_at_most(path: &Path, limit: u64, what: &str) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let size = file.metadata().map_or(0, |m| m.len());
    let mut bytes = Vec::with_capacity(size.min(limit) as usize + 1);
    std::io::Read::read_to_end(&mut std::io::Read::take(file, limit + 1), &mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes, the most {what} can be"),
        ));
    }
    Ok(bytes)
}

/// [`read_at_most`] for text: bytes that are not UTF-8 are an `InvalidData` error saying where.
pub fn read_text_at_most(path: &Path, limit: u64, what: &str) -> std::io::Result<String> {
    String::from_utf8(read_at_most(path, limit, what)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn write_then_rename(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
    sync: bool,
) -> std::io::Result<()> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut writer = BufWriter::new(File::create(&tmp)?);
        fill(&mut writer)?;
        writer.flush()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fill_leaves_neither_the_target_nor_a_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("out.bin");
        let err = atomic_write(&target, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_successful_write_replaces_the_old_file_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old").expect("seed");
        atomic_write(&target, |w| w.write_all(b"new contents")).expect("write");
        assert_eq!(
            std::fs::read_to_string(&target).expect("read"),
            "new contents"
        );
    }
}
