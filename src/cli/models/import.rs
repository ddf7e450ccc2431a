//! `kneecam models import FILE… --into MODELS_DIR`: checkpoints as their training code wrote
//! them (any accepted format and key family) turned into a models folder: each file read as
//! data, run once on a blank series, written as `{task}-{plane}.safetensors` with a manifest
//! entry that records where it came from.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::bad_input;
use crate::data::{Plane, Task};
use crate::digest::sha256_file;
use crate::model::manifest::{Arch, ModelEntry};
use crate::model::mrnet::Mrnet;
use crate::model::preprocess::Preprocess;
use crate::model::weights::{self, KeyFamily};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Checkpoints: safetensors, PyTorch state dicts or whole pickled modules (zip or legacy).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The models folder to write into (made if missing; its manifest.toml is updated).
    #[arg(long)]
    pub into: PathBuf,
    /// The task of every file [default: from the reference code's file names,
    /// model_{prefix}_{task}_{plane}_val_auc_…].
    #[arg(long)]
    pub task: Option<Task>,
    /// The plane of every file [default: from the file name, as --task].
    #[arg(long)]
    pub plane: Option<Plane>,
    /// How the models expect their input [default: as their key family's code trained:
    /// crop224-norm for Stanford's, raw for the reference code's].
    #[arg(long)]
    pub preprocess: Option<Preprocess>,
    /// Replace entries the manifest already has for the same task and plane.
    #[arg(long)]
    pub replace: bool,
}

/// What the reference code's file name says: task, plane, validation AUC and epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct NameHint {
    pub task: Task,
    pub plane: Plane,
    pub auc: Option<f64>,
    pub epoch: Option<u32>,
}

/// `model_{prefix}_{task}_{plane}_val_auc_{v}_train_auc_{t}_epoch_{e}.pth` read as a hint.
pub fn name_hint(name: &str) -> Option<NameHint> {
    let stem = name
        .strip_suffix(".pth")
        .or(name.strip_suffix(".pt"))
        .unwrap_or(name);
    let words: Vec<&str> = stem.split('_').collect();
    let (at, task, plane) = words.windows(2).enumerate().rev().find_map(|(i, pair)| {
        Some((
            i,
            pair[0].parse::<Task>().ok()?,
            pair[1].parse::<Plane>().ok()?,
        ))
    })?;
    let after = |key: &[&str]| {
        words[at..]
            .windows(key.len() + 1)
            .find(|w| w[..key.len()] == *key)
            .map(|w| w[key.len()])
    };
    Some(NameHint {
        task,
        plane,
        auc: after(&["val", "auc"])
            .and_then(|v| v.parse().ok())
            .filter(|a| (0.0..=1.0).contains(a)),
        epoch: after(&["epoch"]).and_then(|v| v.parse().ok()),
    })
}

