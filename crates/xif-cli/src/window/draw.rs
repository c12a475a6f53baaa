//! Drawing the window from its state. Every line carries a label or symbol, so that nothing
//! depends on colour; colours are added only when `NO_COLOR` is unset.

use std::time::Instant;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use xif_studio::{Stage, Step};

use super::state::{Button, Field, LogLine, RunState, StageState, WindowState, seconds};

/// Where each part of the window is, for drawing and for mouse clicks.
pub struct Areas {
    /// The operation log, inside its border.
    pub log: Rect,
    /// The details of the selected line.
    pub details: Rect,
    /// The progress bar.
    pub progress: Rect,
    /// Each button and where it is.
    pub buttons: Vec<(Button, Rect)>,
}

/// The layout for a terminal of `area`.
pub fn areas(area: Rect) -> Areas {
    let [log, details, progress, buttons] =
        Layout::vertical([Constraint::Fill(5), Constraint::Fill(4), Constraint::Length(4), Constraint::Length(1)])
            .areas(area);
    let mut x = buttons.x + 1;
    let mut placed = Vec::new();
    for button in Button::ALL {
        let width = u16::try_from(button_text(button).chars().count()).unwrap_or(u16::MAX);
        if x + width > buttons.x + buttons.width {
            break;
        }
        placed.push((button, Rect { x, y: buttons.y, width, height: 1 }));
        x += width + 2;
    }
    Areas { log, details, progress, buttons: placed }
}

fn button_text(button: Button) -> String {
    format!("[{}] {}", button.key(), button.label())
}

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, color: Color) -> Style {
        if self.color { Style::default().fg(color) } else { Style::default() }
    }
}

fn stage_label(state: StageState) -> &'static str {
    match state {
        StageState::Pending => "[    ]",
        StageState::Running => "[....]",
        StageState::Done => "[ok]  ",
        StageState::Skipped => "[skip]",
        StageState::Failed => "[FAIL]",
    }
}

fn stage_color(state: StageState) -> Color {
    match state {
        StageState::Pending => Color::DarkGray,
        StageState::Running => Color::Cyan,
        StageState::Done => Color::Green,
        StageState::Skipped => Color::Blue,
        StageState::Failed => Color::Red,
    }
}

/// One line of the log as shown.
fn log_line<'a>(line: &'a LogLine, theme: &Theme, spinner: char) -> Line<'a> {
    match line {
        LogLine::Stage { stage, state, millis, summary } => {
            let time = millis.map(seconds).unwrap_or_else(|| format!("{spinner}"));
            Line::from(vec![
                Span::styled(stage_label(*state), theme.fg(stage_color(*state)).add_modifier(Modifier::BOLD)),
                Span::raw(format!(" {:<8}{time:>7}  ", stage.title())),
                Span::raw(summary.as_str()),
            ])
        }
        LogLine::Diagnostic { report, .. } => {
            let (label, color) = if report.is_error() { ("  ERROR ", Color::Red) } else { ("  WARN  ", Color::Yellow) };
            let location = match (report.line, report.column) {
                (Some(line), Some(column)) => format!(" ({}:{line}:{column})", report.file),
                _ => String::new(),
            };
            Line::from(vec![
                Span::styled(label, theme.fg(color).add_modifier(Modifier::BOLD)),
                Span::raw(format!("{} {}{location}", report.code, report.message)),
            ])
        }
        LogLine::Impact { consumer } => Line::from(vec![
            Span::styled("  IMPACT ", theme.fg(Color::Magenta).add_modifier(Modifier::BOLD)),
            Span::raw(format!("module `{}` is {}", consumer.module, consumer.impact)),
        ]),
        LogLine::Note { text } => Line::from(vec![Span::raw("  note   "), Span::raw(text.as_str())]),
        LogLine::End { ok, text } => {
            let (label, color) = if *ok { ("DONE  ", Color::Green) } else { ("STOP  ", Color::Red) };
            Line::from(vec![
                Span::styled(label, theme.fg(color).add_modifier(Modifier::BOLD)),
                Span::raw(" "),
                Span::raw(text.as_str()),
            ])
        }
    }
}

