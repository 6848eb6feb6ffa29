//! Which agent runs in a session and what it is doing: working, idle, or waiting for its
//! user, and why. Sources, strongest first:
//! 1. the agent's own reports (`linger status`, from its lifecycle hooks, or OSC 7501 program
//!    status in its output), authoritative until it reports again or its program exits;
//! 2. signals in its output: OSC 9 / OSC 777 notify / OSC 99 notifications and BEL (waiting),
//!    OSC 9;4 progress, window titles (Claude Code puts a braille spinner in front of its title
//!    while it works and `✳` when idle; Gemini CLI `✦`/`⏲` working, `◇` ready, `✋` action
//!    required), OSC 133 prompt marks (a shell back at its prompt);
//! 3. output activity, for programs that give no signal: working while output flows, idle
//!    after [`QUIET_IDLE`] of quiet.
//!
//! A signal's state holds until another signal (or a report) replaces it, or the user types
//! after a `waiting` (they answered), so a redraw does not flap the state.

use std::time::Duration;

use crate::protocol::{AgentInfo, AgentState};
use crate::term::Signal;

/// Quiet after which a program that gives no signals counts as idle.
pub const QUIET_IDLE: Duration = Duration::from_secs(3);
/// Longest reason kept.
const MAX_REASON: usize = 256;

/// Agents linger knows by their program's name.
const KINDS: [&str; 6] = ["claude", "codex", "gemini", "aider", "opencode", "goose"];

#[derive(Default)]
pub struct Agent {
    reported: Option<(AgentState, Option<String>)>,
    signalled: Option<(AgentState, Option<String>)>,
    /// `signalled` came from the title, which the next title may change.
    by_title: bool,
    /// The title last looked at: only a new title says something (a progress report or a
    /// prompt mark is not undone by the title the program set long before).
    title: String,
    /// What a screen rule matched on the last look at the screen.
    screen: Option<(AgentState, Option<String>)>,
    /// The last state given out, and since when (unix ms).
    last: Option<(AgentState, u64)>,
    /// Whether any signal or report ever came: then activity is not used.
    spoke: bool,
}

impl Agent {
    pub fn report(&mut self, state: AgentState, reason: Option<String>) {
        self.reported = Some((state, reason.map(bounded)));
        self.spoke = true;
    }

    /// What the screen rules found on the screen now (`None`: no rule matched).
    pub fn set_screen(&mut self, found: Option<(AgentState, Option<String>)>) {
        self.screen = found;
    }

    /// Whether only output activity says anything (no report, no signal ever came).
    pub fn activity_based(&self) -> bool {
        self.reported.is_none() && !self.spoke && self.screen.is_none()
    }

    /// Takes in what the program signalled and its title.
    pub fn observe(&mut self, signals: &[Signal], title: &str) {
        for signal in signals {
            if let Signal::Status {
                state,
                kind,
                message,
            } = signal
            {
                self.program_status(state, kind.as_deref(), message.as_deref());
                continue;
            }
            let state = match signal {
                Signal::Bell => Some((AgentState::Waiting, Some("bell".to_string()))),
                Signal::Attention(text) => Some((
                    AgentState::Waiting,
                    Some(if text.is_empty() {
                        "notification".to_string()
                    } else {
                        bounded(text.clone())
                    }),
                )),
                Signal::Progress(0) => Some((AgentState::Idle, None)),
                Signal::Progress(2) => Some((AgentState::Waiting, Some("error".to_string()))),
                Signal::Progress(_) => Some((AgentState::Working, None)),
                Signal::Prompt('A' | 'D') => Some((AgentState::Idle, Some("prompt".to_string()))),
                Signal::Prompt('C') => Some((AgentState::Working, None)),
                Signal::Prompt(_) | Signal::Status { .. } => None,
            };
            if let Some(state) = state {
                self.signalled = Some(state);
                self.by_title = false;
                self.spoke = true;
            }
        }
        // A `waiting` from a notification is not undone by a title that still says idle or
        // working; only a new signal or the user typing ends it.
        let notified = matches!(self.signalled, Some((AgentState::Waiting, _))) && !self.by_title;
        if title == self.title {
            return;
        }
        self.title = title.to_string();
        // Codex drops its spinner from the title when it is done, without a mark of its own.
        let after_spinner =
            self.by_title && matches!(self.signalled, Some((AgentState::Working, _)));
        let said = title_state(title).or(after_spinner.then_some((AgentState::Idle, None)));
        if let Some((state, reason)) = said
            && self.signalled.as_ref().map(|s| s.0) != Some(state)
            && !notified
        {
            self.signalled = Some((state, reason.map(String::from)));
            self.by_title = true;
            self.spoke = true;
        }
    }

