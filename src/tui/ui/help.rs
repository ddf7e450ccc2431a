//! The `?` overlay, generated from the keymap.
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::app::App;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let mut lines: Vec<Line> = app
        .keymap
        .help_lines()
        .into_iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{keys:>14}  "),
                    Style::default()
                        .fg(Color::Cyan)
                        .add_modifier(Modifier::BOLD),
                ),
                Span::raw(what),
            ])
        })
        .collect();
    lines.push(Line::from(vec![
        Span::styled(
            format!("{:>14}  ", "mouse"),
            Style::default().fg(Color::Cyan),
        ),
        Span::raw("wheel: slices; click: select an exam"),
    ]));
    let width = 70.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height.saturating_sub(1));
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
                .title(" keys (from your config) "),
        ),
        popup,
    );
}
