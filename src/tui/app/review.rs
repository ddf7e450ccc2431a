//! Triage in the explorer: the reader's verdicts (`a` agree with the model's call, `d`
//! disagree, `u` unsure), a note (`i`), undo (`z`), the advance to the next exam needing a
//! verdict. The state holds every verdict of this reader on this dataset, the writes not yet
//! stored, and the last write failure; the database is the writer thread's ([`Effect::Review`]).
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::config::Advance;
use crate::data::Task;
use crate::review::writer::{WriteEvent, WriteJob, WriteOp};
use crate::review::{identity, now_millis, DatasetRef, Truth, Undo, Verdict};

use super::{App, Effect};

mod note;

/// What the explorer starts its triage from.
#[derive(Debug, Clone)]
pub struct ReviewStart {
    pub reader: String,
    pub dataset: DatasetRef,
    /// sha256 of the models folder's manifest.
    pub models_fingerprint: String,
    /// This reader's verdicts on this dataset (not undone), oldest first.
    pub existing: Vec<Verdict>,
    /// Where verdicts go, for messages.
    pub store: String,
}

/// One verdict as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub uid: String,
    pub truth: Truth,
    /// The model's call it was given against.
    pub model_call: Option<bool>,
    pub note: Option<String>,
    /// Written to the database (false while its write is pending).
    pub stored: bool,
}

/// The note being typed in the status line.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NoteEditor {
    pub case: usize,
    pub text: String,
}

pub(super) struct Reviews {
    pub(super) start: Option<ReviewStart>,
    pub(super) advance: Advance,
    /// Per case and task, this reader's verdicts oldest first; the last one counts.
    pub(super) marks: Vec<[Vec<Mark>; 3]>,
    /// This reader's verdicts in the order given, what undo takes back: (case, task, uid).
    pub(super) history: Vec<(usize, Task, String)>,
    /// Writes handed to the writer and not stored yet, by write id.
    pub(super) pending: BTreeMap<u64, WriteOp>,
    pub(super) next_write: u64,
    /// Why the last write failed, until one succeeds.
    pub(super) write_error: Option<String>,
    pub(super) editor: Option<NoteEditor>,
    /// Notes kept for exams without a verdict yet: they go with the next one.
    pub(super) drafts: HashMap<usize, String>,
    /// When each exam was first shown in this session.
    pub(super) first_shown: HashMap<usize, Instant>,
    /// `q` pressed once with writes pending: a second `q` quits anyway.
    pub(super) quit_warned: bool,
    /// The time stamp of this reader's latest verdict: a new one is stamped after it, so that
    /// "the latest wins" follows the order verdicts were given, even within a millisecond.
    pub(super) last_recorded: i64,
    /// The exam just given a verdict left the list (a review filter): the row it had now
    /// holds the next exam.
    pub(super) skip_advance_once: bool,
}

impl Reviews {
    pub(super) fn new(cases: usize, advance: Advance) -> Reviews {
        Reviews {
            start: None,
            advance,
            marks: vec![Default::default(); cases],
            history: Vec::new(),
            pending: BTreeMap::new(),
            next_write: 1,
            write_error: None,
            editor: None,
            drafts: HashMap::new(),
            first_shown: HashMap::new(),
            quit_warned: false,
            skip_advance_once: false,
            last_recorded: 0,
        }
    }
}

