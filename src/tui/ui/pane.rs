//! One plane's column: its title, the slice with the CAM overlay, the caption (slice i / S
//! and its contribution) and the slice-attribution strip.
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};
use ratatui::Frame;
use ratatui_image::Image;

use crate::cam::Method;
use crate::data::Plane;
use crate::tui::app::{App, CursorView};
use crate::tui::images::{self, Images};

use super::PaneLayout;

pub fn draw(frame: &mut Frame, app: &App, images: &Images, pane: &PaneLayout, show_image: bool) {
    let plane = pane.plane;
    let current = plane == app.plane();
    let title_style = if current {
        Style::default().add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(Color::Gray)
    };
    frame.render_widget(
        Paragraph::new(title(app, plane, title_style, pane.title.width)),
        pane.title,
    );
    if show_image {
        image(frame, app, images, pane);
    }
    frame.render_widget(Paragraph::new(caption(app, pane)), pane.caption);
    if let Some(scores) = app.strip_scores(plane) {
        let strip = Strip {
            scores: &scores,
            current: app.slice(plane),
            lesions: app.lesion_slices(plane),
        };
        frame.render_widget(strip, pane.strip);
    }
}

/// "sagittal · contrib", then which series (when the plane has several) and where the
/// linked cursor is when it is not on this plane's series. Where that is too wide, the method
/// goes first (the status line says it too), then the series' description.
fn title(app: &App, plane: Plane, style: Style, width: u16) -> Line<'static> {
    let method = format!(" · {}", app.display().method.name());
    let case = app.current();
    let mut series = case
        .and_then(|case| app.series_label(case, plane))
        .map(|label| format!(" · {label}"))
        .unwrap_or_default();
    let cursor = match app.cursor_view(plane) {
        CursorView::Outside => " · cursor outside this series",
        CursorView::NoGeometry => " · cursor: no geometry here",
        CursorView::Unset | CursorView::Located(_) => "",
    };
    let head = plane.to_string();
    let length = |parts: &[&str]| parts.iter().map(|p| p.chars().count()).sum::<usize>();
    let room = usize::from(width);
    let method = if length(&[&head, &method, &series, cursor]) > room {
        String::new()
    } else {
        method
    };
    if length(&[&head, &method, &series, cursor]) > room {
        if let Some(case) = case {
            let count = app.series_count(case, plane);
            if count > 1 {
                series = format!(" · series {}/{count}", app.series_index(case, plane) + 1);
            }
        }
    }
    Line::from(vec![
        Span::styled(format!("{head}{method}{series}"), style),
        Span::styled(cursor.to_string(), Style::default().fg(Color::Yellow)),
    ])
}

fn image(frame: &mut Frame, app: &App, images: &Images, pane: &PaneLayout) {
    let plane = pane.plane;
    let Some(case) = app.current() else {
        let text = if app.cases().is_empty() {
            "no exams to show"
        } else {
            "no exam matches the filter"
        };
        return message(frame, pane.image, text);
    };
    match app.series(case, plane) {
        None => return message(frame, pane.image, "reading the series…"),
        Some(Err(err)) => return message(frame, pane.image, &err.to_string()),
        Some(Ok(_)) => {}
    }
    let wanted = images::wanted_key(app, plane, pane.image);
    match images.for_pane(wanted, plane) {
        Some(protocol) => {
            let size = protocol.size();
            let area = super::image_rect(pane.image, (size.width, size.height));
            frame.render_widget(Image::new(protocol), area);
        }
        None => message(frame, pane.image, "drawing…"),
    }
}

/// Why the shown exam's CAM of `plane` is missing, if it failed. It goes in the caption: text
/// over an image's cells would hide the image (sixel, iTerm2) or swallow the kitty image's
/// one-time transmission, which rides in its first cell.
fn failure(app: &App, plane: Plane) -> Option<String> {
    let case = app.current()?;
    if !app.has_model(app.task(), plane) {
        return Some("no model for this task and plane".into());
    }
    match (app.cam_error(plane), &app.cases()[case].failed) {
        (Some(err), _) => Some(format!("CAM failed: {err}")),
        (None, Some(reason)) => Some(format!("cannot score this exam: {reason}")),
        (None, None) => None,
    }
}

fn message(frame: &mut Frame, area: Rect, text: &str) {
    frame.render_widget(
        Paragraph::new(text.to_string())
            .style(Style::default().fg(Color::DarkGray))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn caption(app: &App, pane: &PaneLayout) -> Line<'static> {
    let plane = pane.plane;
    let count = app.slice_count(plane);
    if count == 0 {
        return Line::from("");
    }
    let slice = app.slice(plane);
    let mut spans = vec![Span::raw(format!("slice {}/{count}", slice + 1))];
    if let Some(text) = failure(app, plane) {
        spans.push(Span::styled(
            format!("  {text}"),
            Style::default().fg(Color::Red),
        ));
        return Line::from(spans);
    }
    if let Some(explanation) = app.contributions(plane) {
        let score = explanation.scores.get(slice).copied().unwrap_or(0.0);
        let colour = if score > 0.0 { Color::Red } else { Color::Blue };
        let label = if pane.caption.width >= 36 {
            "  contribution "
        } else {
            "  "
        };
        spans.push(Span::raw(label));
        spans.push(Span::styled(
            format!("{score:+.3}"),
            Style::default().fg(colour),
        ));
        let logit = explanation.logits.get(explanation.class).copied();
        if let Some(logit) = logit.filter(|_| pane.caption.width >= 48) {
            spans.push(Span::raw(format!(" of logit {logit:+.2}")));
        }
    } else if let Some(explanation) = app.explanation(plane) {
        let score = explanation.scores.get(slice).copied().unwrap_or(0.0);
        spans.push(Span::raw(format!("  score {score:+.3}")));
    }
    let [interactive, _] = app.in_flight();
    if interactive.is_some_and(|flight| {
        let key = flight.key;
        key.plane == plane && key.method != Method::Contrib && Some(key.case) == app.current()
    }) {
        spans.push(Span::styled("  CAM…", Style::default().fg(Color::Cyan)));
    }
    Line::from(spans)
}

/// One bar per slice across the full width: positive contributions up (red), negative down
/// (blue), scaled to the largest; below them the current slice (▲), the slices that hold the
/// lesion when the ground truth is known (•, the outline's green), and the first and last
/// slice numbers at the ends. Each slice gets at least one cell while the width allows; with
/// more slices than cells, each cell shows its slices' largest score.
pub struct Strip<'a> {
    pub scores: &'a [f32],
    pub current: usize,
    /// Per slice: whether it holds the task's lesion (the series' mask), if known.
    pub lesions: Option<&'a [bool]>,
}

