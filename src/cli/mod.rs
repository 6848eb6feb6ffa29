//! The command line: parse arguments, run one command on top of the client library, and turn
//! failures into one line on stderr and an exit status.

mod args;
mod capture;
mod create;
mod ls;
mod manage;
mod parse;
mod send;
mod wait;

use clap::Parser;

use crate::client::Client;
use crate::client::chord::DetachKey;
pub use args::Cli;
use args::{AttachArgs, Command};

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
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            // clap's message spans several lines; scripts get one.
            let text = e.to_string();
            let summary: Vec<&str> = text
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let summary = summary.join(" ");
            let summary = summary.strip_prefix("error: ").unwrap_or(&summary);
            say(&format!("linger: {summary} (see `linger --help`)"));
            return 2;
        }
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

fn run(cli: Cli) -> Result<i32, Failure> {
    let detach_key = match cli
        .detach_key
        .or_else(|| std::env::var("LINGER_DETACH_KEY").ok())
    {
        Some(k) => DetachKey::parse(&k).map_err(usage)?,
        None => DetachKey::default(),
    };
    let command = cli.command.unwrap_or(Command::Attach(AttachArgs {
        name: "main".into(),
        read_only: false,
        create: true,
        command: Vec::new(),
    }));
    if let Command::Server = command {
        return server();
    }
    let rt = runtime()?;
    rt.block_on(async move {
        match command {
            Command::New(args) => create::new(args, detach_key).await,
            Command::Attach(args) => create::attach(args, detach_key).await,
            Command::Ls { json } => ls::ls(json).await,
            Command::Kill { name, signal, lost } => manage::kill(name, signal, lost).await,
            Command::Revive { name, cwd, command } => manage::revive(name, cwd, command).await,
            Command::Note { name, text } => manage::note(name, text).await,
            Command::Detach { name } => manage::detach(name).await,
            Command::KillServer => manage::kill_server().await,
            Command::Send(args) => send::send(args).await,
            Command::Capture(args) => capture::capture(args).await,
            Command::Wait(args) => wait::wait(args).await,
            Command::DebugConnect { socket } => manage::debug_connect(&socket).await,
            Command::Server => Ok(0),
        }
    })
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

/// Commands about one session start the server when none runs: it is what turns sessions
/// saved by a dead server into `lost` ones that can be captured and revived.
pub(crate) async fn existing_for(name: &str) -> Result<Client, Failure> {
    crate::paths::validate_session_name(name).map_err(usage)?;
    Ok(Client::connect().await?)
}