impl App {
    /// Starts triage: this reader's stored verdicts become the list's marks, and the
    /// selection goes to the first exam of the list without a verdict for the task.
    pub fn with_reviews(mut self, start: ReviewStart) -> App {
        // One lookup table, not a scan of the list per verdict (MRNet: 1,250 exams, and
        // thousands of verdicts in a team's file).
        let cases: HashMap<(crate::data::Split, &str), usize> = self
            .cases
            .iter()
            .enumerate()
            .map(|(index, case)| ((case.split, case.name.as_str()), index))
            .collect();
        let found: Vec<(usize, &Verdict)> = start
            .existing
            .iter()
            .filter_map(|v| Some((*cases.get(&(v.split, v.exam.as_str()))?, v)))
            .collect();
        drop(cases);
        for (case, verdict) in found {
            self.reviews.marks[case][verdict.task.index()].push(Mark {
                uid: verdict.uid.clone(),
                truth: verdict.truth,
                model_call: verdict.model_call,
                note: verdict.note.clone(),
                stored: true,
            });
            self.reviews
                .history
                .push((case, verdict.task, verdict.uid.clone()));
        }
        self.reviews.last_recorded = start
            .existing
            .iter()
            .map(|v| v.recorded_at)
            .max()
            .unwrap_or(0);
        self.reviews.start = Some(start);
        if let Some(position) = (0..self.view.len()).find(|&p| !self.is_reviewed(self.view[p])) {
            self.select(position);
        }
        self.shown_now();
        self
    }

    /// Whether triage is on (a review database was given).
    pub fn reviewing(&self) -> bool {
        self.reviews.start.is_some()
    }

    pub fn reader(&self) -> Option<&str> {
        self.reviews.start.as_ref().map(|s| s.reader.as_str())
    }

    /// This reader's verdict on `case` for `task`, if any.
    pub fn mark(&self, case: usize, task: Task) -> Option<&Mark> {
        self.reviews.marks.get(case)?[task.index()].last()
    }

    pub fn is_reviewed(&self, case: usize) -> bool {
        self.mark(case, self.task).is_some()
    }

    /// Exams with this reader's verdict for the current task, of all exams.
    pub fn progress(&self) -> (usize, usize) {
        let reviewed = (0..self.cases.len())
            .filter(|&c| self.is_reviewed(c))
            .count();
        (reviewed, self.cases.len())
    }

    /// Writes not stored yet, and why the last one failed.
    pub fn pending_writes(&self) -> (usize, Option<&str>) {
        (
            self.reviews.pending.len(),
            self.reviews.write_error.as_deref(),
        )
    }

    /// Every write not stored yet, oldest first.
    pub fn unstored(&self) -> Vec<WriteJob> {
        self.reviews
            .pending
            .iter()
            .map(|(&id, op)| WriteJob { id, op: op.clone() })
            .collect()
    }

    pub fn note_editor(&self) -> Option<&NoteEditor> {
        self.reviews.editor.as_ref()
    }

    /// The note the current exam's verdict carries, or the draft waiting for one.
    pub fn current_note(&self) -> Option<&str> {
        let case = self.current()?;
        self.mark(case, self.task)
            .and_then(|m| m.note.as_deref())
            .or(self.reviews.drafts.get(&case).map(String::as_str))
    }

    /// Notes when the selected exam is first shown (the verdict's seconds count from then).
    pub(super) fn shown_now(&mut self) {
        if let Some(case) = self.current() {
            self.reviews
                .first_shown
                .entry(case)
                .or_insert_with(Instant::now);
        }
    }

    /// The model's call on `case` for the current task at the current threshold.
    pub(super) fn model_call(&self, case: usize) -> Option<(f32, bool)> {
        let probability = self.combined(case, self.task)?;
        Some((probability, probability >= self.threshold))
    }

    /// `a` / `d`: the reader agrees or disagrees with the model's call; `u`: unsure.
    pub(super) fn verdict(&mut self, agree: Option<bool>) -> Vec<Effect> {
        let Some(case) = self.current() else {
            return Vec::new();
        };
        if !self.reviewing() {
            self.message = Some("verdicts need a review database (see --reviews)".into());
            return Vec::new();
        }
        let call = self.model_call(case);
        let truth = match (agree, call) {
            (None, _) => Truth::Unsure,
            (Some(agree), Some((_, call))) => Truth::of_call(call == agree),
            (Some(_), None) => {
                self.message = Some(self.no_call_reason(case));
                return Vec::new();
            }
        };
        let verdict = self.new_verdict(case, truth, call);
        let note = verdict.note.clone();
        self.reviews.drafts.remove(&case);
        let effects = self.record(case, verdict);
        let said = format!(
            "{}: {} ({}{})",
            self.cases[case].name,
            truth.name(),
            self.task,
            note.map(|n| format!(", note: {n}")).unwrap_or_default()
        );
        self.advance_after_verdict(said);
        effects
    }

