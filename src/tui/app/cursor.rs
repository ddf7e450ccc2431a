//! The linked 3-D cursor: one point in the patient (millimetres, DICOM's patient coordinates)
//! on the selected exam. Every plane whose series carries geometry shows the slice through
//! it, and its images mark it with a cross-hair; moving the slice of a plane the cursor lies
//! on moves the cursor through that plane, so the others follow. Set at the shown slice's
//! centre by a key, at a pixel by a click, nudged in-plane by keys, cleared by a key; it
//! belongs to one exam and is gone when another is selected.
use std::sync::Arc;

use crate::data::geometry::{add, scale, Point, VolumeGeometry, Voxel};
use crate::data::Plane;

use super::App;

/// Pixels of the shown plane one nudge moves the cursor.
pub const CURSOR_STEP: f64 = 4.0;

/// The cursor: a patient point on one exam (the selected one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub case: usize,
    pub point: Point,
}

/// How one plane of the selected exam stands to the cursor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CursorView {
    /// No cursor is set.
    Unset,
    /// The cursor lies on this plane's series: this slice, row and column.
    Located(Voxel),
    /// The cursor lies outside this plane's series (beyond its slices or its rectangle).
    Outside,
    /// The plane's series carries no geometry (or is not read yet).
    NoGeometry,
}

impl App {
    /// The cursor, when one is set on the selected exam.
    pub fn cursor(&self) -> Option<Cursor> {
        self.cursor.filter(|c| Some(c.case) == self.current())
    }

    /// Where the selected exam's shown `plane` series lies in the patient, if known.
    pub fn geometry(&self, plane: Plane) -> Option<&Arc<VolumeGeometry>> {
        let case = self.current()?;
        self.series(case, plane)?.as_ref().ok()?.geometry.as_ref()
    }

    /// How `plane` stands to the cursor.
    pub fn cursor_view(&self, plane: Plane) -> CursorView {
        let Some(cursor) = self.cursor() else {
            return CursorView::Unset;
        };
        match self.geometry(plane) {
            None => CursorView::NoGeometry,
            Some(geometry) => match geometry.locate(cursor.point) {
                Some(voxel) => CursorView::Located(voxel),
                None => CursorView::Outside,
            },
        }
    }

    /// Where the cursor lies on `plane`'s series, when it does.
    pub fn cursor_voxel(&self, plane: Plane) -> Option<Voxel> {
        match self.cursor_view(plane) {
            CursorView::Located(voxel) => Some(voxel),
            _ => None,
        }
    }

    /// The pixel (row, column) of `plane`'s shown slice the cross-hair marks, if any.
    pub fn cursor_pixel(&self, plane: Plane) -> Option<(u16, u16)> {
        let voxel = self.cursor_voxel(plane)?;
        let geometry = self.geometry(plane)?;
        // Located points reach half a pixel past the edge pixels' centres.
        let pixel = |v: f64, n: usize| v.round().clamp(0.0, (n.max(1) - 1) as f64) as u16;
        Some((
            pixel(voxel.row, geometry.rows),
            pixel(voxel.column, geometry.columns),
        ))
    }

    /// `x`: the cursor at the centre of the shown slice.
    pub(super) fn set_cursor_centre(&mut self) {
        let plane = self.plane;
        let Some(geometry) = self.geometry_or_say(plane) else {
            return;
        };
        let row = (geometry.rows as f64 - 1.0) / 2.0;
        let column = (geometry.columns as f64 - 1.0) / 2.0;
        self.set_cursor_at(plane, row, column);
    }

    /// The cursor at (fractional) `row`, `column` of `plane`'s shown slice (a click).
    pub(super) fn set_cursor_at(&mut self, plane: Plane, row: f64, column: f64) {
        let (Some(case), Some(geometry)) = (self.current(), self.geometry_or_say(plane)) else {
            return;
        };
        let slice = self.slice(plane);
        let Some(point) = geometry.point(slice, row, column) else {
            return;
        };
        self.cursor = Some(Cursor { case, point });
    }

    /// `H` `J` `K` `L`: the cursor moved along the shown plane's rows and columns, kept on
    /// its slice's rectangle when it lies on it.
    pub(super) fn nudge_cursor(&mut self, rows: f64, columns: f64) {
        let plane = self.plane;
        let Some(cursor) = self.cursor() else {
            let key = self.keymap.key_of(crate::tui::action::Action::SetCursor);
            self.message = Some(format!("no cursor: {key} sets one"));
            return;
        };
        let Some(geometry) = self.geometry_or_say(plane) else {
            return;
        };
        let point = match geometry.locate(cursor.point) {
            Some(voxel) => {
                let within = |v: f64, n: usize| v.clamp(0.0, n as f64 - 1.0);
                let row = within(voxel.row + rows * CURSOR_STEP, geometry.rows);
                let column = within(voxel.column + columns * CURSOR_STEP, geometry.columns);
                // On the voxel's plane, not the slice's (the point may lie between slices).
                let on_slice = geometry.point(voxel.slice, row, column);
                on_slice.map(|p| add(p, scale(geometry.normal(), voxel.off_plane_mm)))
            }
            None => Some(add(
                cursor.point,
                add(
                    scale(geometry.row_step, rows * CURSOR_STEP),
                    scale(geometry.column_step, columns * CURSOR_STEP),
                ),
            )),
        };
        if let Some(point) = point {
            self.cursor = Some(Cursor { point, ..cursor });
        }
    }

    /// `X`: no cursor; each plane stays at the slice the cursor had it on.
    pub(super) fn clear_cursor(&mut self) {
        if self.cursor().is_none() {
            self.message = Some("no cursor to clear".into());
            return;
        }
        for plane in Plane::ALL {
            if let Some(voxel) = self.cursor_voxel(plane) {
                self.chosen_slices[plane.index()] = Some(voxel.slice);
            }
        }
        self.cursor = None;
    }

    /// The shown slice of `plane` moved to `slice`: a cursor lying on the plane moves with
    /// it, through the plane, keeping its row and column.
    pub(super) fn cursor_follows_slice(&mut self, plane: Plane, slice: usize) {
        let (Some(cursor), Some(voxel)) = (self.cursor(), self.cursor_voxel(plane)) else {
            return;
        };
        let moved = self
            .geometry(plane)
            .and_then(|g| g.point(slice, voxel.row, voxel.column));
        if let Some(point) = moved {
            self.cursor = Some(Cursor { point, ..cursor });
        }
    }

    /// Another exam is selected: its cursor is its own (none yet).
    pub(super) fn cursor_for_visit(&mut self) {
        if self.cursor.is_some_and(|c| Some(c.case) != self.current()) {
            self.cursor = None;
        }
    }

    /// `plane`'s geometry; without one the status line says why linking cannot work.
    fn geometry_or_say(&mut self, plane: Plane) -> Option<Arc<VolumeGeometry>> {
        if let Some(geometry) = self.geometry(plane) {
            return Some(Arc::clone(geometry));
        }
        let case = self.current()?;
        let problem = match self.series(case, plane) {
            None => {
                self.message = Some(format!("the {plane} series is still being read"));
                return None;
            }
            Some(Err(err)) => err.to_string(),
            Some(Ok(series)) => match &series.geometry_problem {
                Some(problem) => format!("this {plane} series' geometry: {problem}"),
                None => "this exam's series carry none (MRNet .npy)".to_string(),
            },
        };
        self.message = Some(format!("linking planes needs geometry: {problem}"));
        None
    }
}
