//! The explorer's triage: who reads, and the review database their verdicts go to.
use std::path::{Path, PathBuf};

use crate::cli::bad_input;
use crate::data::dataset::Dataset;
use crate::paths::Folders;
use crate::review::identity::{check_reader, default_reader};
use crate::review::sqlite::SqliteStore;
use crate::review::{DatasetRef, Query, ReviewStore};
use crate::tui::app::ReviewStart;
use crate::tui::ReviewSetup;

/// The file name of the review database in kneecam's data folder.
pub const DEFAULT_FILE: &str = "reviews.sqlite";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReviewArgs {
    /// Who is reading: verdicts are recorded under this name [default: the login name].
    #[arg(long)]
    pub reader: Option<String>,
    /// The review database (SQLite; a team's shared file on the server's local disk)
    /// [default: reviews.sqlite in kneecam's data folder].
    #[arg(long, value_name = "FILE")]
    pub reviews: Option<PathBuf>,
}

impl ReviewArgs {
    /// The database's path: `--reviews`, else the data folder's.
    pub fn path(&self, folders: &Folders) -> PathBuf {
        self.reviews
            .clone()
            .unwrap_or_else(|| folders.data.join(DEFAULT_FILE))
    }
}

/// Opens the review database for the explorer on `dataset` with the models of `models`: a
/// file that is not a kneecam review database is refused here, before the explorer starts.
pub fn setup(
    args: &ReviewArgs,
    folders: &Folders,
    dataset: &Dataset,
    models: &Path,
) -> anyhow::Result<ReviewSetup> {
    let path = args.path(folders);
    super::super::outside_inputs("--reviews", &path, Some(dataset.root()), Some(models))?;
    let reader = check_reader(&args.reader.clone().unwrap_or_else(default_reader))
        .map_err(|message| bad_input(anyhow::anyhow!("--reader: {message}")))?;
    let store = SqliteStore::open(&path).map_err(bad_input)?;
    let dataset_ref = DatasetRef::of(dataset);
    let existing = store
        .verdicts(&Query {
            dataset_fingerprint: Some(dataset_ref.fingerprint.clone()),
            task: None,
            reader: Some(reader.clone()),
        })
        .map_err(bad_input)?;
    let models_fingerprint = crate::digest::sha256_file(&models.join("manifest.toml"))
        .map(|hex| format!("sha256:{hex}"))
        .unwrap_or_default();
    let reopen_path = path.clone();
    Ok(ReviewSetup {
        start: ReviewStart {
            reader,
            dataset: dataset_ref,
            models_fingerprint,
            existing,
            store: path.display().to_string(),
        },
        store: Box::new(store),
        reopen: Box::new(move || {
            SqliteStore::open(&reopen_path).map(|s| Box::new(s) as Box<dyn ReviewStore>)
        }),
    })
}
