//! The 1-Click Publish window: an interactive terminal window driven by the events of
//! `xif-studio`. The operation log, the details of the selected line, a progress bar with the
//! five stage markers, and the buttons Verify Again, Save, Upload, Publish and Close (keys and
//! mouse). A server selection dialog when not connected; `--watch` verifies again when a file
//! changes after errors. The terminal is restored on exit, on panic and on signals.

mod draw;
mod state;

use std::io::Stdout;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, Event as TerminalEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEventKind,
};
use ratatui::crossterm::{cursor, execute, terminal};
use xif_studio::{Achieved, CancellationToken, Goal, StopReason, Stopped};

use crate::commands::login::Resolved;
use crate::{Exit, output};
use state::{Button, ConnectDialog, Field, LogLine, RunState, WindowState};
pub use state::{achieved_text, seconds};

/// At most this often, while anything changes.
const FRAME: Duration = Duration::from_millis(16);
/// At least this often, while a run is under way: 40 frames a second, comfortably over 30.
const TICK: Duration = Duration::from_millis(25);

/// How the window runs.
#[derive(Debug, Clone)]
pub struct WindowOptions {
    /// The project directory.
    pub project: PathBuf,
    /// What the first run does.
    pub goal: Goal,
    /// How Compile runs.
    pub build: xif_project::BuildOptions,
    /// Where Save writes.
    pub archive: Option<PathBuf>,
    /// The server, when connected.
    pub connection: Option<Resolved>,
    /// A CA certificate for the connection dialog's logins.
    pub ca_cert: Option<PathBuf>,
    /// Verify again by itself when a file changes after errors.
    pub watch: bool,
    /// Close the window once a run has finished without errors.
    pub close_when_done: bool,
    /// A minisign secret key to sign the XIF with; the upload carries the signature.
    pub sign: Option<PathBuf>,
}

enum Input {
    Terminal(TerminalEvent),
    Pipeline(xif_studio::Event),
    Ended(Result<Achieved, Stopped>),
    Login(Result<Resolved, String>),
    Changed,
    Signal,
}

type Inputs = tokio::sync::mpsc::UnboundedSender<Input>;

/// Puts the terminal back as it was: raw mode off, the normal screen, the cursor, no mouse.
fn restore() {
    // Nothing more can be done about a terminal that cannot be restored.
    terminal::disable_raw_mode().ok();
    execute!(std::io::stdout(), event::DisableMouseCapture, terminal::LeaveAlternateScreen, cursor::Show).ok();
}

/// Restores the terminal when dropped, whatever ends the window.
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

fn enter() -> anyhow::Result<(TerminalGuard, Terminal<CrosstermBackend<Stdout>>)> {
    terminal::enable_raw_mode()?;
    let guard = TerminalGuard;
    execute!(std::io::stdout(), terminal::EnterAlternateScreen, event::EnableMouseCapture, cursor::Hide)?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    Ok((guard, Terminal::new(CrosstermBackend::new(std::io::stdout()))?))
}

/// Opens the window, runs `options.goal`, and returns the exit code of the last run when the
/// user closes it.
pub fn run(options: WindowOptions) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let color = output::stderr_color() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let server = options.connection.as_ref().map(|connection| connection.server.clone());
    let mut window = Window {
        state: WindowState::new(xif_project::shown(&options.project), server, color, options.watch),
        options,
        cancel: None,
        closing: false,
        quit: false,
        pending: None,
        verify_again_at: None,
        exit: Exit::Success,
        inputs: None,
    };
    let (guard, mut terminal) = enter()?;
    let stats = runtime.block_on(window.run_loop(&mut terminal))?;
    drop(terminal);
    drop(guard);
    // The alternate screen is gone: leave the outcome on the normal one.
    if let Some(LogLine::End { ok, text }) = window.state.lines.last() {
        output::eprint(&format!("{}{text}\n", if *ok { "" } else { "error: " }));
    }
    if let Some(path) = std::env::var_os("XIF_WINDOW_STATS") {
        std::fs::write(&path, stats.to_string())?;
    }
    Ok(window.exit)
}

struct Window {
    state: WindowState,
    options: WindowOptions,
    cancel: Option<CancellationToken>,
    /// Close once the run ends (the user confirmed).
    closing: bool,
    quit: bool,
    /// The goal to run once connected.
    pending: Option<Goal>,
    /// When to verify again after a change (`--watch`), a moment after the last change.
    verify_again_at: Option<tokio::time::Instant>,
    exit: Exit,
    inputs: Option<Inputs>,
}

