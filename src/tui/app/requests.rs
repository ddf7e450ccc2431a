//! What the engine is asked for: the CAMs on screen (interactive), the neighbours' CAMs
//! (prefetch) and the list's scores (background); one request in flight per lane, and a
//! request nobody wants any more is cancelled, so the newest wish always wins.
use std::collections::HashSet;
use std::sync::Arc;

use crate::cam::{Explanation, Method, Normalization};
use crate::data::{Plane, Task};
use crate::engine::{EngineError, EngineResult, Priority, RequestId, ScoreResult, Stopped};

use super::{App, Effect};

/// One CAM the explorer wants: a series of an exam's plane under one task's model and one
/// method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CamKey {
    pub case: usize,
    /// Which of the plane's series (see [`super::SeriesRef`]): a CAM is never shown for
    /// another series than its own.
    pub series: usize,
    pub task: Task,
    pub plane: Plane,
    pub method: Method,
    pub normalization: Normalization,
}

impl CamKey {
    /// The series this CAM is of.
    pub fn series_ref(&self) -> super::SeriesRef {
        super::SeriesRef {
            case: self.case,
            plane: self.plane,
            series: self.series,
        }
    }
}

/// A CAM asked of the engine; its id once the engine took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    pub key: CamKey,
    pub id: Option<RequestId>,
}

impl App {
    /// The CAM requests in flight: interactive, then prefetch.
    pub fn in_flight(&self) -> [Option<InFlight>; 2] {
        [self.interactive, self.prefetch]
    }

    /// The exam being scored for the list, if any.
    pub fn scoring(&self) -> Option<usize> {
        self.scoring.map(|(case, _)| case)
    }

    /// CAMs wanted now, most urgent first: the shown plane (its method, then `contrib` for
    /// the strip), then the exam's other planes.
    pub fn interactive_wants(&self) -> Vec<CamKey> {
        let Some(case) = self.current() else {
            return Vec::new();
        };
        let mut wants = Vec::new();
        for plane in self.planes_by_urgency() {
            wants.push(self.cam_key(case, plane, self.display.method));
            wants.push(self.cam_key(case, plane, Method::Contrib));
        }
        self.only_computable(wants)
    }

    /// CAMs to prefetch: the neighbours' planes (see `neighbourhood`), shown plane first,
    /// each with `contrib` too, so that the exam opens at its top-contributing slice; as many
    /// as the CAM cache holds beside what is on screen, so that a prefetch never drops a CAM
    /// that is wanted (which would be computed again, and drop another: forever).
    pub fn prefetch_wants(&self) -> Vec<CamKey> {
        let mut wants = Vec::new();
        for case in self.neighbourhood().into_iter().skip(1) {
            for plane in self.planes_by_urgency() {
                wants.push(self.cam_key(case, plane, self.display.method));
                wants.push(self.cam_key(case, plane, Method::Contrib));
            }
        }
        let wants = self.only_computable(wants);
        // A CAM not computed yet is taken to cost as much as the largest held.
        let typical = self.cams.max_cost();
        let cost = |key: &CamKey| self.cams.cost(key).unwrap_or(typical);
        let mut total: usize = self.interactive_wants().iter().map(cost).sum();
        wants
            .into_iter()
            .take_while(|key| {
                total += cost(key);
                total <= self.cams.budget()
            })
            .collect()
    }

    fn only_computable(&self, wants: Vec<CamKey>) -> Vec<CamKey> {
        let mut seen = HashSet::new();
        wants
            .into_iter()
            .filter(|k| seen.insert(*k))
            .filter(|k| self.has_model(k.task, k.plane))
            // An exam whose scoring failed may still have planes that work: each CAM says
            // for itself.
            .filter(|k| !matches!(self.series_at(k.series_ref()), Some(Err(_))))
            .collect()
    }

    /// What the workers should do for the state as it is now.
    pub(super) fn plan(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        effects.extend(self.plan_series());
        effects.extend(self.plan_cams());
        effects.extend(self.plan_scoring());
        effects
    }

    /// At most one CAM in flight per lane; one nobody wants any more is cancelled, and so is
    /// an interactive one for a plane off screen when a plane on screen waits.
    fn plan_cams(&mut self) -> Vec<Effect> {
        let interactive = self.interactive_wants();
        let prefetch = self.prefetch_wants();
        let visible = self.visible_planes();
        let mut effects = Vec::new();
        for priority in [Priority::Interactive, Priority::Prefetch] {
            let wants = match priority {
                Priority::Interactive => &interactive,
                _ => &prefetch,
            };
            let next = self.next_wanted(wants);
            if let Some(flight) = self.lane(priority) {
                // An interactive request must still be for what is on screen; a prefetch may
                // have become what is on screen.
                let wanted = interactive.contains(&flight.key)
                    || (priority == Priority::Prefetch && prefetch.contains(&flight.key));
                let overtaken = priority == Priority::Interactive
                    && !visible.contains(&flight.key.plane)
                    && next.is_some_and(|key| visible.contains(&key.plane));
                if wanted && !overtaken {
                    continue;
                }
                effects.extend(flight.id.map(Effect::Cancel));
                *self.lane_mut(priority) = None;
            }
            if let Some(key) = self.next_wanted(wants) {
                *self.lane_mut(priority) = Some(InFlight { key, id: None });
                effects.push(Effect::Submit(key, priority));
            }
        }
        effects
    }

