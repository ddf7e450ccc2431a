//! The explorer: a patient list, task and plane tabs, slices with their CAM overlays drawn
//! inline (sixel / kitty / iTerm2, halfblocks otherwise), the slice-attribution strip.
//!
//! Threads: the UI (this loop: state, drawing), the engine (the one owner of the models: CAMs,
//! prefetches and the list's scores), the series loader, the encoder (terminal images), the
//! input reader and an export writer when asked. All talk to the UI through one [`Event`]
//! channel; the UI redraws only after events, and draws a frame inside a synchronized update.
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::terminal::{
    BeginSynchronizedUpdate, Clear, ClearType, EndSynchronizedUpdate, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use crossterm::{cursor, execute};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use ratatui_image::picker::{Picker, ProtocolType};

use crate::config::{Config, ProtocolChoice};
use crate::data::dataset::Exam;
use crate::engine::{Engine, Loader};
use crate::review::writer::{Reopen, ReviewWriter, WriteJob, WriteOp};
use crate::review::ReviewStore;

pub mod action;
pub mod app;
pub mod cache;
pub mod driver;
pub mod export;
pub mod images;
pub mod keymap;
mod loader;
pub mod ui;

pub use driver::{Driver, Event, ImageSink, StoreSetup};

/// Everything the explorer needs, prepared by the command line.
pub struct Session {
    /// The list: one case per exam, in the order of `exams`.
    pub cases: Vec<app::Case>,
    pub models: app::ModelFacts,
    /// What the status line says of the session (the device and the graphics are filled in
    /// when the explorer starts).
    pub info: app::Info,
    pub exams: Vec<Exam>,
    pub device: tch::Device,
    /// Builds each model on the engine thread (the one owner of models).
    pub loader: Loader,
    pub config: Config,
    pub export_folder: PathBuf,
    /// The CAM store read before the engine computes (and filled by it).
    pub store: Option<StoreSetup>,
    /// Triage: the reader, their verdicts so far and the database they go to.
    pub reviews: Option<ReviewSetup>,
}

/// The review database the explorer writes verdicts to, and what it starts from.
pub struct ReviewSetup {
    pub start: app::ReviewStart,
    pub store: Box<dyn ReviewStore>,
    /// Opens the database again after a failed write.
    pub reopen: Reopen,
}

/// The terminal's graphics, decided once after entering the alternate screen.
pub struct Graphics {
    pub picker: Picker,
    pub name: String,
    pub note: Option<String>,
}

/// Runs the explorer in this terminal until the user quits (or a signal arrives); the
/// terminal is restored on every way out, panics included.
pub fn run(session: Session) -> anyhow::Result<()> {
    let mut terminal = enter()?;
    let mut driver = None;
    let result = run_in(&mut terminal, session, &mut driver);
    let unstored = driver
        .as_mut()
        .map(|d: &mut Driver| d.finish_reviews(Duration::from_secs(3)))
        .unwrap_or_default();
    leave();
    crate::panics::on_fatal(None);
    result.and(report_unstored(&unstored))
}

fn run_in(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    session: Session,
    slot: &mut Option<Driver>,
) -> anyhow::Result<()> {
    let graphics = detect_graphics(session.config.protocol);
    let (events, inbox) = mpsc::channel();
    let driver = slot.insert(start(session, graphics, &events)?);
    spawn_input(events.clone())?;
    spawn_signals(events);
    let size = terminal.size()?;
    driver.handle(Event::Resize(size.width, size.height));
    let mut last_layout = None;
    loop {
        driver.sync();
        driver.touch_visible();
        draw(terminal, driver, &mut last_layout)?;
        if driver.app().quit() {
            return Ok(());
        }
        wait_for_events(driver, &inbox);
    }
}

/// After the terminal is restored: the verdicts that could not be stored, one line each, so
/// that none is lost without a word (and the exit status says so).
fn report_unstored(unstored: &[WriteJob]) -> anyhow::Result<()> {
    if unstored.is_empty() {
        return Ok(());
    }
    eprintln!("these verdicts may not be stored (the review database refused them):");
    for job in unstored {
        match &job.op {
            WriteOp::Record(v) => eprintln!(
                "  verdict {} {} {} {} by {}: {}{}",
                v.uid,
                v.split.name(),
                v.exam.escape_debug(),
                v.task,
                v.reader.escape_debug(),
                v.truth.name(),
                v.note
                    .as_deref()
                    .map(|n| format!(" (note: {})", n.escape_debug()))
                    .unwrap_or_default()
            ),
            WriteOp::Undo(u) => eprintln!("  undo of verdict {} by {}", u.verdict_uid, u.reader),
        }
    }
    anyhow::bail!(
        "{} review write{} not stored",
        unstored.len(),
        if unstored.len() == 1 { "" } else { "s" }
    )
}

/// Starts the workers around the session's state, images encoded on a thread.
pub fn start(
    mut session: Session,
    graphics: Graphics,
    events: &Sender<Event>,
) -> anyhow::Result<Driver> {
    session.info.protocol = graphics.name;
    session.info.protocol_note = graphics.note;
    session.info.raster = images::Raster::of(&graphics.picker);
    let encoded = events.clone();
    let encoder = images::Encoder::spawn(graphics.picker, move |image| {
        let _ = encoded.send(Event::Encoded(image));
    })?;
    assemble(session, ImageSink::Thread(encoder), events)
}

/// The explorer without a terminal (tests, benchmarks): images encoded inline with
/// `picker`, events left on the returned channel for [`Driver::settle`].
pub fn start_headless(
    mut session: Session,
    picker: Picker,
) -> anyhow::Result<(Driver, Receiver<Event>)> {
    let (events, inbox) = mpsc::channel();
    session.info.protocol = protocol_name(picker.protocol_type()).to_string();
    session.info.raster = images::Raster::of(&picker);
    let driver = assemble(session, ImageSink::Inline(picker), &events)?;
    Ok((driver, inbox))
}

fn assemble(session: Session, sink: ImageSink, events: &Sender<Event>) -> anyhow::Result<Driver> {
    let Session {
        cases,
        models,
        mut info,
        exams,
        device,
        loader,
        config,
        export_folder,
        store,
        reviews,
    } = session;
    let engine_events = events.clone();
    let engine = Engine::start(
        device,
        loader,
        Box::new(move |event| {
            let _ = engine_events.send(Event::Engine(event));
        }),
    )?;
    info.device = engine.device_name().to_string();
    let mut app = app::App::new(cases, models, &config, info);
    let mut writer = None;
    if let Some(setup) = reviews {
        app = app.with_reviews(setup.start);
        let review_events = events.clone();
        writer = Some(ReviewWriter::spawn(
            setup.store,
            setup.reopen,
            Box::new(move |event| {
                let _ = review_events.send(Event::Review(event));
            }),
        )?);
    }
    let driver = Driver::new(driver::Parts {
        app,
        images: images::Images::new(config.image_cache_entries),
        exams,
        engine,
        sink,
        export_folder,
        events: events.clone(),
        store,
        reviews: writer,
    })?;
    Ok(driver)
}

/// Blocks until an event comes (waking every 100 ms while workers run, for the spinner),
/// then handles every event already queued, so a burst of keys costs one frame.
fn wait_for_events(driver: &mut Driver, inbox: &Receiver<Event>) {
    let first = if driver.app().is_busy() {
        match inbox.recv_timeout(Duration::from_millis(100)) {
            Ok(event) => Some(event),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Event::Terminate),
        }
    } else {
        Some(inbox.recv().unwrap_or(Event::Terminate))
    };
    driver.tick();
    for event in first.into_iter().chain(inbox.try_iter()) {
        driver.handle(event);
        if driver.app().quit() {
            return;
        }
    }
}

