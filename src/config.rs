//! The explorer's settings: `config/default.toml` (built in), overlaid by the user's
//! `config.toml` from kneecam's config folder, overlaid by `--config FILE`. Every layer is
//! checked on its own: an unknown key or a bad value is an error naming the file and the key.
//!
//! A leaf: config uses the vocabulary of `data` and `cam` and owns the explorer's (its actions,
//! key bindings and display settings), but imports nothing from `tui`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cam::colormap::Colormap;
use crate::cam::{Method, Normalization};
use crate::data::{Split, Task};

pub mod action;
mod display;
pub mod keys;
mod layer;

pub use display::Display;
use keys::KeyMap;
use layer::{Layer, ViewLayer};

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// The user's file in kneecam's config folder.
pub const USER_FILE: &str = "config.toml";

/// Which exams a command (or the explorer's list) takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolChoice {
    Auto,
    Halfblocks,
    Sixel,
    Kitty,
    Iterm2,
}

/// Which series a study's plane shows when it has several (`[studies] series`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesChoice {
    /// The one whose description holds the models' protocol, else the most slices.
    #[default]
    Protocol,
    MostSlices,
    /// The lowest series number.
    FirstNumber,
}

/// Where the selection goes after a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Advance {
    /// The next exam of the list without this reader's verdict for the task.
    NextUnreviewed,
    /// The next exam of the list.
    Next,
    Stay,
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
    /// `[review] advance`.
    pub advance: Advance,
    /// `[studies] series`.
    pub series: SeriesChoice,
    /// `[keys]`: action name → keys, as written.
    pub keys: BTreeMap<String, Vec<String>>,
    pub keymap: KeyMap,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// (`error`, not `source`: the message prints it, so it is no source of the chain.)
    #[error("{}: {error}", .file.display())]
    Read {
        file: PathBuf,
        error: std::io::Error,
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
            let layer = Layer::parse(text, file)?;
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
                    heat_floor: 0.0,
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
            advance: Advance::NextUnreviewed,
            series: SeriesChoice::Protocol,
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
            self.protocol = protocol;
        }
        if let Some(advance) = layer.review.and_then(|r| r.advance) {
            self.advance = advance;
        }
        if let Some(series) = layer.studies.and_then(|s| s.series) {
            self.series = series;
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
        view.task = layer.task.unwrap_or(view.task);
        view.split = layer.split.unwrap_or(view.split);
        let display = &mut view.display;
        display.method = layer.method.unwrap_or(display.method);
        display.normalization = layer.normalization.unwrap_or(display.normalization);
        display.colormap = layer.colormap.unwrap_or(display.colormap);
        set_unit(&mut display.opacity, layer.opacity, "view.opacity", bad)?;
        set_unit(&mut view.threshold, layer.threshold, "view.threshold", bad)?;
        set_unit(
            &mut display.heat_floor,
            layer.heat_floor,
            "view.heat_floor",
            bad,
        )?;
        display.overlay = layer.overlay.unwrap_or(display.overlay);
        display.raw_beside = layer.raw_beside.unwrap_or(display.raw_beside);
        display.three_plane = layer.three_plane.unwrap_or(display.three_plane);
        Ok(())
    }
}

/// A config file is a few kilobytes; a larger one is refused unread.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