    /// A program's own OSC 7501 report counts as a `linger status` report: it is the program
    /// saying what it does, authoritative until it reports again (`clear` withdraws it).
    fn program_status(&mut self, state: &str, kind: Option<&str>, message: Option<&str>) {
        let why = |default: &str| {
            let mut reason = kind.unwrap_or(default).to_string();
            if let Some(message) = message {
                reason = format!("{reason}: {message}");
            }
            Some(reason)
        };
        let said = match state {
            "working" => (AgentState::Working, message.map(String::from)),
            "idle" => (AgentState::Idle, message.map(String::from)),
            "done" => (AgentState::Idle, why("done")),
            "blocked" => (AgentState::Waiting, why("blocked")),
            "error" => (AgentState::Waiting, why("error")),
            "clear" => {
                self.reported = None;
                return;
            }
            _ => return,
        };
        self.report(said.0, said.1);
    }

    /// The user typed: a question the agent asked is answered.
    pub fn user_typed(&mut self) {
        if matches!(self.signalled, Some((AgentState::Waiting, _))) {
            self.signalled = Some((AgentState::Working, None));
        }
    }

    /// The state now; `kind` from the foreground program, `quiet_for` since the last output.
    pub fn info(&mut self, kind: Option<String>, quiet_for: Duration, now_ms: u64) -> AgentInfo {
        let notified = self
            .signalled
            .as_ref()
            .filter(|(state, _)| *state == AgentState::Waiting);
        let found = self
            .reported
            .as_ref()
            .or(notified)
            .or(self.screen.as_ref())
            .or(self.signalled.as_ref());
        let (state, reason) = match found {
            Some((state, reason)) => (*state, reason.clone()),
            None if self.spoke => (AgentState::Unknown, None),
            None if quiet_for < QUIET_IDLE => (AgentState::Working, None),
            None => (AgentState::Idle, None),
        };
        let since = match self.last {
            Some((last, since)) if last == state => since,
            _ => {
                self.last = Some((state, now_ms));
                now_ms
            }
        };
        AgentInfo {
            kind,
            state,
            reason,
            since,
        }
    }
}

/// What an agent's title says: Claude Code's and Codex's braille spinner while working,
/// Claude Code's `✳` when idle; Gemini CLI's `✦` or `⏲` working, `◇` ready and `✋` action required.
fn title_state(title: &str) -> Option<(AgentState, Option<&'static str>)> {
    let first = title.chars().next()?;
    match first {
        '\u{2800}'..='\u{28ff}' | '✦' | '⏲' => Some((AgentState::Working, None)),
        '✳' | '◇' => Some((AgentState::Idle, None)),
        '✋' => Some((AgentState::Waiting, Some("action required"))),
        _ => None,
    }
}

