//! The worker's queue: one "next" slot per priority (gitui's asyncjob), so a burst of
//! requests leaves only the newest of each priority waiting.
use std::time::Instant;

use super::message::{CamRequest, Priority, RequestId, ScoreRequest};

/// What a queued request asks for.
#[derive(Debug)]
pub(crate) enum Work {
    Cam(CamRequest),
    Score(Box<ScoreRequest>),
}

/// A request with its id, waiting for the worker.
#[derive(Debug)]
pub(crate) struct Queued {
    pub id: RequestId,
    pub work: Work,
    pub submitted: Instant,
}

impl Queued {
    /// Scoring is background work; a CAM request says its own priority.
    pub fn priority(&self) -> Priority {
        match &self.work {
            Work::Cam(request) => request.priority,
            Work::Score(_) => Priority::Background,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Slots {
    /// Indexed by [`Priority`], most urgent first.
    waiting: [Option<Queued>; 3],
}

impl Slots {
    fn slot(&mut self, priority: Priority) -> &mut Option<Queued> {
        &mut self.waiting[priority as usize]
    }

    /// Queues `job` in its priority's slot; returns the request it displaced, if any.
    pub fn push(&mut self, job: Queued) -> Option<Queued> {
        self.slot(job.priority()).replace(job)
    }

    /// Removes the waiting request `id`, if it is waiting.
    pub fn cancel(&mut self, id: RequestId) -> Option<Queued> {
        self.waiting
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|job| job.id == id))
            .and_then(Option::take)
    }

    /// The request to run next: the most urgent priority first.
    pub fn next(&mut self) -> Option<Queued> {
        self.waiting.iter_mut().find_map(Option::take)
    }

    /// Everything waiting, in the order it would have run.
    pub fn drain(&mut self) -> Vec<Queued> {
        std::iter::from_fn(|| self.next()).collect()
    }

    pub fn waiting(&self) -> Vec<(RequestId, Priority)> {
        self.waiting
            .iter()
            .flatten()
            .map(|job| (job.id, job.priority()))
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
            work: Work::Cam(CamRequest {
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
            }),
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

    #[test]
    fn background_runs_last() {
        let mut slots = Slots::default();
        slots.push(job(1, Priority::Background));
        slots.push(job(2, Priority::Prefetch));
        slots.push(job(3, Priority::Interactive));
        assert_eq!(ids(&slots.drain()), vec![3, 2, 1]);
    }
}