/// What decides whether the screen must be cleared before a frame: the layout, the help
/// overlay, the size of each image drawn.
pub type Screen = (Option<ui::Layout>, bool, Vec<(u16, u16)>);

/// One frame of the whole terminal (see [`draw_frame`]).
fn draw(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    driver: &Driver,
    last_layout: &mut Option<Screen>,
) -> io::Result<()> {
    let size = terminal.size()?;
    let area = Rect::new(0, 0, size.width, size.height);
    draw_frame(terminal, area, driver, last_layout)
}

/// One frame of `area` inside a synchronized update, every byte written through `terminal`'s
/// writer (stdout, or a test's capture). When the layout or an image's size changes, the
/// screen is cleared first: a terminal image stays on the glass until something covers it.
pub fn draw_frame<W: Write>(
    terminal: &mut Terminal<CrosstermBackend<W>>,
    area: Rect,
    driver: &Driver,
    last_layout: &mut Option<Screen>,
) -> io::Result<()> {
    let app = driver.app();
    let panes = ui::layout(area, app);
    let image_sizes = panes
        .iter()
        .flat_map(|l| l.panes.iter())
        .filter_map(|pane| {
            let wanted = images::wanted_key(app, pane.plane, pane.image);
            let protocol = driver.images().for_pane(wanted, pane.plane)?;
            Some((protocol.size().width, protocol.size().height))
        });
    let layout = (panes.clone(), app.help(), image_sizes.collect());
    execute!(terminal.backend_mut(), BeginSynchronizedUpdate)?;
    if last_layout.as_ref() != Some(&layout) {
        // Not `Terminal::clear`: it asks the terminal for the cursor position, and the input
        // thread would take the answer. A blank frame makes the next one redraw every cell.
        execute!(terminal.backend_mut(), Clear(ClearType::All))?;
        terminal.draw(|frame| frame.render_widget(ratatui::widgets::Clear, frame.area()))?;
        *last_layout = Some(layout);
    }
    let drawn = terminal
        .draw(|frame| ui::draw(frame, driver.app(), driver.images()))
        .map(|_| ());
    execute!(terminal.backend_mut(), EndSynchronizedUpdate)?;
    drawn
}

