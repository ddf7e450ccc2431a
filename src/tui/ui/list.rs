//! The patient list: id, the three labels, the combined probability for the task, the badge,
//! the reader's verdict for the task (P positive, N negative, ? unsure; `*` while its write is
//! pending).
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::review::Truth;
use crate::tui::app::{verdict_mark, App, Confusion};

/// The rows inside the border, below the column header.
pub fn rows_area(list: Rect) -> Rect {
    let inner = Block::default().borders(Borders::ALL).inner(list);
    Rect {
        y: inner.y + 1,
        height: inner.height.saturating_sub(1),
        ..inner
    }
}

/// The first row shown: the selection stays on screen, at the bottom when scrolling down.
pub fn offset(selected: usize, visible: u16) -> usize {
    selected.saturating_sub(usize::from(visible.max(1)) - 1)
}

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    // Triage progress first: the list is narrow, and the title is cut on the right.
    let progress = if app.reviewing() {
        let (done, total) = app.progress();
        format!(" reviewed {done}/{total} ·")
    } else {
        " exams".to_string()
    };
    let title = format!(
        "{progress} {}/{} · {} · by {} ",
        app.view().len(),
        app.cases().len(),
        app.filter().name(),
        app.sort().name()
    );
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let columns = if app.reviewing() {
        "exam    ab acl men   P     you "
    } else {
        "exam    ab acl men   P     "
    };
    let header = Line::from(Span::styled(
        columns,
        Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
    ));
    frame.render_widget(Paragraph::new(header), Rect { height: 1, ..inner });
    let rows = rows_area(area);
    if app.view().is_empty() {
        let text = if app.cases().is_empty() {
            "no exams in this dataset"
        } else {
            "no exam matches the filter"
        };
        frame.render_widget(Paragraph::new(text), rows);
        return;
    }
    let first = offset(app.selected(), rows.height);
    let lines: Vec<Line> = app
        .view()
        .iter()
        .enumerate()
        .skip(first)
        .take(usize::from(rows.height))
        .map(|(position, &case)| row(app, case, position == app.selected()))
        .collect();
    frame.render_widget(Paragraph::new(lines), rows);
}

fn row(app: &App, case: usize, selected: bool) -> Line<'static> {
    let entry = &app.cases()[case];
    let label = |l: Option<bool>| match l {
        Some(true) => "+",
        Some(false) => "-",
        None => "?",
    };
    let labels = format!(
        " {}  {}   {} ",
        label(entry.labels[0]),
        label(entry.labels[1]),
        label(entry.labels[2])
    );
    let probability = match (app.combined(case, app.task()), &entry.failed) {
        (_, Some(_)) => " err ".to_string(),
        (Some(p), None) => format!("{p:.3}"),
        (None, None) => "  …  ".to_string(),
    };
    let badge = app.confusion(case);
    let mut spans = vec![
        Span::raw(format!("{:<7}", entry.name)),
        Span::raw(labels),
        Span::raw(format!("{probability} ")),
        Span::styled(
            badge.map_or("  ", Confusion::badge),
            Style::default().fg(badge_colour(badge)),
        ),
    ];
    if app.reviewing() {
        spans.push(verdict(app, case));
    }
    if selected {
        for span in &mut spans {
            span.style = span.style.add_modifier(Modifier::REVERSED);
        }
    }
    Line::from(spans)
}

/// The reader's verdict for the current task: its mark, coloured by whether it agrees with
/// the model's call it was given against.
fn verdict(app: &App, case: usize) -> Span<'static> {
    let Some(mark) = app.mark(case, app.task()) else {
        return Span::raw("    ");
    };
    let colour = match (mark.truth, mark.model_call) {
        (Truth::Unsure, _) => Color::Yellow,
        (truth, Some(call)) if truth.call() == Some(call) => Color::Green,
        (_, Some(_)) => Color::Magenta,
        (_, None) => Color::White,
    };
    let pending = if mark.stored { " " } else { "*" };
    Span::styled(
        format!("  {}{pending}", verdict_mark(mark.truth)),
        Style::default().fg(colour),
    )
}

pub fn badge_colour(cell: Option<Confusion>) -> Color {
    match cell {
        Some(Confusion::TruePositive) | Some(Confusion::TrueNegative) => Color::Green,
        Some(Confusion::FalseNegative) | Some(Confusion::FalsePositive) => Color::Red,
        None => Color::DarkGray,
    }
}
