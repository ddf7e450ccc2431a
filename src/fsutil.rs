//! kneecam's own writes are atomic: write a uniquely named temporary file beside the target
//! (the `tempfile` crate), then rename it into place. The temporary name is unique per call, so
//! any number of threads and processes may write one target at once: the last rename wins, and
//! every reader sees one writer's whole file.
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use tempfile::{Builder, NamedTempFile, TempPath};

/// Writes `path` through `fill` into a temporary file in the same folder, flushed to the disk
/// (fsync) before it is renamed into place, so readers see either the old file or the whole
/// new one, never a half-written one, even after a power cut.
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

/// Writes `path` atomically through a writer that wants a path of its own (libtorch's savers):
/// `save` writes the uniquely named temporary path it is given, which keeps `path`'s extension
/// (savers pick the format by it), and that file is then renamed into place. On any error the
/// temporary file is removed.
pub fn atomic_save<E: From<std::io::Error>>(
    path: &Path,
    save: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let suffix = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let tmp = temp_file(path, &suffix)?.into_temp_path();
    save(&tmp)?;
    persist(tmp, path)?;
    Ok(())
}

/// Reads `path` whole when it holds at most `limit` bytes; a larger file is an
/// `InvalidData` error saying so, read no further than `limit + 1` bytes (a file that grows
/// while it is read is caught too). Memory for the file's size is reserved at once.
pub fn read_at_most(path: &Path, limit: u64, what: &str) -> std::io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let size = file.metadata().map_or(0, |m| m.len());
    read_into(
        file,
        limit,
        what,
        Vec::with_capacity(size.min(limit) as usize + 1),
    )
}

/// Reads `reader` to its end when it gives at most `limit` bytes, as [`read_at_most`] does a
/// file, reserving nothing up front: the bound is on what is read, never on a size the source
/// declares (a zip entry's, say, which a crafted archive can make smaller than its data).
pub fn read_bounded(reader: impl Read, limit: u64, what: &str) -> std::io::Result<Vec<u8>> {
    read_into(reader, limit, what, Vec::new())
}

fn read_into(
    reader: impl Read,
    limit: u64,
    what: &str,
    mut bytes: Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
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
    // Dropping `tmp` on any early return removes the temporary file.
    let (file, tmp) = temp_file(path, "")?.into_parts();
    let mut writer = BufWriter::new(file);
    fill(&mut writer)?;
    writer.flush()?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    if sync {
        file.sync_all()?;
    }
    drop(file);
    persist(tmp, path)
}

/// A new, uniquely named file `.{name}.tmp.XXXXXX{suffix}` beside `path`, created with the
/// permissions `File::create` would give it (the umask's), not `tempfile`'s private 0600: the
/// CAM store and outputs are shared between users.
fn temp_file(path: &Path, suffix: &str) -> std::io::Result<NamedTempFile> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = format!(".{name}.tmp.");
    let mut builder = Builder::new();
    builder.prefix(&prefix).suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

fn persist(tmp: TempPath, path: &Path) -> std::io::Result<()> {
    // On failure the error hands the TempPath back; dropping it removes the temporary file.
    tmp.persist(path).map_err(|e| e.error)
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

    /// What writer `t`'s `i`-th write puts in the file: a header naming it, then 64 KiB that
    /// follow from the header, so any mix of two writes is seen.
    fn contents(t: usize, i: usize) -> Vec<u8> {
        let mut bytes = format!("writer {t} write {i}\n").into_bytes();
        bytes.extend((0..64 * 1024).map(|k| ((k * (t + 3) + i) % 251) as u8));
        bytes
    }

    #[test]
    fn threads_writing_one_target_at_once_all_succeed_and_one_whole_write_wins() {
        const THREADS: usize = 8;
        const WRITES: usize = 40;
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("shared.bin");
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let target = &target;
                scope.spawn(move || {
                    for i in 0..WRITES {
                        let synced = i % 2 == 0;
                        let fill = |w: &mut BufWriter<File>| w.write_all(&contents(t, i));
                        let written = if synced {
                            atomic_write(target, fill)
                        } else {
                            atomic_write_unsynced(target, fill)
                        };
                        if let Err(e) = written {
                            panic!("writer {t} write {i}: {e}");
                        }
                    }
                });
            }
        });
        let bytes = std::fs::read(&target).expect("read");
        let header = bytes.split(|&b| b == b'\n').next().expect("a header");
        let header = String::from_utf8_lossy(header).into_owned();
        let words: Vec<&str> = header.split(' ').collect();
        let [_, t, _, i] = words.as_slice() else {
            panic!("not one writer's file: {header:?}");
        };
        let (t, i) = (t.parse().expect("t"), i.parse().expect("i"));
        assert!(bytes == contents(t, i), "the file mixes writes");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("shared.bin")]);
    }

    #[test]
    fn written_files_get_the_permissions_file_create_gives() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = dir.path().join("plain");
        File::create(&plain).expect("create");
        let atomic = dir.path().join("atomic");
        atomic_write(&atomic, |w| w.write_all(b"x")).expect("write");
        let saved = dir.path().join("saved.bin");
        atomic_save(&saved, |tmp| std::fs::write(tmp, b"y")).expect("save");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions();
        assert_eq!(mode(&atomic), mode(&plain));
        assert_eq!(mode(&saved), mode(&plain));
    }

    #[test]
    fn atomic_save_keeps_the_extension_and_leaves_nothing_when_the_saver_fails() {
        let dir = tempfile::tempdir().expect("temp dir");
        let target = dir.path().join("model.safetensors");
        atomic_save(&target, |tmp| {
            assert_eq!(tmp.extension(), Some("safetensors".as_ref()));
            assert_ne!(tmp, target);
            std::fs::write(tmp, b"weights")
        })
        .expect("save");
        assert_eq!(std::fs::read(&target).expect("read"), b"weights");
        let failed: std::io::Result<()> = atomic_save(&target, |tmp| {
            std::fs::write(tmp, b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read(&target).expect("read"), b"weights");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

    #[test]
    fn bounded_reads_stop_one_byte_past_the_limit() {
        let mut source = std::io::Cursor::new(vec![7u8; 1000]);
        let err = read_bounded(&mut source, 10, "a test record").expect_err("too large");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "larger than 10 bytes, the most a test record can be"
        );
        assert_eq!(source.position(), 11, "read no further than limit + 1");
        let exact = read_bounded(&[1u8, 2, 3][..], 3, "three bytes").expect("fits");
        assert_eq!(exact, [1, 2, 3]);
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("f");
        std::fs::write(&file, [0u8; 5]).expect("write");
        assert!(read_at_most(&file, 4, "x").is_err());
        assert_eq!(read_at_most(&file, 5, "x").expect("fits").len(), 5);
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
