//! The user's config file, `$XDG_CONFIG_HOME/linger/config.toml` (else
//! `~/.config/linger/config.toml`): defaults that environment variables and flags override.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

/// Largest config file read: it holds a handful of settings.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// What the file may set; every key is optional and unknown keys are refused (a typo should
/// not be silently ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Detach chord, e.g. "C-a" (`LINGER_DETACH_KEY` and `--detach-key` win).
    pub detach_key: Option<String>,
    /// History lines kept for new sessions (`--scrollback` wins).
    pub scrollback: Option<usize>,
    /// Bound on each new session's output log, e.g. "64M" (`--log-size` wins).
    pub log_size: Option<String>,
    /// Program (and arguments) new sessions run without `-- CMD`, instead of `$SHELL`.
    pub command: Option<Vec<String>>,
    /// Resume presets: program name to the arguments `revive` adds to the original command,
    /// e.g. `myagent = ["--resume"]` (`--resume-cmd` wins; these win over built-in presets).
    #[serde(default)]
    pub resume: BTreeMap<String, Vec<String>>,
    /// Commands the server runs on session events (see [`Hooks`]).
    #[serde(default)]
    pub hooks: Hooks,
    /// Screen rules added to the built-in ones (see [`Rule`]); tried first.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// History lines an attach replays into the terminal's scrollback: a number or "all"
    /// (`attach --history` wins; default [`DEFAULT_ATTACH_HISTORY`]).
    pub attach_history: Option<HistoryAmount>,
}

/// How much history an attach replays when neither `--history` nor the config says: what
/// tmux keeps by default. 10,000 lines are about 1.4 MB at 200 columns, which a terminal takes
/// tens of milliseconds to draw (seconds over a slow ssh link), and every attach adds them to
/// its scrollback again; `linger log` and `capture --all` have all of it.
pub const DEFAULT_ATTACH_HISTORY: u64 = 2000;

/// A number of lines, or "all".
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum HistoryAmount {
    Lines(u64),
    Word(String),
}

/// Lines from `--history` or the config's `attach_history`: a number or `all`.
pub fn history_lines(text: &str) -> Result<u64, String> {
    match text.trim() {
        "all" => Ok(u64::MAX),
        n => n
            .parse()
            .map_err(|_| format!("history {text:?}: give a number of lines or `all`")),
    }
}

impl Config {
    /// The history an attach replays, from `flag`, then the config, then the default.
    pub fn attach_history(&self, flag: Option<&str>) -> Result<u64, String> {
        match (flag, &self.attach_history) {
            (Some(text), _) => history_lines(text),
            (None, Some(HistoryAmount::Lines(n))) => Ok(*n),
            (None, Some(HistoryAmount::Word(w))) => {
                history_lines(w).map_err(|e| format!("attach_history in the config file: {e}"))
            }
            (None, None) => Ok(DEFAULT_ATTACH_HISTORY),
        }
    }
}

/// Shell commands (`sh -c`) the server runs when something happens to a session, with
/// `LINGER_SESSION`, `LINGER_EVENT`, `LINGER_STATE`, `LINGER_REASON` and `LINGER_MESSAGE` in
/// their environment. Each runs at most `timeout` (default 30s) and never holds anything up.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// The agent waits for its user (a permission, a question, a notification).
    pub attention: Option<String>,
    /// Any change of the agent's state.
    pub state: Option<String>,
    pub created: Option<String>,
    pub exited: Option<String>,
    pub killed: Option<String>,
    pub lost: Option<String>,
    pub revived: Option<String>,
    pub queued: Option<String>,
    pub delivered: Option<String>,
    /// How long a hook may run before it is killed, e.g. "10s".
    pub timeout: Option<String>,
}

