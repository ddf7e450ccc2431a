//! Task selector with the confusion counts, and the plane tabs with each plane's probability
//! and its term in the combination.
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use crate::data::{Plane, Task};
use crate::tui::app::{App, Confusion};

use super::list::badge_colour;

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    let lines = vec![tasks_line(app), planes_line(app)];
    let block = Block::default().borders(Borders::BOTTOM);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn tab(text: String, active: bool) -> Span<'static> {
    if active {
        Span::styled(
            format!(" {text} "),
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        )
    } else {
        Span::raw(format!(" {text} "))
    }
}

fn tasks_line(app: &App) -> Line<'static> {
    let mut spans: Vec<Span> = Task::ALL
        .into_iter()
        .map(|task| tab(task_title(task), task == app.task()))
        .collect();
    spans.push(Span::raw(format!("  threshold {:.2} ", app.threshold())));
    let counts = app.confusion_counts();
    for (cell, count) in Confusion::ALL.into_iter().zip(counts) {
        spans.push(Span::styled(
            format!(" {} {count}", cell.badge()),
            Style::default().fg(badge_colour(Some(cell))),
        ));
    }
    Line::from(spans)
}

pub fn task_title(task: Task) -> String {
    match task {
        Task::Acl => "ACL".into(),
        other => other.name().into(),
    }
}

fn planes_line(app: &App) -> Line<'static> {
    let combiner = app.combiners()[app.task().index()];
    let case = app.current();
    let mut spans = Vec::new();
    for plane in Plane::ALL {
        let probability = case.and_then(|c| *app.cases()[c].planes.get(app.task(), plane));
        let weight = combiner.map(|c| match plane {
            Plane::Axial => c.axial,
            Plane::Coronal => c.coronal,
            Plane::Sagittal => c.sagittal,
        });
        let text = match (probability, weight) {
            _ if !app.has_model(app.task(), plane) => format!("{plane} (no model)"),
            (Some(p), Some(w)) => format!("{plane} {p:.3} ({:+.2})", w * f64::from(p)),
            (Some(p), None) => format!("{plane} {p:.3}"),
            (None, _) => format!("{plane} …"),
        };
        spans.push(tab(text, app.visible_planes().contains(&plane)));
    }
    let combined = case.and_then(|c| app.combined(c, app.task()));
    spans.push(Span::raw(match (combined, combiner) {
        (Some(p), Some(c)) => format!("  combined {p:.3} (b {:+.2})", c.intercept),
        (None, Some(_)) => "  combined …".into(),
        (_, None) => "  no combiner".into(),
    }));
    Line::from(spans)
}
