//! The explorer's settings: `config/default.toml` (built in), overlaid by the user's
//! `config.toml` from kneecam's config folder, overlaid by `--config FILE`. Every layer is
//! checked on its own: an unknown key or a bad value is an error naming the file and the key.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::cam::colormap::Colormap;
use crate::cam::{Method, Normalization};
use crate::data::{Split, Task};
use crate::tui::app::Display;
use crate::tui::keymap::KeyMap;

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// The user's file in kneecam's config folder.
pub const USER_FILE: &str = "config.toml";

/// Which exams a command (or the explorer's list) takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitChoice {
    Valid,
    Train,
    All,
}

impl SplitChoice {
    /// Whether exams of `split` belong; a flat folder's exams belong to every choice.
    pub fn includes(self, split: Split) -> bool {
        match self {
            SplitChoice::All => true,
            SplitChoice::Valid => split == Split::Valid || split == Split::Flat,
            SplitChoice::Train => split == Split::Train || split == Split::Flat,
        }
    }
}

/// How images reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolChoice {
    Auto,
    Halfblocks,
    Sixel,
    Kitty,
    Iterm2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ViewConfig {
    pub task: Task,
    /// How CAMs are drawn at start (`[view]`'s method, normalization, colormap, opacity,
    /// heat_floor, overlay, raw_beside, three_plane).
    pub display: Display,
    pub threshold: f32,
    pub split: SplitChoice,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub view: ViewConfig,
    pub cam_cache_bytes: usize,
    pub image_cache_entries: usize,
    /// None: `exports/` in kneecam's data folder.
    pub export_folder: Option<PathBuf>,
    pub protocol: ProtocolChoice,
    /// `[keys]`: action name → keys, as written.
    pub keys: BTreeMap<String, Vec<String>>,
    pub keymap: KeyMap,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", .file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", .file.display())]
    Parse { file: PathBuf, message: String },
    #[error("{}: {key}: {message}", .file.display())]
    Value {
        file: PathBuf,
        key: String,
        message: String,
    },
}

