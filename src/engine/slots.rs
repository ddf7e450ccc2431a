//! The worker's queue: one "next" slot per priority (gitui's asyncjob), so a burst of
//! requests leaves only the newest of each priority waiting.
use std::time::Instant;

use super::message::{CamRequest, Priority, RequestId};

/// A request with its id, waiting for the worker.
#[derive(Debug)]
pub(crate) struct Queued {
    pub id: RequestId,
    pub request: CamRequest,
    pub submitted: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Slots {
    interactive: Option<Queued>,
    prefetch: Option<Queued>,
}

impl Slots {
    fn slot(&mut self, priority: Priority) -> &mut Option<Queued> {
        match priority {
            Priority::Interactive => &mut self.interactive,
            Priority::Prefetch => &mut self.prefetch,
        }
    }

    /// Queues `job` in its priority's slot; returns the request it displaced, if any.
    pub fn push(&mut self, job: Queued) -> Option<Queued> {
        self.slot(job.request.priority).replace(job)
    }

    /// Removes the waiting request `id`, if it is waiting.
    pub fn cancel(&mut self, id: RequestId) -> Option<Queued> {
        [Priority::Interactive, Priority::Prefetch]
            .into_iter()
            .find_map(|priority| {
                let slot = self.slot(priority);
                if slot.as_ref().is_some_and(|job| job.id == id) {
                    slot.take()
                } else {
                    None
                }
            })
    }

    /// The request to run next: interactive before prefetch.
    pub fn next(&mut self) -> Option<Queued> {
        self.interactive.take().or_else(|| self.prefetch.take())
    }

    /// Everything waiting, in the order it would have run.
    pub fn drain(&mut self) -> Vec<Queued> {
        std::iter::from_fn(|| self.next()).collect()
    }

    pub fn waiting(&self) -> Vec<(RequestId, Priority)> {
        [&self.interactive, &self.prefetch]
            .into_iter()
            .flatten()
            .map(|job| (job.id, job.request.priority))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::Array3;

    use super::*;
    use crate::cam::{CamSpec, Method, Normalization};
    use crate::data::{Plane, Task};

    fn job(id: u64, priority: Priority) -> Queued {
        Queued {
            id: RequestId(id),
            request: CamRequest {
                volume: Arc::new(Array3::zeros((1, 1, 1))),
                task: Task::Acl,
                plane: Plane::Sagittal,
                spec: CamSpec {
                    method: Method::Cam,
                    class: None,
                    normalization: Normalization::Exam,
                },
                priority,
                cache: None,
            },
            submitted: Instant::now(),
        }
    }

    fn ids(jobs: &[Queued]) -> Vec<u64> {
        jobs.iter().map(|job| job.id.0).collect()
    }

    #[test]
    fn a_newer_request_displaces_the_waiting_one_of_its_priority_only() {
        let mut slots = Slots::default();
        assert!(slots.push(job(1, Priority::Interactive)).is_none());
        assert!(slots.push(job(2, Priority::Prefetch)).is_none());
        let displaced = slots.push(job(3, Priority::Interactive));
        assert_eq!(displaced.map(|job| job.id), Some(RequestId(1)));
        let displaced = slots.push(job(4, Priority::Prefetch));
        assert_eq!(displaced.map(|job| job.id), Some(RequestId(2)));
        assert_eq!(ids(&slots.drain()), vec![3, 4]);
    }

    #[test]
    fn interactive_runs_before_an_older_prefetch() {
        let mut slots = Slots::default();
        slots.push(job(1, Priority::Prefetch));
        slots.push(job(2, Priority::Interactive));
        assert_eq!(
            slots.waiting(),
            vec![
                (RequestId(2), Priority::Interactive),
                (RequestId(1), Priority::Prefetch)
            ]
        );
        assert_eq!(slots.next().map(|job| job.id), Some(RequestId(2)));
        assert_eq!(slots.next().map(|job| job.id), Some(RequestId(1)));
        assert!(slots.next().is_none());
    }

    #[test]
    fn cancel_removes_only_the_named_request() {
        let mut slots = Slots::default();
        slots.push(job(1, Priority::Interactive));
        slots.push(job(2, Priority::Prefetch));
        assert!(slots.cancel(RequestId(7)).is_none());
        assert_eq!(
            slots.cancel(RequestId(2)).map(|job| job.id),
            Some(RequestId(2))
        );
        assert!(slots.cancel(RequestId(2)).is_none());
        assert_eq!(ids(&slots.drain()), vec![1]);
    }
}
