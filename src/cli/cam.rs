//! `kneecam cam`: CAMs of one exam's series, written as arrays, a JSON summary and (optionally)
//! the reference code's PNG layout.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;

use crate::cam::colormap::Colormap;
use crate::cam::{self, CamSpec, Method, Normalization};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

use crate::cli::image_cam::ImageModel;
use crate::cli::models;
use crate::cli::{bad_input, BadInput};
use crate::data::{npy, Plane, Task};
use crate::engine::{
    CamRequest, Engine, EngineError, EngineEvent, EngineResult, Loader, Priority, RequestId,
};
use crate::model::device::DeviceChoice;
use crate::model::preprocess::Preprocess;
use crate::model::vision::VisionArch;

#[derive(Debug, clap::Args)]
pub struct CamArgs {
    /// A weights file, or MODELS_DIR:task:plane (a models folder with manifest.toml); with
    /// --image, MODELS_DIR:NAME (an [images.NAME] entry).
    #[arg(long, required_unless_present = "arch", conflicts_with = "arch")]
    pub model: Option<String>,
    /// With --image: a torchvision architecture built natively (resnet18, densenet161,
    /// squeezenet1_1), its weights from --weights.
    #[arg(long, requires_all = ["image", "weights"])]
    pub arch: Option<VisionArch>,
    /// With --arch: a torchvision state dict (.pth as torchvision publishes it) or safetensors.
    #[arg(long, requires = "arch")]
    pub weights: Option<PathBuf>,
    /// The exam's series: a uint8 (S, H, W) .npy file, a DICOM series' folder (or a study's:
    /// the series of the model's plane, or of --plane), a DICOM file, or a NIfTI volume.
    #[arg(long, required_unless_present = "image", conflicts_with = "image")]
    pub exam: Option<PathBuf>,
    /// A photo (PNG or JPEG) for a 2-D image model: --arch with --weights, or --model
    /// MODELS_DIR:NAME naming an [images.NAME] TorchScript entry; writes one overlay per top
    /// class.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// With --image: class names, one per line [default: ImageNet's for 1,000 classes].
    #[arg(long, requires = "image")]
    pub labels: Option<PathBuf>,
    /// With --image: how many top classes to show.
    #[arg(long, default_value_t = 5, requires = "image")]
    pub topk: usize,
    /// With a DICOM study of several planes and a bare weights file: the plane's series to use.
    #[arg(long, requires = "exam")]
    pub plane: Option<Plane>,
    #[arg(long, default_value = "cam")]
    pub method: Method,
    /// The class to explain [default: the top predicted class].
    #[arg(long)]
    pub class: Option<usize>,
    #[arg(long, default_value = "exam")]
    pub normalize: Normalization,
    /// Output folder (new or empty, or --force).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write slices/{i}.png and cams/{i}.png (heatmap·0.3 + slice·0.5, as the reference code).
    #[arg(long)]
    pub png: bool,
    #[arg(long, default_value = "jet")]
    pub colormap: Colormap,
    /// How a bare weights file's model expects its input: raw or crop224-norm [default: as its
    /// key family's code trained: crop224-norm for Stanford's, raw otherwise].
    #[arg(long)]
    pub preprocess: Option<Preprocess>,
    /// Write into a non-empty --out folder, replacing files of the same names.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    model: String,
    model_sha256: &'a str,
    exam: String,
    device: String,
    preprocess: &'static str,
    method: &'static str,
    normalization: &'static str,
    logits: &'a [f32],
    probability: f32,
    class: usize,
    slice_scores: &'a [f32],
    bias: f32,
    timings_ms: Timings,
}