/// One file's keys, all optional; unknown keys are refused by serde.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    view: Option<ViewLayer>,
    cache: Option<CacheLayer>,
    export: Option<ExportLayer>,
    graphics: Option<GraphicsLayer>,
    keys: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewLayer {
    task: Option<String>,
    method: Option<String>,
    normalization: Option<String>,
    colormap: Option<String>,
    opacity: Option<f64>,
    heat_floor: Option<i64>,
    overlay: Option<bool>,
    raw_beside: Option<bool>,
    three_plane: Option<bool>,
    threshold: Option<f64>,
    split: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheLayer {
    cam_bytes: Option<i64>,
    images: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportLayer {
    folder: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphicsLayer {
    protocol: Option<String>,
}

impl Config {
    /// The built-in defaults alone.
    pub fn defaults() -> Config {
        Self::from_layers(&[(Path::new("config/default.toml (built in)"), DEFAULT_TOML)])
            .expect("the built-in config/default.toml is valid (a unit test checks it)")
    }

    /// Defaults, then `<config_dir>/config.toml` when it exists, then `explicit` (which must
    /// exist).
    pub fn load(config_dir: &Path, explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        let user = config_dir.join(USER_FILE);
        if user.is_file() {
            files.push((user.clone(), read(&user)?));
        }
        if let Some(path) = explicit {
            files.push((path.to_path_buf(), read(path)?));
        }
        let mut layers = vec![(Path::new("config/default.toml (built in)"), DEFAULT_TOML)];
        layers.extend(files.iter().map(|(p, t)| (p.as_path(), t.as_str())));
        Self::from_layers(&layers)
    }

    /// The built-in defaults overlaid by one layer of TOML `text`, checked as [`Config::load`]
    /// checks each file it reads (the same parsing, the same checks, the same errors);
    /// `file` names the layer in errors.
    pub fn parse_layer(text: &str, file: &Path) -> Result<Config, ConfigError> {
        Self::from_layers(&[
            (Path::new("config/default.toml (built in)"), DEFAULT_TOML),
            (file, text),
        ])
    }

    fn from_layers(layers: &[(&Path, &str)]) -> Result<Config, ConfigError> {
        let mut config = Config::empty();
        // Which layer last set each action's keys: a keymap error is that layer's (for a key
        // bound twice, the later layer of the two actions').
        let mut key_origin: BTreeMap<String, usize> = BTreeMap::new();
        for (index, (file, text)) in layers.iter().enumerate() {
            let layer: Layer = toml::from_str(text).map_err(|e| ConfigError::Parse {
                file: file.to_path_buf(),
                message: e.to_string().trim_end().to_string(),
            })?;
            for name in layer.keys.iter().flat_map(BTreeMap::keys) {
                key_origin.insert(name.clone(), index);
            }
            config.apply(layer, file)?;
        }
        config.keymap = KeyMap::from_table(&config.keys).map_err(|e| {
            let action = e.key.strip_prefix("keys.").unwrap_or(&e.key);
            let layer = [Some(action), e.clashes_with.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(|name| key_origin.get(name).copied())
                .max()
                .unwrap_or(layers.len().saturating_sub(1));
            let file = layers.get(layer).map_or(Path::new(""), |(f, _)| *f);
            ConfigError::Value {
                file: file.to_path_buf(),
                key: e.key,
                message: e.message,
            }
        })?;
        Ok(config)
    }

    /// Placeholder values, all replaced by the built-in layer.
    fn empty() -> Config {
        Config {
            view: ViewConfig {
                task: Task::Acl,
                display: Display {
                    method: Method::Contrib,
                    normalization: Normalization::Exam,
                    colormap: Colormap::Jet,
                    opacity: 0.5,
                    heat_floor: 0,
                    overlay: true,
                    raw_beside: false,
                    three_plane: false,
                },
                threshold: 0.5,
                split: SplitChoice::Valid,
            },
            cam_cache_bytes: 0,
            image_cache_entries: 0,
            export_folder: None,
            protocol: ProtocolChoice::Auto,
            keys: BTreeMap::new(),
            keymap: KeyMap::empty(),
        }
    }

    fn apply(&mut self, layer: Layer, file: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| ConfigError::Value {
            file: file.to_path_buf(),
            key: key.to_string(),
            message,
        };
        if let Some(view) = layer.view {
            self.apply_view(view, &bad)?;
        }
        if let Some(cache) = layer.cache {
            if let Some(bytes) = cache.cam_bytes {
                self.cam_cache_bytes = in_range(bytes, 1 << 20, 1 << 40)
                    .ok_or_else(|| bad("cache.cam_bytes", expected("1 MiB to 1 TiB", bytes)))?;
            }
            if let Some(images) = cache.images {
                self.image_cache_entries = in_range(images, 1, 100_000)
                    .ok_or_else(|| bad("cache.images", expected("1 to 100000", images)))?;
            }
        }
        if let Some(export) = layer.export.and_then(|e| e.folder) {
            self.export_folder = (!export.is_empty()).then(|| PathBuf::from(export));
        }
        if let Some(protocol) = layer.graphics.and_then(|g| g.protocol) {
            self.protocol = parse_protocol(&protocol).ok_or_else(|| {
                bad(
                    "graphics.protocol",
                    format!("'{protocol}': expected auto, halfblocks, sixel, kitty or iterm2"),
                )
            })?;
        }
        if let Some(keys) = layer.keys {
            self.keys.extend(keys);
        }
        Ok(())
    }

    fn apply_view(
        &mut self,
        layer: ViewLayer,
        bad: &dyn Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let view = &mut self.view;
        set_parsed(&mut view.task, layer.task, "view.task", bad)?;
        let display = &mut view.display;
        set_parsed(&mut display.method, layer.method, "view.method", bad)?;
        set_parsed(
            &mut display.normalization,
            layer.normalization,
            "view.normalization",
            bad,
        )?;
        set_parsed(&mut display.colormap, layer.colormap, "view.colormap", bad)?;
        set_unit(&mut display.opacity, layer.opacity, "view.opacity", bad)?;
        set_unit(&mut view.threshold, layer.threshold, "view.threshold", bad)?;
        if let Some(floor) = layer.heat_floor {
            display.heat_floor = in_range(floor, 0, 255)
                .ok_or_else(|| bad("view.heat_floor", expected("0 to 255", floor)))?;
        }
        display.overlay = layer.overlay.unwrap_or(display.overlay);
        display.raw_beside = layer.raw_beside.unwrap_or(display.raw_beside);
        display.three_plane = layer.three_plane.unwrap_or(display.three_plane);
        if let Some(split) = layer.split {
            view.split = match split.as_str() {
                "valid" => SplitChoice::Valid,
                "train" => SplitChoice::Train,
                "all" => SplitChoice::All,
                _ => {
                    return Err(bad(
                        "view.split",
                        format!("'{split}': expected valid, train or all"),
                    ))
                }
            };
        }
        Ok(())
    }
}

/// A config file is a few kilobytes; a larger one is refused unread.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read(path: &Path) -> Result<String, ConfigError> {
    crate::fsutil::read_text_at_most(path, MAX_CONFIG_BYTES, "a config file").map_err(|source| {
        ConfigError::Read {
            file: path.to_path_buf(),
            source,
        }
    })
}

fn set_parsed<T: FromStr>(
    slot: &mut T,
    text: Option<String>,
    key: &str,
    bad: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError>
where
    T::Err: std::fmt::Display,
{
    if let Some(text) = text {
        *slot = text.parse().map_err(|e: T::Err| bad(key, e.to_string()))?;
    }
    Ok(())
}

/// Sets `slot` to `value` when it is given, which must lie in 0–1.
fn set_unit(
    slot: &mut f32,
    value: Option<f64>,
    key: &str,
    bad: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    if let Some(value) = value {
        if !(0.0..=1.0).contains(&value) {
            return Err(bad(key, format!("{value}: expected a number from 0 to 1")));
        }
        *slot = value as f32;
    }
    Ok(())
}

fn in_range<T: TryFrom<i64>>(value: i64, low: i64, high: i64) -> Option<T> {
    (low..=high)
        .contains(&value)
        .then(|| T::try_from(value).ok())
        .flatten()
}

fn expected(range: &str, value: i64) -> String {
    format!("{value}: expected {range}")
}

fn parse_protocol(text: &str) -> Option<ProtocolChoice> {
    Some(match text {
        "auto" => ProtocolChoice::Auto,
        "halfblocks" => ProtocolChoice::Halfblocks,
        "sixel" => ProtocolChoice::Sixel,
        "kitty" => ProtocolChoice::Kitty,
        "iterm2" => ProtocolChoice::Iterm2,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_user(text: &str) -> Result<Config, ConfigError> {
        Config::from_layers(&[
            (Path::new("default.toml"), DEFAULT_TOML),
            (Path::new("user.toml"), text),
        ])
    }

    #[test]
    fn a_key_error_names_the_layer_that_set_that_key() {
        let err = Config::from_layers(&[
            (Path::new("default.toml"), DEFAULT_TOML),
            (Path::new("user.toml"), "[keys]\nquit = [\"j\"]\n"),
            (Path::new("explicit.toml"), "[view]\ncolormap = \"turbo\"\n"),
        ])
        .expect_err("conflict");
        let text = err.to_string();
        assert!(text.starts_with("user.toml: keys."), "{text}");
        // The other way round: the user's key is the earlier action of the clash.
        let err = Config::from_layers(&[
            (Path::new("default.toml"), DEFAULT_TOML),
            (Path::new("user.toml"), "[keys]\nnext_patient = [\"q\"]\n"),
        ])
        .expect_err("conflict");
        let text = err.to_string();
        assert!(text.starts_with("user.toml: keys."), "{text}");
    }

    #[test]
    fn built_in_defaults_are_valid() {
        let config = Config::defaults();
        assert_eq!(config.view.task, Task::Acl);
        assert_eq!(config.view.display.method, Method::Contrib);
        assert!(config.export_folder.is_none());
        assert!(config.cam_cache_bytes >= 1 << 20);
    }

    #[test]
    fn a_user_layer_overrides_only_its_keys() {
        let config =
            with_user("[view]\ncolormap = \"turbo\"\n[keys]\nquit = [\"x\"]\n").expect("valid");
        assert_eq!(config.view.display.colormap, Colormap::Turbo);
        assert_eq!(config.view.display.method, Method::Contrib);
        assert_eq!(config.keys["quit"], vec!["x".to_string()]);
        assert_eq!(config.keys["next_patient"].len(), 2);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file_and_key() {
        let err = with_user("[view]\nopactiy = 0.3\n").expect_err("typo");
        let text = err.to_string();
        assert!(
            text.contains("user.toml") && text.contains("opactiy"),
            "{text}"
        );

        let err = with_user("[view]\nopacity = 3.0\n").expect_err("range");
        assert!(err.to_string().contains("view.opacity"), "{err}");

        let err = with_user("[view]\nmethod = \"lime\"\n").expect_err("method");
        assert!(err.to_string().contains("view.method"), "{err}");

        let err = with_user("[graphics]\nprotocol = \"vt100\"\n").expect_err("protocol");
        assert!(err.to_string().contains("graphics.protocol"), "{err}");

        let err = with_user("[keys]\nquit = [\"j\"]\n").expect_err("conflict");
        assert!(err.to_string().contains("keys."), "{err}");

        let err = with_user("[view\n").expect_err("syntax");
        assert!(err.to_string().contains("user.toml"), "{err}");
    }
}
