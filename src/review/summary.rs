//! What readers' verdicts add up to, per task: each reader's counts, agreement with the model
//! and with the labels, time per case; Cohen's κ between every two readers; the cases they
//! disagree on. Plain figures, printed by `kneecam review summary`.
use std::collections::{BTreeMap, BTreeSet};

use super::{Truth, Verdict};
use crate::data::{Split, Task};

/// A case: one exam of one split.
pub type Case = (Split, String);

/// How many of `n` verdicts agreed with something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreement {
    pub agree: usize,
    pub n: usize,
}

impl Agreement {
    /// `agree / n`; None when n is 0.
    pub fn fraction(self) -> Option<f64> {
        (self.n > 0).then(|| self.agree as f64 / self.n as f64)
    }
}

/// One reader on one task.
#[derive(Debug, Clone, PartialEq)]
pub struct ReaderStats {
    pub reader: String,
    /// Cases with a verdict.
    pub reviewed: usize,
    pub positive: usize,
    pub negative: usize,
    pub unsure: usize,
    /// Non-unsure verdicts that have a recorded model call, against that call.
    pub model: Agreement,
    /// Non-unsure verdicts that have a label, against it.
    pub label: Agreement,
    /// Median seconds per case; None without verdicts.
    pub median_seconds: Option<f64>,
}

/// Cohen's κ between two readers over the cases both reviewed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kappa {
    pub n: usize,
    /// Observed agreement p_o; None when n is 0.
    pub observed: Option<f64>,
    /// (p_o − p_e) / (1 − p_e); None when n is 0 or p_e is 1 (both readers gave one and the
    /// same category throughout).
    pub kappa: Option<f64>,
}

/// Two readers on one task.
#[derive(Debug, Clone, PartialEq)]
pub struct PairStats {
    pub first: String,
    pub second: String,
    pub kappa: Kappa,
}

/// A case whose readers' non-unsure verdicts differ: every reader's verdict on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Disagreement {
    pub split: Split,
    pub exam: String,
    pub verdicts: Vec<(String, Truth)>,
}

/// One task's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSummary {
    pub task: Task,
    /// Readers by name.
    pub readers: Vec<ReaderStats>,
    /// Every pair of readers, by name.
    pub pairs: Vec<PairStats>,
    /// By case.
    pub disagreements: Vec<Disagreement>,
}

/// The figures of `verdicts`, one reader's latest verdict per case (as [`super::latest`]
/// gives them, all of one dataset), per task in [`Task::ALL`] order (tasks without verdicts
/// left out). `label_of` gives a verdict's label (the dataset's current one, say, else the
/// recorded one).
pub fn summarize(
    verdicts: &[&Verdict],
    label_of: impl Fn(&Verdict) -> Option<bool>,
) -> Vec<TaskSummary> {
    let mut tasks = Vec::new();
    for task in Task::ALL {
        // reader -> case -> verdict
        let mut by_reader: BTreeMap<&str, BTreeMap<Case, &Verdict>> = BTreeMap::new();
        for &verdict in verdicts.iter().filter(|v| v.task == task) {
            by_reader
                .entry(verdict.reader.as_str())
                .or_default()
                .insert((verdict.split, verdict.exam.clone()), verdict);
        }
        if by_reader.is_empty() {
            continue;
        }
        let readers = by_reader
            .iter()
            .map(|(reader, cases)| reader_stats(reader, cases.values().copied(), &label_of))
            .collect();
        let names: Vec<&str> = by_reader.keys().copied().collect();
        let mut pairs = Vec::new();
        for (i, first) in names.iter().enumerate() {
            for second in &names[i + 1..] {
                let (a, b) = (&by_reader[first], &by_reader[second]);
                let both: Vec<(Truth, Truth)> = a
                    .iter()
                    .filter_map(|(case, v)| Some((v.truth, b.get(case)?.truth)))
                    .collect();
                pairs.push(PairStats {
                    first: first.to_string(),
                    second: second.to_string(),
                    kappa: cohen_kappa(&both),
                });
            }
        }
        tasks.push(TaskSummary {
            task,
            readers,
            pairs,
            disagreements: disagreements(&by_reader),
        });
    }
    tasks
}