fn details(line: Option<&LogLine>) -> Text<'_> {
    let Some(line) = line else {
        return Text::from("Select a line of the operation log (↑/↓ or a click) to see it here.");
    };
    match line {
        LogLine::Stage { stage, state, millis, summary } => {
            let state = match state {
                StageState::Pending => "not started",
                StageState::Running => "under way",
                StageState::Done => "done",
                StageState::Skipped => "skipped: nothing needed doing",
                StageState::Failed => "failed: the run stopped here",
            };
            let mut text = Text::from(format!("{}: {state}", stage.title()));
            if let Some(millis) = millis {
                text.push_line(format!("took {}", seconds(*millis)));
            }
            if !summary.is_empty() {
                text.push_line(summary.clone());
            }
            text
        }
        LogLine::Diagnostic { report, .. } => {
            let mut text = Text::default();
            for line in report.rendered.lines() {
                text.push_line(line.to_owned());
            }
            text.push_line(format!("explain it with `xif explain {}`", report.code));
            text
        }
        LogLine::Impact { consumer } => {
            let mut text = Text::from(format!(
                "module `{}` (built against version {}) is {}",
                consumer.module, consumer.built_against, consumer.impact
            ));
            for change in &consumer.changes {
                text.push_line(format!("  - {change}"));
            }
            text
        }
        LogLine::Note { text } | LogLine::End { text, .. } => Text::from(text.clone()),
    }
}

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

/// Draws the whole window.
pub fn draw(frame: &mut Frame<'_>, state: &WindowState, now: Instant, tick: u64) {
    let theme = Theme { color: state.color };
    let area = frame.area();
    let parts = areas(area);
    let spinner = SPINNER[usize::try_from(tick % 4).unwrap_or_default()];

    // Operation log.
    let to = state.server.as_deref().map(|server| format!(" → {server}")).unwrap_or_default();
    let title = format!(" 1-Click Publish · {}{to} ", state.project);
    let block = Block::bordered().title(Span::styled(title, Style::default().add_modifier(Modifier::BOLD)));
    let inner = block.inner(parts.log);
    frame.render_widget(block, parts.log);
    let height = usize::from(inner.height);
    let first = if state.selected >= height { state.selected + 1 - height } else { 0 };
    let lines: Vec<Line<'_>> = state
        .lines
        .iter()
        .enumerate()
        .skip(first)
        .take(height)
        .map(|(index, line)| {
            let shown = log_line(line, &theme, spinner);
            if index == state.selected {
                let mut shown = shown.style(Style::default().add_modifier(Modifier::REVERSED));
                shown.spans.insert(0, Span::raw("›"));
                shown
            } else {
                let mut shown = shown;
                shown.spans.insert(0, Span::raw(" "));
                shown
            }
        })
        .collect();
    let empty = if state.lines.is_empty() && state.run == RunState::Idle {
        vec![Line::from(" Waiting to start.")]
    } else {
        Vec::new()
    };
    frame.render_widget(Paragraph::new(if lines.is_empty() { empty } else { lines }), inner);

    // Details.
    let block = Block::bordered().title(" Details ");
    let inner = block.inner(parts.details);
    frame.render_widget(block, parts.details);
    frame.render_widget(Paragraph::new(details(state.lines.get(state.selected))).wrap(Wrap { trim: false }), inner);

    // Progress: five stage markers, Verify's sub-steps, the upload's bytes.
    let block = Block::bordered().title(" Progress ");
    let inner = block.inner(parts.progress);
    frame.render_widget(block, parts.progress);
    let mut markers = Vec::new();
    for (index, stage) in Stage::ALL.iter().enumerate() {
        if index > 0 {
            markers.push(Span::raw(" ─ "));
        }
        let stage_state = state.stages[index];
        let symbol = match stage_state {
            StageState::Pending => "·",
            StageState::Running => "▶",
            StageState::Done => "✔",
            StageState::Skipped => "–",
            StageState::Failed => "✘",
        };
        let mut style = theme.fg(stage_color(stage_state));
        if stage_state == StageState::Running {
            style = style.add_modifier(Modifier::BOLD | Modifier::REVERSED);
        }
        let name = if stage_state == StageState::Running {
            format!("{symbol} {} ", stage.title().to_uppercase())
        } else {
            format!("{symbol} {}", stage.title())
        };
        markers.push(Span::styled(name, style));
    }
    let detail = progress_detail(state, now, inner.width);
    frame.render_widget(Paragraph::new(vec![Line::from(markers), detail]), inner);

    // Buttons.
    for (button, rect) in &parts.buttons {
        let enabled = state.enabled(*button);
        let style = if enabled {
            theme.fg(Color::White).add_modifier(Modifier::BOLD)
        } else {
            theme.fg(Color::DarkGray).add_modifier(Modifier::DIM)
        };
        let text = if enabled { button_text(*button) } else { format!("[-] {}", button.label()) };
        frame.render_widget(Paragraph::new(Span::styled(text, style)), *rect);
    }

    if state.confirm_close {
        let dialog = centered(area, 52, 5);
        frame.render_widget(Clear, dialog);
        let block = Block::bordered().title(" Close ");
        let inner = block.inner(dialog);
        frame.render_widget(block, dialog);
        frame.render_widget(
            Paragraph::new(vec![
                Line::from("A run is under way. Cancel it and close?"),
                Line::from(""),
                Line::from("[y] cancel and close    [n] keep running"),
            ]),
            inner,
        );
    }
    if let Some(connect) = &state.connect {
        draw_connect(frame, area, connect, &theme);
    }
}

