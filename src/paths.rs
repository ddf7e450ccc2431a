//! kneecam's own folders (config, cache, data), from `directories`, each overridable by an
//! environment variable so that tests and shared servers can point them elsewhere.
use std::path::PathBuf;

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