    fn no_call_reason(&self, case: usize) -> String {
        if self.models.combiners[self.task.index()].is_none() {
            format!(
                "no model call to agree with: the manifest has no combiner for {} (u still works)",
                self.task
            )
        } else if self.cases[case].failed.is_some() {
            "no model call to agree with: this exam could not be scored (u still works)".into()
        } else {
            "no model call yet: the exam is still being scored".into()
        }
    }

    pub(super) fn new_verdict(
        &self,
        case: usize,
        truth: Truth,
        call: Option<(f32, bool)>,
    ) -> Verdict {
        let start = self.reviews.start.as_ref();
        let reader = start.map_or("reader", |s| s.reader.as_str()).to_string();
        let shown = self.reviews.first_shown.get(&case);
        let entry = &self.cases[case];
        let note = self
            .reviews
            .drafts
            .get(&case)
            .cloned()
            .or_else(|| self.mark(case, self.task).and_then(|m| m.note.clone()));
        Verdict {
            uid: identity::new_uid(&reader),
            dataset: start.map(|s| s.dataset.clone()).unwrap_or(DatasetRef {
                fingerprint: String::new(),
                path: String::new(),
            }),
            split: entry.split,
            exam: entry.name.clone(),
            task: self.task,
            reader,
            truth,
            note,
            probability: call.map(|(p, _)| p),
            model_call: call.map(|(_, c)| c),
            threshold: self.threshold,
            label: entry.labels[self.task.index()],
            models_fingerprint: start.map_or(String::new(), |s| s.models_fingerprint.clone()),
            method: self.display.method.name().to_string(),
            seconds: shown.map_or(0.0, |t| t.elapsed().as_secs_f64()),
            recorded_at: now_millis().max(self.reviews.last_recorded + 1),
        }
    }

    /// Shows `verdict` at once and hands it to the writer.
    pub(super) fn record(&mut self, case: usize, verdict: Verdict) -> Vec<Effect> {
        self.reviews.last_recorded = verdict.recorded_at;
        self.reviews.marks[case][verdict.task.index()].push(Mark {
            uid: verdict.uid.clone(),
            truth: verdict.truth,
            model_call: verdict.model_call,
            note: verdict.note.clone(),
            stored: false,
        });
        self.reviews
            .history
            .push((case, verdict.task, verdict.uid.clone()));
        self.refresh_view_keeping(case);
        vec![self.write(WriteOp::Record(verdict))]
    }

    fn write(&mut self, op: WriteOp) -> Effect {
        let id = self.reviews.next_write;
        self.reviews.next_write += 1;
        self.reviews.pending.insert(id, op.clone());
        Effect::Review(Box::new(WriteJob { id, op }))
    }

    /// Rebuilds the list (a verdict may take an exam out of a review filter), keeping `case`
    /// as the reference point of the advance even when it left the list.
    fn refresh_view_keeping(&mut self, case: usize) {
        let position = self.view.iter().position(|&c| c == case);
        self.refresh_view();
        if let (Some(position), None) = (position, self.view.iter().position(|&c| c == case)) {
            // The exam left the list: the one now at its row is the next one.
            self.selected = position.min(self.view.len().saturating_sub(1));
            self.reviews.skip_advance_once = true;
        }
    }

    fn advance_after_verdict(&mut self, said: String) {
        let left_list = std::mem::take(&mut self.reviews.skip_advance_once);
        let from = self.selected;
        let (target, note) = match self.reviews.advance {
            Advance::Stay => (None, String::new()),
            Advance::Next if left_list => (Some(from), String::new()),
            Advance::Next => match from + 1 < self.view.len() {
                true => (Some(from + 1), String::new()),
                false => (None, " · end of the list".into()),
            },
            Advance::NextUnreviewed => self.next_unreviewed_from(from, left_list),
        };
        if let Some(position) = target {
            self.select(position);
            self.shown_now();
        }
        self.message = Some(format!("{said}{note}"));
    }

