//! kneecam's own folders (config, cache, data), from `directories`, each overridable by an
//! environment variable so that tests and shared servers can point them elsewhere.
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    pub config: PathBuf,
    pub cache: PathBuf,
    pub data: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("no home directory to put kneecam's {0} folder in: set HOME, or KNEECAM_{1}_DIR")]
pub struct NoHome(&'static str, &'static str);

impl Folders {
    /// The folders for this user: `KNEECAM_{CONFIG,CACHE,DATA}_DIR` when set, else the platform's.
    pub fn locate() -> Result<Self, NoHome> {
        let dirs = directories::ProjectDirs::from("", "", "kneecam");
        let pick = |var: &str, from_dirs: fn(&directories::ProjectDirs) -> PathBuf, what, key| {
            match std::env::var_os(var).filter(|v| !v.is_empty()) {
                Some(dir) => Ok(PathBuf::from(dir)),
                None => dirs.as_ref().map(from_dirs).ok_or(NoHome(what, key)),
            }
        };
        Ok(Self {
            config: pick(
                "KNEECAM_CONFIG_DIR",
                |d| d.config_dir().into(),
                "config",
                "CONFIG",
            )?,
            cache: pick(
                "KNEECAM_CACHE_DIR",
                |d| d.cache_dir().into(),
                "cache",
                "CACHE",
            )?,
            data: pick("KNEECAM_DATA_DIR", |d| d.data_dir().into(), "data", "DATA")?,
        })
    }

    /// The CAM store's default folder (`--cache` points elsewhere, e.g. a shared one).
    pub fn cam_store(&self) -> PathBuf {
        self.cache.join("cams")
    }

    pub fn log_file(&self) -> PathBuf {
        self.data.join("logs").join("kneecam.log")
    }
}

/// An output folder or file that would land inside a folder kneecam only reads.
#[derive(Debug, thiserror::Error)]
#[error(
    "{flag} {}: inside the {what} folder {}; kneecam never writes into a dataset or models \
     folder: choose a folder outside it",
    target.display(),
    protected.display()
)]
pub struct InsideReadOnly {
    pub flag: String,
    pub target: PathBuf,
    pub what: &'static str,
    pub protected: PathBuf,
}

/// Refuses `target` (given as `flag`, e.g. `--out`) when it is, or would be created, inside
/// one of `protected` (`("dataset", DIR)`, `("models", DIR)`). Symbolic links and `..` are
/// resolved; a target that does not exist yet is judged by its nearest existing ancestor.
pub fn ensure_outside(
    flag: &str,
    target: &Path,
    protected: &[(&'static str, &Path)],
) -> Result<(), InsideReadOnly> {
    let resolved = resolve(target);
    for &(what, folder) in protected {
        let Ok(folder) = folder.canonicalize() else {
            continue;
        };
        if resolved.starts_with(&folder) {
            return Err(InsideReadOnly {
                flag: flag.to_string(),
                target: target.to_path_buf(),
                what,
                protected: folder,
            });
        }
    }
    Ok(())
}

/// `path` made absolute and resolved as the file system would: its existing part
/// canonicalised, then the rest one component at a time (a `..` drops the last one, and
/// whatever exists by then, a link say, is canonicalised again).
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut resolved = PathBuf::new();
    for component in absolute.components() {
        match component {
            std::path::Component::ParentDir => {
                resolved.pop();
            }
            std::path::Component::CurDir => {}
            other => resolved.push(other),
        }
        if let Ok(real) = resolved.canonicalize() {
            resolved = real;
        }
    }
    resolved
}

/// The dataset folder an exam file belongs to: `ROOT` for `ROOT/{train,valid}/PLANE/N.npy`
/// or `ROOT/PLANE/N.npy` once links and `..` are resolved; `None` for a file outside that
/// layout (a loose exam) or one that does not exist.
pub fn dataset_of(exam: &Path) -> Option<PathBuf> {
    let exam = exam.canonicalize().ok()?;
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let plane_folder = exam
        .parent()
        .filter(|folder| name_of(folder).is_some_and(|n| PLANE_FOLDERS.contains(&n.as_str())))?;
    let above = plane_folder.parent()?;
    match above.parent() {
        Some(root) if name_of(above).is_some_and(|n| n == "train" || n == "valid") => {
            Some(root.to_path_buf())
        }
        _ => Some(above.to_path_buf()),
    }
}

const PLANE_FOLDERS: [&str; 3] = ["axial", "coronal", "sagittal"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_inside_read_only_folders_are_refused_through_dots_and_links() {
        let root = tempfile::tempdir().expect("tempdir");
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("valid/axial")).expect("dataset");
        let models = root.path().join("models");
        std::fs::create_dir_all(&models).expect("models");
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&data, &link).expect("symlink");
        let protected = [("dataset", data.as_path()), ("models", models.as_path())];

        let refused = [
            data.join("cams"),
            root.path().join("missing/../link/out"),
            data.join("valid/axial/new/deeper"),
            root.path().join("elsewhere/../data/x"),
            link.join("out"),
            models.clone(),
        ];
        for target in refused {
            let Err(err) = ensure_outside("--out", &target, &protected) else {
                panic!("{} is inside", target.display());
            };
            assert!(err.to_string().starts_with("--out "), "{err}");
        }
        for fine in [root.path().join("out"), root.path().join("data-cams")] {
            ensure_outside("--out", &fine, &protected).expect("outside");
        }
    }

    #[test]
    fn an_exams_dataset_is_the_folder_above_its_plane_and_split() {
        let root = tempfile::tempdir().expect("tempdir");
        let root = root.path().canonicalize().expect("real");
        for folder in ["d/valid/axial", "e/coronal", "scans"] {
            std::fs::create_dir_all(root.join(folder)).expect("folder");
            std::fs::write(root.join(folder).join("0001.npy"), "").expect("exam");
        }
        let exam = |p: &str| dataset_of(&root.join(p));
        assert_eq!(exam("d/valid/axial/0001.npy"), Some(root.join("d")));
        assert_eq!(
            exam("d/valid/axial/../axial/0001.npy"),
            Some(root.join("d"))
        );
        assert_eq!(exam("e/coronal/0001.npy"), Some(root.join("e")));
        assert_eq!(exam("scans/0001.npy"), None);
        assert_eq!(exam("d/valid/axial/0002.npy"), None, "no such file");
        std::os::unix::fs::symlink(root.join("d/valid/axial/0001.npy"), root.join("link.npy"))
            .expect("symlink");
        assert_eq!(exam("link.npy"), Some(root.join("d")));
    }
}
