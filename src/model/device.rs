//! `--device auto|cpu|cuda|cuda:N`, resolved against what libtorch can see.
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The first CUDA device if one is available, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceError {
    #[error("unknown device '{0}': expected auto, cpu, cuda or cuda:N (N a device index)")]
    BadSpec(String),
    #[error(
        "--device {asked}: no CUDA device is available ({why}); use --device cpu or --device auto"
    )]
    NoCuda { asked: DeviceChoice, why: String },
    #[error("--device {asked}: only {count} CUDA device(s) are visible (indices 0..{count})")]
    NoSuchDevice { asked: DeviceChoice, count: usize },
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim().to_ascii_lowercase();
        match spec.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            _ => spec
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or(DeviceError::BadSpec(spec)),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    /// The tch device this choice means on this machine.
    pub fn resolve(self) -> Result<tch::Device, DeviceError> {
        let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
        match self {
            Self::Cpu => Ok(tch::Device::Cpu),
            Self::Auto if count > 0 => Ok(tch::Device::Cuda(0)),
            Self::Auto => Ok(tch::Device::Cpu),
            Self::Cuda(_) if count == 0 => Err(DeviceError::NoCuda {
                asked: self,
                why: cuda_absence_reason(),
            }),
            Self::Cuda(n) if n >= count => Err(DeviceError::NoSuchDevice { asked: self, count }),
            Self::Cuda(n) => Ok(tch::Device::Cuda(n)),
        }
    }
}

fn cuda_absence_reason() -> String {
    if !crate::model::libtorch::linked_with_cuda() {
        "this build of kneecam links a CPU-only libtorch".into()
    } else if crate::model::libtorch::cuda_driver_names().is_err() {
        "no NVIDIA driver (libcuda.so.1) on this machine".into()
    } else {
        "the NVIDIA driver reports no usable device".into()
    }
}

/// How a device is named to people: `CPU` or `cuda:0 (NVIDIA H100 80GB HBM3)`.
pub fn describe(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(n) => {
            let name = crate::model::libtorch::cuda_driver_names()
                .ok()
                .and_then(|names| names.get(n).cloned())
                .unwrap_or_else(|| "unknown GPU".into());
            format!("cuda:{n} ({name})")
        }
        tch::Device::Cpu => "CPU".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_spelling() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
    }

    #[test]
    fn rejects_malformed_specs_with_the_expected_forms() {
        for bad in ["cuda:", "cuda:x", "tpu", "cuda:-1", ""] {
            let err = bad.parse::<DeviceChoice>().expect_err(bad);
            assert!(
                err.to_string()
                    .contains("expected auto, cpu, cuda or cuda:N"),
                "{err}"
            );
        }
    }

    #[test]
    fn cpu_always_resolves() {
        assert_eq!(DeviceChoice::Cpu.resolve(), Ok(tch::Device::Cpu));
    }

    #[test]
    fn auto_resolves_to_cuda_exactly_when_cuda_is_available() {
        let expected = if tch::Cuda::is_available() {
            tch::Device::Cuda(0)
        } else {
            tch::Device::Cpu
        };
        assert_eq!(DeviceChoice::Auto.resolve(), Ok(expected));
    }
}