impl Hooks {
    /// The command for an event kind, if one is set.
    pub fn command(&self, kind: &str) -> Option<&str> {
        match kind {
            "attention" => self.attention.as_deref(),
            "state" => self.state.as_deref(),
            "created" => self.created.as_deref(),
            "exited" => self.exited.as_deref(),
            "killed" => self.killed.as_deref(),
            "lost" => self.lost.as_deref(),
            "revived" => self.revived.as_deref(),
            "queued" => self.queued.as_deref(),
            "delivered" => self.delivered.as_deref(),
            _ => None,
        }
    }
}

/// A screen rule: when `pattern` (a regex) matches one of the last rows of the screen of a
/// session running `agent` (a kind such as `claude`, or `*` / absent for any program), the
/// agent is in `state` (`working`, `idle` or `waiting`) for `reason`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub agent: Option<String>,
    pub pattern: String,
    pub state: String,
    pub reason: Option<String>,
}

/// Most rules a config file may add: every one is tried on each look at a screen.
pub const MAX_RULES: usize = 64;
/// Largest compiled rule pattern.
pub const MAX_RULE_REGEX: usize = 1 << 20;

/// Compiles a rule's pattern, bounded in size.
pub fn rule_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(MAX_RULE_REGEX)
        .build()
        .map_err(|e| e.to_string())
}

/// Where the config file is looked for.
pub fn path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("linger").join("config.toml"))
}

/// The config file's settings; none when there is no file. A file that cannot be read or
/// parsed is one line naming the file, the line and the problem.
pub fn load() -> Result<Config, String> {
    let Some(path) = path() else {
        return Ok(Config::default());
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
        Err(e) => return Err(format!("config file {}: {e}", path.display())),
    };
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "config file {}: larger than {} KiB",
            path.display(),
            MAX_CONFIG_BYTES / 1024
        ));
    }
    let config: Config = toml::from_str(&text).map_err(|e| {
        let message = e.message().lines().next().unwrap_or("").trim().to_string();
        let line = error_line(&text, e.span(), &message)
            .map(|n| format!("line {n}: "))
            .unwrap_or_default();
        format!("config file {}: {line}{message}", path.display())
    })?;
    config
        .check()
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    Ok(config)
}

/// When the config file was last changed; `None` when there is none.
pub fn modified() -> Option<std::time::SystemTime> {
    std::fs::metadata(path()?).ok()?.modified().ok()
}

/// The line an error is about: the unknown key's own line (toml points those at the whole
/// table), else where its span starts.
fn error_line(text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> Option<usize> {
    if let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
        && let Some(i) = text.lines().position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
    {
        return Some(i + 1);
    }
    let start = span?.start.min(text.len());
    Some(text.get(..start)?.matches('\n').count() + 1)
}

impl Config {
    /// What TOML cannot say is wrong: bad rule patterns or states, a bad hook timeout.
    fn check(&self) -> Result<(), String> {
        if self.rules.len() > MAX_RULES {
            return Err(format!(
                "{} rules; at most {MAX_RULES} are allowed",
                self.rules.len()
            ));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let n = i + 1;
            crate::protocol::AgentState::parse(&rule.state)
                .map_err(|e| format!("rule {n} ({:?}): {e}", rule.pattern))?;
            rule_regex(&rule.pattern).map_err(|e| {
                let first = e.lines().last().unwrap_or("").trim().to_string();
                format!(
                    "rule {n}: pattern {:?} is not a valid regex: {first}",
                    rule.pattern
                )
            })?;
        }
        if let Some(t) = &self.hooks.timeout {
            humantime::parse_duration(t)
                .map_err(|e| format!("hooks.timeout {t:?}: {e} (e.g. \"10s\")"))?;
        }
        Ok(())
    }

    /// The resume command a preset of this file gives `command`: the original command with
    /// the preset's arguments after it.
    pub fn resume_for(&self, command: &[String]) -> Option<Vec<String>> {
        let program = command.first()?;
        let base = std::path::Path::new(program).file_name()?.to_str()?;
        let extra = self.resume.get(base)?;
        let mut argv = command.to_vec();
        argv.extend(extra.iter().cloned());
        Some(argv)
    }
}