const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

impl Widget for Strip<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height < 3 || area.width == 0 || self.scores.is_empty() {
            return;
        }
        let slices = self.scores.len();
        let last = slices.to_string();
        // " 1 " on the left, " S " on the right (side by side, two panes' numbers stay apart),
        // where the bars keep a cell per slice.
        let margins = if usize::from(area.width) >= slices + last.len() + 5 {
            (3, last.len() as u16 + 2)
        } else {
            (0, 0)
        };
        let columns = usize::from(area.width - margins.0 - margins.1).max(1);
        let scale = self
            .scores
            .iter()
            .fold(0f32, |m, s| m.max(s.abs()))
            .max(1e-12);
        let marks = area.y + 2;
        for column in 0..columns {
            let first = (column * slices / columns).min(slices - 1);
            let end = ((column + 1) * slices / columns).clamp(first + 1, slices);
            let score = self.scores[first..end]
                .iter()
                .copied()
                .fold(0f32, |best, s| if s.abs() > best.abs() { s } else { best });
            let level = ((score.abs() / scale) * 8.0).round() as usize;
            let x = area.x + margins.0 + column as u16;
            let (row, colour) = if score >= 0.0 {
                (area.y, Color::Red)
            } else {
                (area.y + 1, Color::Blue)
            };
            buf[(x, row)].set_char(EIGHTHS[level.min(8)]).set_fg(colour);
            let lesion = self
                .lesions
                .is_some_and(|lesions| lesions.get(first..end).is_some_and(|l| l.contains(&true)));
            if (first..end).contains(&self.current) {
                let colour = if lesion {
                    Color::LightGreen
                } else {
                    Color::Yellow
                };
                buf[(x, marks)].set_char('▲').set_fg(colour);
            } else if lesion {
                buf[(x, marks)].set_char('•').set_fg(Color::LightGreen);
            }
        }
        if margins.0 > 0 {
            let numbers = Style::default().fg(Color::DarkGray);
            buf.set_string(area.x + 1, marks, "1", numbers);
            let right = area.x + area.width - 1 - last.len() as u16;
            buf.set_string(right, marks, &last, numbers);
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;

    use super::*;

    #[test]
    fn strip_draws_signs_and_marks_the_current_slice() {
        let area = Rect::new(0, 0, 12, 3);
        let mut buf = Buffer::empty(area);
        Strip {
            scores: &[1.0, -0.5, 0.0, 0.25],
            current: 1,
            lesions: None,
        }
        .render(area, &mut buf);
        let row = |y: u16| -> String { (0..12).map(|x| buf[(x, y)].symbol()).collect() };
        // " 1 " and " 4 " at the ends; 6 cells for 4 slices, at least one each.
        assert_eq!(row(0), "   ██   ▂   ");
        assert_eq!(row(1), "     ▄      ");
        assert_eq!(row(2), " 1   ▲    4 ");
    }

    #[test]
    fn strip_marks_the_lesion_slices_and_uses_the_whole_width() {
        let area = Rect::new(0, 0, 40, 3);
        let mut buf = Buffer::empty(area);
        let scores: Vec<f32> = (0..30).map(|s| s as f32 / 30.0).collect();
        let lesions: Vec<bool> = (0..30).map(|s| (10..13).contains(&s)).collect();
        Strip {
            scores: &scores,
            current: 11,
            lesions: Some(&lesions),
        }
        .render(area, &mut buf);
        let row = |y: u16| -> String { (0..40).map(|x| buf[(x, y)].symbol()).collect() };
        // 40 − " 1 " − " 30 " = 33 cells for 30 slices: every slice has a cell, the last bar
        // ends where the number's margin starts.
        assert!(row(2).starts_with(" 1 "), "{}", row(2));
        assert!(row(2).ends_with(" 30 "), "{}", row(2));
        assert_eq!(
            buf[(35, 0)].symbol(),
            "█",
            "the largest bar is the last cell"
        );
        let marks: String = row(2).chars().filter(|c| *c == '•' || *c == '▲').collect();
        assert!(marks.contains('▲') && marks.contains('•'), "{}", row(2));
        let lesion_cells = (0..40)
            .filter(|&x| buf[(x, 2)].fg == Color::LightGreen)
            .count();
        assert!(
            (3..=6).contains(&lesion_cells),
            "three slices' cells: {lesion_cells}"
        );
    }
}