fn bounded(mut text: String) -> String {
    if text.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The agent a command line runs, by its program's name or, for scripts run by an
/// interpreter (`node .../claude`), its script's name.
pub fn kind_of(command: &[String]) -> Option<String> {
    command
        .iter()
        .take(3)
        .filter_map(|arg| std::path::Path::new(arg).file_name()?.to_str())
        .find(|name| KINDS.contains(name))
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_moves_the_state() {
        let mut a = Agent::default();
        let quiet = Duration::from_secs(10);
        assert_eq!(a.info(None, Duration::ZERO, 1).state, AgentState::Working);
        assert_eq!(a.info(None, quiet, 2).state, AgentState::Idle);
        a.observe(&[], "\u{280b} Claude Code");
        assert_eq!(a.info(None, quiet, 3).state, AgentState::Working);
        a.observe(
            &[Signal::Attention("Claude needs your permission".into())],
            "\u{2819} x",
        );
        let info = a.info(None, quiet, 4);
        assert_eq!(info.state, AgentState::Waiting);
        assert_eq!(info.reason.as_deref(), Some("Claude needs your permission"));
        a.observe(&[], "\u{2839} x");
        assert_eq!(
            a.info(None, quiet, 5).state,
            AgentState::Waiting,
            "a redraw does not flap"
        );
        a.user_typed();
        assert_eq!(a.info(None, quiet, 6).state, AgentState::Working);
        a.observe(&[], "✳ Claude Code");
        let idle = a.info(None, quiet, 7);
        assert_eq!((idle.state, idle.since), (AgentState::Idle, 7));
        assert_eq!(
            a.info(None, quiet, 9).since,
            7,
            "since holds while the state does"
        );
        a.report(AgentState::Waiting, Some("permission".into()));
        a.observe(&[Signal::Progress(1)], "\u{280b}");
        assert_eq!(
            a.info(None, quiet, 10).state,
            AgentState::Waiting,
            "reports win"
        );
    }

    #[test]
    fn program_status_reports_are_explicit_until_withdrawn() {
        let status = |state: &str, kind: Option<&str>, message: Option<&str>| Signal::Status {
            state: state.into(),
            kind: kind.map(String::from),
            message: message.map(String::from),
        };
        let mut a = Agent::default();
        a.observe(&[status("blocked", Some("question"), Some("Which?"))], "");
        let now = a.info(None, Duration::ZERO, 0);
        assert_eq!(
            (now.state, now.reason.as_deref()),
            (AgentState::Waiting, Some("question: Which?"))
        );
        // A title spinner does not override the program's own word.
        a.observe(&[], "\u{280b} x");
        assert_eq!(a.info(None, Duration::ZERO, 0).state, AgentState::Waiting);
        a.observe(&[status("error", None, None)], "\u{280b} x");
        assert_eq!(
            a.info(None, Duration::ZERO, 0).reason.as_deref(),
            Some("error")
        );
        a.observe(&[status("clear", None, None)], "\u{280b} x");
        assert_eq!(a.info(None, Duration::ZERO, 0).state, AgentState::Working);
        a.observe(&[status("sleeping", None, None)], "\u{280b} x");
        assert_eq!(a.info(None, Duration::ZERO, 0).state, AgentState::Working);
    }

    #[test]
    fn titles_of_codex_and_gemini() {
        let mut a = Agent::default();
        let quiet = Duration::from_secs(10);
        a.observe(&[], "\u{2838} fix the bug | proj");
        assert_eq!(a.info(None, quiet, 1).state, AgentState::Working);
        a.observe(&[], "proj");
        assert_eq!(
            a.info(None, quiet, 2).state,
            AgentState::Idle,
            "spinner gone"
        );
        a.observe(&[], "✋  Action Required (proj)");
        let info = a.info(None, quiet, 3);
        assert_eq!(
            (info.state, info.reason.as_deref()),
            (AgentState::Waiting, Some("action required"))
        );
        a.observe(&[], "✦  Reading files (proj)");
        assert_eq!(a.info(None, quiet, 4).state, AgentState::Working);
        a.observe(&[], "◇  Ready (proj)");
        assert_eq!(a.info(None, quiet, 5).state, AgentState::Idle);
        a.set_screen(Some((AgentState::Waiting, Some("trust".into()))));
        assert_eq!(
            a.info(None, quiet, 6).reason.as_deref(),
            Some("trust"),
            "a screen rule beats the title"
        );
    }

    #[test]
    fn kinds_come_from_the_program_or_its_script() {
        let cmd = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            kind_of(&cmd(&["claude", "--continue"])).as_deref(),
            Some("claude")
        );
        assert_eq!(
            kind_of(&cmd(&["node", "/usr/lib/node_modules/.bin/codex"])).as_deref(),
            Some("codex")
        );
        assert_eq!(kind_of(&cmd(&["bash"])), None);
    }
}
