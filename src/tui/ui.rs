//! Drawing: a pure function of the state. `layout` is shared with the mouse handling, so a
//! click lands where the list was drawn.
use ratatui::layout::{Constraint, Direction, Layout as Split, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use crate::data::Plane;

use super::app::App;
use super::images::Images;

mod header;
mod help;
mod list;
mod pane;
mod status;

/// Below this the explorer shows only a "terminal too small" message.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// The three-plane view needs this many columns.
pub const THREE_PLANE_MIN_WIDTH: u16 = 130;
const LIST_WIDTH: u16 = 32;
const HEADER_HEIGHT: u16 = 3;

/// One plane's column: title, image, caption and the slice strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaneLayout {
    pub plane: Plane,
    pub title: Rect,
    pub image: Rect,
    pub caption: Rect,
    pub strip: Rect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub list: Rect,
    pub header: Rect,
    pub panes: Vec<PaneLayout>,
    pub status: Rect,
}

/// Where everything goes; None when the terminal is too small.
pub fn layout(area: Rect, app: &App) -> Option<Layout> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let [main, status] = Split::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(1), Constraint::Length(1)])
        .areas(area);
    let [list, right] = Split::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Length(LIST_WIDTH), Constraint::Min(1)])
        .areas(main);
    let [header, body] = Split::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(HEADER_HEIGHT), Constraint::Min(1)])
        .areas(right);
    let planes = if app.display().three_plane && area.width >= THREE_PLANE_MIN_WIDTH {
        Plane::ALL.to_vec()
    } else {
        vec![app.plane()]
    };
    let columns = Split::default()
        .direction(Direction::Horizontal)
        .constraints(vec![
            Constraint::Ratio(1, planes.len() as u32);
            planes.len()
        ])
        .split(body);
    let panes = planes
        .into_iter()
        .zip(columns.iter())
        .map(|(plane, column)| pane_layout(plane, *column))
        .collect();
    Some(Layout {
        list,
        header,
        panes,
        status,
    })
}

fn pane_layout(plane: Plane, column: Rect) -> PaneLayout {
    let [title, image, caption, strip] = Split::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
            Constraint::Length(3),
        ])
        .areas(column);
    PaneLayout {
        plane,
        title,
        image,
        caption,
        strip,
    }
}

/// Draws the whole screen from the state and the encoded images (changes nothing).
pub fn draw(frame: &mut Frame, app: &App, images: &Images) {
    let area = frame.area();
    let Some(layout) = layout(area, app) else {
        too_small(frame, area);
        return;
    };
    list::draw(frame, app, layout.list);
    header::draw(frame, app, layout.header);
    for pane in &layout.panes {
        pane::draw(frame, app, images, pane, !app.help());
    }
    status::draw(frame, app, layout.status);
    if app.help() {
        help::draw(frame, app, area);
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    let text = vec![
        Line::from("terminal too small"),
        Line::from(format!(
            "{}×{}: kneecam needs at least {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        )),
    ];
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text)
            .style(
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            )
            .wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}

/// The list row under a click at (column, row), if the click is on a listed exam.
pub fn list_row_at(app: &App, area: Rect, column: u16, row: u16) -> Option<usize> {
    let layout = layout(area, app)?;
    let rows = list::rows_area(layout.list);
    let inside = column >= rows.x
        && column < rows.x + rows.width
        && row >= rows.y
        && row < rows.y + rows.height;
    if !inside {
        return None;
    }
    let position = list::offset(app.selected(), rows.height) + usize::from(row - rows.y);
    (position < app.view().len()).then_some(position)
}
