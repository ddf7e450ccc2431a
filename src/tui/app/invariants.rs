//! What the state promises between events, checked by the tests (the soak test checks it
//! after each of thousands of random events). Compiled for tests and with the `invariants`
//! feature, not into release builds.
use std::cmp::Ordering;

use crate::data::{Plane, Task};

use super::list::{Confusion, Filter, Sort};
use super::App;

mod reviews;

impl App {
    /// Returns the first broken promise, named, with its values:
    ///
    /// - the list: `view` holds case indices in range, each once, exactly the exams the
    ///   filter and the search admit, in the sort's order; `selected` is a row of `view`, or
    ///   0 with nothing selected when the view is empty;
    /// - the counts: TP + FN + FP + TN is the number of exams with both a label and a combined
    ///   probability for the task; without a search, a confusion-cell or label filter lists
    ///   exactly its count, and `all` lists every exam;
    /// - every probability known so far lies in 0–1;
    /// - per plane, the slice shown is within the selected exam's series when it is loaded;
    /// - threshold and opacity are finite and in 0–1; plane and task are tabs that exist;
    /// - in flight: at most one interactive and one prefetch request, with different ids and
    ///   keys, each for an exam of the list with a model for its task and plane, and neither
    ///   already cached nor already failed; the exam being scored is one not scored yet;
    /// - the kept series within their slots, the series being read not already kept;
    /// - the series shown per plane is one the exam lists (the first for an exam listing none);
    /// - the linked cursor is on the selected exam, a finite point; every plane it lies on
    ///   shows the slice through it, and each geometry kept describes its volume's shape.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_reviews()?;
        let cases = self.cases.len();
        let task = self.task.index();

        // The list: in range, no duplicates, exactly what filter and search admit (worked
        // out again here, not read from `view`).
        let query = self.search.query.trim().to_ascii_lowercase();
        let admits = |case: usize| -> bool {
            let by_filter = match self.filter {
                Filter::All => true,
                Filter::Call(call) => self
                    .combined(case, self.task)
                    .is_some_and(|p| (p >= self.threshold) == call),
                Filter::Cell(cell) => self.confusion(case) == Some(cell),
                Filter::Label(label) => self.cases[case].labels[task] == Some(label),
                review => self.review_admits(review, case),
            };
            by_filter && (query.is_empty() || self.cases[case].name.contains(query.as_str()))
        };
        let mut listed = vec![false; cases];
        for (row, &case) in self.view.iter().enumerate() {
            if case >= cases {
                return Err(format!(
                    "view row {row} is case {case}, but there are {cases} cases"
                ));
            }
            if std::mem::replace(&mut listed[case], true) {
                return Err(format!("case {case} is listed twice (row {row})"));
            }
            if !admits(case) {
                return Err(format!(
                    "case {case} ({}) is listed, but filter {} with search {:?} (task {}, \
                     threshold {}) does not admit it",
                    self.cases[case].name,
                    self.filter.name(),
                    self.search.query,
                    self.task,
                    self.threshold
                ));
            }
        }
        if let Some(missing) = (0..cases).find(|&case| !listed[case] && admits(case)) {
            return Err(format!(
                "case {missing} ({}) passes filter {} with search {:?} but is not listed \
                 ({} of {cases} listed)",
                self.cases[missing].name,
                self.filter.name(),
                self.search.query,
                self.view.len()
            ));
        }

