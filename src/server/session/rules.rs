//! Screen rules: patterns on the last rows of an agent's screen that say what it is doing (a
//! permission dialog: waiting; "esc to interrupt": working), built in for the agents linger
//! knows and extended by the config file's `[[rules]]`, which are tried first.
//!
//! Cost: a session looks at its screen only when it changed, at most every
//! `watch::RULES_EVERY`, and only at its last [`ROWS`] non-blank rows.

use std::sync::LazyLock;

use regex::Regex;

use crate::protocol::AgentState;
use crate::server::settings::Settings;

/// Rows looked at, from the last non-blank one up: Gemini CLI's sign-in dialog is 20 rows.
pub const ROWS: usize = 25;

use AgentState::{Waiting, Working};

/// (agent, pattern, state, reason); per agent, waiting rules before working ones (a dialog
/// drawn under a stale "esc to interrupt" is what counts). Case-insensitive.
const BUILT_IN: &[(&str, &str, AgentState, Option<&str>)] = &[
    (
        "claude",
        r"Do you want to (proceed|make this edit|create|allow|run)",
        Waiting,
        Some("permission"),
    ),
    (
        "claude",
        r"Do you trust the files in this folder|Is this a project you created or one you trust",
        Waiting,
        Some("trust"),
    ),
    (
        "claude",
        r"Select login method|Paste code here if prompted|Missing API key",
        Waiting,
        Some("login"),
    ),
    (
        "claude",
        r"Choose the text style|Let's get started|Do you want to use this API key",
        Waiting,
        Some("setup"),
    ),
    // The footer of every other dialog Claude Code draws.
    (
        "claude",
        r"Enter to confirm · Esc to cancel",
        Waiting,
        Some("question"),
    ),
    ("claude", r"esc to interrupt", Working, None),
    (
        "codex",
        r"Would you like to (run the following command|make the following edits)|Allow command\?|Approve",
        Waiting,
        Some("permission"),
    ),
    (
        "codex",
        r"allow Codex to work in this folder|Do you trust the contents",
        Waiting,
        Some("trust"),
    ),
    (
        "codex",
        r"Sign in with ChatGPT|Provide your own API key",
        Waiting,
        Some("login"),
    ),
    ("codex", r"esc to interrupt", Working, None),
    (
        "gemini",
        r"Allow execution|Apply this change\?|Waiting for user confirmation|Do you want to proceed",
        Waiting,
        Some("permission"),
    ),
    (
        "gemini",
        r"Do you trust (the files in )?this folder",
        Waiting,
        Some("trust"),
    ),
    (
        "gemini",
        r"How would you like to authenticate|Login with Google|Waiting for auth|Please enter your Gemini API key",
        Waiting,
        Some("login"),
    ),
    // The footer of Gemini CLI's other dialogs.
    (
        "gemini",
        r"\(Use Enter to select\)|\(Press Enter to submit",
        Waiting,
        Some("question"),
    ),
    // The spinner line while it responds: `⠏ Thinking… (esc to cancel, 3s)`.
    ("gemini", r"\(esc to cancel, \d", Working, None),
    ("aider", r"\(Y\)es/\(N\)o", Waiting, Some("question")),
    (
        "opencode",
        r"Permission required|Allow (once|always)",
        Waiting,
        Some("permission"),
    ),
    ("opencode", r"esc (to )?interrupt", Working, None),
];

struct Compiled {
    agent: &'static str,
    regex: Regex,
    state: AgentState,
    reason: Option<&'static str>,
}

static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    BUILT_IN
        .iter()
        .filter_map(|&(agent, pattern, state, reason)| {
            Some(Compiled {
                agent,
                regex: Regex::new(&format!("(?i){pattern}")).ok()?,
                state,
                reason,
            })
        })
        .collect()
});

/// Whether any rule could apply to a program of this kind.
pub fn apply_to(kind: Option<&str>, settings: &Settings) -> bool {
    settings
        .rules
        .iter()
        .any(|r| r.agent.is_none() || r.agent.as_deref() == kind)
        || kind.is_some_and(|k| BUILT_IN.iter().any(|r| r.0 == k))
}

/// The last [`ROWS`] non-blank rows of a screen, joined by newlines.
pub fn last_rows(screen: &[String]) -> String {
    let end = screen
        .iter()
        .rposition(|row| !row.trim().is_empty())
        .map_or(0, |i| i + 1);
    screen[end.saturating_sub(ROWS)..end].join("\n")
}

/// What the first matching rule says: the config file's, then the built-in ones.
pub fn evaluate(
    kind: Option<&str>,
    rows: &str,
    settings: &Settings,
) -> Option<(AgentState, Option<String>)> {
    let configured = settings
        .rules
        .iter()
        .filter(|r| r.agent.is_none() || r.agent.as_deref() == kind)
        .find(|r| r.regex.is_match(rows))
        .map(|r| (r.state, r.reason.clone()));
    configured.or_else(|| {
        let kind = kind?;
        COMPILED
            .iter()
            .filter(|r| r.agent == kind)
            .find(|r| r.regex.is_match(rows))
            .map(|r| (r.state, r.reason.map(String::from)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_rules_compile_and_match_their_agents_only() {
        assert_eq!(COMPILED.len(), BUILT_IN.len());
        let settings = Settings::default();
        let dialog = "│ Bash command\n│ Do you want to proceed?\n│ ❯ 1. Yes";
        assert_eq!(
            evaluate(Some("claude"), dialog, &settings),
            Some((Waiting, Some("permission".into())))
        );
        assert_eq!(evaluate(Some("aider"), dialog, &settings), None);
        assert_eq!(evaluate(None, dialog, &settings), None);
        assert_eq!(
            evaluate(
                Some("codex"),
                "• Working (3s • Esc to interrupt)",
                &settings
            ),
            Some((Working, None))
        );
    }

    #[test]
    fn only_the_last_non_blank_rows_count() {
        let mut screen: Vec<String> = (0..40).map(|i| format!("row {i}")).collect();
        screen.extend(["".to_string(), " ".to_string()]);
        let rows = last_rows(&screen);
        assert!(rows.starts_with("row 15\n") && rows.ends_with("row 39"));
        assert_eq!(last_rows(&["".to_string()]), "");
    }
}
