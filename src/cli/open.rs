//! Opening `--data` as the models expect: a dataset of studies gets the manifest's intensity
//! mapping and protocol per plane, and the configured rule for choosing among a plane's series.
use std::path::Path;

use anyhow::anyhow;

use super::bad_input;
use crate::config::{Config, SeriesChoice};
use crate::data::dataset::Dataset;
use crate::data::study::{SeriesRule, StudyOptions};
use crate::model::manifest::Manifest;
use crate::paths::Folders;

fn rule(choice: SeriesChoice) -> SeriesRule {
    match choice {
        SeriesChoice::Protocol => SeriesRule::Protocol,
        SeriesChoice::MostSlices => SeriesRule::MostSlices,
        SeriesChoice::FirstNumber => SeriesRule::FirstNumber,
    }
}

/// The study options of the models in `models` (`manifest` read from it) under `config`'s rule
/// (the user's config when `None`).
pub fn study_options(
    manifest: &Manifest,
    models: &Path,
    config: Option<&Config>,
) -> anyhow::Result<StudyOptions> {
    let choice = match config {
        Some(config) => config.series,
        None => {
            let folders = Folders::locate().map_err(bad_input)?;
            Config::load(&folders.config, None)
                .map_err(bad_input)?
                .series
        }
    };
    manifest
        .study_options(rule(choice))
        .map_err(|e| bad_input(anyhow!("{}: {e}", models.join("manifest.toml").display())))
}

/// Opens `data` for the models in `models`.
pub fn dataset_for(
    data: &Path,
    manifest: &Manifest,
    models: &Path,
    config: Option<&Config>,
) -> anyhow::Result<Dataset> {
    let options = study_options(manifest, models, config)?;
    Dataset::open_with(data, &options).map_err(bad_input)
}
