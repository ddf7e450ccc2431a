//! The models a batch job (precompute, export) runs: loaded on first use and kept, and the
//! forward passes of several series in one batch.
use std::path::PathBuf;

use super::Tally;
use crate::cam::store::{CacheKey, Store};
use crate::cam::{self, Method, Placement};
use crate::cli::bad_input;
use crate::data::{npy::Volume, Plane, Task};
use crate::model::cache::ModelCache;
use crate::model::loaded::LoadedModel;
use crate::model::manifest::Manifest;
use crate::model::network::GapNetwork;
use crate::model::preprocess::Preprocess;

/// The manifest's models, loaded on first use and kept.
pub(in crate::cli) struct Models {
    dir: PathBuf,
    manifest: Manifest,
    device: tch::Device,
    loaded: ModelCache,
}

impl Models {
    pub(in crate::cli) fn new(dir: PathBuf, manifest: Manifest, device: tch::Device) -> Models {
        Models {
            dir,
            manifest,
            device,
            loaded: ModelCache::new(),
        }
    }

    /// Every missing method's entry for some series under one task's model: the series that
    /// miss any go through the network in one batch (when their slices have one size).
    pub(super) fn explain(
        &mut self,
        task: Task,
        plane: Plane,
        series: &[(&Volume, &str)],
        inputs: &mut Inputs,
        methods: &[Method],
        store: &Store,
    ) -> anyhow::Result<Tally> {
        let Some(entry) = self.manifest.model(task, plane).cloned() else {
            return Ok(Tally::default());
        };
        let class = entry.positive_class();
        let key = |exam_sha256: &str, method| CacheKey::for_model(&entry, exam_sha256, method);
        let mut tally = Tally::default();
        let mut todo: Vec<(usize, &Volume, &str, Vec<Method>)> = Vec::new();
        for (index, &(volume, sha)) in series.iter().enumerate() {
            let mut missing = Vec::new();
            for &method in methods {
                match store.get(&key(sha, method)) {
                    Ok(Some(_)) => tally.reused += 1,
                    Ok(None) => missing.push(method),
                    Err(err) => {
                        tracing::warn!("{err}; recomputing");
                        tally.replaced += 1;
                        missing.push(method);
                    }
                }
            }
            if !missing.is_empty() {
                todo.push((index, volume, sha, missing));
            }
        }
        if todo.is_empty() {
            return Ok(tally);
        }
        let model = self.model(task, plane)?;
        let which: Vec<usize> = todo.iter().map(|(index, ..)| *index).collect();
        let passes = forward_batch(model, &inputs.of(model.preprocess, &which))?;
        for ((_, volume, sha, missing), pass) in todo.iter().zip(&passes) {
            let (_, height, width) = volume.data.dim();
            let placement = Placement {
                window: model.preprocess.window(height, width),
                slice: (height, width),
            };
            let entries =
                cam::store_entries(&model.network, pass, missing, Some(class), placement)?;
            for (&method, entry) in missing.iter().zip(&entries) {
                store.put(&key(sha, method), entry)?;
                tally.computed += 1;
            }
        }
        Ok(tally)
    }

    pub(in crate::cli) fn device(&self) -> tch::Device {
        self.device
    }

    pub(in crate::cli) fn model(
        &mut self,
        task: Task,
        plane: Plane,
    ) -> anyhow::Result<&LoadedModel> {
        let (dir, manifest, device) = (&self.dir, &self.manifest, self.device);
        self.loaded
            .get_or_load((task, plane), |(task, plane)| {
                LoadedModel::from_loaded_manifest(dir, manifest, task, plane, device)
            })
            .map_err(bad_input)
    }
}

/// Some series' model inputs, made once per preprocessing on first use: the three tasks'
/// models of a plane mostly share one, and making it (bytes to floats, three channels) was a
/// quarter of `precompute`'s time with the demo models when each model made its own.
pub(in crate::cli) struct Inputs<'a> {
    volumes: Vec<&'a Volume>,
    device: tch::Device,
    made: Vec<(Preprocess, Vec<Option<tch::Tensor>>)>,
}

impl<'a> Inputs<'a> {
    pub(in crate::cli) fn new(volumes: Vec<&'a Volume>, device: tch::Device) -> Inputs<'a> {
        Inputs {
            volumes,
            device,
            made: Vec::new(),
        }
    }

    /// The inputs of the series at `which` (indices into the volumes) under `preprocess`.
    pub(in crate::cli) fn of(
        &mut self,
        preprocess: Preprocess,
        which: &[usize],
    ) -> Vec<tch::Tensor> {
        let position = match self.made.iter().position(|(p, _)| *p == preprocess) {
            Some(position) => position,
            None => {
                self.made
                    .push((preprocess, (0..self.volumes.len()).map(|_| None).collect()));
                self.made.len() - 1
            }
        };
        let (volumes, device) = (&self.volumes, self.device);
        let made = &mut self.made[position].1;
        which
            .iter()
            .map(|&index| {
                made[index]
                    .get_or_insert_with(|| preprocess.input(&volumes[index].data, device))
                    .shallow_clone()
            })
            .collect()
    }
}

/// The forward passes of several series' `inputs`: one batch of all their slices when the
/// network treats slices independently and the inputs share a size, else one pass each. The
/// features of each series are its slices' share of the batch, and its logits come from its
/// own slices only.
pub(in crate::cli) fn forward_batch(
    model: &LoadedModel,
    inputs: &[tch::Tensor],
) -> anyhow::Result<Vec<cam::Forward>> {
    let same_size = inputs
        .windows(2)
        .all(|pair| pair[0].size()[1..] == pair[1].size()[1..]);
    let one_each = |inputs: &[tch::Tensor]| {
        inputs
            .iter()
            .map(|x| cam::forward(&model.network, x).map_err(Into::into))
            .collect()
    };
    if inputs.len() == 1 || !same_size || !model.network.slices_independent() {
        return one_each(inputs);
    }
    let all = match cam::forward(&model.network, &tch::Tensor::cat(inputs, 0)) {
        Ok(all) => all,
        // A batch the device has no room for: smaller ones (one series each) may fit.
        Err(err) if crate::engine::is_out_of_memory(&err.to_string()) => {
            tracing::warn!("{err}; this batch of {} goes one at a time", inputs.len());
            return one_each(inputs);
        }
        Err(err) => return Err(err.into()),
    };
    let mut start = 0;
    let mut passes = Vec::new();
    for x in inputs {
        let slices = x.size()[0];
        let features = all.features.narrow(0, start, slices);
        start += slices;
        let logits = tch::no_grad(|| model.network.logits(&features))?;
        let logits =
            Vec::<f32>::try_from(logits.to_kind(tch::Kind::Float).to_device(tch::Device::Cpu))?;
        passes.push(cam::Forward { features, logits });
    }
    Ok(passes)
}