impl Window {
    async fn run_loop(
        &mut self,
        terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    ) -> anyhow::Result<serde_json::Value> {
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        self.inputs = Some(sender.clone());
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (sender, stop) = (sender.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match event::poll(Duration::from_millis(100)) {
                        Ok(true) => match event::read() {
                            Ok(read) => {
                                if sender.send(Input::Terminal(read)).is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        },
                        Ok(false) => {}
                        Err(_) => return,
                    }
                }
            })
        };
        {
            let sender = sender.clone();
            tokio::spawn(async move {
                crate::commands::server::shutdown_signal().await;
                sender.send(Input::Signal).ok();
            });
        }
        let _watcher = if self.options.watch { watch(&self.options.project, sender.clone()) } else { None };

        if self.options.connection.is_none() && self.options.goal != Goal::Save {
            self.pending = Some(self.options.goal);
            self.state.connect = Some(ConnectDialog::new(crate::commands::login::history()));
        } else {
            self.start(self.options.goal);
        }

        let started = Instant::now();
        let (mut frames, mut frames_running, mut running_time) = (0u64, 0u64, Duration::ZERO);
        let mut running_since: Option<tokio::time::Instant> = None;
        let mut tick = 0u64;
        let mut dirty = true;
        let mut last_draw = tokio::time::Instant::now() - TICK;
        loop {
            let now = tokio::time::Instant::now();
            // How long runs were under way, for the redraw rate in the stats.
            match (running_since, self.state.run == RunState::Running) {
                (None, true) => running_since = Some(now),
                (Some(since), false) => {
                    running_time += now - since;
                    running_since = None;
                }
                _ => {}
            }
            if dirty && now >= last_draw + FRAME {
                if running_since.is_some() {
                    frames_running += 1;
                }
                terminal.draw(|frame| draw::draw(frame, &self.state, Instant::now(), tick))?;
                frames += 1;
                last_draw = now;
                dirty = false;
            }
            if self.quit {
                break;
            }
            let running = self.state.run == RunState::Running;
            let wake = if dirty {
                Some(last_draw + FRAME)
            } else if running {
                Some(last_draw + TICK)
            } else {
                self.verify_again_at
            };
            let input = match wake {
                Some(deadline) => tokio::select! {
                    input = receiver.recv() => input,
                    () = tokio::time::sleep_until(deadline) => {
                        if running {
                            tick += 1;
                            dirty = true;
                        }
                        if self.verify_again_at.is_some_and(|at| at <= tokio::time::Instant::now()) {
                            self.verify_again_at = None;
                            if self.state.enabled(Button::VerifyAgain) {
                                self.start(Goal::Publish);
                                dirty = true;
                            }
                        }
                        continue;
                    }
                },
                None => receiver.recv().await,
            };
            let Some(input) = input else { break };
            self.handle(
                input,
                terminal
                    .size()
                    .map(|size| ratatui::layout::Rect::new(0, 0, size.width, size.height))
                    .unwrap_or_default(),
            );
            dirty = true;
        }
        // The reader sees the flag within its poll interval; the window does not wait for it
        // (that would add up to a tenth of a second to every close), and the process's end
        // stops it in any case.
        stop.store(true, Ordering::Relaxed);
        drop(reader);
        Ok(serde_json::json!({
            "frames": frames,
            "seconds": started.elapsed().as_secs_f64(),
            "frames_while_running": frames_running,
            "seconds_running": running_time.as_secs_f64(),
        }))
    }

    fn start(&mut self, goal: Goal) {
        let connection = match &self.options.connection {
            Some(connection) => Some(connection.clone()),
            None if goal == Goal::Save => None,
            None => {
                self.pending = Some(goal);
                self.state.connect = Some(ConnectDialog::new(crate::commands::login::history()));
                return;
            }
        };
        let options = xif_studio::Options {
            project: self.options.project.clone(),
            goal,
            build: self.options.build.clone(),
            archive: self.options.archive.clone(),
            sign: self.options.sign.clone(),
            connection: connection.map(|Resolved { server, token, ca_certificate }| xif_studio::Connection {
                server,
                token,
                ca_certificate,
            }),
        };
        let cancel = CancellationToken::new();
        self.cancel = Some(cancel.clone());
        self.state.run = RunState::Running;
        let Some(inputs) = self.inputs.clone() else { return };
        tokio::spawn(async move {
            let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
            let forwarded = {
                let inputs = inputs.clone();
                tokio::spawn(async move {
                    while let Some(event) = received.recv().await {
                        inputs.send(Input::Pipeline(event)).ok();
                    }
                })
            };
            let outcome = xif_studio::run(&options, &events, &cancel).await;
            drop(events);
            forwarded.await.ok();
            inputs.send(Input::Ended(outcome)).ok();
        });
    }

    fn press(&mut self, button: Button) {
        if !self.state.enabled(button) {
            return;
        }
        match button {
            Button::Close => {
                if self.state.run == RunState::Running {
                    self.state.confirm_close = true;
                } else {
                    self.quit = true;
                }
            }
            Button::VerifyAgain => self.start(Goal::Publish),
            Button::Save => self.start(Goal::Save),
            Button::Upload => self.start(Goal::Upload),
            Button::Publish => match self.state.uploaded {
                Some(version) => self.start(Goal::PublishVersion(version)),
                None => self.start(Goal::Publish),
            },
        }
    }

    fn handle(&mut self, input: Input, area: ratatui::layout::Rect) {
        match input {
            Input::Pipeline(event) => self.state.apply(&event, Instant::now()),
            Input::Ended(outcome) => {
                self.cancel = None;
                self.exit = crate::commands::publish::exit_code(&outcome);
                if self.closing || (self.options.close_when_done && outcome.is_ok()) {
                    self.quit = true;
                }
            }
            Input::Login(result) => match result {
                Ok(resolved) => {
                    self.state.server = Some(resolved.server.clone());
                    self.options.connection = Some(resolved);
                    self.state.connect = None;
                    if let Some(goal) = self.pending.take() {
                        self.start(goal);
                    }
                }
                Err(message) => {
                    if let Some(dialog) = &mut self.state.connect {
                        dialog.busy = false;
                        dialog.error = Some(message);
                        dialog.password.clear();
                        dialog.field = Some(Field::Password);
                    }
                }
            },
            Input::Changed => {
                if self.state.watching && self.state.run == RunState::Stopped(StopReason::Errors) {
                    self.verify_again_at = Some(tokio::time::Instant::now() + Duration::from_millis(300));
                }
            }
            Input::Signal => {
                if let Some(cancel) = &self.cancel {
                    cancel.cancel();
                }
                self.exit = Exit::Cancelled;
                self.quit = true;
            }
            Input::Terminal(TerminalEvent::Key(key)) if key.kind != KeyEventKind::Release => self.key(key),
            Input::Terminal(TerminalEvent::Mouse(mouse)) => {
                if self.state.connect.is_some() || self.state.confirm_close {
                    return;
                }
                match mouse.kind {
                    MouseEventKind::Down(MouseButton::Left) => {
                        let parts = draw::areas(area);
                        let position = ratatui::layout::Position { x: mouse.column, y: mouse.row };
                        if let Some((button, _)) = parts.buttons.iter().find(|(_, rect)| rect.contains(position)) {
                            self.press(*button);
                        } else if parts.log.contains(position) {
                            let inner_top = parts.log.y + 1;
                            let height = usize::from(parts.log.height.saturating_sub(2));
                            let first =
                                if self.state.selected >= height { self.state.selected + 1 - height } else { 0 };
                            if mouse.row >= inner_top {
                                let index = first + usize::from(mouse.row - inner_top);
                                if index < self.state.lines.len() {
                                    self.state.select(index);
                                }
                            }
                        }
                    }
                    MouseEventKind::ScrollDown => self.state.select(self.state.selected + 1),
                    MouseEventKind::ScrollUp => self.state.select(self.state.selected.saturating_sub(1)),
                    _ => {}
                }
            }
            Input::Terminal(_) => {}
        }
    }

    fn key(&mut self, key: KeyEvent) {
        let control_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
        if self.state.confirm_close {
            match key.code {
                KeyCode::Char('y' | 'Y') => {
                    self.state.confirm_close = false;
                    self.closing = true;
                    match &self.cancel {
                        Some(cancel) => cancel.cancel(),
                        None => self.quit = true,
                    }
                }
                _ if control_c => {
                    self.closing = true;
                    if let Some(cancel) = &self.cancel {
                        cancel.cancel();
                    }
                }
                KeyCode::Char('n' | 'N') | KeyCode::Esc => self.state.confirm_close = false,
                _ => {}
            }
            return;
        }
        if let Some(dialog) = &mut self.state.connect {
            if dialog.busy {
                return;
            }
            match key.code {
                _ if control_c => {
                    self.quit = true;
                    self.exit = Exit::CouldNotRun;
                    self.state
                        .lines
                        .push(LogLine::End { ok: false, text: crate::commands::login::NOT_CONNECTED.to_owned() });
                }
                KeyCode::Esc => {
                    self.state.connect = None;
                    if self.options.connection.is_none() && self.state.run == RunState::Idle {
                        self.quit = true;
                        self.exit = Exit::CouldNotRun;
                        self.state
                            .lines
                            .push(LogLine::End { ok: false, text: crate::commands::login::NOT_CONNECTED.to_owned() });
                    }
                }
                KeyCode::Tab | KeyCode::Down if !(key.code == KeyCode::Down && dialog.field == Some(Field::Server)) => {
                    dialog.move_field(true);
                }
                KeyCode::BackTab => dialog.move_field(false),
                KeyCode::Down => dialog.cycle_history(true),
                KeyCode::Up if dialog.field == Some(Field::Server) => dialog.cycle_history(false),
                KeyCode::Up => dialog.move_field(false),
                KeyCode::Backspace => {
                    if let Some(text) = dialog.current() {
                        text.pop();
                    }
                }
                KeyCode::Enter if dialog.field != Some(Field::Password) => dialog.move_field(true),
                KeyCode::Enter => {
                    dialog.busy = true;
                    dialog.error = None;
                    let (server, user, password) =
                        (dialog.server.clone(), dialog.user.clone(), dialog.password.clone());
                    let ca_cert = self.options.ca_cert.clone();
                    if let Some(inputs) = self.inputs.clone() {
                        tokio::spawn(async move {
                            let result = crate::commands::login::perform_login(&server, &user, &password, ca_cert)
                                .await
                                .map_err(|error| format!("{error:#}"));
                            inputs.send(Input::Login(result)).ok();
                        });
                    }
                }
                KeyCode::Char(character) => {
                    if let Some(text) = dialog.current() {
                        text.push(character);
                    }
                }
                _ => {}
            }
            return;
        }
        if control_c {
            self.press(Button::Close);
            return;
        }
        match key.code {
            KeyCode::Up => self.state.select(self.state.selected.saturating_sub(1)),
            KeyCode::Down => self.state.select(self.state.selected + 1),
            KeyCode::PageUp => self.state.select(self.state.selected.saturating_sub(10)),
            KeyCode::PageDown => self.state.select(self.state.selected + 10),
            KeyCode::Home => self.state.select(0),
            KeyCode::End => self.state.select(usize::MAX),
            KeyCode::Esc => self.press(Button::Close),
            KeyCode::Char(character) => {
                let character = character.to_ascii_lowercase();
                if let Some(button) = Button::ALL.into_iter().find(|button| button.key() == character) {
                    self.press(button);
                }
            }
            _ => {}
        }
    }
}

/// Watches the definition and the author's source files; generated bindings and build output
/// are not the author's changes. `None` when the platform cannot watch (then `--watch` does
/// nothing, and the window says so through its log).
fn watch(project: &std::path::Path, inputs: Inputs) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let root = project.canonicalize().ok()?;
    let source = root.join("src");
    let definition = root.join(xif_project::DEFINITION_FILE);
    let bindings = root.join(xif_project::BINDINGS_FILE);
    let manifest = root.join("Cargo.toml");
    let watched_source = source.clone();
    let mut watcher = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
        let Ok(event) = result else { return };
        if matches!(event.kind, notify::EventKind::Access(_)) {
            return;
        }
        let relevant = event.paths.iter().any(|path| {
            *path == definition
                || *path == manifest
                || (path.starts_with(&source) && *path != bindings && !path.to_string_lossy().ends_with(".bak"))
        });
        if relevant {
            inputs.send(Input::Changed).ok();
        }
    })
    .ok()?;
    watcher.watch(&root, notify::RecursiveMode::NonRecursive).ok()?;
    if watched_source.is_dir() {
        watcher.watch(&watched_source, notify::RecursiveMode::Recursive).ok()?;
    }
    Some(watcher)
}
