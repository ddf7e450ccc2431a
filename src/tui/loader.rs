//! Reading series off the UI thread: one thread, fed the list of series the state wants;
//! a newer list replaces what it has not started, so moving on never waits for old reads.
use std::collections::VecDeque;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::data::dataset::Exam;
use crate::data::Plane;

use super::app::{Series, SeriesError};
use super::driver::Event;

/// One series to read: (case, plane, the case's exam if it has one).
pub type SeriesJob = (usize, Plane, Option<Exam>);

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
                while let Some((case, plane, exam)) = next_job(&inbox) {
                    let outcome = read(exam.as_ref(), plane, hash);
                    let loaded = Event::SeriesLoaded {
                        case,
                        plane,
                        outcome,
                    };
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

fn read(exam: Option<&Exam>, plane: Plane, hash: bool) -> Result<Series, SeriesError> {
    let exam = exam
        .filter(|exam| exam.path(plane).is_some())
        .ok_or(SeriesError::Missing(plane))?;
    let wrap = |err| SeriesError::Read(Arc::new(err));
    if hash {
        let (volume, sha256) = exam.load_hashed(plane).map_err(wrap)?;
        Ok(Series {
            volume: Arc::new(volume.data),
            sha256: Some(sha256),
        })
    } else {
        let volume = exam.load(plane).map_err(wrap)?;
        Ok(Series {
            volume: Arc::new(volume.data),
            sha256: None,
        })
    }
}
