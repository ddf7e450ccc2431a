//! Class activation maps for every slice of an exam from one forward pass, on the device.
//! See ../shared/DESIGN.md for the formulas; `methods` has the maths, `colormap` the overlays.
use std::fmt;
use std::str::FromStr;

use ndarray::Array3;
use tch::{Kind, Tensor};

use crate::model::network::{self, GapNetwork};

pub mod blas_order;
pub mod colormap;
pub mod evaluation;
pub mod export;
pub mod floor;
pub mod localization;
pub mod methods;
pub mod png;
pub mod reference;
pub mod report;
pub mod store;

/// How the evidence for a class is turned into a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// The reference code's CAM: Σ_c w[k,c]·A[s,c] on every slice.
    #[default]
    Cam,
    /// Exact attribution: each channel counts only on the slice that won its max; the slice
    /// scores plus the bias add up to the logit.
    Contrib,
    GradCam,
    #[serde(rename = "gradcam++")]
    GradCamPlusPlus,
}

/// How map values become display intensities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// One range for the whole exam: slices comparable with each other.
    #[default]
    Exam,
    /// Each slice spans the full range (the reference code's; quiet slices look hot).
    Slice,
    /// Values as they are, clamped to 0–255.
    None,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Cam,
        Method::Contrib,
        Method::GradCam,
        Method::GradCamPlusPlus,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Cam => "cam",
            Method::Contrib => "contrib",
            Method::GradCam => "gradcam",
            Method::GradCamPlusPlus => "gradcam++",
        }
    }
}

