//! The triage state's promises.
use std::collections::HashSet;

use crate::review::writer::WriteOp;
use crate::tui::app::{App, Filter};

impl App {
    /// Whether a review filter admits `case`, worked out from the marks alone.
    pub(super) fn review_admits(&self, filter: Filter, case: usize) -> bool {
        let marks = &self.reviews.marks[case][self.task.index()];
        let last = marks.last();
        let said = last.and_then(|m| m.truth.call());
        match filter {
            Filter::Unreviewed => marks.is_empty(),
            Filter::DisagreesWithModel => {
                said.is_some()
                    && last
                        .and_then(|m| m.model_call)
                        .is_some_and(|c| Some(c) != said)
            }
            Filter::DisagreesWithLabel => {
                let label = self.cases[case].labels[self.task.index()];
                said.is_some() && label.is_some_and(|l| Some(l) != said)
            }
            _ => true,
        }
    }

    /// Exams the model calls `call` that have no label for the task (the confusion counts
    /// leave them out).
    pub(super) fn unlabelled_calls(&self, call: bool) -> usize {
        (0..self.cases.len())
            .filter(|&c| self.cases[c].labels[self.task.index()].is_none())
            .filter(|&c| {
                self.combined(c, self.task)
                    .is_some_and(|p| (p >= self.threshold) == call)
            })
            .count()
    }

    /// - the marks: each uid once, and each one in the undo history, which holds nothing else;
    /// - a mark is unstored exactly when a write of its verdict is pending;
    /// - pending writes have ids below the next one;
    /// - a note is being edited only for an exam that exists.
    pub(super) fn check_reviews(&self) -> Result<(), String> {
        let reviews = &self.reviews;
        if reviews.marks.len() != self.cases.len() {
            return Err(format!(
                "{} mark rows for {} cases",
                reviews.marks.len(),
                self.cases.len()
            ));
        }
        let mut uids = HashSet::new();
        for (case, per_task) in reviews.marks.iter().enumerate() {
            for (task, marks) in per_task.iter().enumerate() {
                for mark in marks {
                    if !uids.insert((case, task, mark.uid.as_str())) {
                        return Err(format!("verdict {} is marked twice", mark.uid));
                    }
                    let pending = reviews
                        .pending
                        .values()
                        .any(|op| matches!(op, WriteOp::Record(v) if v.uid == mark.uid));
                    if pending == mark.stored {
                        return Err(format!(
                            "verdict {} on case {case} is {} but its write is {}",
                            mark.uid,
                            if mark.stored { "stored" } else { "unstored" },
                            if pending { "pending" } else { "done" }
                        ));
                    }
                }
            }
        }
        let history: HashSet<_> = reviews
            .history
            .iter()
            .map(|(case, task, uid)| (*case, task.index(), uid.as_str()))
            .collect();
        if history != uids || history.len() != reviews.history.len() {
            return Err(format!(
                "the undo history ({} entries) does not match the marks ({})",
                reviews.history.len(),
                uids.len()
            ));
        }
        if let Some((&id, _)) = reviews.pending.iter().next_back() {
            if id >= reviews.next_write {
                return Err(format!(
                    "write {id} is pending, but the next id is {}",
                    reviews.next_write
                ));
            }
        }
        if let Some(editor) = reviews
            .editor
            .as_ref()
            .filter(|e| e.case >= self.cases.len())
        {
            return Err(format!(
                "a note is being edited for case {}, of {} cases",
                editor.case,
                self.cases.len()
            ));
        }
        Ok(())
    }
}