    /// The first of `wants` that can be asked for now: not cached, not failed, not in
    /// flight, its series read.
    pub(super) fn next_wanted(&self, wants: &[CamKey]) -> Option<CamKey> {
        let in_flight: Vec<CamKey> = self.in_flight().iter().flatten().map(|f| f.key).collect();
        wants.iter().copied().find(|key| {
            self.cams.peek(key).is_none()
                && !self.cam_errors.contains_key(key)
                && !in_flight.contains(key)
                && self.volume_at(key.series_ref()).is_some()
        })
    }

    /// One exam scored at a time, in list order first.
    fn plan_scoring(&mut self) -> Option<Effect> {
        if self.scoring.is_some() {
            return None;
        }
        let any_model = self
            .models
            .positive_class
            .iter()
            .any(|(_, _, c)| c.is_some());
        if !any_model {
            self.scored.iter_mut().for_each(|done| *done = true);
            return None;
        }
        let next = self
            .view
            .iter()
            .copied()
            .chain(0..self.cases.len())
            .find(|&case| !self.scored[case])?;
        self.scoring = Some((next, None));
        Some(Effect::Score(next))
    }

    fn lane(&self, priority: Priority) -> Option<InFlight> {
        match priority {
            Priority::Interactive => self.interactive,
            _ => self.prefetch,
        }
    }

    fn lane_mut(&mut self, priority: Priority) -> &mut Option<InFlight> {
        match priority {
            Priority::Interactive => &mut self.interactive,
            _ => &mut self.prefetch,
        }
    }

    /// The engine took (or could not take) a request of [`App::plan_cams`].
    pub(super) fn submitted(
        &mut self,
        key: CamKey,
        priority: Priority,
        outcome: Result<RequestId, Stopped>,
    ) {
        let slot = self.lane_mut(priority);
        if slot.is_none_or(|flight| flight.key != key) {
            return;
        }
        match outcome {
            Ok(id) => *slot = Some(InFlight { key, id: Some(id) }),
            Err(stopped) => {
                *slot = None;
                self.worker_error = Some(stopped.to_string());
                self.cam_errors.insert(key, stopped.to_string());
            }
        }
    }

    pub(super) fn score_submitted(&mut self, case: usize, outcome: Result<RequestId, Stopped>) {
        if self.scoring.is_none_or(|(scoring, _)| scoring != case) {
            return;
        }
        match outcome {
            Ok(id) => self.scoring = Some((case, Some(id))),
            Err(stopped) => {
                // Nothing more will be scored: every exam counts as done.
                self.scoring = None;
                self.worker_error = Some(stopped.to_string());
                self.scored.iter_mut().for_each(|done| *done = true);
            }
        }
    }

    /// A CAM from the engine. Results of requests no longer in flight (cancelled,
    /// superseded) are dropped: only the newest request's answer is shown.
    pub(super) fn engine_result(&mut self, result: EngineResult) {
        let Some(key) = self.take_in_flight(result.id) else {
            return;
        };
        match result.outcome {
            Ok(explanation) => {
                self.worker_error = None;
                if result.timings.cpu_fallback {
                    self.message = Some(format!(
                        "{} {}: the {} ran out of memory; computed on the CPU",
                        key.task, key.plane, self.info.device
                    ));
                }
                self.explained(key, explanation);
            }
            Err(err) if err.is_dropped() => {}
            Err(err) => self.cam_failed(key, &err),
        }
    }

    fn cam_failed(&mut self, key: CamKey, err: &EngineError) {
        let text = err.to_string();
        self.worker_error = Some(format!("{} {}: {text}", key.task, key.plane));
        self.cam_errors.insert(key, text);
    }

    fn take_in_flight(&mut self, id: RequestId) -> Option<CamKey> {
        [&mut self.interactive, &mut self.prefetch]
            .into_iter()
            .find(|slot| slot.is_some_and(|flight| flight.id == Some(id)))
            .and_then(|slot| slot.take())
            .map(|flight| flight.key)
    }

    fn explained(&mut self, key: CamKey, explanation: Explanation) {
        let before = self.combined(key.case, key.task);
        // The list, the header and the verdicts speak of the dataset's choice of series; the
        // probability of another series is its CAM's, shown with it.
        if let Some(case) = self.cases.get_mut(key.case).filter(|_| key.series == 0) {
            case.planes
                .set(key.task, key.plane, Some(explanation.probability));
        }
        let bytes = explanation.raw.len() * 4 + explanation.maps.len() + explanation.scores.len();
        // The shown exam's CAMs were maybe inserted long ago (lookups do not count as uses):
        // mark them used, so that a prefetched result drops others, never what is on screen.
        if let Some(case) = self.current() {
            for plane in Plane::ALL {
                for method in [self.display.method, Method::Contrib] {
                    let shown = self.cam_key(case, plane, method);
                    self.cams.touch(&shown);
                }
            }
        }
        self.cams.insert(key, Arc::new(explanation), bytes);
        if before != self.combined(key.case, key.task) {
            self.refresh_view();
        }
    }

    /// One exam's scores for the list.
    pub(super) fn scores_came(&mut self, result: ScoreResult) {
        let Some((case, Some(id))) = self.scoring else {
            return;
        };
        if id != result.id {
            return;
        }
        self.scoring = None;
        match result.outcome {
            Err(err) if err.is_dropped() => return,
            Err(err) => {
                self.scored[case] = true;
                if let Some(entry) = self.cases.get_mut(case) {
                    self.worker_error = Some(format!("scoring {}: {err}", entry.name));
                    entry.failed = Some(err.to_string());
                }
            }
            Ok(scores) => {
                self.scored[case] = true;
                for unreadable in &scores.unreadable {
                    tracing::warn!("{unreadable}");
                }
                if let Some(entry) = self.cases.get_mut(case) {
                    entry.planes.fill_from(&scores.probabilities);
                }
            }
        }
        self.refresh_view();
    }
}
