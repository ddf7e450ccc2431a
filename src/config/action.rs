//! What the user can ask for in the explorer. Keys and mouse events become actions; actions
//! change the state. Config owns the vocabulary because its `[keys]` table binds actions by name.

/// One thing the explorer can do; the keymap binds keys to these by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    NextPatient,
    PrevPatient,
    NextSlice,
    PrevSlice,
    Forward5,
    Back5,
    FirstSlice,
    LastSlice,
    NextPlane,
    Axial,
    Coronal,
    Sagittal,
    NextTask,
    NextMethod,
    NextNormalization,
    ToggleOverlay,
    OpacityUp,
    OpacityDown,
    NextColormap,
    NextHeatFloor,
    GroundTruth,
    ThresholdDown,
    ThresholdUp,
    NextFilter,
    NextSort,
    Search,
    TopSlice,
    NextPositiveSlice,
    PrevPositiveSlice,
    ThreePlane,
    RawBeside,
    SetCursor,
    ClearCursor,
    CursorLeft,
    CursorRight,
    CursorUp,
    CursorDown,
    NextSeries,
    Export,
    Agree,
    Disagree,
    Unsure,
    Note,
    UndoVerdict,
    Help,
    Quit,
}

impl Action {
    /// Every action with its config name and its line in the help overlay, in help order.
    pub const ALL: [(Action, &'static str, &'static str); 46] = [
        (Action::NextPatient, "next_patient", "next patient"),
        (Action::PrevPatient, "prev_patient", "previous patient"),
        (Action::NextSlice, "next_slice", "next slice"),
        (Action::PrevSlice, "prev_slice", "previous slice"),
        (Action::Forward5, "forward_5", "5 slices on"),
        (Action::Back5, "back_5", "5 slices back"),
        (Action::FirstSlice, "first_slice", "first slice"),
        (Action::LastSlice, "last_slice", "last slice"),
        (
            Action::TopSlice,
            "top_slice",
            "slice with the top contribution",
        ),
        (
            Action::NextPositiveSlice,
            "next_positive_slice",
            "next slice with a positive contribution",
        ),
        (
            Action::PrevPositiveSlice,
            "prev_positive_slice",
            "previous slice with a positive contribution",
        ),
        (Action::NextPlane, "next_plane", "next plane"),
        (Action::Axial, "axial", "axial plane"),
        (Action::Coronal, "coronal", "coronal plane"),
        (Action::Sagittal, "sagittal", "sagittal plane"),
        (
            Action::NextTask,
            "next_task",
            "next task (abnormal, ACL, meniscus)",
        ),
        (
            Action::NextMethod,
            "next_method",
            "method: cam, contrib, gradcam, gradcam++",
        ),
        (
            Action::NextNormalization,
            "next_normalization",
            "normalisation (exam, slice, none)",
        ),
        (Action::ToggleOverlay, "toggle_overlay", "overlay on / off"),
        (Action::OpacityUp, "opacity_up", "more opaque overlay"),
        (Action::OpacityDown, "opacity_down", "less opaque overlay"),
        (
            Action::NextColormap,
            "next_colormap",
            "colormap (jet, turbo, inferno, gray)",
        ),
        (
            Action::NextHeatFloor,
            "next_heat_floor",
            "heat floor: 0, 0.2, 0.4 of the positive range",
        ),
        (
            Action::GroundTruth,
            "ground_truth",
            "outline the lesion (ground-truth masks)",
        ),
        (Action::ThresholdDown, "threshold_down", "threshold − 0.05"),
        (Action::ThresholdUp, "threshold_up", "threshold + 0.05"),
        (
            Action::NextFilter,
            "next_filter",
            "filter: calls, TP/FN/FP/TN, labels, reviews",
        ),
        (
            Action::NextSort,
            "next_sort",
            "sort: id, probability, closeness",
        ),
        (Action::Search, "search", "search by exam id"),
        (Action::ThreePlane, "three_plane", "three-plane view"),
        (
            Action::RawBeside,
            "raw_beside",
            "raw slice beside the overlay",
        ),
        (
            Action::SetCursor,
            "set_cursor",
            "linked cursor at the slice centre",
        ),
        (
            Action::ClearCursor,
            "clear_cursor",
            "clear the linked cursor",
        ),
        (Action::CursorLeft, "cursor_left", "cursor left (4 pixels)"),
        (
            Action::CursorRight,
            "cursor_right",
            "cursor right (4 pixels)",
        ),
        (Action::CursorUp, "cursor_up", "cursor up (4 pixels)"),
        (Action::CursorDown, "cursor_down", "cursor down (4 pixels)"),
        (
            Action::NextSeries,
            "next_series",
            "next series of this plane (fat sat…)",
        ),
        (Action::Export, "export", "export this case's PNGs"),
        (
            Action::Agree,
            "agree",
            "verdict: agree with the model's call",
        ),
        (
            Action::Disagree,
            "disagree",
            "verdict: disagree with the model's call",
        ),
        (Action::Unsure, "unsure", "verdict: unsure"),
        (
            Action::Note,
            "note",
            "note on this case (enter keeps, esc drops)",
        ),
        (
            Action::UndoVerdict,
            "undo_verdict",
            "undo your last verdict",
        ),
        (Action::Help, "help", "this help"),
        (Action::Quit, "quit", "quit"),
    ];

    pub fn name(self) -> &'static str {
        Self::entry(self).1
    }

    pub fn description(self) -> &'static str {
        Self::entry(self).2
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(a, _, _)| *a)
    }

    fn entry(self) -> &'static (Action, &'static str, &'static str) {
        Self::ALL
            .iter()
            .find(|(a, _, _)| *a == self)
            .expect("every action is listed in Action::ALL")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|(_, n, _)| *n).collect();
        for (action, name, _) in Action::ALL {
            assert_eq!(Action::from_name(name), Some(action));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
    }
}
