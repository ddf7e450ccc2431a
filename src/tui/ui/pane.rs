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
            exact: app.contributions(plane).is_some(),
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
    if !app.has_model(app.task(), plane) {
        message(frame, pane.image, "no model for this task and plane");
    }
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
    let failure = match (app.cam_error(plane), &app.cases()[case].failed) {
        (Some(err), _) => Some(format!("CAM failed: {err}")),
        (None, Some(reason)) => Some(format!("cannot score this exam: {reason}")),
        (None, None) => None,
    };
    if let Some(text) = failure {
        let line = Rect {
            height: 2.min(pane.image.height),
            ..pane.image
        };
        frame.render_widget(
            Paragraph::new(text)
                .style(Style::default().fg(Color::Red))
                .wrap(Wrap { trim: true }),
            line,
        );
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

/// One bar per slice: positive contributions up (red), negative down (blue), the current
/// slice marked below. With more slices than columns, each column shows its largest score.
pub struct Strip<'a> {
    pub scores: &'a [f32],
    pub current: usize,
    /// The scores are `contrib`'s exact contributions (else another method's slice means).
    pub exact: bool,
}

const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

impl Widget for Strip<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height < 3 || area.width == 0 || self.scores.is_empty() {
            return;
        }
        let slices = self.scores.len();
        let columns = usize::from(area.width).min(slices * 3).max(1);
        let scale = self
            .scores
            .iter()
            .fold(0f32, |m, s| m.max(s.abs()))
            .max(1e-12);
        let slice_at = |column: usize| (column * slices / columns).min(slices - 1);
        for column in 0..columns {
            let first = slice_at(column);
            let last = (((column + 1) * slices).div_ceil(columns)).clamp(first + 1, slices);
            let score = self.scores[first..last]
                .iter()
                .copied()
                .fold(0f32, |best, s| if s.abs() > best.abs() { s } else { best });
            let level = ((score.abs() / scale) * 8.0).round() as usize;
            let x = area.x + column as u16;
            let (row, colour) = if score >= 0.0 {
                (area.y, Color::Red)
            } else {
                (area.y + 1, Color::Blue)
            };
            buf[(x, row)].set_char(EIGHTHS[level.min(8)]).set_fg(colour);
            if (first..last).contains(&self.current) {
                buf[(x, area.y + 2)].set_char('▲').set_fg(Color::Yellow);
            }
        }
        let label = if self.exact { "contrib" } else { "scores" };
        let x = area.x + (columns as u16).min(area.width);
        if x + (label.len() as u16) < area.x + area.width {
            buf.set_string(
                x + 1,
                area.y + 2,
                label,
                Style::default().fg(Color::DarkGray),
            );
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
            exact: true,
        }
        .render(area, &mut buf);
        let row = |y: u16| -> String { (0..12).map(|x| buf[(x, y)].symbol()).collect() };
        assert_eq!(row(0), "███      ▂▂▂");
        assert_eq!(row(1), "   ▄▄▄      ");
        assert_eq!(row(2), "   ▲▲▲      ");
    }
}