        // The list's order.
        let rank = |case: usize| -> f32 {
            match (self.sort, self.combined(case, self.task)) {
                (Sort::Id, _) => 0.0,
                (_, None) => f32::INFINITY,
                (Sort::Probability, Some(p)) => -p,
                (Sort::Closeness, Some(p)) => (p - self.threshold).abs(),
            }
        };
        for (row, pair) in self.view.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            let order = rank(a)
                .total_cmp(&rank(b))
                .then_with(|| self.cases[a].name.cmp(&self.cases[b].name));
            if order == Ordering::Greater {
                return Err(format!(
                    "rows {row} and {} (cases {a} {} and {b} {}) are out of {} order",
                    row + 1,
                    self.cases[a].name,
                    self.cases[b].name,
                    self.sort.name()
                ));
            }
        }

        // The selection.
        if self.view.is_empty() {
            if self.selected != 0 || self.current().is_some() {
                return Err(format!(
                    "the view is empty but row {} is selected",
                    self.selected
                ));
            }
        } else if self.selected >= self.view.len() {
            return Err(format!(
                "row {} is selected, but the view has {} rows",
                self.selected,
                self.view.len()
            ));
        }

        // The counts.
        let counts = self.confusion_counts();
        let known = (0..cases)
            .filter(|&case| {
                self.cases[case].labels[task].is_some() && self.combined(case, self.task).is_some()
            })
            .count();
        if counts.iter().sum::<usize>() != known {
            return Err(format!(
                "confusion counts {counts:?} (TP FN FP TN) add up to {}, but {known} exams have \
                 a label and a probability for {}",
                counts.iter().sum::<usize>(),
                self.task
            ));
        }
        if query.is_empty() {
            let expected = match self.filter {
                Filter::All => cases,
                Filter::Call(true) => counts[0] + counts[2] + self.unlabelled_calls(true),
                Filter::Call(false) => counts[1] + counts[3] + self.unlabelled_calls(false),
                Filter::Cell(cell) => {
                    counts[Confusion::ALL.iter().position(|c| *c == cell).unwrap_or(0)]
                }
                Filter::Label(label) => self
                    .cases
                    .iter()
                    .filter(|c| c.labels[task] == Some(label))
                    .count(),
                review => (0..cases)
                    .filter(|&c| self.review_admits(review, c))
                    .count(),
            };
            if self.view.len() != expected {
                return Err(format!(
                    "filter {} lists {} exams, but its count is {expected}",
                    self.filter.name(),
                    self.view.len()
                ));
            }
        }
        for (case, entry) in self.cases.iter().enumerate() {
            for (t, p, probability) in entry.planes.iter() {
                if let Some(value) = probability.filter(|v| !(0.0..=1.0).contains(v)) {
                    return Err(format!(
                        "case {case} task {t} plane {p}: probability {value} is not in 0–1"
                    ));
                }
            }
        }

        // Slices, settings, tabs.
        for plane in Plane::ALL {
            let count = self.slice_count(plane);
            let slice = self.slice(plane);
            if count > 0 && slice >= count {
                return Err(format!(
                    "{plane} slice {slice} is past the selected exam's {count} slices"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is not in 0–1", self.threshold));
        }
        if !(0.0..=1.0).contains(&self.display.opacity) {
            return Err(format!("opacity {} is not in 0–1", self.display.opacity));
        }
        if Plane::ALL.get(self.plane.index()) != Some(&self.plane)
            || Task::ALL.get(task) != Some(&self.task)
        {
            return Err(format!(
                "plane {} or task {} is not a tab",
                self.plane, self.task
            ));
        }

        self.check_series_and_cursor()?;
        self.check_in_flight()?;
        self.check_kept()?;
        self.check_plan_done()?;
        Ok(())
    }

    fn check_series_and_cursor(&self) -> Result<(), String> {
        for (&(case, plane), &index) in &self.series_shown {
            let count = self.series_count(case, plane);
            if case >= self.cases.len() || index == 0 || index >= count {
                return Err(format!(
                    "case {case} {plane} shows series index {index}, of {count} it has (0 is \
                     the default and is not stored)"
                ));
            }
        }
        for (key, series) in self.volumes.iter() {
            let Ok(series) = series else { continue };
            if let Some(geometry) = &series.geometry {
                let shape = (geometry.slices(), geometry.rows, geometry.columns);
                if shape != series.volume.dim() || geometry.check().is_err() {
                    return Err(format!(
                        "series {key:?}: its geometry ({shape:?}) does not describe its volume \
                         ({:?}), or cannot locate",
                        series.volume.dim()
                    ));
                }
            }
        }
        let Some(cursor) = self.cursor else {
            return Ok(());
        };
        if Some(cursor.case) != self.current() {
            return Err(format!(
                "the cursor is on case {}, but case {:?} is selected",
                cursor.case,
                self.current()
            ));
        }
        if !cursor.point.iter().all(|v| v.is_finite()) {
            return Err(format!(
                "the cursor {:?} is not a finite point",
                cursor.point
            ));
        }
        for plane in Plane::ALL {
            let Some(geometry) = self.geometry(plane) else {
                continue;
            };
            if let Some(voxel) = geometry.locate(cursor.point) {
                if self.slice(plane) != voxel.slice {
                    return Err(format!(
                        "the cursor lies on {plane} slice {}, but slice {} is shown",
                        voxel.slice,
                        self.slice(plane)
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_in_flight(&self) -> Result<(), String> {
        let cases = self.cases.len();
        if let (Some(a), Some(b)) = (self.interactive, self.prefetch) {
            if (a.id.is_some() && a.id == b.id) || a.key == b.key {
                return Err(format!(
                    "interactive {a:?} and prefetch {b:?} are the same request"
                ));
            }
        }
        for (slot, in_flight) in [
            ("interactive", self.interactive),
            ("prefetch", self.prefetch),
        ] {
            let Some(flight) = in_flight else {
                continue;
            };
            let key = flight.key;
            let problem = if key.case >= cases {
                Some("its case is out of range")
            } else if !self.has_model(key.task, key.plane) {
                Some("there is no model for it")
            } else if self.cams.contains(&key) {
                Some("its CAM is already cached")
            } else if self.cam_errors.contains_key(&key) {
                Some("it already failed")
            } else if flight.id.is_none() {
                Some("the engine never said its id")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(format!(
                    "{slot} request {flight:?} in flight, but {problem}"
                ));
            }
        }
        if let Some((case, id)) = self.scoring {
            if case >= cases || self.scored[case] || id.is_none() {
                return Err(format!(
                    "scoring case {case} ({id:?}), of {cases}, already scored: {:?}",
                    self.scored.get(case)
                ));
            }
        }
        Ok(())
    }

    /// After every update the workers have been told everything: each series wanted is
    /// being read, each lane that could work is working, scoring goes on while exams wait.
    fn check_plan_done(&self) -> Result<(), String> {
        for key in self.series_around() {
            if self.volumes.peek(&key).is_none() && !self.loading.contains(&key) {
                return Err(format!("series {key:?} is wanted but nobody reads it"));
            }
        }
        let interactive = self.interactive_wants();
        let prefetch = self.prefetch_wants();
        for (lane, slot, wants) in [
            ("interactive", self.interactive, &interactive),
            ("prefetch", self.prefetch, &prefetch),
        ] {
            match slot {
                Some(flight)
                    if !interactive.contains(&flight.key) && !wants.contains(&flight.key) =>
                {
                    return Err(format!("the {lane} request {flight:?} is wanted no more"));
                }
                None => {
                    if let Some(key) = self.next_wanted(wants) {
                        return Err(format!("the {lane} lane is idle but {key:?} is wanted"));
                    }
                }
                Some(_) => {}
            }
        }
        if self.scoring.is_none() && self.unscored() > 0 {
            return Err(format!(
                "{} exams unscored and none being scored",
                self.unscored()
            ));
        }
        Ok(())
    }

    fn check_kept(&self) -> Result<(), String> {
        if self.volumes.len() > super::VOLUME_SLOTS {
            return Err(format!(
                "{} series kept, over the {} slots",
                self.volumes.len(),
                super::VOLUME_SLOTS
            ));
        }
        if let Some(key) = self.loading.iter().find(|key| self.volumes.contains(key)) {
            return Err(format!("series {key:?} is being read but already kept"));
        }
        if let Some(key) = self
            .loading
            .iter()
            .find(|key| self.series_index(key.case, key.plane) != key.series)
        {
            return Err(format!("series {key:?} is being read but is not shown"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::Array3;

    use super::super::{Case, InFlight, ModelFacts, Series};
    use super::*;
    use crate::cam::Method;
    use crate::config::Config;
    use crate::data::PerTaskPlane;
    use crate::engine::RequestId;
    use crate::model::manifest::Combiner;

    fn case(name: &str, acl: bool, p: f32) -> Case {
        Case {
            name: name.into(),
            labels: [Some(true), Some(acl), Some(false)],
            planes: PerTaskPlane::from_fn(|_, _| Some(p)),
            failed: None,
            split: crate::data::Split::Valid,
            series: Default::default(),
        }
    }

    fn series() -> Result<Series, crate::tui::app::SeriesError> {
        Ok(Series::plain(Arc::new(Array3::zeros((7, 4, 4))), None))
    }

    /// Three listed exams, the selected one's series loaded (7 slices each).
    fn loaded_app() -> App {
        let cases = vec![
            case("0000", true, 0.9),
            case("0001", true, 0.2),
            case("0002", false, 0.7),
        ];
        let models = ModelFacts {
            combiners: [Some(Combiner::REFERENCE_ACL); 3],
            ..ModelFacts::every_model()
        };
        let mut app = App::new(
            cases,
            models,
            &Config::defaults(),
            super::super::Info::default(),
        );
        follow(&mut app, crate::tui::app::Msg::Resize(120, 40));
        app
    }

    /// Carries out `msg`'s effects as the driver would: every series read at once, every
    /// request taken by the engine (and never answered).
    fn follow(app: &mut App, msg: crate::tui::app::Msg) {
        use crate::tui::app::{Effect, Msg};
        let mut queue = std::collections::VecDeque::from([msg]);
        let mut next_id = 0;
        let mut id = || {
            next_id += 1;
            RequestId(next_id)
        };
        while let Some(msg) = queue.pop_front() {
            for effect in app.update(msg) {
                match effect {
                    Effect::LoadSeries(wanted) => {
                        for which in wanted {
                            let outcome = series();
                            queue.push_back(Msg::SeriesLoaded { which, outcome });
                        }
                    }
                    Effect::Submit(key, priority) => queue.push_back(Msg::Submitted {
                        key,
                        priority,
                        outcome: Ok(id()),
                    }),
                    Effect::Score(case) => queue.push_back(Msg::ScoreSubmitted {
                        case,
                        outcome: Ok(id()),
                    }),
                    Effect::Cancel(_) | Effect::Export(_) | Effect::Review(_) => {}
                }
            }
        }
    }

    /// Breaks one promise of the state.
    type Breaking = fn(&mut App);

    #[test]
    fn check_invariants_catches_broken_states() {
        assert_eq!(loaded_app().check_invariants(), Ok(()));
        let broken: [(&str, Breaking); 15] = [
            ("selected", |app| app.selected = app.view.len()),
            ("twice", |app| app.view.push(app.view[0])),
            ("not listed", |app| {
                app.view.pop();
            }),
            ("order", |app| app.view.swap(0, 1)),
            ("threshold", |app| app.threshold = 1.5),
            ("probability", |app| {
                app.cases[0]
                    .planes
                    .set(Task::Abnormal, Plane::Axial, Some(-0.1))
            }),
            ("same request", |app| {
                let key = app.cam_key(0, app.plane, app.display.method);
                app.interactive = Some(InFlight {
                    key,
                    id: Some(RequestId(1)),
                });
                app.prefetch = Some(InFlight {
                    key,
                    id: Some(RequestId(2)),
                });
            }),
            ("already scored", |app| {
                app.scored[1] = true;
                app.scoring = Some((1, Some(RequestId(3))));
            }),
            ("being read", |app| {
                app.loading.push(app.series_ref(0, Plane::Axial));
            }),
            ("wanted no more", |app| {
                let gone = app.cam_key(2, Plane::Axial, Method::Cam);
                app.prefetch = Some(InFlight {
                    key: gone,
                    id: Some(RequestId(99)),
                });
            }),
            ("idle", |app| app.interactive = None),
            ("unstored", |app| {
                app.reviews.marks[0][1].push(crate::tui::app::Mark {
                    uid: "u1".into(),
                    truth: crate::review::Truth::Positive,
                    model_call: Some(true),
                    note: None,
                    stored: false,
                });
                app.reviews.history.push((0, Task::Acl, "u1".into()));
            }),
            ("undo history", |app| {
                app.reviews.history.push((1, Task::Acl, "gone".into()))
            }),
            ("series index", |app| {
                app.series_shown.insert((0, Plane::Axial), 1);
            }),
            ("the cursor is on case", |app| {
                app.cursor = Some(crate::tui::app::Cursor {
                    case: 2,
                    point: [0.0; 3],
                });
            }),
        ];
        for (word, breaking) in broken {
            let mut app = loaded_app();
            breaking(&mut app);
            let err = app.check_invariants().expect_err(word);
            assert!(err.contains(word), "{word}: {err}");
        }
    }

    /// Found by the soak (its tenth event): the series cache dropped the least recently
    /// *inserted* series, so loading a neighbour could drop the selected exam's own, loaded
    /// earlier (lookups do not refresh them), leaving its pane blank until the next event.
    #[test]
    fn loading_a_neighbour_keeps_the_selected_exams_series() {
        let cases = (0..5)
            .map(|i| Case {
                name: format!("{i:04}"),
                labels: [None; 3],
                planes: PerTaskPlane::default(),
                failed: None,
                split: crate::data::Split::Valid,
                series: Default::default(),
            })
            .collect();
        let mut app = App::new(
            cases,
            ModelFacts::every_model(),
            &Config::defaults(),
            super::super::Info::default(),
        );
        // The selection's series first, then three other exams': the 12 slots full, the
        // selection's the oldest.
        for case in [0, 2, 3, 4] {
            for plane in Plane::ALL {
                app.series_loaded(app.series_ref(case, plane), series());
            }
        }
        let wanted = |app: &mut App| match app.plan_series() {
            Some(crate::tui::app::Effect::LoadSeries(wanted)) => wanted,
            _ => app.loading.clone(),
        };
        // The shown plane (sagittal) first.
        let planes = [Plane::Sagittal, Plane::Axial, Plane::Coronal];
        let refs = planes.map(|p| app.series_ref(1, p)).to_vec();
        assert_eq!(wanted(&mut app), refs);
        for plane in Plane::ALL {
            app.series_loaded(app.series_ref(1, plane), series());
        }
        assert_eq!(wanted(&mut app), Vec::new(), "a wanted series was dropped");
        assert_eq!(app.volumes.len(), 12);
    }
}
