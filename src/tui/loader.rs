//! Reading series off the UI thread: one thread, fed the list of series the state wants;
//! a newer list replaces what it has not started, so moving on never waits for old reads.
use std::collections::VecDeque;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::data::dataset::Exam;
use crate::data::Plane;

use super::app::{Series, SeriesError, SeriesRef};
use super::driver::Event;

/// One series to read, with the exam reading that plane from that series (if there is one).
pub type SeriesJob = (SeriesRef, Option<Exam>);

/// `exam` with `plane` read from its `series`-th series (0: the dataset's choice, also for an
/// exam that lists none, as `.npy` exams).
pub fn exam_for(exam: &Exam, plane: Plane, series: usize) -> Option<Exam> {
    match exam.with_series(plane, series) {
        Some(exam) => Some(exam),
        None => (series == 0).then(|| exam.clone()),
    }
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<SeriesJob>,
    stop: bool,
}

/// The loader thread; dropping it stops the thread after the read in progress.
pub struct SeriesLoader {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl SeriesLoader {
    /// `hash`: also compute each file's sha256 (the CAM store's keys need it).
    pub fn spawn(events: Sender<Event>, hash: bool) -> std::io::Result<SeriesLoader> {
        let shared: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let inbox = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("kneecam-series".into())
            .spawn(move || {
                while let Some((which, exam)) = next_job(&inbox) {
                    let outcome = read(exam.as_ref(), which.plane, hash);
                    let loaded = Event::SeriesLoaded { which, outcome };
                    if events.send(loaded).is_err() {
                        return;
                    }
                }
            })?;
        Ok(SeriesLoader {
            shared,
            thread: Some(thread),
        })
    }

    /// Replaces the series still to read with `jobs`.
    pub fn want(&self, jobs: Vec<SeriesJob>) {
        let (queue, wake) = &*self.shared;
        let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.jobs = jobs.into();
        wake.notify_one();
    }
}

impl Drop for SeriesLoader {
    fn drop(&mut self) {
        let (queue, wake) = &*self.shared;
        queue.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits for the next job; None once told to stop.
fn next_job(shared: &(Mutex<Queue>, Condvar)) -> Option<SeriesJob> {
    let (queue, wake) = shared;
    let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if queue.stop {
            return None;
        }
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        queue = wake.wait(queue).unwrap_or_else(PoisonError::into_inner);
    }
}

/// Reads the volume, where it lies and its lesion mask (geometry and mask files are read here
/// too, never on the UI thread); one that cannot be read leaves the series without it, and
/// says why.
fn read(exam: Option<&Exam>, plane: Plane, hash: bool) -> Result<Series, SeriesError> {
    let exam = exam
        .filter(|exam| exam.path(plane).is_some())
        .ok_or(SeriesError::Missing(plane))?;
    let wrap = |err| SeriesError::Read(Arc::new(err));
    let (volume, sha256) = if hash {
        let (volume, sha256) = exam.load_hashed(plane).map_err(wrap)?;
        (volume, Some(sha256))
    } else {
        (exam.load(plane).map_err(wrap)?, None)
    };
    let geometry = exam.geometry(plane).map_err(|err| {
        tracing::warn!("{} {plane}: {err}", exam.name());
        err.to_string()
    });
    let mask = exam.load_mask(plane).map_err(|err| {
        tracing::warn!("{} {plane} mask: {err}", exam.name());
        err.to_string()
    });
    Ok(
        Series::with_geometry(Arc::new(volume.data), sha256, geometry)
            .with_truth(mask.map(|found| found.map(|mask| mask.data))),
    )
}
