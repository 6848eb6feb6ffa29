//! The config file's server-side settings (hooks and screen rules): read when the server
//! starts, and again when the file changed (looked at off the async workers, at most once a
//! second, when an event happens). A file that does not parse keeps the settings before it.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::config::Hooks;
use crate::log;
use crate::protocol::AgentState;

/// How long a hook may run by default.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// Least time between two looks at the config file.
const RECHECK: Duration = Duration::from_secs(1);

/// A screen rule from the config file, compiled.
pub struct Rule {
    /// The agent kind it is for; `None` for any program.
    pub agent: Option<String>,
    pub regex: regex::Regex,
    pub state: AgentState,
    pub reason: Option<String>,
}

#[derive(Default)]
pub struct Settings {
    pub hooks: Hooks,
    pub hook_timeout: Option<Duration>,
    pub rules: Vec<Rule>,
}

struct Loaded {
    settings: Arc<Settings>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

fn loaded() -> &'static RwLock<Loaded> {
    static LOADED: std::sync::OnceLock<RwLock<Loaded>> = std::sync::OnceLock::new();
    LOADED.get_or_init(|| {
        RwLock::new(Loaded {
            settings: Arc::default(),
            modified: None,
            checked: None,
        })
    })
}

/// The settings now (no I/O: what the last look at the file found).
pub fn current() -> Arc<Settings> {
    loaded()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .settings
        .clone()
}

/// Whether it is time to look at the file again.
pub fn due() -> bool {
    let loaded = loaded().read().unwrap_or_else(|p| p.into_inner());
    loaded.checked.is_none_or(|at| at.elapsed() >= RECHECK)
}

/// Reads the file again if it changed. Blocking: call it off the async workers.
pub fn reload_blocking() {
    static RELOADING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = RELOADING.lock().unwrap_or_else(|p| p.into_inner());
    let modified = crate::config::modified();
    {
        let mut loaded = loaded().write().unwrap_or_else(|p| p.into_inner());
        let first = loaded.checked.is_none();
        loaded.checked = Some(Instant::now());
        if !first && loaded.modified == modified {
            return;
        }
        loaded.modified = modified;
    }
    let settings = match crate::config::load() {
        Ok(config) => compile(config),
        Err(e) => {
            log::warn(&format!("{e}; hooks and screen rules stay as they were"));
            return;
        }
    };
    loaded().write().unwrap_or_else(|p| p.into_inner()).settings = Arc::new(settings);
}

fn compile(config: crate::config::Config) -> Settings {
    // `load` checked every pattern, state and timeout already.
    let rules = config
        .rules
        .into_iter()
        .filter_map(|r| {
            Some(Rule {
                agent: r.agent.filter(|a| a != "*"),
                regex: crate::config::rule_regex(&r.pattern).ok()?,
                state: AgentState::parse(&r.state).ok()?,
                reason: r.reason,
            })
        })
        .collect();
    let hook_timeout = config
        .hooks
        .timeout
        .as_deref()
        .and_then(|t| humantime::parse_duration(t).ok());
    Settings {
        hooks: config.hooks,
        hook_timeout,
        rules,
    }
}
