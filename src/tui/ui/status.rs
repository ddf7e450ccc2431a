//! The status line: device, models, method and display settings, worker state, protocol —
//! or the search prompt while searching.
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::data::Task;
use crate::tui::app::{App, TruthView};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

pub fn draw(frame: &mut Frame, app: &App, area: Rect) {
    if app.search().editing {
        let prompt = Line::from(vec![
            Span::styled("search exam id: ", Style::default().fg(Color::Yellow)),
            Span::raw(format!("{}█", app.search().query)),
            Span::styled(
                "  (enter keeps, esc clears)",
                Style::default().fg(Color::DarkGray),
            ),
        ]);
        frame.render_widget(Paragraph::new(prompt), area);
        return;
    }
    if let Some(editor) = app.note_editor() {
        let name = app.cases().get(editor.case).map_or("", |c| c.name.as_str());
        let prompt = Line::from(vec![
            Span::styled(
                format!("note on {name}: "),
                Style::default().fg(Color::Yellow),
            ),
            Span::raw(format!("{}█", editor.text)),
            Span::styled(
                "  (enter keeps, esc cancels)",
                Style::default().fg(Color::DarkGray),
            ),
        ]);
        frame.render_widget(Paragraph::new(prompt), area);
        return;
    }
    let separator = || Span::styled(" │ ", Style::default().fg(Color::DarkGray));
    let display = &app.display();
    let overlay = if display.overlay {
        let floor = if display.heat_floor > 0.0 {
            format!(" ≥{:.1}", display.heat_floor)
        } else {
            String::new()
        };
        format!(
            "{} {:.0}%{floor}",
            display.colormap.name(),
            display.opacity * 100.0,
        )
    } else {
        "overlay off".into()
    };
    let mut spans = Vec::new();
    // A verdict that could not be stored comes first: the reader must see it.
    if let (pending, Some(error)) = app.pending_writes() {
        spans.push(Span::styled(
            format!(
                "{pending} verdict write{} {error}",
                if pending == 1 { "" } else { "s" }
            ),
            Style::default().fg(Color::Red),
        ));
        spans.push(separator());
    }
    // So do writes still on their way: they must not be cut off at the line's end.
    if let (pending @ 1.., None) = app.pending_writes() {
        spans.push(Span::styled(
            format!("storing {pending}"),
            Style::default().fg(Color::Cyan),
        ));
        spans.push(separator());
    }
    spans.extend([
        Span::raw(app.info().device.clone()),
        separator(),
        Span::raw(app.info().models.clone()),
        separator(),
        Span::raw(format!(
            "{} · {}",
            display.method.name(),
            display.normalization.name()
        )),
        separator(),
        Span::raw(overlay),
    ]);
    if let Some(view) = app.truth_view() {
        spans.extend([separator(), truth(app, view)]);
    }
    if let Some(cursor) = app.cursor() {
        let [x, y, z] = cursor.point;
        spans.extend([
            separator(),
            Span::styled(
                format!("cursor {x:.1}, {y:.1}, {z:.1} mm"),
                Style::default().fg(Color::Magenta),
            ),
        ]);
    }
    spans.extend([
        separator(),
        worker(app),
        separator(),
        Span::raw(app.info().protocol.clone()),
    ]);
    if let Some(note) = &app.info().protocol_note {
        spans.push(Span::styled(
            format!(" ({note})"),
            Style::default().fg(Color::Yellow),
        ));
    }
    spans.extend(
        reviews(app)
            .into_iter()
            .flat_map(|span| [separator(), span]),
    );
    if !app.search().query.is_empty() {
        spans.push(separator());
        spans.push(Span::raw(format!("search '{}'", app.search().query)));
    }
    if let Some(message) = app.message() {
        spans.push(separator());
        spans.push(Span::styled(
            message.to_string(),
            Style::default().fg(Color::Yellow),
        ));
    }
    spans.push(separator());
    spans.push(Span::styled(
        format!(
            "{} help",
            app.keymap().key_of(crate::tui::action::Action::Help)
        ),
        Style::default().fg(Color::DarkGray),
    ));
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The reader and the note on the current exam.
fn reviews(app: &App) -> Vec<Span<'static>> {
    let Some(reader) = app.reader() else {
        return Vec::new();
    };
    let mut spans = vec![Span::raw(format!("reader {reader}"))];
    if let Some(note) = app.current_note() {
        let note: String = note
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        spans.push(Span::styled(
            format!("note: {note}"),
            Style::default().fg(Color::Gray),
        ));
    }
    spans
}

/// `M`'s line: how many of the plane's slices hold the task's lesion, and eval-cam's result
/// for this exam when a report was given.
fn truth(app: &App, view: TruthView) -> Span<'static> {
    let lesion = match app.task() {
        Task::Acl => "ACL tear",
        Task::Meniscus => "meniscal tear",
        Task::Abnormal => "lesion",
    };
    let text = match view {
        TruthView::Counted { slices, of, eval } => {
            let mut text = format!("{lesion} on {slices}/{of} slices");
            if let Some(eval) = eval {
                let said = |hit: Option<bool>| match hit {
                    Some(true) => "✓",
                    Some(false) => "✗",
                    None => "–",
                };
                text.push_str(&format!(
                    " · eval-cam {}: pointing {} slice hit {}",
                    app.display().method.name(),
                    said(eval.pointing),
                    said(eval.slice_hit)
                ));
            }
            text
        }
        TruthView::Waiting => "ground truth: reading…".into(),
        TruthView::Missing(_) => "no ground-truth mask".into(),
    };
    Span::styled(text, Style::default().fg(Color::LightGreen))
}

fn worker(app: &App) -> Span<'static> {
    let spinner = SPINNER[(app.tick() % SPINNER.len() as u64) as usize];
    let [interactive, prefetch] = app.in_flight();
    if let Some(flight) = interactive.or(prefetch) {
        let what = if interactive.is_some() {
            "computing"
        } else {
            "prefetching"
        };
        return Span::styled(
            format!("{spinner} {what} {} {}", flight.key.task, flight.key.plane),
            Style::default().fg(Color::Cyan),
        );
    }
    if app.scoring().is_some() {
        return Span::styled(
            format!("{spinner} scoring the list ({} left)", app.unscored()),
            Style::default().fg(Color::Cyan),
        );
    }
    match app.worker_error() {
        Some(err) => Span::styled(format!("error: {err}"), Style::default().fg(Color::Red)),
        None => Span::styled("idle", Style::default().fg(Color::Green)),
    }
}
