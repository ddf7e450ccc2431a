//! The `?` overlay, generated from the keymap; in two or three columns when one does not fit.
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::app::App;

/// The keys' column is as wide as the widest keys, at most this.
const KEYS_WIDTH: usize = 14;
const ONE_COLUMN_WIDTH: u16 = 70;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let mut entries = app.keymap().help_lines();
    entries.push((
        "mouse".into(),
        "wheel: slices; click: exam, or cursor on a slice",
    ));
    let keys_width = entries
        .iter()
        .map(|(keys, _)| keys.chars().count())
        .max()
        .unwrap_or(0)
        .min(KEYS_WIDTH);
    let usable_rows = usize::from(area.height.saturating_sub(3)).max(1);
    let columns = entries.len().div_ceil(usable_rows).clamp(1, 3);
    let rows = entries.len().div_ceil(columns);
    let width = if columns == 1 {
        ONE_COLUMN_WIDTH.min(area.width)
    } else {
        area.width
    };
    let column_width = usize::from(width.saturating_sub(2)) / columns;
    let lines: Vec<Line> = (0..rows)
        .map(|row| {
            let spans = (0..columns)
                .filter_map(|column| entries.get(column * rows + row))
                .flat_map(|(keys, what)| entry(keys, what, keys_width, column_width))
                .collect::<Vec<_>>();
            Line::from(spans)
        })
        .collect();
    let height = (rows as u16 + 2).min(area.height.saturating_sub(1));
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height.saturating_sub(1) - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (from your config) · ? or esc closes "),
        ),
        popup,
    );
}

/// One binding, padded or cut to `width` characters, its keys right-aligned in `keys_width`.
fn entry(keys: &str, what: &str, keys_width: usize, width: usize) -> [Span<'static>; 2] {
    let keys = format!("{keys:>keys_width$}  ");
    let room = width.saturating_sub(keys.chars().count());
    let what: String = what.chars().take(room).collect();
    [
        Span::styled(
            keys,
            Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!("{what:<room$}")),
    ]
}