/// One file read, checked and ready to write.
struct Imported {
    source: PathBuf,
    task: Task,
    plane: Plane,
    net: Mrnet,
    entry: ModelEntry,
    what: String,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let mut imported: Vec<Imported> = Vec::new();
    for source in &args.files {
        let one = read_one(source, &args)?;
        if let Some(other) = imported
            .iter()
            .find(|i| (i.task, i.plane) == (one.task, one.plane))
        {
            return Err(bad_input(anyhow::anyhow!(
                "{} and {} are both {}-{}: import them into different folders, or one at a time \
                 with --replace",
                other.source.display(),
                source.display(),
                one.task,
                one.plane
            )));
        }
        imported.push(one);
    }
    std::fs::create_dir_all(&args.into)
        .with_context(|| format!("creating {}", args.into.display()))?;
    crate::cli::train::update_manifest(&args.into, |manifest| {
        for one in &imported {
            if let Some(existing) = manifest.model(one.task, one.plane) {
                if !args.replace {
                    return Err(bad_input(anyhow::anyhow!(
                        "{}: manifest.toml already has {}-{} ({}); --replace replaces it",
                        args.into.display(),
                        one.task,
                        one.plane,
                        existing.file.display()
                    )));
                }
            }
        }
        for one in &mut imported {
            write_one(&args.into, one)?;
            manifest.set_model(one.task, one.plane, one.entry.clone());
        }
        Ok(())
    })?;
    for one in &imported {
        println!(
            "{}-{}: {} ({}) → {}",
            one.task,
            one.plane,
            crate::cli::printable(&one.source.display().to_string()),
            one.what,
            args.into.join(&one.entry.file).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_one(source: &Path, args: &ImportArgs) -> anyhow::Result<Imported> {
    let name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let hint = name_hint(&name);
    let (task, plane) = match (
        args.task.or(hint.as_ref().map(|h| h.task)),
        args.plane.or(hint.as_ref().map(|h| h.plane)),
    ) {
        (Some(task), Some(plane)) => (task, plane),
        _ => {
            return Err(bad_input(anyhow::anyhow!(
                "{}: its name does not say the task and plane (the reference code's \
                 model_{{prefix}}_{{task}}_{{plane}}_val_auc_… pattern); give --task and --plane",
                source.display()
            )))
        }
    };
    let state = weights::read_state_dict(source).map_err(bad_input)?;
    let classes = state.classes().ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "{}: no classifier of shape [K, 256] (classifer.weight, classifier.weight): not MRNet \
             weights",
            source.display()
        ))
    })?;
    let mut net = Mrnet::new(tch::Device::Cpu, classes);
    state.copy_into(&mut net.vs).map_err(bad_input)?;
    let family = state.family();
    let preprocess = args.preprocess.unwrap_or(family.preprocess());
    check_runs(&net, preprocess)
        .with_context(|| format!("{}: the model does not run", source.display()))?;
    let mut entry = ModelEntry::new(
        format!("{task}-{plane}.safetensors"),
        Arch::Mrnet,
        classes,
        preprocess,
        String::new(),
    );
    entry.imported_from = Some(name);
    entry.imported_sha256 =
        Some(sha256_file(source).with_context(|| format!("hashing {}", source.display()))?);
    if let Some(hint) = hint.filter(|h| (h.task, h.plane) == (task, plane)) {
        entry.auc = hint.auc;
        entry.epochs = hint.epoch;
    }
    let keys = match family {
        KeyFamily::Reference => "reference keys",
        KeyFamily::Stanford => "Stanford keys",
    };
    let what = format!(
        "{}, {keys}, {classes} output(s), {}",
        state.kind(),
        preprocess.name()
    );
    Ok(Imported {
        source: source.to_path_buf(),
        task,
        plane,
        net,
        entry,
        what,
    })
}

/// One forward pass on a blank two-slice series, which must give finite logits.
fn check_runs(net: &Mrnet, preprocess: Preprocess) -> anyhow::Result<()> {
    let blank = ndarray::Array3::<u8>::zeros((2, 256, 256));
    let x = preprocess.input(&blank, tch::Device::Cpu);
    let pass = crate::cam::forward(net, &x)?;
    anyhow::ensure!(
        pass.logits.iter().all(|l| l.is_finite()),
        "logits {:?} on a blank series",
        pass.logits
    );
    Ok(())
}

fn write_one(dir: &Path, one: &mut Imported) -> anyhow::Result<()> {
    let path = dir.join(&one.entry.file);
    crate::fsutil::atomic_save(&path, |tmp| {
        one.net.vs.save(tmp).map_err(anyhow::Error::new)
    })
    .with_context(|| format!("writing {}", path.display()))?;
    one.entry.sha256 = sha256_file(&path).with_context(|| format!("hashing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_codes_file_names_give_task_plane_auc_and_epoch() {
        assert_eq!(
            name_hint("model_demo_acl_sagittal_val_auc_0.8123_train_auc_0.9012_epoch_7.pth"),
            Some(NameHint {
                task: Task::Acl,
                plane: Plane::Sagittal,
                auc: Some(0.8123),
                epoch: Some(7)
            })
        );
        let prefixed = name_hint("model_my_acl_run_meniscus_coronal_val_auc_1.5000_epoch_x.pth");
        assert_eq!(
            prefixed,
            Some(NameHint {
                task: Task::Meniscus,
                plane: Plane::Coronal,
                auc: None,
                epoch: None
            })
        );
        assert_eq!(name_hint("stanford_acl"), None);
        assert_eq!(name_hint("weights.pth"), None);
    }
}
