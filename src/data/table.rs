//! One value per task × plane: MRNet trains a model for each.
use super::{Plane, Task};

/// A table indexed by (task, plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct PerTaskPlane<T>([[T; 3]; 3]);

impl<T> PerTaskPlane<T> {
    pub fn from_fn(mut cell: impl FnMut(Task, Plane) -> T) -> Self {
        PerTaskPlane(Task::ALL.map(|task| Plane::ALL.map(|plane| cell(task, plane))))
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

    /// One task's values, in plane order (axial, coronal, sagittal).
    pub fn row(&self, task: Task) -> &[T; 3] {
        &self.0[task.index()]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Task, Plane, &T)> {
        Task::ALL.into_iter().flat_map(move |task| {
            Plane::ALL
                .into_iter()
                .map(move |plane| (task, plane, self.get(task, plane)))
        })
    }

    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> PerTaskPlane<U> {
        PerTaskPlane::from_fn(|task, plane| f(self.get(task, plane)))
    }
}

impl<T: Copy> PerTaskPlane<Option<T>> {
    /// Fills the cells still unknown from `other`.
    pub fn fill_from(&mut self, other: &PerTaskPlane<Option<T>>) {
        for task in Task::ALL {
            for plane in Plane::ALL {
                let cell = self.get_mut(task, plane);
                *cell = cell.or(*other.get(task, plane));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_addressed_by_task_and_plane() {
        let mut table = PerTaskPlane::<Option<f32>>::default();
        table.set(Task::Acl, Plane::Coronal, Some(0.5));
        assert_eq!(*table.get(Task::Acl, Plane::Coronal), Some(0.5));
        assert_eq!(table.row(Task::Acl), &[None, Some(0.5), None]);
        assert_eq!(table.iter().filter(|(_, _, v)| v.is_some()).count(), 1);
        let mut other = PerTaskPlane::from_fn(|_, _| Some(1.0));
        other.set(Task::Acl, Plane::Coronal, Some(0.9));
        table.fill_from(&other);
        assert_eq!(
            *table.get(Task::Acl, Plane::Coronal),
            Some(0.5),
            "known cells stay"
        );
        assert_eq!(*table.get(Task::Meniscus, Plane::Axial), Some(1.0));
        assert_eq!(
            table.map(|v| v.is_some()),
            PerTaskPlane::from_fn(|_, _| true)
        );
    }
}
