//! `kneecam review merge A.sqlite B.sqlite … --into FILE`: the union of the databases'
//! verdicts and undos, by uid. The same verdict in two files is kept once; two readers' (or
//! one reader's successive) verdicts on a case are all kept, the latest winning as always.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};

use super::open_input;
use crate::cli::{bad_input, printable};
use crate::review::sqlite::SqliteStore;
use crate::review::{Contents, ReviewError, ReviewStore};

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The review databases to merge (read, never changed).
    #[arg(required = true, value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// The database merged into: a kneecam review database (changed in place, in one
    /// transaction) or a new file.
    #[arg(long, value_name = "FILE")]
    pub into: PathBuf,
}

pub fn run(args: MergeArgs) -> anyhow::Result<ExitCode> {
    for input in &args.inputs {
        if same_file(input, &args.into) {
            return Err(bad_input(anyhow!(
                "{} is both an input and --into: merge into another file",
                input.display()
            )));
        }
    }
    let mut inputs = Vec::new();
    for input in &args.inputs {
        let contents = open_input(input)?.contents().map_err(bad_input)?;
        inputs.push((input, contents));
    }
    if args.into.is_dir() {
        return Err(bad_input(anyhow!(
            "{} is a folder: --into takes a review database file (existing or new)",
            args.into.display()
        )));
    }
    let existing = if args.into.exists() {
        Some(check_into(&args.into)?)
    } else {
        None
    };
    // What each input adds, in order: a uid seen in --into or an earlier input is not new.
    let mut seen_verdicts: HashSet<String> = HashSet::new();
    let mut seen_undos: HashSet<String> = HashSet::new();
    if let Some(contents) = &existing {
        seen_verdicts.extend(contents.verdicts.iter().map(|v| v.uid.clone()));
        seen_undos.extend(contents.undos.iter().map(|u| u.verdict_uid.clone()));
    }
    let mut new = Contents::default();
    let mut lines = Vec::new();
    for (input, contents) in &inputs {
        let before = (new.verdicts.len(), new.undos.len());
        for verdict in &contents.verdicts {
            if seen_verdicts.insert(verdict.uid.clone()) {
                new.verdicts.push(verdict.clone());
            }
        }
        for undo in &contents.undos {
            if seen_undos.insert(undo.verdict_uid.clone()) {
                new.undos.push(undo.clone());
            }
        }
        lines.push(format!(
            "{}: {} of {} verdicts new, {} of {} undos new",
            input.display(),
            new.verdicts.len() - before.0,
            contents.verdicts.len(),
            new.undos.len() - before.1,
            contents.undos.len()
        ));
    }
    let added = match existing {
        Some(_) => {
            let mut store = SqliteStore::open(&args.into).map_err(bad_input)?;
            store.import(&new)?
        }
        None => create(&args.into, &new)?,
    };
    for line in lines {
        println!("{}", printable(&line));
    }
    println!(
        "{}: {} verdicts and {} undos added",
        printable(&args.into.display().to_string()),
        added.0,
        added.1
    );
    Ok(ExitCode::SUCCESS)
}

/// Whether `a` and `b` are one existing file (through links and `..`).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The contents of an existing `--into`, which must be a kneecam review database.
fn check_into(into: &Path) -> anyhow::Result<Contents> {
    let store = SqliteStore::open_read_only(into).map_err(|e| match e {
        ReviewError::NotDatabase(_) | ReviewError::Foreign { .. } => bad_input(anyhow!(
            "{}: not a kneecam review database (left untouched): --into takes one to merge \
             into, or the name of a new file",
            into.display()
        )),
        other => bad_input(other),
    })?;
    store.contents().map_err(bad_input)
}

/// A new database at `into` holding `contents`: written under a unique temporary name in the
/// same folder, closed, then renamed into place, so `into` appears whole or not at all.
fn create(into: &Path, contents: &Contents) -> anyhow::Result<(usize, usize)> {
    let name = into
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| bad_input(anyhow!("{}: --into needs a file name", into.display())))?;
    let folder = match into.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(folder)
        .with_context(|| format!("creating the folder {}", folder.display()))?;
    let prefix = format!(".{name}.tmp.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".sqlite");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // Removed on every early return.
    let tmp = builder
        .tempfile_in(folder)
        .with_context(|| format!("creating a temporary file in {}", folder.display()))?
        .into_temp_path();
    let added = {
        let mut store = SqliteStore::open(&tmp)?;
        store.import(contents)?
        // Closed here: the last connection to close checkpoints and removes -wal and -shm.
    };
    for suffix in ["-wal", "-shm"] {
        let mut side = tmp.as_os_str().to_owned();
        side.push(suffix);
        if Path::new(&side).exists() {
            return Err(anyhow!(
                "{}: still there after closing the database; {} not written",
                Path::new(&side).display(),
                into.display()
            ));
        }
    }
    tmp.persist_noclobber(into).map_err(|e| {
        anyhow!(
            "{}: could not be put in place ({}); nothing was written",
            into.display(),
            e.error
        )
    })?;
    Ok(added)
}
