//! The note on an exam (`i`), typed in the status line.
use super::NoteEditor;
use crate::tui::app::{App, Effect};

impl App {
    /// `i`: edit the note of the current exam in the status line.
    pub(in crate::tui::app) fn start_note(&mut self) {
        let Some(case) = self.current() else {
            return;
        };
        if !self.reviewing() {
            self.message = Some("notes need a review database (see --reviews)".into());
            return;
        }
        let text = self.current_note().unwrap_or_default().to_string();
        self.reviews.editor = Some(NoteEditor { case, text });
    }

    /// A key typed into the note: Enter keeps it, Esc cancels.
    pub(in crate::tui::app) fn note_input(
        &mut self,
        key: crossterm::event::KeyCode,
    ) -> Vec<Effect> {
        use crossterm::event::KeyCode;
        let Some(editor) = self.reviews.editor.as_mut() else {
            return Vec::new();
        };
        match key {
            KeyCode::Char(c) if !c.is_control() && editor.text.chars().count() < 500 => {
                editor.text.push(c)
            }
            KeyCode::Backspace => {
                editor.text.pop();
            }
            KeyCode::Esc => {
                self.reviews.editor = None;
                self.message = Some("note not changed".into());
            }
            KeyCode::Enter => return self.keep_note(),
            _ => {}
        }
        Vec::new()
    }

    /// Keeps the typed note: with a verdict on the exam, the verdict is recorded again with
    /// the note (superseding it); without one, the note waits for the verdict.
    fn keep_note(&mut self) -> Vec<Effect> {
        let Some(editor) = self.reviews.editor.take() else {
            return Vec::new();
        };
        let note = editor.text.trim().to_string();
        let case = editor.case;
        let Some(mark) = self.mark(case, self.task).cloned() else {
            if note.is_empty() {
                self.reviews.drafts.remove(&case);
            } else {
                self.reviews.drafts.insert(case, note);
            }
            self.message = Some("note kept: it goes with your verdict on this exam".into());
            return Vec::new();
        };
        let call = self.model_call(case);
        let mut verdict = self.new_verdict(case, mark.truth, call);
        verdict.note = (!note.is_empty()).then_some(note);
        // The verdict stands as it was given: against the call it was given against.
        verdict.model_call = mark.model_call;
        self.reviews.drafts.remove(&case);
        self.message = Some(format!("note recorded on {}", self.cases[case].name));
        self.record(case, verdict)
    }
}
