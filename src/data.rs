//! Exams and where they come from: the MRNet dataset layout, `.npy` volumes, label CSVs, and
//! the synthetic knee phantom.
use std::fmt;
use std::ops::{Index, IndexMut};
use std::str::FromStr;

pub mod dataset;
pub mod geometry;
pub mod labels;
mod lesion;
pub mod npy;
pub mod phantom;
pub mod study;

pub use lesion::Lesion;

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

    /// The plane after this one in [`Plane::ALL`], the first after the last.
    pub fn next(self) -> Plane {
        Plane::ALL[(self.index() + 1) % Plane::ALL.len()]
    }

    /// The plane before this one in [`Plane::ALL`], the last before the first.
    pub fn prev(self) -> Plane {
        Plane::ALL[(self.index() + Plane::ALL.len() - 1) % Plane::ALL.len()]
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

    /// The task after this one in [`Task::ALL`], the first after the last.
    pub fn next(self) -> Task {
        Task::ALL[(self.index() + 1) % Task::ALL.len()]
    }

    /// The task before this one in [`Task::ALL`], the last before the first.
    pub fn prev(self) -> Task {
        Task::ALL[(self.index() + Task::ALL.len() - 1) % Task::ALL.len()]
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

/// One value per task and plane (a model, a probability, a class), indexed by name rather than
/// by `[task.index()][plane.index()]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PerTaskPlane<T>([[T; 3]; 3]);

impl<T> PerTaskPlane<T> {
    /// The table whose value for (task, plane) is `f(task, plane)`.
    pub fn from_fn(mut f: impl FnMut(Task, Plane) -> T) -> Self {
        PerTaskPlane(Task::ALL.map(|task| Plane::ALL.map(|plane| f(task, plane))))
    }

    pub fn get(&self, task: Task, plane: Plane) -> &T {
        &self.0[task.index()][plane.index()]
    }

    pub fn get_mut(&mut self, task: Task, plane: Plane) -> &mut T {
        &mut self.0[task.index()][plane.index()]
    }

    pub fn set(&mut self, task: Task, plane: Plane, value: T) {
        self.0[task.index()][plane.index()] = value;
    }

    /// `task`'s values, in [`Plane::ALL`] order.
    pub fn row(&self, task: Task) -> &[T; 3] {
        &self.0[task.index()]
    }

    /// Every (task, plane, value), tasks then planes in their `ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (Task, Plane, &T)> + '_ {
        Task::ALL.into_iter().flat_map(move |task| {
            Plane::ALL
                .into_iter()
                .map(move |plane| (task, plane, self.get(task, plane)))
        })
    }

    /// The table of `f(value)`.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerTaskPlane<U> {
        PerTaskPlane(self.0.map(|row| row.map(&mut f)))
    }
}

impl<T: Clone> PerTaskPlane<T> {
    /// Every task and plane holding `value`.
    pub fn filled(value: T) -> Self {
        PerTaskPlane::from_fn(|_, _| value.clone())
    }
}

impl<T: Copy> PerTaskPlane<Option<T>> {
    /// Fills the cells still unknown from `other` (known ones stay).
    pub fn fill_from(&mut self, other: &PerTaskPlane<Option<T>>) {
        for task in Task::ALL {
            for plane in Plane::ALL {
                let cell = self.get_mut(task, plane);
                *cell = cell.or(*other.get(task, plane));
            }
        }
    }
}

impl<T> Index<(Task, Plane)> for PerTaskPlane<T> {
    type Output = T;

    fn index(&self, (task, plane): (Task, Plane)) -> &T {
        self.get(task, plane)
    }
}

impl<T> IndexMut<(Task, Plane)> for PerTaskPlane<T> {
    fn index_mut(&mut self, (task, plane): (Task, Plane)) -> &mut T {
        self.get_mut(task, plane)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_from_keeps_known_cells() {
        let mut table = PerTaskPlane::<Option<f32>>::default();
        table.set(Task::Acl, Plane::Coronal, Some(0.5));
        let mut other = PerTaskPlane::filled(Some(1.0));
        other.set(Task::Acl, Plane::Coronal, Some(0.9));
        table.fill_from(&other);
        assert_eq!(
            table[(Task::Acl, Plane::Coronal)],
            Some(0.5),
            "known cells stay"
        );
        assert_eq!(table[(Task::Meniscus, Plane::Axial)], Some(1.0));
    }

    #[test]
    fn planes_and_tasks_cycle_both_ways() {
        assert_eq!(Plane::Axial.next(), Plane::Coronal);
        assert_eq!(Plane::Sagittal.next(), Plane::Axial);
        assert_eq!(Plane::Axial.prev(), Plane::Sagittal);
        assert_eq!(Task::Meniscus.next(), Task::Abnormal);
        assert_eq!(Task::Abnormal.prev(), Task::Meniscus);
        for plane in Plane::ALL {
            assert_eq!(plane.next().prev(), plane);
        }
        for task in Task::ALL {
            assert_eq!(task.next().next().next(), task);
        }
    }

    #[test]
    fn a_per_task_plane_table_is_indexed_by_task_then_plane() {
        let mut table: PerTaskPlane<Option<f32>> = PerTaskPlane::default();
        assert!(table.iter().all(|(_, _, v)| v.is_none()));
        table.set(Task::Acl, Plane::Sagittal, Some(0.75));
        *table.get_mut(Task::Meniscus, Plane::Axial) = Some(0.25);
        table[(Task::Abnormal, Plane::Coronal)] = Some(0.5);
        assert_eq!(*table.get(Task::Acl, Plane::Sagittal), Some(0.75));
        assert_eq!(table[(Task::Meniscus, Plane::Axial)], Some(0.25));
        assert_eq!(*table.row(Task::Acl), [None, None, Some(0.75)]);
        let set: Vec<(Task, Plane)> = table
            .iter()
            .filter(|(_, _, v)| v.is_some())
            .map(|(task, plane, _)| (task, plane))
            .collect();
        assert_eq!(
            set,
            [
                (Task::Abnormal, Plane::Coronal),
                (Task::Acl, Plane::Sagittal),
                (Task::Meniscus, Plane::Axial)
            ]
        );
        assert_eq!(table.iter().count(), 9);
        let known = table.map(|v| v.is_some());
        assert!(known[(Task::Acl, Plane::Sagittal)] && !known[(Task::Acl, Plane::Axial)]);
        let names = PerTaskPlane::from_fn(|task, plane| format!("{task}-{plane}"));
        assert_eq!(names[(Task::Meniscus, Plane::Coronal)], "meniscus-coronal");
        assert_eq!(
            PerTaskPlane::filled(Some(1usize)),
            PerTaskPlane::from_fn(|_, _| Some(1))
        );
        let copy = table;
        assert_eq!(copy, table, "Copy when the values are");
    }
}
