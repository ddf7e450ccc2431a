//! The thread that writes verdicts, so the explorer never waits for the database. Writes are
//! carried out in the order they came; one that fails is reported, kept, and retried (with the
//! ones behind it) until it succeeds, so nothing is lost while the file is read-only, the
//! disk full or another writer holds the lock.
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{ReviewError, ReviewStore, Undo, Verdict};

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Record(Verdict),
    Undo(Undo),
}

/// A write and the id its answer carries.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteJob {
    pub id: u64,
    pub op: WriteOp,
}

/// What became of a write.
#[derive(Debug)]
pub enum WriteEvent {
    /// On disk; `took` from handing it to the writer to the commit.
    Stored { id: u64, took: Duration },
    /// Not written; it (and every write after it) is tried again after `retry_in`.
    Failed {
        id: u64,
        error: ReviewError,
        retry_in: Duration,
    },
}

/// Opens the store again after a failure (a read-only file may have become writable).
pub type Reopen = Box<dyn FnMut() -> Result<Box<dyn ReviewStore>, ReviewError> + Send>;

/// The first retry comes after this, then twice as long each time up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_millis(500);
pub const MAX_RETRY: Duration = Duration::from_secs(8);

enum Command {
    /// Boxed: a verdict is some 250 bytes, the other variant a pointer.
    Write(Box<WriteJob>, Instant),
    /// Try what is pending once more and stop; answer with what could not be written.
    Finish(Sender<Vec<WriteJob>>),
}

pub struct ReviewWriter {
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

impl ReviewWriter {
    /// Starts the writer on `store`; `reopen` replaces the store after a failed write.
    pub fn spawn(
        store: Box<dyn ReviewStore>,
        reopen: Reopen,
        on_event: Box<dyn Fn(WriteEvent) + Send>,
    ) -> std::io::Result<ReviewWriter> {
        let (commands, inbox) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("kneecam-reviews".into())
            .spawn(move || {
                Worker {
                    store: Some(store),
                    reopen,
                    on_event,
                    pending: VecDeque::new(),
                    retry: FIRST_RETRY,
                }
                .run(inbox)
            })?;
        Ok(ReviewWriter {
            commands,
            thread: Some(thread),
        })
    }

    /// Queues `job`; false when the writer is gone.
    pub fn submit(&self, job: WriteJob) -> bool {
        self.commands
            .send(Command::Write(Box::new(job), Instant::now()))
            .is_ok()
    }

    /// Tries what is pending once more (waiting at most `patience` for the answer) and stops
    /// the thread; returns the writes that are still not stored, or None when the writer did
    /// not answer (it is gone, or still waiting for a lock).
    pub fn finish(mut self, patience: Duration) -> Option<Vec<WriteJob>> {
        let (answer, unwritten) = mpsc::channel();
        self.commands.send(Command::Finish(answer)).ok()?;
        let left = unwritten.recv_timeout(patience).ok()?;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        Some(left)
    }
}

struct Worker {
    store: Option<Box<dyn ReviewStore>>,
    reopen: Reopen,
    on_event: Box<dyn Fn(WriteEvent) + Send>,
    pending: VecDeque<(WriteJob, Instant)>,
    retry: Duration,
}

impl Worker {
    fn run(mut self, inbox: Receiver<Command>) {
        loop {
            let command = if self.pending.is_empty() {
                match inbox.recv() {
                    Ok(command) => Some(command),
                    Err(_) => return,
                }
            } else {
                match inbox.recv_timeout(self.retry) {
                    Ok(command) => Some(command),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.flush();
                        return;
                    }
                }
            };
            match command {
                Some(Command::Write(job, queued)) => {
                    self.pending.push_back((*job, queued));
                    // Behind a failed write, a new one waits for the retry.
                    if self.pending.len() == 1 {
                        self.flush();
                    }
                }
                Some(Command::Finish(answer)) => {
                    self.flush();
                    let _ = answer.send(self.pending.drain(..).map(|(job, _)| job).collect());
                    return;
                }
                None => {
                    self.flush();
                    if !self.pending.is_empty() {
                        self.retry = (self.retry * 2).min(MAX_RETRY);
                    }
                }
            }
        }
    }