fn progress_detail(state: &WindowState, now: Instant, width: u16) -> Line<'static> {
    if state.stages[0] == StageState::Running {
        let mut spans = vec![Span::raw("Verify: ")];
        for (index, step) in [Step::Definition, Step::UpdateSource, Step::Compile].into_iter().enumerate() {
            if index > 0 {
                spans.push(Span::raw(" · "));
            }
            let position = |candidate: Option<Step>| match candidate {
                Some(Step::Definition) => 0,
                Some(Step::UpdateSource) => 1,
                Some(Step::Compile) => 2,
                None => 3,
            };
            let (mark, style) = match position(state.step).cmp(&index) {
                std::cmp::Ordering::Greater => ("✔ ", Style::default()),
                std::cmp::Ordering::Equal => ("▶ ", Style::default().add_modifier(Modifier::BOLD)),
                std::cmp::Ordering::Less => ("· ", Style::default()),
            };
            spans.push(Span::styled(format!("{mark}{}", step.title()), style));
        }
        if let Some(krate) = &state.compiling {
            spans.push(Span::raw(format!("  ({krate})")));
        }
        return Line::from(spans);
    }
    if let Some((sent, total, _)) = state.upload
        && state.stages[2] == StageState::Running
    {
        let rate = state.rate(now).unwrap_or_default();
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a rate in bytes per second")]
        let rate = crate::output::bytes(rate as u64);
        let figures = format!(" {} / {}  {rate}/s", crate::output::bytes(sent), crate::output::bytes(total));
        // "Upload [" and "]" around the bar.
        let bar_width = usize::from(width).saturating_sub(figures.chars().count() + 9).max(10);
        let filled = if total == 0 {
            bar_width
        } else {
            usize::try_from(u128::from(sent) * bar_width as u128 / u128::from(total)).unwrap_or(bar_width)
        };
        return Line::from(format!(
            "Upload [{}{}]{figures}",
            "=".repeat(filled.min(bar_width)),
            " ".repeat(bar_width - filled.min(bar_width))
        ));
    }
    let text = match &state.run {
        RunState::Idle => "Not started.".to_owned(),
        RunState::Running => String::new(),
        RunState::Finished(achieved) => super::state::achieved_text(achieved),
        RunState::Stopped(xif_studio::StopReason::Errors) => {
            if state.watching {
                "Stopped on errors: fix them; Verify Again starts when a file changes ([v] to start now).".to_owned()
            } else {
                "Stopped on errors: fix them, then press [v] Verify Again.".to_owned()
            }
        }
        RunState::Stopped(_) => "Stopped: see the last line of the log.".to_owned(),
    };
    Line::from(text)
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect { x: area.x + (area.width - width) / 2, y: area.y + (area.height - height) / 2, width, height }
}

