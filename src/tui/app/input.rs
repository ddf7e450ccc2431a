//! Keys, the mouse and actions: what the user asks of the state.
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use crate::cam::colormap::Colormap;
use crate::cam::floor;
use crate::cam::{Method, Normalization};
use crate::data::{Plane, Task};
use crate::tui::action::Action;
use crate::tui::ui;

use super::list::{Filter, Search, Sort};
use super::{App, Effect};

impl App {
    pub(super) fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers == KeyModifiers::CONTROL;
        if self.search.editing && !ctrl_c {
            self.search_input(key.code);
            return Vec::new();
        }
        if self.note_editor().is_some() && !ctrl_c {
            return self.note_input(key.code);
        }
        if self.help && key.code == KeyCode::Esc {
            self.help = false;
            return Vec::new();
        }
        match self.keymap.action(&key) {
            Some(action) => self.act(action),
            None if ctrl_c => {
                self.quit_asked();
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// A key typed into the search prompt (Enter keeps the query, Esc clears it).
    fn search_input(&mut self, key: KeyCode) {
        match key {
            KeyCode::Char(c) => self.search.query.push(c),
            KeyCode::Backspace => {
                self.search.query.pop();
            }
            KeyCode::Enter => self.search.editing = false,
            KeyCode::Esc => self.search = Search::default(),
            _ => return,
        }
        self.refresh_view();
    }

    pub(super) fn mouse(&mut self, mouse: MouseEvent) -> Vec<Effect> {
        match mouse.kind {
            MouseEventKind::ScrollDown => self.act(Action::NextSlice),
            MouseEventKind::ScrollUp => self.act(Action::PrevSlice),
            MouseEventKind::Down(MouseButton::Left) => {
                let area = Rect::new(0, 0, self.size.0, self.size.1);
                if let Some(row) = ui::list_row_at(self, area, mouse.column, mouse.row) {
                    self.message = None;
                    self.select(row);
                } else if let Some(at) = ui::slice_pixel_at(self, area, mouse.column, mouse.row) {
                    // A click on a slice: that plane is shown, the cursor at that pixel.
                    self.message = None;
                    self.plane = at.plane;
                    self.set_cursor_at(at.plane, at.row, at.column);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Applies one action; exporting needs the driver.
    pub(super) fn act(&mut self, action: Action) -> Vec<Effect> {
        self.message = None;
        match action {
            Action::NextPatient => self.select(self.selected.saturating_add(1)),
            Action::PrevPatient => self.select(self.selected.saturating_sub(1)),
            Action::NextSlice => self.move_slice(1),
            Action::PrevSlice => self.move_slice(-1),
            Action::Forward5 => self.move_slice(5),
            Action::Back5 => self.move_slice(-5),
            Action::FirstSlice => self.set_slice(0),
            Action::LastSlice => self.set_slice(usize::MAX),
            Action::TopSlice => self.jump_to_top(),
            Action::NextPositiveSlice => self.jump_positive(true),
            Action::PrevPositiveSlice => self.jump_positive(false),
            Action::NextPlane => self.plane = self.plane.next(),
            Action::Axial => self.plane = Plane::Axial,
            Action::Coronal => self.plane = Plane::Coronal,
            Action::Sagittal => self.plane = Plane::Sagittal,
            Action::NextTask => self.set_task(self.task.next()),
            Action::NextMethod => self.display.method = next_of(&Method::ALL, self.display.method),
            Action::NextNormalization => {
                self.display.normalization =
                    next_of(&Normalization::ALL, self.display.normalization)
            }
            Action::ToggleOverlay => self.display.overlay = !self.display.overlay,
            Action::OpacityUp => self.display.opacity = step(self.display.opacity, 0.1),
            Action::OpacityDown => self.display.opacity = step(self.display.opacity, -0.1),
            Action::NextColormap => {
                self.display.colormap = next_of(&Colormap::ALL, self.display.colormap)
            }
            Action::NextHeatFloor => {
                self.display.heat_floor = floor::next_preset(self.display.heat_floor);
                self.message = Some(format!("heat floor {:.1}", self.display.heat_floor));
            }
            Action::GroundTruth => self.toggle_truth(),
            Action::ThresholdDown => self.set_threshold(step(self.threshold, -0.05)),
            Action::ThresholdUp => self.set_threshold(step(self.threshold, 0.05)),
            Action::NextFilter => {
                self.filter = next_of(&Filter::CYCLE, self.filter);
                self.refresh_view();
            }
            Action::NextSort => {
                self.sort = next_of(&Sort::CYCLE, self.sort);
                self.refresh_view();
            }
            Action::Search => self.search.editing = true,
            Action::ThreePlane => self.toggle_three_plane(),
            Action::RawBeside => self.display.raw_beside = !self.display.raw_beside,
            Action::SetCursor => self.set_cursor_centre(),
            Action::ClearCursor => self.clear_cursor(),
            Action::CursorLeft => self.nudge_cursor(0.0, -1.0),
            Action::CursorRight => self.nudge_cursor(0.0, 1.0),
            Action::CursorUp => self.nudge_cursor(-1.0, 0.0),
            Action::CursorDown => self.nudge_cursor(1.0, 0.0),
            Action::NextSeries => self.next_series(),
            Action::Export => return self.export(),
            Action::Agree => return self.verdict(Some(true)),
            Action::Disagree => return self.verdict(Some(false)),
            Action::Unsure => return self.verdict(None),
            Action::UndoVerdict => return self.undo_verdict(),
            Action::Note => self.start_note(),
            Action::Help => self.help = !self.help,
            Action::Quit => self.quit_asked(),
        }
        Vec::new()
    }

    fn export(&mut self) -> Vec<Effect> {
        match self.current() {
            Some(case) => {
                self.message = Some("exporting…".into());
                vec![Effect::Export(case)]
            }
            None => Vec::new(),
        }
    }

    pub(super) fn exported(&mut self, outcome: Result<String, crate::tui::export::ExportError>) {
        self.message = Some(match outcome {
            Ok(text) => text,
            Err(err) => {
                tracing::warn!("export failed: {err}");
                // The cause (the OS's words) first: the status line is one row.
                format!("export failed: {} — {err}", err.cause())
            }
        });
    }

    pub(super) fn set_task(&mut self, task: Task) {
        self.task = task;
        self.new_visit();
        self.refresh_view();
    }

    fn set_threshold(&mut self, threshold: f32) {
        self.threshold = threshold;
        self.refresh_view();
    }

    fn toggle_three_plane(&mut self) {
        if !self.display.three_plane && self.size.0 < ui::THREE_PLANE_MIN_WIDTH {
            self.message = Some(format!(
                "the three-plane view needs {} columns; the terminal has {}",
                ui::THREE_PLANE_MIN_WIDTH,
                self.size.0
            ));
            return;
        }
        self.display.three_plane = !self.display.three_plane;
    }
}

fn next_of<T: Copy + PartialEq>(all: &[T], current: T) -> T {
    let position = all.iter().position(|x| *x == current).unwrap_or(0);
    all[(position + 1) % all.len()]
}

/// `value + delta` on a 0–1 scale, rounded to hundredths so repeated steps stay exact.
fn step(value: f32, delta: f32) -> f32 {
    ((value + delta).clamp(0.0, 1.0) * 100.0).round() / 100.0
}