fn reader_stats<'a>(
    reader: &str,
    cases: impl Iterator<Item = &'a Verdict>,
    label_of: &impl Fn(&Verdict) -> Option<bool>,
) -> ReaderStats {
    let mut stats = ReaderStats {
        reader: reader.to_string(),
        reviewed: 0,
        positive: 0,
        negative: 0,
        unsure: 0,
        model: Agreement::default(),
        label: Agreement::default(),
        median_seconds: None,
    };
    let mut seconds = Vec::new();
    for verdict in cases {
        stats.reviewed += 1;
        seconds.push(verdict.seconds);
        match verdict.truth {
            Truth::Positive => stats.positive += 1,
            Truth::Negative => stats.negative += 1,
            Truth::Unsure => stats.unsure += 1,
        }
        let Some(call) = verdict.truth.call() else {
            continue;
        };
        for (agreement, against) in [
            (&mut stats.model, verdict.model_call),
            (&mut stats.label, label_of(verdict)),
        ] {
            if let Some(against) = against {
                agreement.n += 1;
                agreement.agree += usize::from(call == against);
            }
        }
    }
    stats.median_seconds = median(&mut seconds);
    stats
}

/// Cases where two readers' non-unsure verdicts differ.
fn disagreements(by_reader: &BTreeMap<&str, BTreeMap<Case, &Verdict>>) -> Vec<Disagreement> {
    let mut by_case: BTreeMap<&Case, Vec<(String, Truth)>> = BTreeMap::new();
    for (reader, cases) in by_reader {
        for (case, verdict) in cases {
            by_case
                .entry(case)
                .or_default()
                .push((reader.to_string(), verdict.truth));
        }
    }
    by_case
        .into_iter()
        .filter(|(_, verdicts)| {
            let calls: BTreeSet<bool> = verdicts.iter().filter_map(|(_, t)| t.call()).collect();
            calls.len() > 1
        })
        .map(|((split, exam), verdicts)| Disagreement {
            split: *split,
            exam: exam.clone(),
            verdicts,
        })
        .collect()
}

/// Cohen's κ over `pairs` (one reader's verdict, the other's, per case), the three
/// categories positive, negative and unsure as recorded: p_o is the fraction of cases with
/// the same verdict, p_e = Σ_k p₁(k)·p₂(k) over each reader's own frequencies, and
/// κ = (p_o − p_e) / (1 − p_e).
pub fn cohen_kappa(pairs: &[(Truth, Truth)]) -> Kappa {
    let n = pairs.len();
    if n == 0 {
        return Kappa {
            n,
            observed: None,
            kappa: None,
        };
    }
    let total = n as f64;
    let observed = pairs.iter().filter(|(a, b)| a == b).count() as f64 / total;
    let share = |pick: fn(&(Truth, Truth)) -> Truth, truth: Truth| {
        pairs.iter().filter(|p| pick(p) == truth).count() as f64 / total
    };
    let expected: f64 = Truth::ALL
        .into_iter()
        .map(|t| share(|p| p.0, t) * share(|p| p.1, t))
        .sum();
    let kappa = (1.0 - expected > 1e-12).then(|| (observed - expected) / (1.0 - expected));
    Kappa {
        n,
        observed: Some(observed),
        kappa,
    }
}