#[derive(Debug, Default, Serialize)]
struct Timings {
    load_model: f64,
    load_exam: f64,
    forward: f64,
    cam: f64,
    write: f64,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

pub fn run(args: CamArgs, device_choice: DeviceChoice) -> anyhow::Result<ExitCode> {
    let device = device_choice.resolve().map_err(bad_input)?;
    let inputs = args.exam.as_deref().or(args.image.as_deref());
    let data = inputs.and_then(crate::paths::dataset_of);
    let image_model = match (&args.arch, &args.weights, &args.model) {
        (Some(arch), Some(weights), _) => Some(ImageModel::Native {
            arch: *arch,
            weights,
        }),
        (_, _, Some(spec)) if args.image.is_some() => Some(ImageModel::Manifest(spec)),
        _ => None,
    };
    let models = match (&image_model, &args.model) {
        (Some(model), _) => model.folder(),
        (None, Some(spec)) => super::models::spec_folder(spec),
        (None, None) => None,
    };
    super::outside_inputs("--out", &args.out, data.as_deref(), models.as_deref())?;
    prepare_out(&args.out, args.force)?;
    let Some(exam) = args.exam.clone() else {
        let image = args.image.as_deref().unwrap_or(Path::new(""));
        let model = image_model.ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "--image needs --arch with --weights, or --model MODELS_DIR:NAME"
            ))
        })?;
        let job = super::image_cam::ImageJob {
            image,
            model,
            labels: args.labels.as_deref(),
            topk: args.topk,
            method: args.method,
            colormap: args.colormap,
            out: &args.out,
        };
        return super::image_cam::run(job, device);
    };
    let model_spec = args.model.clone().ok_or_else(|| {
        bad_input(anyhow::anyhow!(
            "--exam needs --model (--arch is for --image)"
        ))
    })?;
    let described = models::describe_spec(&model_spec, args.preprocess)?;
    let mut timings = Timings::default();

    let t = Instant::now();
    let wanted = args.plane.or(described.key.map(|(_, plane)| plane));
    let volume = read_exam(&exam, wanted, &described.study_options)?;
    timings.load_exam = ms(t);

    // The model is loaded and run on the engine's thread, as in the explorer.
    let spec_text = model_spec.clone();
    let preprocess = args.preprocess;
    let loader: Loader = Box::new(move |_, device| models::load(&spec_text, preprocess, device));
    let (engine, events) =
        Engine::with_channel(device, loader).context("starting the engine thread")?;
    // A bare weights file names no task or plane; the key only labels the engine's cache.
    let (task, plane) = described.key.unwrap_or((Task::Abnormal, Plane::Axial));
    let spec = CamSpec {
        method: args.method,
        class: args.class,
        normalization: args.normalize,
    };
    let request = CamRequest {
        volume: Arc::new(volume.data.clone()),
        task,
        plane,
        spec,
        priority: Priority::Interactive,
        cache: None,
    };
    let id = engine.submit(request).context("the engine stopped")?;
    let result = wait_for(&events, id)?;
    timings.load_model = result.timings.load_model_ms;
    timings.forward = result.timings.forward_ms;
    timings.cam = result.timings.cam_ms;
    let explanation = result.outcome.map_err(|e| match e {
        EngineError::Load(_)
        | EngineError::TooSmall { .. }
        | EngineError::Cam(cam::CamError::NoSuchClass { .. }) => bad_input(e),
        other => anyhow::Error::new(other),
    })?;

    let t = Instant::now();
    write_arrays(&args.out, &explanation)?;
    if args.png {
        crate::cam::png::write_pngs(
            &args.out,
            &volume.data,
            &explanation.maps,
            args.colormap,
            crate::cam::png::Files::Atomic,
        )?;
    }
    timings.write = ms(t);
    let summary = Summary {
        model: model_spec,
        model_sha256: &described.sha256,
        exam: exam.display().to_string(),
        device: engine.device_name().to_string(),
        preprocess: described.preprocess.name(),
        method: args.method.name(),
        normalization: args.normalize.name(),
        logits: &explanation.logits,
        probability: explanation.probability,
        class: explanation.class,
        slice_scores: &explanation.scores,
        bias: explanation.bias,
        timings_ms: timings,
    };
    let json = serde_json::to_string_pretty(&summary)?;
    let summary_path = args.out.join("summary.json");
    crate::fsutil::atomic_write(&summary_path, |w| {
        std::io::Write::write_all(w, json.as_bytes())
    })
    .with_context(|| format!("writing {}", summary_path.display()))?;
    if let Some(note) = &volume.note {
        eprintln!("note: {}: {note}", exam.display());
    }
    println!(
        "P(positive) {:.4}, class {} ({}), {} slices; wrote {}",
        explanation.probability,
        explanation.class,
        args.method,
        explanation.scores.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The engine's answer to request `id`.
fn wait_for(events: &Receiver<EngineEvent>, id: RequestId) -> anyhow::Result<EngineResult> {
    loop {
        match events
            .recv()
            .context("the engine stopped without answering")?
        {
            EngineEvent::Finished(result) if result.id == id => return Ok(*result),
            _ => {}
        }
    }
}

/// A new or empty folder, or any folder with --force; never a file.
pub fn prepare_out(out: &Path, force: bool) -> anyhow::Result<()> {
    match std::fs::read_dir(out) {
        Ok(entries) => {
            let occupied = entries.count() > 0;
            if occupied && !force {
                return Err(bad_input(anyhow::anyhow!(
                    "{} is not empty: choose another --out, or --force to replace files in it",
                    out.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
        }
        Err(e) => {
            Err(BadInput(anyhow::Error::new(e).context(format!("--out {}", out.display()))).into())
        }
    }
}

fn write_arrays(out: &Path, explanation: &cam::Explanation) -> anyhow::Result<()> {
    let raw_path = out.join("cam.npy");
    npy::write_f32_volume(&raw_path, &explanation.raw)
        .with_context(|| format!("writing {}", raw_path.display()))?;
    let maps_path = out.join("cam_u8.npy");
    npy::write_u8_volume(&maps_path, &explanation.maps)
        .with_context(|| format!("writing {}", maps_path.display()))
}

/// The exam's series: an `.npy` file as it is; a DICOM or NIfTI series converted as the model
/// expects (the series of `plane` when a study has several).
fn read_exam(
    exam: &Path,
    plane: Option<Plane>,
    options: &crate::data::study::StudyOptions,
) -> anyhow::Result<npy::Volume> {
    let is_npy = exam
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy || !(exam.is_dir() || is_study_file(exam)) {
        return npy::read_volume(exam).map_err(bad_input);
    }
    let wanted = plane.unwrap_or(Plane::Sagittal);
    let (series, problems) =
        crate::data::dataset::single_series(exam, wanted, options, plane.is_none())
            .map_err(|p| bad_input(anyhow::anyhow!("{p}")))?;
    for problem in problems {
        eprintln!("{}: {problem}", problem.severity);
    }
    let (volume, _) = series.load(false).map_err(bad_input)?;
    Ok(volume)
}

fn is_study_file(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".nii") || name.ends_with(".nii.gz") || crate::data::study::is_dicom_file(path)
}