impl Normalization {
    pub const ALL: [Normalization; 3] = [
        Normalization::Exam,
        Normalization::Slice,
        Normalization::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Normalization::Exam => "exam",
            Normalization::Slice => "slice",
            Normalization::None => "none",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {what} '{given}': expected one of {expected}")]
pub struct UnknownChoice {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl FromStr for Method {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Method::ALL
            .into_iter()
            .find(|m| m.name() == wanted)
            .ok_or(UnknownChoice {
                what: "CAM method",
                given: s.to_string(),
                expected: "cam, contrib, gradcam, gradcam++",
            })
    }
}

impl FromStr for Normalization {
    type Err = UnknownChoice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Normalization::ALL
            .into_iter()
            .find(|n| n.name() == wanted)
            .ok_or(UnknownChoice {
                what: "normalisation",
                given: s.to_string(),
                expected: "exam, slice, none",
            })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Normalization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to explain and how to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CamSpec {
    pub method: Method,
    /// The class whose evidence is mapped; the top class when None.
    pub class: Option<usize>,
    pub normalization: Normalization,
}

/// Where the network's input sits in the slice: (top, left, height, width), and the slice size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub window: (usize, usize, usize, usize),
    pub slice: (usize, usize),
}

/// Everything one forward pass says about an exam's series.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub logits: Vec<f32>,
    pub probability: f32,
    pub class: usize,
    /// Per-slice maps at feature resolution (S, h, w), before ReLU or normalisation.
    pub raw: Array3<f32>,
    /// Per-slice scores: the spatial mean of each raw map (for `contrib`, they and the bias
    /// add up to the logit).
    pub scores: Vec<f32>,
    /// Normalised maps upsampled to the slice size (S, H, W), 0–255.
    pub maps: Array3<u8>,
    /// The classifier's bias for `class` (for `contrib`: scores + bias = logit).
    pub bias: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum CamError {
    /// libtorch's words are part of the message, not a `source`, so a chain says them once.
    #[error("the model failed on this input: {0}")]
    Torch(tch::TchError),
    #[error("class {class} asked for, but the model has {classes} output(s)")]
    NoSuchClass { class: usize, classes: usize },
    /// The network's layers rejected the input (tch panics on libtorch errors).
    #[error("the network refused the input of shape {shape:?}: {reason}")]
    Refused { shape: Vec<i64>, reason: String },
    #[error("the network returned {0}")]
    Shape(String),
}

impl From<tch::TchError> for CamError {
    fn from(error: tch::TchError) -> Self {
        CamError::Torch(error)
    }
}

/// The forward pass, kept on the device so that several CAMs can come from it.
#[derive(Debug)]
pub struct Forward {
    /// A[S, C, h, w], on the model's device.
    pub features: Tensor,
    pub logits: Vec<f32>,
}

/// One forward pass over x[S, 3, H, W]: feature maps and logits.
pub fn forward(net: &dyn GapNetwork, x: &Tensor) -> Result<Forward, CamError> {
    // tch's layers panic on libtorch errors (e.g. a slice too small for the network): make
    // that an error of this request, not a crash.
    // The guard, unlike `tch::no_grad`, restores grad mode while a panic unwinds.
    let features = crate::panics::catch(|| {
        let _no_grad = tch::no_grad_guard();
        net.features(x)
    })
    .map_err(|panic| CamError::Refused {
        shape: x.size(),
        reason: first_line(&panic),
    })??;
    if features.dim() != 4 {
        return Err(CamError::Shape(format!(
            "features of shape {:?}, expected [S, C, h, w]",
            features.size()
        )));
    }
    let logits_t = tch::no_grad(|| net.logits(&features))?;
    let logits = Vec::<f32>::try_from(logits_t.to_kind(Kind::Float).to_device(tch::Device::Cpu))?;
    Ok(Forward { features, logits })
}

/// The CAM of `spec` from a forward pass, on the device; only the final maps and scores come
/// back to the host.
pub fn explain_forward(
    net: &dyn GapNetwork,
    pass: &Forward,
    spec: &CamSpec,
    placement: Placement,
) -> Result<Explanation, CamError> {
    let (entry, raw) = raw_entry(net, pass, spec.method, spec.class, placement)?;
    let maps =
        tch::no_grad(|| methods::display_maps(&raw, spec.method, spec.normalization, placement));
    Ok(entry.with_maps(to_array3_u8(&maps)?))
}

/// What the CAM store keeps of a forward pass for `method` and `class` (the top class when
/// None): the raw maps, scores and logits, without display maps, which `precompute` and
/// `export` make from the stored raw maps when they need them. Upsampling every slice's map
/// to the slice size was most of `precompute`'s time with the small demo models.
pub fn store_entry(
    net: &dyn GapNetwork,
    pass: &Forward,
    method: Method,
    class: Option<usize>,
    placement: Placement,
) -> Result<store::Entry, CamError> {
    Ok(raw_entry(net, pass, method, class, placement)?.0)
}

/// [`store_entry`] for several methods of one class: what they share (the logit's gradient)
/// computed once.
pub fn store_entries(
    net: &dyn GapNetwork,
    pass: &Forward,
    methods: &[Method],
    class: Option<usize>,
    placement: Placement,
) -> Result<Vec<store::Entry>, CamError> {
    let class = checked_class(pass, class)?;
    let attribution = methods::Attribution::new(net, &pass.features, class as i64);
    methods
        .iter()
        .map(|&method| {
            let raw = attribution.raw_maps(method)?;
            entry_of(net, pass, class, &raw, placement)
        })
        .collect()
}

/// The store entry and its raw maps still on the device.
fn raw_entry(
    net: &dyn GapNetwork,
    pass: &Forward,
    method: Method,
    class: Option<usize>,
    placement: Placement,
) -> Result<(store::Entry, Tensor), CamError> {
    let class = checked_class(pass, class)?;
    let raw = methods::raw_maps(method, net, &pass.features, class as i64)?;
    Ok((entry_of(net, pass, class, &raw, placement)?, raw))
}

/// `class`, or the top class when None, if the pass has it.
fn checked_class(pass: &Forward, class: Option<usize>) -> Result<usize, CamError> {
    let logits = &pass.logits;
    let class = class.unwrap_or_else(|| network::top_class(logits));
    if class >= logits.len() {
        return Err(CamError::NoSuchClass {
            class,
            classes: logits.len(),
        });
    }
    Ok(class)
}

/// The store entry of raw maps `raw` of `class` from `pass`.
fn entry_of(
    net: &dyn GapNetwork,
    pass: &Forward,
    class: usize,
    raw: &Tensor,
    placement: Placement,
) -> Result<store::Entry, CamError> {
    let (_, bias) = net.classifier();
    let scores = tch::no_grad(|| raw.mean_dim([1i64, 2].as_slice(), false, Kind::Float));
    Ok(store::Entry {
        probability: network::positive_probability(&pass.logits),
        logits: pass.logits.clone(),
        class,
        raw: to_array3_f32(raw)?,
        scores: Vec::<f32>::try_from(scores.to_device(tch::Device::Cpu))?,
        bias: bias.f_double_value(&[class as i64])? as f32,
        placement,
    })
}

/// One forward pass over x[S, 3, H, W] and the CAM of `spec`.
pub fn explain(
    net: &dyn GapNetwork,
    x: &Tensor,
    spec: &CamSpec,
    placement: Placement,
) -> Result<Explanation, CamError> {
    explain_forward(net, &forward(net, x)?, spec, placement)
}

/// libtorch's messages go on for a stack trace: the first line says what went wrong.
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_string()
}

fn to_array3_f32(t: &Tensor) -> Result<Array3<f32>, CamError> {
    let dims = dims3(t)?;
    let values = Vec::<f32>::try_from(
        t.to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .contiguous()
            .flatten(0, -1),
    )?;
    Array3::from_shape_vec(dims, values)
        .map_err(|e| CamError::Shape(format!("maps that do not fit their shape: {e}")))
}

fn to_array3_u8(t: &Tensor) -> Result<Array3<u8>, CamError> {
    let dims = dims3(t)?;
    let values = Vec::<u8>::try_from(t.to_device(tch::Device::Cpu).contiguous().flatten(0, -1))?;
    Array3::from_shape_vec(dims, values)
        .map_err(|e| CamError::Shape(format!("maps that do not fit their shape: {e}")))
}

fn dims3(t: &Tensor) -> Result<(usize, usize, usize), CamError> {
    match t.size().as_slice() {
        &[s, h, w] => Ok((s as usize, h as usize, w as usize)),
        other => Err(CamError::Shape(format!(
            "maps of shape {other:?}, expected 3 dimensions"
        ))),
    }
}