    /// The list row the next-unreviewed rule goes to from row `from` (`from` itself when the
    /// reviewed exam left the list and `from` is now the next one), wrapping round to the top.
    fn next_unreviewed_from(&self, from: usize, include_from: bool) -> (Option<usize>, String) {
        let rows = self.view.len();
        let start = if include_from { 0 } else { 1 };
        let found = (start..rows.max(1))
            .map(|step| (from + step) % rows.max(1))
            .filter(|&p| p < rows)
            .find(|&p| !self.is_reviewed(self.view[p]));
        match found {
            Some(p) if p < from => (Some(p), " · wrapped to the top of the list".into()),
            Some(p) => (Some(p), String::new()),
            None => {
                let (done, total) = self.progress();
                (
                    None,
                    format!(
                        " · every listed exam has your {} verdict ({done}/{total} reviewed)",
                        self.task
                    ),
                )
            }
        }
    }

    /// Where the advance rule would go next from the selection: the exam to prefetch.
    pub(super) fn advance_target(&self) -> Option<usize> {
        if !self.reviewing() {
            return None;
        }
        let position = match self.reviews.advance {
            Advance::Stay => None,
            Advance::Next => Some(self.selected + 1).filter(|&p| p < self.view.len()),
            Advance::NextUnreviewed => self.next_unreviewed_from(self.selected, false).0,
        };
        position.and_then(|p| self.view.get(p).copied())
    }

    /// `z`: takes back this reader's last verdict and goes back to its exam.
    pub(super) fn undo_verdict(&mut self) -> Vec<Effect> {
        let Some((case, task, uid)) = self.reviews.history.pop() else {
            self.message = Some("no verdict of yours to undo".into());
            return Vec::new();
        };
        let marks = &mut self.reviews.marks[case][task.index()];
        marks.retain(|m| m.uid != uid);
        let reader = self.reader().unwrap_or("reader").to_string();
        let effect = self.write(WriteOp::Undo(Undo {
            verdict_uid: uid,
            reader,
            undone_at: now_millis(),
        }));
        if task != self.task {
            self.set_task(task);
        }
        self.refresh_view();
        if let Some(position) = self.view.iter().position(|&c| c == case) {
            self.select(position);
        }
        let now = match self.mark(case, task) {
            Some(mark) => format!("back to {}", mark.truth.name()),
            None => "no verdict".into(),
        };
        self.message = Some(format!(
            "undid your verdict on {} ({task}): {now}",
            self.cases[case].name
        ));
        vec![effect]
    }

    /// What the writer did with a write.
    pub(super) fn review_written(&mut self, event: WriteEvent) {
        match event {
            WriteEvent::Stored { id, .. } => {
                if let Some(WriteOp::Record(verdict)) = self.reviews.pending.remove(&id) {
                    for marks in self.reviews.marks.iter_mut() {
                        for mark in marks.iter_mut().flatten() {
                            if mark.uid == verdict.uid {
                                mark.stored = true;
                            }
                        }
                    }
                }
                if self.reviews.pending.is_empty() {
                    self.reviews.write_error = None;
                    self.reviews.quit_warned = false;
                }
            }
            WriteEvent::Failed {
                error, retry_in, ..
            } => {
                self.reviews.write_error = Some(format!(
                    "not stored (retrying in {:.0} s): {}",
                    retry_in.as_secs_f32().max(1.0),
                    error.short()
                ));
            }
        }
    }

    /// `q` with writes pending warns once; the second `q` quits.
    pub(super) fn quit_asked(&mut self) {
        let pending = self.reviews.pending.len();
        if pending == 0 || self.reviews.quit_warned {
            self.quit = true;
            return;
        }
        self.reviews.quit_warned = true;
        self.message = Some(format!(
            "{pending} verdict write{} not stored yet ({}): q again to quit anyway (they are \
             printed on exit)",
            if pending == 1 { "" } else { "s" },
            self.reviews.write_error.as_deref().unwrap_or("writing")
        ));
    }
}