    /// Writes the pending jobs in order until one fails.
    fn flush(&mut self) {
        while let Some((job, queued)) = self.pending.front().cloned() {
            match self.write(&job.op) {
                Ok(()) => {
                    (self.on_event)(WriteEvent::Stored {
                        id: job.id,
                        took: queued.elapsed(),
                    });
                    self.pending.pop_front();
                    self.retry = FIRST_RETRY;
                }
                Err(error) => {
                    tracing::warn!("review write {} failed: {error}", job.id);
                    (self.on_event)(WriteEvent::Failed {
                        id: job.id,
                        error,
                        retry_in: self.retry,
                    });
                    // A connection that failed may be stuck (opened read-only, say).
                    self.store = None;
                    return;
                }
            }
        }
    }

    fn write(&mut self, op: &WriteOp) -> Result<(), ReviewError> {
        let mut store = match self.store.take() {
            Some(store) => store,
            None => (self.reopen)()?,
        };
        let written = match op {
            WriteOp::Record(verdict) => store.record(verdict),
            WriteOp::Undo(undo) => store.undo(undo),
        };
        self.store = Some(store);
        written
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::data::Task;
    use crate::review::sqlite::SqliteStore;
    use crate::review::summary::tests::verdict;
    use crate::review::{Query, Truth};

    fn writer(path: &std::path::Path) -> (ReviewWriter, mpsc::Receiver<WriteEvent>) {
        let (events, inbox) = mpsc::channel();
        let events = std::sync::Mutex::new(events);
        let reopen_path = path.to_path_buf();
        let writer = ReviewWriter::spawn(
            Box::new(SqliteStore::open(path).expect("opens")),
            Box::new(move || {
                SqliteStore::open(&reopen_path).map(|s| Box::new(s) as Box<dyn ReviewStore>)
            }),
            Box::new(move |event| {
                let _ = events.lock().map(|e| e.send(event));
            }),
        )
        .expect("the writer starts");
        (writer, inbox)
    }

    fn next(inbox: &mpsc::Receiver<WriteEvent>) -> WriteEvent {
        inbox
            .recv_timeout(Duration::from_secs(30))
            .expect("an answer")
    }

    /// Another connection holds the write lock past the busy timeout: the write fails as
    /// "locked", stays queued with the one behind it, and both are stored in order once the
    /// lock is let go. Then a newer kneecam's schema appears under it: refused, kept, stored
    /// when the schema is back.
    #[test]
    fn a_lock_held_past_the_timeout_and_a_newer_schema_keep_writes_pending_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("reviews.sqlite");
        let (writer, inbox) = writer(&path);
        let locker = rusqlite::Connection::open(&path).expect("opens");
        locker.execute_batch("BEGIN EXCLUSIVE").expect("locked");
        let first = verdict("ann", 1, Task::Acl, Truth::Positive);
        let second = verdict("ann", 2, Task::Acl, Truth::Negative);
        writer.submit(WriteJob {
            id: 1,
            op: WriteOp::Record(first.clone()),
        });
        writer.submit(WriteJob {
            id: 2,
            op: WriteOp::Record(second.clone()),
        });
        match next(&inbox) {
            WriteEvent::Failed { id: 1, error, .. } => {
                assert!(matches!(error, ReviewError::Busy { .. }), "{error}");
                assert!(
                    error.to_string().contains("locked by another writer"),
                    "{error}"
                );
            }
            other => panic!("expected write 1 to fail as locked, got {other:?}"),
        }
        locker.execute_batch("COMMIT").expect("unlocked");
        let mut stored = Vec::new();
        while stored.len() < 2 {
            if let WriteEvent::Stored { id, .. } = next(&inbox) {
                stored.push(id);
            }
        }
        assert_eq!(stored, [1, 2], "in the order given");

        locker
            .execute_batch("PRAGMA user_version = 99")
            .expect("a newer schema");
        let third = verdict("ann", 3, Task::Acl, Truth::Unsure);
        writer.submit(WriteJob {
            id: 3,
            op: WriteOp::Record(third),
        });
        match next(&inbox) {
            WriteEvent::Failed { id: 3, error, .. } => {
                assert!(error.to_string().contains("newer kneecam"), "{error}")
            }
            other => panic!("expected write 3 refused, got {other:?}"),
        }
        locker
            .execute_batch("PRAGMA user_version = 1")
            .expect("back");
        loop {
            if let WriteEvent::Stored { id: 3, .. } = next(&inbox) {
                break;
            }
        }
        assert_eq!(writer.finish(Duration::from_secs(5)), Some(Vec::new()));
        let all = SqliteStore::open_read_only(&path)
            .expect("opens")
            .verdicts(&Query::default())
            .expect("reads");
        assert_eq!(all.len(), 3, "nothing lost");
    }
}