fn read(path: &Path) -> Result<String, ConfigError> {
    crate::fsutil::read_text_at_most(path, MAX_CONFIG_BYTES, "a config file").map_err(|error| {
        ConfigError::Read {
            file: path.to_path_buf(),
            error,
        }
    })
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
            with_user("[view]\ncolormap = \"turbo\"\n[keys]\nquit = [\"w\"]\n").expect("valid");
        assert_eq!(config.view.display.colormap, Colormap::Turbo);
        assert_eq!(config.view.display.method, Method::Contrib);
        assert_eq!(config.keys["quit"], vec!["w".to_string()]);
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

        // The heat floor is a share (0–1) of the positive range: 40 (an old 0–255 value) is
        // refused by its key; an integer 0 or 1 is a share.
        let err = with_user("[view]\nheat_floor = 40\n").expect_err("range");
        assert!(err.to_string().contains("view.heat_floor"), "{err}");
        let floor = |text: &str| with_user(text).expect("valid").view.display.heat_floor;
        assert_eq!(floor("[view]\nheat_floor = 0.3\n"), 0.3);
        assert_eq!(floor("[view]\nheat_floor = 0\n"), 0.0);
        assert_eq!(Config::defaults().view.display.heat_floor, 0.2);

        let err = with_user("[view]\nmethod = \"lime\"\n").expect_err("method");
        assert!(err.to_string().contains("view.method"), "{err}");

        let err = with_user("[graphics]\nprotocol = \"vt100\"\n").expect_err("protocol");
        assert!(err.to_string().contains("graphics.protocol"), "{err}");

        let err = with_user("[keys]\nquit = [\"j\"]\n").expect_err("conflict");
        assert!(err.to_string().contains("keys."), "{err}");

        let err = with_user("[view\n").expect_err("syntax");
        assert!(err.to_string().contains("user.toml"), "{err}");
    }

    #[test]
    fn enum_settings_say_what_was_expected_and_where() {
        let err = with_user("[view]\nopacity = 0.5\nmethod = \"foo\"\n").expect_err("method");
        assert_eq!(
            err.to_string(),
            "user.toml: view.method: \"foo\": expected one of cam, contrib, gradcam, gradcam++ \
             (line 3)"
        );
        let err = with_user("view.split = \"test\"\n").expect_err("split");
        assert_eq!(
            err.to_string(),
            "user.toml: view.split: \"test\": expected one of valid, train, all (line 1)"
        );
        let err = with_user("graphics = { protocol = \"vt52\" }\n").expect_err("protocol");
        assert_eq!(
            err.to_string(),
            "user.toml: graphics.protocol: \"vt52\": expected one of auto, halfblocks, sixel, \
             kitty, iterm2 (line 1)"
        );
        let err = with_user("[view]\ntask = 3\n").expect_err("task");
        assert_eq!(
            err.to_string(),
            "user.toml: view.task: expected a string (line 2)"
        );
        let err = with_user("[view]\nopactiy = 0.3\n").expect_err("typo");
        assert!(
            err.to_string()
                .starts_with("user.toml: view.opactiy: no such key; expected one of task, method"),
            "{err}"
        );
        let err = with_user("[keys]\nquit = [\"q\", 3]\n").expect_err("key type");
        assert!(
            err.to_string().starts_with("user.toml: keys.quit: "),
            "{err}"
        );

        let config = with_user(
            "[view]\ntask = \"meniscus\"\nmethod = \"gradcam++\"\nnormalization = \"none\"\n\
             colormap = \"gray\"\nsplit = \"all\"\n[graphics]\nprotocol = \"iterm2\"\n",
        )
        .expect("valid");
        assert_eq!(config.view.task, Task::Meniscus);
        assert_eq!(config.view.display.method, Method::GradCamPlusPlus);
        assert_eq!(config.view.display.normalization, Normalization::None);
        assert_eq!(config.view.display.colormap, Colormap::Gray);
        assert_eq!(config.view.split, SplitChoice::All);
        assert_eq!(config.protocol, ProtocolChoice::Iterm2);
    }

    /// config is a leaf below the explorer: none of its files names a `tui` path.
    #[test]
    fn config_imports_nothing_from_the_explorer() {
        for (file, text) in [
            ("config.rs", include_str!("config.rs")),
            ("config/action.rs", include_str!("config/action.rs")),
            ("config/display.rs", include_str!("config/display.rs")),
            ("config/keys.rs", include_str!("config/keys.rs")),
            ("config/layer.rs", include_str!("config/layer.rs")),
        ] {
            let code = text.split("#[cfg(test)]").next().unwrap_or(text);
            for forbidden in ["crate::tui", "super::tui", "ratatui"] {
                assert!(!code.contains(forbidden), "src/{file} uses {forbidden}");
            }
        }
    }
}