fn draw_connect(frame: &mut Frame<'_>, area: Rect, connect: &super::state::ConnectDialog, theme: &Theme) {
    let height = 10 + u16::try_from(connect.history.len().min(3)).unwrap_or_default();
    let dialog = centered(area, 70, height);
    frame.render_widget(Clear, dialog);
    let block = Block::bordered().title(" Select a Platform Server ").borders(Borders::ALL);
    let inner = block.inner(dialog);
    frame.render_widget(block, dialog);
    let field = |label: &str, value: String, which: Field| {
        let active = connect.field == Some(which);
        let cursor = if active { "_" } else { "" };
        let style = if active { Style::default().add_modifier(Modifier::BOLD) } else { Style::default() };
        Line::from(vec![
            Span::styled(format!("{} {label:<10}", if active { "›" } else { " " }), style),
            Span::raw(format!("{value}{cursor}")),
        ])
    };
    let mut lines = vec![
        field("Server", connect.server.clone(), Field::Server),
        field("User", connect.user.clone(), Field::User),
        field("Password", "•".repeat(connect.password.chars().count()), Field::Password),
        Line::from(""),
    ];
    if !connect.history.is_empty() {
        lines.push(Line::from("Used before (↑/↓ in Server):"));
        for (server, user) in connect.history.iter().take(3) {
            lines.push(Line::from(format!("  {server} as {user}")));
        }
    }
    if connect.busy {
        lines.push(Line::from("Logging in…"));
    } else if let Some(error) = &connect.error {
        lines.push(Line::from(Span::styled(format!("ERROR {error}"), theme.fg(Color::Red))));
    }
    lines.push(Line::from("[Tab] next field  [Enter] log in  [Esc] close"));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

#[cfg(test)]
mod tests {
    //! The window's screen in each state, at 80×24, drawn from the events a real run sends.

    use std::time::{Duration, Instant};

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use xif_studio::{Achieved, DiagnosticReport, Event, Stage, StageOutcome, Step, StopReason};

    use super::super::state::{ConnectDialog, WindowState};

    fn screen(state: &WindowState, now: Instant) -> String {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal.draw(|frame| super::draw(frame, state, now, 0)).expect("drawn");
        terminal.backend().to_string()
    }

    fn window(events: &[Event], now: Instant) -> WindowState {
        let mut state = WindowState::new("Greeter".into(), Some("https://platform.example:8180".into()), false, false);
        for event in events {
            state.apply(event, now);
        }
        state
    }

    fn started() -> Event {
        Event::Started {
            project: "Greeter".into(),
            server: Some("https://platform.example:8180".into()),
            stages: Stage::ALL.to_vec(),
        }
    }

    fn finished(stage: Stage, millis: u64, summary: &str) -> Event {
        Event::StageFinished { stage, outcome: StageOutcome::Done, summary: summary.into(), millis }
    }

    fn diagnostic(severity: &str, code: &str, message: &str, line: usize) -> Event {
        Event::Diagnostic {
            stage: Stage::Verify,
            diagnostic: DiagnosticReport {
                severity: severity.into(),
                code: code.into(),
                title: String::new(),
                message: message.into(),
                file: "extension.toml".into(),
                line: Some(line),
                column: Some(8),
                help: Some("the data types are Text, Integer, Boolean, …".into()),
                rendered: format!(
                    "{severity}[{code}]: {message}\n  --> extension.toml:{line}:8\n   |\n{line} | type = \"Bool\"\n   |        ^^^^^^\n   |\n   = help: the data types are Text, Integer, Boolean, …\n"
                ),
            },
        }
    }

    fn verified() -> Vec<Event> {
        vec![
            started(),
            Event::StageStarted { stage: Stage::Verify },
            Event::Step { step: Step::Definition },
            Event::Step { step: Step::UpdateSource },
            Event::Step { step: Step::Compile },
            finished(Stage::Verify, 412, "`Greeter` 0.1.0: 0 errors, 0 warnings, up to date"),
            Event::StageStarted { stage: Stage::Save },
            finished(Stage::Save, 61, "target/xif/Greeter.xif, 335.3 KiB, 7 entries"),
        ]
    }

    #[test]
    fn running_verify_shows_its_sub_steps() {
        let now = Instant::now();
        let state = window(
            &[
                started(),
                Event::StageStarted { stage: Stage::Verify },
                Event::Step { step: Step::Definition },
                Event::Step { step: Step::UpdateSource },
                Event::Step { step: Step::Compile },
                Event::Compiling { krate: "greeter".into() },
            ],
            now,
        );
        insta::assert_snapshot!("running", screen(&state, now));
    }

    #[test]
    fn stopped_on_errors_selects_the_first_error_and_enables_verify_again() {
        let now = Instant::now();
        let state = window(
            &[
                started(),
                Event::StageStarted { stage: Stage::Verify },
                Event::Step { step: Step::Definition },
                diagnostic("error", "XE0201", "unknown data type `Bool` for input `Formal` of action `Greet`", 24),
                Event::StageFinished {
                    stage: Stage::Verify,
                    outcome: StageOutcome::Failed,
                    summary: "errors".into(),
                    millis: 3,
                },
                Event::Stopped {
                    stage: Some(Stage::Verify),
                    reason: StopReason::Errors,
                    message: "verification found 1 error, 0 warnings; fix them and verify again".into(),
                    millis: 4,
                },
            ],
            now,
        );
        insta::assert_snapshot!("stopped_on_errors", screen(&state, now));
    }

    #[test]
    fn finished_with_warnings_and_an_impact() {
        let now = Instant::now();
        let mut events = vec![
            started(),
            Event::StageStarted { stage: Stage::Verify },
            diagnostic("warning", "XW0004", "structure `Person` has no description", 31),
            finished(Stage::Verify, 398, "`Greeter` 0.1.0: 0 errors, 1 warning, up to date"),
        ];
        events.extend(verified().into_iter().skip(6));
        events.extend([
            Event::StageStarted { stage: Stage::Upload },
            finished(Stage::Upload, 18, "version 2, 335.3 KiB"),
            Event::StageStarted { stage: Stage::Publish },
            Event::Impact {
                stage: Stage::Publish,
                consumers: vec![xif_api::ConsumerImpact {
                    module: "Orders".into(),
                    impact: "outdated".into(),
                    built_against: 1,
                    changes: vec!["structure `Person` changed".into()],
                }],
            },
            finished(Stage::Publish, 22, "version 2 published"),
            Event::StageStarted { stage: Stage::Deploy },
            finished(Stage::Deploy, 3, "version 2 runs; version 1 was drained and stopped"),
            Event::Finished { achieved: Achieved::Published { version: 2, replaced: Some(1) }, millis: 512 },
        ]);
        let mut state = window(&events, now);
        state.select(1);
        insta::assert_snapshot!("finished_with_warnings", screen(&state, now));
    }

    #[test]
    fn published() {
        let now = Instant::now();
        let mut events = verified();
        events.extend([
            Event::StageStarted { stage: Stage::Upload },
            finished(Stage::Upload, 18, "version 1, 335.3 KiB"),
            Event::StageStarted { stage: Stage::Publish },
            finished(Stage::Publish, 22, "version 1 published"),
            Event::StageStarted { stage: Stage::Deploy },
            finished(Stage::Deploy, 3, "version 1 runs"),
            Event::Finished { achieved: Achieved::Published { version: 1, replaced: None }, millis: 530 },
        ]);
        insta::assert_snapshot!("published", screen(&window(&events, now), now));
    }

    #[test]
    fn upload_in_progress_shows_bytes_and_rate() {
        let now = Instant::now();
        let mut events = verified();
        events.extend([Event::StageStarted { stage: Stage::Upload }, Event::Progress { sent: 0, total: 64 << 20 }]);
        let mut state = window(&events, now);
        state.apply(&Event::Progress { sent: 24 << 20, total: 64 << 20 }, now + Duration::from_secs(1));
        insta::assert_snapshot!("upload_in_progress", screen(&state, now + Duration::from_secs(2)));
    }

    #[test]
    fn connection_dialog_masks_the_password_and_says_why_a_login_failed() {
        let now = Instant::now();
        let mut state = WindowState::new("Greeter".into(), None, false, false);
        let mut dialog = ConnectDialog::new(vec![
            ("https://platform.example:8180".into(), "ada".into()),
            ("http://127.0.0.1:8180".into(), "admin".into()),
        ]);
        dialog.password = "secret".into();
        dialog.error = Some("wrong user name or password (invalid_credentials)".into());
        state.connect = Some(dialog);
        let shown = screen(&state, now);
        assert!(!shown.contains("secret"), "the password is never shown");
        insta::assert_snapshot!("connection_dialog", shown);
    }
}
