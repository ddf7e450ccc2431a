//! Drawing: a pure function of the state. `layout` is shared with the mouse handling, so a
//! click lands where the list or a slice was drawn.
use ratatui::layout::{Constraint, Direction, Layout as Split, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

use crate::data::Plane;

use super::app::App;
use super::images::{self, Images};

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

/// Where an image of `size` cells goes in a pane's image `area`: centred across it, from its
/// top (as the panes draw it).
pub fn image_rect(area: Rect, size: (u16, u16)) -> Rect {
    Rect {
        x: area.x + area.width.saturating_sub(size.0) / 2,
        width: size.0.min(area.width),
        height: size.1.min(area.height),
        ..area
    }
}

/// A point of a plane's shown slice: fractional row and column, pixel centres at whole numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlicePixel {
    pub plane: Plane,
    pub row: f64,
    pub column: f64,
}

/// The slice pixel under a click at (column, row), if the click is on a slice's image (either
/// panel, with the raw slice beside it). The image's place is worked out as the encoder sizes
/// it (see [`images::fit`]) and the pane places it ([`image_rect`]).
pub fn slice_pixel_at(app: &App, area: Rect, column: u16, row: u16) -> Option<SlicePixel> {
    if app.help() {
        return None;
    }
    let layout = layout(area, app)?;
    let click = Position::new(column, row);
    let pane = layout.panes.iter().find(|p| p.image.contains(click))?;
    let volume = app.volume(app.current()?, pane.plane)?;
    let (_, height, width) = volume.dim();
    let panels = if app.display().raw_beside { 2 } else { 1 };
    let size = images::fit(
        app.info().raster,
        (pane.image.width, pane.image.height),
        ((panels * width) as u32, height as u32),
    );
    let image = image_rect(pane.image, size);
    if !image.contains(click) || size.0 == 0 || size.1 == 0 {
        return None;
    }
    // The cell's centre, in the composed image's pixels (both panels show the same slice).
    let x = (f64::from(column - image.x) + 0.5) / f64::from(size.0) * (panels * width) as f64;
    let y = (f64::from(row - image.y) + 0.5) / f64::from(size.1) * height as f64;
    let within = |v: f64, n: usize| (v - 0.5).clamp(0.0, n as f64 - 1.0);
    Some(SlicePixel {
        plane: pane.plane,
        row: within(y, height),
        column: within(x % width as f64, width),
    })
}
