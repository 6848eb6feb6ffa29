//! The command line: parse arguments, run one command on top of the client library, and turn
//! failures into one line on stderr and an exit status.

mod agents;
mod args;
mod capture;
mod create;
mod errors;
mod log;
mod ls;
mod manage;
mod parse;
mod send;
mod wait;

use clap::{CommandFactory, Parser};

use crate::client::Client;
use crate::keyboard::chord::DetachKey;
pub use args::Cli;
use args::Command;

/// A failure with its exit status: 1 for errors, 2 for usage, 124 for wait timeouts.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

pub(crate) fn fail(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

pub(crate) fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

impl From<crate::client::Error> for Failure {
    fn from(e: crate::client::Error) -> Self {
        fail(e.0)
    }
}

/// Parses arguments, runs the command, returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return errors::report_clap(e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            if !f.message.is_empty() {
                say(&format!("linger: {}", one_line(&f.message)));
            }
            f.code
        }
    }
}

/// A message that spans lines (a cause chain, a library's diagram) as one line, every part
/// kept: scripts read one line per error.
fn one_line(message: &str) -> String {
    let parts: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    parts.join(": ")
}

/// Writes a line to stderr; `eprintln!` would panic when stderr is closed or full.
fn say(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
}

/// Writes `text` to stdout and flushes it, so a full disk or a closed pipe is an error (exit 1)
/// rather than output silently lost. A reader that went away (`| head`) ends us quietly.
pub(crate) fn print_out(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure {
            code: 1,
            message: String::new(),
        }),
        Err(e) => Err(fail(format!("cannot write to stdout: {e}"))),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the async runtime: {e}")))
}

/// The detach chord for commands that attach: `--detach-key`, else `LINGER_DETACH_KEY`, else
/// the config file's. A bad flag is a usage error; a bad variable or file setting only warns
/// (one line) and falls back to the default, so a typo in a shell rc breaks nothing.
pub(crate) fn detach_key(
    flag: Option<String>,
    config: &crate::config::Config,
) -> Result<DetachKey, Failure> {
    if let Some(key) = flag {
        return DetachKey::parse(&key).map_err(usage);
    }
    let file = crate::config::path().map(|p| p.display().to_string());
    let sources = [
        (
            "LINGER_DETACH_KEY".to_string(),
            std::env::var("LINGER_DETACH_KEY").ok(),
        ),
        (file.unwrap_or_default(), config.detach_key.clone()),
    ];
    for (source, value) in sources {
        let Some(value) = value else { continue };
        return Ok(DetachKey::parse(&value).unwrap_or_else(|e| {
            say(&format!("linger: {source}: {e}; using C-\\"));
            DetachKey::default()
        }));
    }
    Ok(DetachKey::default())
}

fn run(cli: Cli) -> Result<i32, Failure> {
    let flag_key = cli.detach_key;
    let command = match cli.command {
        Some(Command::Server) => return server(),
        Some(Command::Keeper) => return keeper(),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "linger", &mut std::io::stdout());
            return Ok(0);
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| fail(format!("cannot write the man page: {e}")))?;
            return Ok(0);
        }
        other => other,
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let result = dispatch(command, flag_key).await;
        match result {
            Err(f) if f.message.starts_with("no session named '") => {
                Err(errors::suggest_name(f).await)
            }
            other => other,
        }
    })
}

async fn dispatch(command: Option<Command>, flag_key: Option<String>) -> Result<i32, Failure> {
    let Some(command) = command else {
        return create::bare(flag_key).await;
    };
    match command {
        Command::New(args) => create::new(args, flag_key).await,
        Command::Attach(args) => create::attach(args, flag_key).await,
        Command::Ls { json } => ls::ls(json).await,
        Command::Has { name } => ls::has(&name).await,
        Command::Status {
            name,
            state,
            reason,
        } => {
            let state = crate::protocol::AgentState::parse(&state).map_err(usage)?;
            existing_for(&name)
                .await?
                .status(&name, state, reason)
                .await?;
            Ok(0)
        }
        Command::Kill {
            name,
            signal,
            lost,
            exited,
        } => manage::kill(name, signal, lost, exited).await,
        Command::Stop { name, signal } => manage::stop(name, signal).await,
        Command::Rename { name, new_name } => manage::rename(name, new_name).await,
        Command::Revive { name, cwd, command } => manage::revive(name, cwd, command).await,
        Command::Note { name, text } => manage::note(name, text).await,
        Command::Detach { name } => manage::detach(name).await,
        Command::Log(args) => log::log(args).await,
        Command::KillServer => manage::kill_server().await,
        Command::Upgrade => manage::upgrade().await,
        Command::Send(args) => send::send(args).await,
        Command::Capture(args) => capture::capture(args).await,
        Command::Wait(args) => wait::wait(args).await,
        Command::Events { names, json } => agents::events(names, json).await,
        Command::Queue(args) => agents::queue(args).await,
        Command::DebugConnect { socket } => manage::debug_connect(&socket).await,
        Command::Server | Command::Keeper | Command::Completions { .. } | Command::Man => Ok(0),
    }
}

/// `linger server`: runs the server in the foreground until it is stopped.
fn server() -> Result<i32, Failure> {
    let dir = crate::paths::runtime_dir();
    match crate::server::run(&dir) {
        Ok(()) => Ok(0),
        Err(crate::server::NotStarted::Failed(e)) => Err(fail(e)),
        Err(crate::server::NotStarted::Refused(e)) => Err(Failure {
            code: crate::server::REFUSED_EXIT,
            message: e,
        }),
    }
}

/// `linger keeper`: holds the programs' terminals until no server runs and nothing is held.
fn keeper() -> Result<i32, Failure> {
    crate::keeper::run(&crate::paths::runtime_dir()).map_err(fail)
}

/// Names of the sessions saved in the state dir (what a server would list after starting).
pub(crate) fn saved_names() -> Vec<String> {
    let Some(dir) = crate::state::state_dir() else {
        return Vec::new();
    };
    std::fs::read_dir(dir.join("sessions"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| crate::paths::validate_session_name(n).is_ok())
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn no_session(name: &str) -> Failure {
    fail(format!("no session named '{name}' (see `linger ls`)"))
}

/// A client for a command about one session. A server that is not running is started only
/// when the session is saved on disk or a keeper holds programs (starting it is what adopts
/// them, or turns a dead server's sessions into `lost` ones); for any other name the answer
/// is known without one.
pub(crate) async fn existing_for(name: &str) -> Result<Client, Failure> {
    crate::paths::validate_session_name(name).map_err(usage)?;
    if let Some(client) = Client::existing().await? {
        return Ok(client);
    }
    if saved_names().iter().any(|n| n == name) || keeper_waits() {
        return Ok(Client::connect().await?);
    }
    Err(no_session(name))
}

/// A client when a server runs, sessions are saved or a keeper holds programs (it starts one
/// then); `None` when there is nothing to talk about.
pub(crate) async fn server_if_any() -> Result<Option<Client>, Failure> {
    if let Some(client) = Client::existing().await? {
        return Ok(Some(client));
    }
    if saved_names().is_empty() && !keeper_waits() {
        return Ok(None);
    }
    Ok(Some(Client::connect().await?))
}

/// Whether a keeper runs without a server: its programs (a session whose first record the
/// dead server never wrote, say) wait for one to adopt them.
fn keeper_waits() -> bool {
    crate::keeper::runs(&crate::paths::runtime_dir())
}
