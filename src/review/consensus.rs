//! The readers' consensus per case, as labels: the majority of their latest non-unsure
//! verdicts. Ties, and cases where every reader was unsure, get no label. Written as an
//! MRNet label CSV (`case,label` rows, no header) by `kneecam review export --format mrnet`.
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Truth, Verdict};
use crate::data::{Split, Task};

/// What the readers of one case add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every non-unsure verdict says the same.
    Unanimous(bool),
    /// More say this than the other.
    Majority(bool),
    /// As many positive as negative.
    Tie,
    /// Nobody gave a call.
    UnsureOnly,
}

impl Outcome {
    /// The label it gives, if any.
    pub fn label(self) -> Option<bool> {
        match self {
            Outcome::Unanimous(label) | Outcome::Majority(label) => Some(label),
            Outcome::Tie | Outcome::UnsureOnly => None,
        }
    }
}

/// The consensus of one case's verdicts (one per reader).
pub fn outcome(truths: impl IntoIterator<Item = Truth>) -> Outcome {
    let (mut positive, mut negative) = (0usize, 0usize);
    for truth in truths {
        match truth.call() {
            Some(true) => positive += 1,
            Some(false) => negative += 1,
            None => {}
        }
    }
    match (positive, negative) {
        (0, 0) => Outcome::UnsureOnly,
        (_, 0) => Outcome::Unanimous(true),
        (0, _) => Outcome::Unanimous(false),
        (p, n) if p == n => Outcome::Tie,
        (p, n) => Outcome::Majority(p > n),
    }
}

/// One task's consensus labels, and how many cases were left out and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskConsensus {
    /// (split, exam, label), by split then case.
    pub labels: Vec<(Split, String, bool)>,
    pub unanimous: usize,
    pub majority: usize,
    pub ties: usize,
    pub unsure_only: usize,
}

impl TaskConsensus {
    /// The splits the labelled cases come from.
    pub fn splits(&self) -> Vec<Split> {
        let mut splits: Vec<Split> = self.labels.iter().map(|l| l.0).collect();
        splits.dedup();
        splits
    }

    /// The labels as an MRNet label CSV: `case,label` rows (label 0 or 1), no header, in the
    /// order of [`TaskConsensus::labels`].
    pub fn mrnet_csv(&self) -> String {
        let mut text = String::new();
        for (_, exam, label) in &self.labels {
            let _ = writeln!(text, "{exam},{}", u8::from(*label));
        }
        text
    }
}

/// Per task, the consensus of `verdicts`: one reader's latest verdict per case (as
/// [`super::latest`] gives them), all of one dataset. Tasks without verdicts are left out.
pub fn by_task(verdicts: &[&Verdict]) -> BTreeMap<Task, TaskConsensus> {
    let mut cases: BTreeMap<Task, BTreeMap<(Split, CaseKey), Vec<Truth>>> = BTreeMap::new();
    for verdict in verdicts {
        cases
            .entry(verdict.task)
            .or_default()
            .entry((verdict.split, CaseKey::of(&verdict.exam)))
            .or_default()
            .push(verdict.truth);
    }
    cases
        .into_iter()
        .map(|(task, cases)| {
            let mut consensus = TaskConsensus::default();
            for ((split, key), truths) in cases {
                let outcome = outcome(truths);
                match outcome {
                    Outcome::Unanimous(_) => consensus.unanimous += 1,
                    Outcome::Majority(_) => consensus.majority += 1,
                    Outcome::Tie => consensus.ties += 1,
                    Outcome::UnsureOnly => consensus.unsure_only += 1,
                }
                if let Some(label) = outcome.label() {
                    consensus.labels.push((split, key.exam, label));
                }
            }
            (task, consensus)
        })
        .collect()
}

/// Orders exams as cases: numeric ids by value (`0007` before `0010`), anything else after
/// them by text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CaseKey {
    not_numeric: bool,
    id: u32,
    exam: String,
}

impl CaseKey {
    fn of(exam: &str) -> CaseKey {
        let id = exam.parse::<u32>().ok();
        CaseKey {
            not_numeric: id.is_none(),
            id: id.unwrap_or(0),
            exam: exam.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::summary::tests::verdict;

    #[test]
    fn outcomes() {
        let (p, n, u) = (Truth::Positive, Truth::Negative, Truth::Unsure);
        assert_eq!(outcome([p]), Outcome::Unanimous(true));
        assert_eq!(outcome([n, n, u]), Outcome::Unanimous(false));
        assert_eq!(outcome([p, p, n]), Outcome::Majority(true));
        assert_eq!(outcome([p, n, n, u]), Outcome::Majority(false));
        assert_eq!(outcome([p, n]), Outcome::Tie);
        assert_eq!(outcome([p, n, u]), Outcome::Tie);
        assert_eq!(outcome([u, u]), Outcome::UnsureOnly);
        assert_eq!(outcome([]), Outcome::UnsureOnly);
    }

    fn example() -> Vec<Verdict> {
        use Truth::{Negative as N, Positive as P, Unsure as U};
        let mut verdicts = Vec::new();
        for (exam, truths) in [
            (10, vec![P, P]),   // unanimous 1
            (7, vec![N, N, U]), // unanimous 0
            (3, vec![P, N, P]), // majority 1
            (4, vec![P, N]),    // tie
            (5, vec![U, U]),    // unsure only
        ] {
            for (reader, truth) in ["ann", "bob", "cat"].into_iter().zip(truths) {
                verdicts.push(verdict(reader, exam, Task::Acl, truth));
            }
        }
        verdicts.push(verdict("ann", 1, Task::Meniscus, Truth::Negative));
        verdicts
    }

    #[test]
    fn labels_come_by_majority_ordered_by_case() {
        let verdicts = example();
        let refs: Vec<&Verdict> = verdicts.iter().collect();
        let tasks = by_task(&refs);
        assert_eq!(
            tasks.keys().copied().collect::<Vec<_>>(),
            [Task::Acl, Task::Meniscus]
        );
        let acl = &tasks[&Task::Acl];
        assert_eq!(
            (acl.unanimous, acl.majority, acl.ties, acl.unsure_only),
            (2, 1, 1, 1)
        );
        assert_eq!(acl.mrnet_csv(), "0003,1\n0007,0\n0010,1\n");
        assert_eq!(acl.splits(), [Split::Train]);
        assert_eq!(tasks[&Task::Meniscus].mrnet_csv(), "0001,0\n");
    }

    #[test]
    fn the_csv_is_a_label_file_kneecam_reads_without_errors() {
        let verdicts = example();
        let refs: Vec<&Verdict> = verdicts.iter().collect();
        let csv = by_task(&refs)[&Task::Acl].mrnet_csv();
        let file = crate::data::labels::parse_labels("train-acl.csv".as_ref(), csv.as_bytes());
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        assert_eq!(file.len(), 3);
        assert_eq!(file.get(3), Some(true));
        assert_eq!(file.get(7), Some(false));
        assert_eq!(file.get(10), Some(true));
    }

    #[test]
    fn non_numeric_exams_sort_after_ids() {
        let mut a = CaseKey::of("zz");
        let b = CaseKey::of("0002");
        assert!(b < a);
        a = CaseKey::of("0010");
        assert!(b < a);
    }
}
