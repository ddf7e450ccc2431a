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

/// `path` made absolute, with the part that exists canonicalised and the rest appended.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            // What does not exist yet cannot be a link: its `..` and `.` are resolved by name.
            return rest.iter().rev().fold(real, |mut acc, part| {
                match part.to_str() {
                    Some("..") => {
                        acc.pop();
                    }
                    Some(".") => {}
                    _ => acc.push(part),
                }
                acc
            });
        }
        let Some(last) = existing.components().next_back() else {
            return absolute;
        };
        rest.push(last.as_os_str().to_os_string());
        if !existing.pop() {
            return absolute;
        }
    }
}

/// The dataset folder an exam file belongs to: `ROOT` for `ROOT/{train,valid}/PLANE/N.npy`
/// or `ROOT/PLANE/N.npy`; `None` for a file outside that layout (a loose exam).
pub fn dataset_of(exam: &Path) -> Option<PathBuf> {
    let name_of = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let plane_folder = exam
        .parent()
        .filter(|folder| name_of(folder).is_some_and(|n| PLANE_FOLDERS.contains(&n.as_str())))?;
    let above = match plane_folder.parent()? {
        parent if parent.as_os_str().is_empty() => Path::new("."),
        parent => parent,
    };
    let above = std::path::absolute(above).ok()?;
    if name_of(&above).is_some_and(|n| n == "train" || n == "valid") {
        if let Some(root) = above.parent() {
            return Some(root.to_path_buf());
        }
    }
    Some(above)
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
        let here = std::env::current_dir().expect("cwd");
        assert_eq!(
            dataset_of(Path::new("d/valid/axial/0001.npy")),
            Some(here.join("d"))
        );
        assert_eq!(
            dataset_of(Path::new("/d/coronal/0001.npy")),
            Some(PathBuf::from("/d"))
        );
        assert_eq!(dataset_of(Path::new("axial/0001.npy")), Some(here));
        assert_eq!(dataset_of(Path::new("scans/0001.npy")), None);
        assert_eq!(dataset_of(Path::new("0001.npy")), None);
    }
}
