//! One config file as written: every key optional, unknown keys refused, enum-valued settings
//! deserialised straight into their types. A value serde refuses is reported against its key,
//! found from the span toml gives the error.
use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::{Advance, ConfigError, ProtocolChoice, SeriesChoice, SplitChoice};
use crate::cam::colormap::Colormap;
use crate::cam::{Method, Normalization};
use crate::data::Task;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Layer {
    pub view: Option<ViewLayer>,
    pub cache: Option<CacheLayer>,
    pub export: Option<ExportLayer>,
    pub graphics: Option<GraphicsLayer>,
    pub review: Option<ReviewLayer>,
    pub studies: Option<StudiesLayer>,
    pub keys: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ViewLayer {
    pub task: Option<Task>,
    pub method: Option<Method>,
    pub normalization: Option<Normalization>,
    pub colormap: Option<Colormap>,
    pub opacity: Option<f64>,
    pub heat_floor: Option<f64>,
    pub overlay: Option<bool>,
    pub raw_beside: Option<bool>,
    pub three_plane: Option<bool>,
    pub threshold: Option<f64>,
    pub split: Option<SplitChoice>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CacheLayer {
    pub cam_bytes: Option<i64>,
    pub images: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportLayer {
    pub folder: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReviewLayer {
    pub advance: Option<Advance>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StudiesLayer {
    pub series: Option<SeriesChoice>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GraphicsLayer {
    pub protocol: Option<ProtocolChoice>,
}

impl Layer {
    /// Parses one file's text: a syntax error is the file's, a refused value its key's.
    pub fn parse(text: &str, file: &Path) -> Result<Layer, ConfigError> {
        let document = toml::de::Deserializer::parse(text).map_err(|e| ConfigError::Parse {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Layer::deserialize(document).map_err(|e| {
            let file = file.to_path_buf();
            let start = e.span().map(|span| span.start);
            match start.and_then(|start| Some((key_at(text, start)?, start))) {
                Some((key, start)) => ConfigError::Value {
                    file,
                    key,
                    message: format!("{} (line {})", plain(e.message()), line_of(text, start)),
                },
                None => ConfigError::Parse {
                    file,
                    message: e.to_string().trim_end().to_string(),
                },
            }
        })
    }
}

/// 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// The dotted key whose name or value holds byte `offset` (`view.method`, `keys.quit`), at
/// most a few levels deep: that is as deep as a layer goes.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let document = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    find(document.get_ref(), offset, &mut path, 0).then(|| path.join("."))
}

const MAX_DEPTH: usize = 3;

fn find(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>, depth: usize) -> bool {
    if depth >= MAX_DEPTH {
        return false;
    }
    let holds = |span: Range<usize>| span.contains(&offset);
    for (key, value) in table {
        if holds(key.span()) {
            path.push(key.get_ref().to_string());
            return true;
        }
        if let DeValue::Table(inner) = value.get_ref() {
            path.push(key.get_ref().to_string());
            if find(inner, offset, path, depth + 1) {
                return true;
            }
            path.pop();
        } else if holds(value.span()) {
            path.push(key.get_ref().to_string());
            return true;
        }
    }
    false
}

/// serde's wording in the config's: ``unknown variant `foo`, expected one of `cam`, `contrib` ``
/// becomes `"foo": expected one of cam, contrib`, ``unknown field `x`, expected …`` becomes
/// `no such key; expected …`.
fn plain(message: &str) -> String {
    let unquote = |text: &str| text.replace('`', "");
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        if let Some((given, expected)) = rest.split_once("`, ") {
            return format!("{given:?}: {}", unquote(expected));
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((_, expected)) = rest.split_once("`, ") {
            return format!("no such key; {}", unquote(expected));
        }
    }
    match message {
        // toml's words for a non-string where an enum's name belongs.
        "wanted string or table" => "expected a string".to_string(),
        _ => message.to_string(),
    }
}
