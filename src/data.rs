//! Exams and where they come from: the MRNet dataset layout, `.npy` volumes, label CSVs, and
//! the synthetic knee phantom.
use std::fmt;
use std::str::FromStr;

pub mod dataset;
pub mod labels;
pub mod npy;
pub mod phantom;
mod table;

pub use table::PerTaskPlane;

/// The three MRI planes of an MRNet exam, in MRNet's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Plane {
    Axial,
    Coronal,
    Sagittal,
}

/// The three MRNet tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Abnormal,
    Acl,
    Meniscus,
}

/// The two MRNet splits; `Flat` is one folder of exams without a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Valid,
    Flat,
}

impl Plane {
    pub const ALL: [Plane; 3] = [Plane::Axial, Plane::Coronal, Plane::Sagittal];

    /// The plane after this one, cycling.
    pub fn next(self) -> Plane {
        Plane::ALL[(self.index() + 1) % 3]
    }

    pub fn name(self) -> &'static str {
        match self {
            Plane::Axial => "axial",
            Plane::Coronal => "coronal",
            Plane::Sagittal => "sagittal",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// MRNet's range of slices per series for this plane.
    pub fn mrnet_slice_range(self) -> (usize, usize) {
        match self {
            Plane::Axial => (19, 61),
            Plane::Coronal => (17, 58),
            Plane::Sagittal => (17, 51),
        }
    }
}

impl Task {
    pub const ALL: [Task; 3] = [Task::Abnormal, Task::Acl, Task::Meniscus];

    /// The task after this one, cycling.
    pub fn next(self) -> Task {
        Task::ALL[(self.index() + 1) % 3]
    }

    pub fn name(self) -> &'static str {
        match self {
            Task::Abnormal => "abnormal",
            Task::Acl => "acl",
            Task::Meniscus => "meniscus",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Flat => "flat",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {what} '{given}': expected one of {expected}")]
pub struct UnknownName {
    what: &'static str,
    given: String,
    expected: &'static str,
}

fn parse_name<T: Copy>(
    given: &str,
    all: &[T],
    name: fn(T) -> &'static str,
    what: &'static str,
    expected: &'static str,
) -> Result<T, UnknownName> {
    let wanted = given.trim().to_ascii_lowercase();
    all.iter()
        .copied()
        .find(|&t| name(t) == wanted)
        .ok_or(UnknownName {
            what,
            given: given.to_string(),
            expected,
        })
}

impl FromStr for Plane {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(
            s,
            &Plane::ALL,
            Plane::name,
            "plane",
            "axial, coronal, sagittal",
        )
    }
}

impl FromStr for Task {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(s, &Task::ALL, Task::name, "task", "abnormal, acl, meniscus")
    }
}

impl FromStr for Split {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_name(
            s,
            &[Split::Train, Split::Valid],
            Split::name,
            "split",
            "train, valid",
        )
    }
}

impl fmt::Display for Plane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An exam's file name: the id zero-padded to 4 digits, as MRNet names them.
pub fn exam_file_name(id: u32) -> String {
    format!("{id:04}.npy")
}

/// Labels of one exam for the three tasks; `None` where no CSV says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Labels(pub [Option<bool>; 3]);

impl Labels {
    pub fn get(&self, task: Task) -> Option<bool> {
        self.0[task.index()]
    }

    pub fn set(&mut self, task: Task, value: bool) {
        self.0[task.index()] = Some(value);
    }
}