/// The median of `values` (the mean of the middle two for an even count); None when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::review::DatasetRef;

    /// A verdict of `reader` on exam `exam` (train split) for `task`.
    pub(crate) fn verdict(reader: &str, exam: u32, task: Task, truth: Truth) -> Verdict {
        Verdict {
            uid: format!("{reader}-{exam}-{task}-{}", truth.name()),
            dataset: DatasetRef {
                fingerprint: "sha256:test".into(),
                path: "/data/test".into(),
            },
            split: Split::Train,
            exam: format!("{exam:04}"),
            task,
            reader: reader.into(),
            truth,
            note: None,
            probability: Some(0.7),
            model_call: Some(true),
            threshold: 0.5,
            label: None,
            models_fingerprint: "sha256:models".into(),
            method: "gradcam".into(),
            seconds: 10.0,
            recorded_at: 1_000 + i64::from(exam),
        }
    }

    /// Two readers over 50 exams: yes/yes 20, yes/no 5, no/yes 10, no/no 15.
    fn textbook() -> Vec<Verdict> {
        let (p, n) = (Truth::Positive, Truth::Negative);
        let table = [(p, p, 20), (p, n, 5), (n, p, 10), (n, n, 15)];
        let mut verdicts = Vec::new();
        let mut exam = 0;
        for (a, b, count) in table {
            for _ in 0..count {
                verdicts.push(verdict("ann", exam, Task::Acl, a));
                verdicts.push(verdict("bob", exam, Task::Acl, b));
                exam += 1;
            }
        }
        verdicts
    }

    #[test]
    fn the_textbook_table_gives_kappa_0_4() {
        let verdicts = textbook();
        let refs: Vec<&Verdict> = verdicts.iter().collect();
        let tasks = summarize(&refs, |v| v.label);
        assert_eq!(tasks.len(), 1);
        let pair = &tasks[0].pairs[0];
        assert_eq!((pair.first.as_str(), pair.second.as_str()), ("ann", "bob"));
        assert_eq!(pair.kappa.n, 50);
        assert!((pair.kappa.observed.expect("p_o") - 0.7).abs() < 1e-12);
        assert!((pair.kappa.kappa.expect("κ") - 0.4).abs() < 1e-12);
        assert_eq!(tasks[0].disagreements.len(), 15);
        let ann = &tasks[0].readers[0];
        assert_eq!((ann.reviewed, ann.positive, ann.negative), (50, 25, 25));
        // The model said positive throughout.
        assert_eq!(ann.model, Agreement { agree: 25, n: 50 });
        assert_eq!(ann.label, Agreement::default());
        assert_eq!(ann.median_seconds, Some(10.0));
    }

    #[test]
    fn kappa_is_undefined_when_both_readers_give_one_category() {
        let pairs = vec![(Truth::Positive, Truth::Positive); 7];
        let kappa = cohen_kappa(&pairs);
        assert_eq!(kappa.n, 7);
        assert_eq!(kappa.observed, Some(1.0));
        assert_eq!(kappa.kappa, None);
        assert_eq!(cohen_kappa(&[]).kappa, None);
    }

    #[test]
    fn kappa_counts_unsure_as_a_category_of_its_own() {
        let (p, n, u) = (Truth::Positive, Truth::Negative, Truth::Unsure);
        // Perfect agreement over three categories: κ 1.
        assert_eq!(cohen_kappa(&[(p, p), (n, n), (u, u)]).kappa, Some(1.0));
        // p_o = 1/3; p_e = (1/3·1/3)·3 = 1/3: κ 0.
        let kappa = cohen_kappa(&[(p, n), (n, u), (u, u)]);
        assert!((kappa.observed.expect("p_o") - 1.0 / 3.0).abs() < 1e-12);
        // ann: p 1/3, n 1/3, u 1/3; bob: n 1/3, u 2/3 → p_e = 1/9 + 2/9 = 1/3.
        assert!(kappa.kappa.expect("κ").abs() < 1e-12);
    }

    #[test]
    fn kappa_uses_only_cases_both_readers_reviewed() {
        let mut verdicts = textbook();
        verdicts.push(verdict("ann", 900, Task::Acl, Truth::Positive));
        verdicts.push(verdict("bob", 901, Task::Acl, Truth::Negative));
        let refs: Vec<&Verdict> = verdicts.iter().collect();
        let tasks = summarize(&refs, |v| v.label);
        assert_eq!(tasks[0].pairs[0].kappa.n, 50);
        assert_eq!(tasks[0].readers[0].reviewed, 51);
    }

    #[test]
    fn agreement_leaves_out_unsure_verdicts_and_missing_calls() {
        let mut a = verdict("ann", 1, Task::Meniscus, Truth::Positive);
        a.label = Some(true);
        let mut b = verdict("ann", 2, Task::Meniscus, Truth::Negative);
        b.label = Some(true);
        b.model_call = None;
        let c = verdict("ann", 3, Task::Meniscus, Truth::Unsure);
        let verdicts = [a, b, c];
        let refs: Vec<&Verdict> = verdicts.iter().collect();
        let tasks = summarize(&refs, |v| v.label);
        let ann = &tasks[0].readers[0];
        assert_eq!(ann.model, Agreement { agree: 1, n: 1 });
        assert_eq!(ann.label, Agreement { agree: 1, n: 2 });
        assert_eq!(ann.label.fraction(), Some(0.5));
        assert_eq!(ann.unsure, 1);
        // The label given by the caller (the dataset's) is preferred.
        let tasks = summarize(&refs, |_| Some(false));
        assert_eq!(tasks[0].readers[0].label, Agreement { agree: 1, n: 2 });
    }

    #[test]
    fn a_case_with_unsure_and_one_call_is_no_disagreement() {
        let verdicts = [
            verdict("ann", 1, Task::Acl, Truth::Positive),
            verdict("bob", 1, Task::Acl, Truth::Unsure),
            verdict("cat", 2, Task::Acl, Truth::Positive),
            verdict("bob", 2, Task::Acl, Truth::Negative),
            verdict("ann", 2, Task::Acl, Truth::Unsure),
        ];
        let refs: Vec<&Verdict> = verdicts.iter().collect();
        let tasks = summarize(&refs, |v| v.label);
        assert_eq!(tasks[0].pairs.len(), 3);
        let listed = &tasks[0].disagreements;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].exam, "0002");
        assert_eq!(
            listed[0].verdicts,
            vec![
                ("ann".to_string(), Truth::Unsure),
                ("bob".to_string(), Truth::Negative),
                ("cat".to_string(), Truth::Positive),
            ]
        );
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