/// Raw mode, alternate screen, mouse. A panic that ends the process restores the terminal
/// before it prints; a panic that is caught (a request's error) touches nothing.
fn enter() -> io::Result<Terminal<CrosstermBackend<io::Stdout>>> {
    crate::panics::on_fatal(Some(leave));
    crossterm::terminal::enable_raw_mode()?;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    Terminal::new(CrosstermBackend::new(io::stdout()))
}

/// Restores the terminal; safe to call more than once.
pub fn leave() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        cursor::Show
    );
    let _ = io::stdout().flush();
}

/// The terminal's graphics protocol: asked of the terminal (before the input reader
/// starts, which would swallow the answers), or as configured. Inside tmux without
/// passthrough, images fall back to halfblocks and the status line says why.
fn detect_graphics(choice: ProtocolChoice) -> Graphics {
    let mut picker = Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks());
    let mut note = None;
    match choice {
        ProtocolChoice::Auto => {}
        ProtocolChoice::Halfblocks => picker.set_protocol_type(ProtocolType::Halfblocks),
        ProtocolChoice::Sixel => picker.set_protocol_type(ProtocolType::Sixel),
        ProtocolChoice::Kitty => picker.set_protocol_type(ProtocolType::Kitty),
        ProtocolChoice::Iterm2 => picker.set_protocol_type(ProtocolType::Iterm2),
    }
    if picker.tmux_detected()
        && picker.protocol_type() != ProtocolType::Halfblocks
        && !tmux_passthrough_on()
    {
        picker.set_protocol_type(ProtocolType::Halfblocks);
        note = Some("tmux allow-passthrough is off: halfblocks".into());
    }
    let mut name = protocol_name(picker.protocol_type()).to_string();
    if picker.tmux_detected() {
        name.push_str(" via tmux");
    }
    Graphics { picker, name, note }
}

pub fn protocol_name(protocol: ProtocolType) -> &'static str {
    match protocol {
        ProtocolType::Halfblocks => "halfblocks",
        ProtocolType::Sixel => "sixel",
        ProtocolType::Kitty => "kitty",
        ProtocolType::Iterm2 => "iTerm2",
    }
}

fn tmux_passthrough_on() -> bool {
    std::process::Command::new("tmux")
        .args(["show", "-Apv", "allow-passthrough"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .is_some_and(|value| value == "on" || value == "all")
}

/// Terminal input on a thread of its own; it ends with the process.
fn spawn_input(events: Sender<Event>) -> io::Result<()> {
    std::thread::Builder::new()
        .name("kneecam-input".into())
        .spawn(move || loop {
            let event = match crossterm::event::read() {
                Ok(crossterm::event::Event::Key(key)) => Event::Key(key),
                Ok(crossterm::event::Event::Mouse(mouse)) => Event::Mouse(mouse),
                Ok(crossterm::event::Event::Resize(w, h)) => Event::Resize(w, h),
                Ok(_) => continue,
                Err(_) => Event::Terminate,
            };
            if events.send(event).is_err() {
                return;
            }
        })?;
    Ok(())
}

/// SIGTERM, SIGHUP (an SSH drop) and SIGINT end the loop like `q`, so the terminal is
/// restored. Only one handler can exist per process; if one does, signals keep their
/// default action.
fn spawn_signals(events: Sender<Event>) {
    let events = std::sync::Mutex::new(events);
    let _ = ctrlc::set_handler(move || {
        if let Ok(events) = events.lock() {
            let _ = events.send(Event::Terminate);
        }
    });
}
