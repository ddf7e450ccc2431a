//! The exam list: what each row knows, which rows the filter and search admit, their order.
use crate::data::{PerTaskPlane, Split, Task};
use crate::review::Truth;

use super::App;

/// One exam in the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    pub name: String,
    pub split: Split,
    pub labels: [Option<bool>; 3],
    /// P(positive) per task and plane, as they become known.
    pub planes: PerTaskPlane<Option<f32>>,
    /// Why this exam could not be scored, if it could not.
    pub failed: Option<String>,
    /// Per plane, its series as the dataset lists them (the chosen one first); empty for an
    /// MRNet `.npy` exam, which has one series per plane.
    pub series: [Vec<super::SeriesInfo>; 3],
}

/// A cell of the confusion matrix at the current threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Confusion {
    TruePositive,
    FalseNegative,
    FalsePositive,
    TrueNegative,
}

impl Confusion {
    pub const ALL: [Confusion; 4] = [
        Confusion::TruePositive,
        Confusion::FalseNegative,
        Confusion::FalsePositive,
        Confusion::TrueNegative,
    ];

    pub fn of(label: bool, probability: f32, threshold: f32) -> Confusion {
        match (label, probability >= threshold) {
            (true, true) => Confusion::TruePositive,
            (true, false) => Confusion::FalseNegative,
            (false, true) => Confusion::FalsePositive,
            (false, false) => Confusion::TrueNegative,
        }
    }

    pub fn badge(self) -> &'static str {
        match self {
            Confusion::TruePositive => "TP",
            Confusion::FalseNegative => "FN",
            Confusion::FalsePositive => "FP",
            Confusion::TrueNegative => "TN",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

/// Which exams the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    /// The model's call at the threshold (the calls to triage).
    Call(bool),
    Cell(Confusion),
    Label(bool),
    /// Exams without this reader's verdict for the task.
    Unreviewed,
    /// This reader's verdict differs from the model's call it was given against.
    DisagreesWithModel,
    /// This reader's verdict differs from the dataset's label.
    DisagreesWithLabel,
}

impl Filter {
    pub(super) const CYCLE: [Filter; 12] = [
        Filter::All,
        Filter::Call(true),
        Filter::Call(false),
        Filter::Cell(Confusion::TruePositive),
        Filter::Cell(Confusion::FalseNegative),
        Filter::Cell(Confusion::FalsePositive),
        Filter::Cell(Confusion::TrueNegative),
        Filter::Label(true),
        Filter::Label(false),
        Filter::Unreviewed,
        Filter::DisagreesWithModel,
        Filter::DisagreesWithLabel,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Call(true) => "called +",
            Filter::Call(false) => "called −",
            Filter::Cell(cell) => cell.badge(),
            Filter::Label(true) => "positive",
            Filter::Label(false) => "negative",
            Filter::Unreviewed => "unreviewed",
            Filter::DisagreesWithModel => "you ≠ model",
            Filter::DisagreesWithLabel => "you ≠ label",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Id,
    /// Highest combined probability first.
    Probability,
    /// Closest to the threshold first: the hard calls.
    Closeness,
}

impl Sort {
    pub(super) const CYCLE: [Sort; 3] = [Sort::Id, Sort::Probability, Sort::Closeness];

    pub fn name(self) -> &'static str {
        match self {
            Sort::Id => "id",
            Sort::Probability => "probability",
            Sort::Closeness => "closeness",
        }
    }
}

/// The mark of a verdict in the list (distinct from the TP / FN / FP / TN badges).
pub fn verdict_mark(truth: Truth) -> &'static str {
    match truth {
        Truth::Positive => "P",
        Truth::Negative => "N",
        Truth::Unsure => "?",
    }
}

/// The search prompt: typing narrows the list by exam id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Search {
    pub editing: bool,
    pub query: String,
}

impl App {
    pub fn combined(&self, case: usize, task: Task) -> Option<f32> {
        let combiner = self.models.combiners[task.index()]?;
        combiner.combine(*self.cases.get(case)?.planes.row(task))
    }

    /// The model's call on `case` for the current task at the threshold, once scored.
    pub fn call(&self, case: usize) -> Option<bool> {
        self.combined(case, self.task).map(|p| p >= self.threshold)
    }

