//! What comes into the state, and what the state asks of the outside world.
use crossterm::event::{KeyEvent, MouseEvent};

use crate::engine::{EngineResult, Priority, RequestId, ScoreResult, Stopped};
use crate::review::writer::{WriteEvent, WriteJob};
use crate::tui::action::Action;
use crate::tui::export::ExportError;

use super::requests::CamKey;
use super::series::{Series, SeriesError, SeriesRef};

/// Everything that changes the explorer's state.
#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// An action without its key (tests, benches).
    Action(Action),
    Resize(u16, u16),
    /// The loader read (or could not read) a series asked for with [`Effect::LoadSeries`].
    SeriesLoaded {
        which: SeriesRef,
        outcome: Result<Series, SeriesError>,
    },
    /// What [`Effect::Submit`] became: the engine's id for it, or the engine is gone.
    Submitted {
        key: CamKey,
        priority: Priority,
        outcome: Result<RequestId, Stopped>,
    },
    /// What [`Effect::Score`] became.
    ScoreSubmitted {
        case: usize,
        outcome: Result<RequestId, Stopped>,
    },
    /// A CAM request's answer.
    Explained(Box<EngineResult>),
    /// A score request's answer.
    Scored(Box<ScoreResult>),
    /// A line for the status line (an image that could not be encoded, say).
    Notice(String),
    /// Where an export went, or why it failed.
    Exported(Result<String, ExportError>),
    /// What the review writer did with an [`Effect::Review`].
    Reviewed(WriteEvent),
    /// Drops every computed CAM, so that what is shown is computed (or read) again.
    ForgetCams,
    /// Time passed while workers run (the spinner turns).
    Tick,
    /// SIGTERM, SIGHUP or SIGINT: leave cleanly.
    Terminate,
}

/// What the driver carries out for the state.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read these series (the newest list replaces what the loader has not started).
    LoadSeries(Vec<SeriesRef>),
    /// Ask the engine for this CAM; answer with [`Msg::Submitted`].
    Submit(CamKey, Priority),
    Cancel(RequestId),
    /// Score this exam in the engine's background lane; answer with [`Msg::ScoreSubmitted`].
    Score(usize),
    /// Export this case's computed CAMs; answer with [`Msg::Exported`].
    Export(usize),
    /// Hand this write to the review writer; it answers with [`Msg::Reviewed`].
    Review(Box<WriteJob>),
}