    /// The exam's confusion cell for the current task and threshold, when label and
    /// probability are both known.
    pub fn confusion(&self, case: usize) -> Option<Confusion> {
        let label = self.cases.get(case)?.labels[self.task.index()]?;
        let probability = self.combined(case, self.task)?;
        Some(Confusion::of(label, probability, self.threshold))
    }

    /// TP, FN, FP, TN over every exam (not just the filtered ones).
    pub fn confusion_counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for cell in (0..self.cases.len()).filter_map(|case| self.confusion(case)) {
            counts[cell.slot()] += 1;
        }
        counts
    }

    /// Rebuilds the list after the filter, search, sort, task, threshold or a probability
    /// changed, keeping the selected exam selected when it is still listed.
    pub(super) fn refresh_view(&mut self) {
        let keep = self.current();
        let mut view: Vec<usize> = (0..self.cases.len())
            .filter(|&case| self.admits(case))
            .collect();
        self.sort_view(&mut view);
        self.view = view;
        self.selected = keep
            .and_then(|case| self.view.iter().position(|&c| c == case))
            .unwrap_or(0);
        if self.current() != keep {
            self.new_visit();
        }
    }

    /// Whether the filter and the search let `case` into the list.
    pub(super) fn admits(&self, case: usize) -> bool {
        let by_filter = match self.filter {
            Filter::All => true,
            Filter::Call(call) => self.call(case) == Some(call),
            Filter::Cell(cell) => self.confusion(case) == Some(cell),
            Filter::Label(label) => self.cases[case].labels[self.task.index()] == Some(label),
            review => self.admits_by_review(review, case),
        };
        let query = self.search.query.trim().to_ascii_lowercase();
        let name = self.cases[case].name.to_ascii_lowercase();
        by_filter && (query.is_empty() || name.contains(query.as_str()))
    }

    /// The review filters: `case`'s verdict from this reader against the filter.
    pub(super) fn admits_by_review(&self, filter: Filter, case: usize) -> bool {
        let mark = self.mark(case, self.task);
        let said = mark.and_then(|m| m.truth.call());
        match filter {
            Filter::Unreviewed => mark.is_none(),
            Filter::DisagreesWithModel => {
                matches!((said, mark.and_then(|m| m.model_call)), (Some(s), Some(c)) if s != c)
            }
            Filter::DisagreesWithLabel => {
                let label = self.cases[case].labels[self.task.index()];
                matches!((said, label), (Some(s), Some(l)) if s != l)
            }
            _ => true,
        }
    }

    /// How `case` ranks under the sort (lower first); unknown probabilities last.
    pub(super) fn rank(&self, case: usize) -> f32 {
        match (self.sort, self.combined(case, self.task)) {
            (Sort::Id, _) => 0.0,
            (_, None) => f32::INFINITY,
            (Sort::Probability, Some(p)) => -p,
            (Sort::Closeness, Some(p)) => (p - self.threshold).abs(),
        }
    }

    fn sort_view(&self, view: &mut [usize]) {
        // Ties (and the id sort) by exam id.
        view.sort_by(|&a, &b| {
            self.rank(a)
                .total_cmp(&self.rank(b))
                .then_with(|| self.cases[a].name.cmp(&self.cases[b].name))
        });
    }

    /// Selects the list row at `position` (clamped), e.g. from a mouse click.
    pub(super) fn select(&mut self, position: usize) {
        if self.view.is_empty() {
            self.selected = 0;
            return;
        }
        let position = position.min(self.view.len() - 1);
        if position != self.selected {
            self.selected = position;
            self.new_visit();
        }
    }

    /// The selected exam, then (when triaging) the exam a verdict moves to, then the next and
    /// the previous in the list: three at most.
    pub(super) fn neighbourhood(&self) -> Vec<usize> {
        let mut around = Vec::new();
        let positions = [
            Some(self.selected),
            self.selected.checked_add(1),
            self.selected.checked_sub(1),
        ];
        let listed = positions
            .into_iter()
            .flatten()
            .filter_map(|position| self.view.get(position).copied());
        // Where a verdict takes the reader comes right after the selection; three exams at
        // most (the previous one gives way), so that what is wanted fits the caches.
        let first = listed.clone().take(1);
        for case in first.chain(self.advance_target()).chain(listed) {
            if !around.contains(&case) && around.len() < 3 {
                around.push(case);
            }
        }
        around
    }
}
