//! The command line: clap types and one function per command, all on top of the client library.

use std::io::{Read, Write};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::attach::{AttachOptions, Ending};
use crate::client::chord::DetachKey;
use crate::client::{Client, WaitOutcome};
use crate::protocol::{SessionInfo, SessionSpec, SessionState, WaitCondition};

#[derive(Parser, Debug)]
#[command(
    name = "linger",
    version,
    about = "Persistent terminal sessions for long-running agents"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Detach chord, e.g. 'C-\' (default) or 'C-a' [env: LINGER_DETACH_KEY]
    #[arg(long, global = true, value_name = "KEY")]
    detach_key: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a session (and attach unless -d)
    New(NewArgs),
    /// Attach to a session
    #[command(visible_alias = "a")]
    Attach(AttachArgs),
    /// List sessions
    #[command(visible_alias = "list")]
    Ls {
        /// Machine-readable output
        #[arg(long)]
        json: bool,
    },
    /// Signal a running session's process group and forget the session
    Kill {
        #[arg(required_unless_present = "lost", conflicts_with = "lost")]
        name: Option<String>,
        /// Signal to send first (SIGKILL follows after a grace period)
        #[arg(long, short = 's', value_name = "SIG")]
        signal: Option<String>,
        /// Forget every lost session
        #[arg(long)]
        lost: bool,
    },
    /// Start a lost or exited session again, its earlier output kept above
    Revive {
        name: String,
        /// Working directory instead of the saved one
        #[arg(short = 'C', long = "cwd", value_name = "DIR")]
        cwd: Option<String>,
        /// Program to run instead of the resume command or the original command
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Show, or set, a session's notes (what it is doing, next steps)
    Note {
        name: String,
        /// New notes, or - to read them from stdin
        text: Vec<String>,
    },
    /// Detach every client of a session
    Detach { name: String },
    /// Run the server in the foreground
    Server,
    /// Stop the server and every session
    KillServer,
    /// Type text or keys into a session
    Send(SendArgs),
    /// Print a session's screen (and history)
    Capture(CaptureArgs),
    /// Wait for text, idleness or exit
    Wait(WaitArgs),
    /// Test aid: connect to a socket without any checks and report what the server does
    #[command(hide = true)]
    DebugConnect { socket: std::path::PathBuf },
}

#[derive(Args, Debug)]
struct NewArgs {
    name: String,
    /// Do not attach
    #[arg(short = 'd', long)]
    detached: bool,
    /// Working directory
    #[arg(short = 'C', long = "cwd", value_name = "DIR")]
    cwd: Option<String>,
    /// Environment variable for the program
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// History lines kept
    #[arg(long, value_name = "LINES", default_value_t = 10_000)]
    scrollback: usize,
    /// Command `linger revive` runs (through sh -c); presets exist for claude, codex, aider, gemini
    #[arg(long, value_name = "CMD")]
    resume_cmd: Option<String>,
    /// Bound on the output log kept on disk (e.g. 16M, 512K)
    #[arg(long, value_name = "SIZE")]
    log_size: Option<String>,
    /// Program and arguments (default: $SHELL)
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct AttachArgs {
    name: String,
    /// Watch only: no typing, no resizing
    #[arg(short = 'r', long)]
    read_only: bool,
    /// Create the session if it does not exist
    #[arg(long)]
    create: bool,
    /// Program for --create (default: $SHELL)
    #[arg(last = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct SendArgs {
    name: String,
    /// Press Enter after the text, as a separate write
    #[arg(long)]
    enter: bool,
    /// Arguments are key names (Enter, C-c, Up, F1, ...)
    #[arg(long)]
    keys: bool,
    /// Text (joined with spaces), or - for stdin
    text: Vec<String>,
}

#[derive(Args, Debug)]
struct CaptureArgs {
    name: String,
    /// Include the last N history lines
    #[arg(long, value_name = "N", conflicts_with = "all")]
    history: Option<usize>,
    /// Include all history
    #[arg(long)]
    all: bool,
    /// Keep colours and attributes (SGR)
    #[arg(long)]
    ansi: bool,
    #[arg(long)]
    json: bool,
    /// Only history lines numbered N and later
    #[arg(long, value_name = "N")]
    from_line: Option<u64>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("condition").required(true).multiple(false).args(["text", "idle", "exit"])))]
struct WaitArgs {
    name: String,
    /// Until a line matches this regex
    #[arg(long, value_name = "REGEX")]
    text: Option<String>,
    /// Until there was no output for this long (500ms, 5s, 2m)
    #[arg(long, value_name = "DURATION")]
    idle: Option<String>,
    /// Until the program exits; exits with its code
    #[arg(long)]
    exit: bool,
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// With --text: also search history from line N
    #[arg(long, value_name = "N")]
    from_line: Option<u64>,
}

/// A failure with its exit status: 1 for errors, 2 for usage, 124 for wait timeouts.
pub struct Failure {
    pub code: i32,
    pub message: String,
}

fn fail(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

fn usage(message: impl Into<String>) -> Failure {
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
            eprintln!("linger: {summary} (see `linger --help`)");
            return 2;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(f) => {
            let first = f.message.lines().next().unwrap_or("");
            eprintln!("linger: {first}");
            f.code
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
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
        let dir = crate::paths::runtime_dir();
        return match crate::server::run(&dir) {
            Ok(()) => Ok(0),
            Err(crate::server::NotStarted::Failed(e)) => Err(fail(e)),
            Err(crate::server::NotStarted::Refused(e)) => Err(Failure {
                code: crate::server::REFUSED_EXIT,
                message: e,
            }),
        };
    }
    let rt = runtime()?;
    rt.block_on(async move {
        match command {
            Command::New(args) => new(args, detach_key).await,
            Command::Attach(args) => attach(args, detach_key).await,
            Command::Ls { json } => ls(json).await,
            Command::Kill { name, signal, lost } => {
                let signal = signal
                    .map(|s| crate::signals::parse(&s))
                    .transpose()
                    .map_err(usage)?;
                match name {
                    Some(name) if !lost => {
                        existing_for(&name).await?.kill(&name, signal).await?;
                    }
                    _ => {
                        let forgotten = Client::connect().await?.kill_lost().await?;
                        println!(
                            "forgot {forgotten} lost session{}",
                            if forgotten == 1 { "" } else { "s" }
                        );
                    }
                }
                Ok(0)
            }
            Command::Revive { name, cwd, command } => {
                let client = existing_for(&name).await?;
                let (rows, cols) = crate::client::attach::terminal_size();
                let command = (!command.is_empty()).then_some(command);
                let cwd = cwd.map(|dir| working_dir(&dir)).transpose()?;
                client.revive_in(&name, command, cwd, rows, cols).await?;
                Ok(0)
            }
            Command::Note { name, text } => {
                let client = existing_for(&name).await?;
                let text = match text.as_slice() {
                    [] => None,
                    [dash] if dash == "-" => {
                        Some(String::from_utf8_lossy(&read_stdin()?).into_owned())
                    }
                    words => Some(words.join(" ")),
                };
                if let Some(t) = text.as_ref().filter(|t| t.len() > crate::state::MAX_NOTES) {
                    return Err(fail(format!(
                        "notes of {} bytes are too long (at most {}); keep the details in a file and note its path",
                        t.len(),
                        crate::state::MAX_NOTES
                    )));
                }
                let notes = client.note(&name, text.clone()).await?;
                if text.is_none() && !notes.is_empty() {
                    print!("{notes}");
                    if !notes.ends_with('\n') {
                        println!();
                    }
                }
                Ok(0)
            }
            Command::Detach { name } => {
                existing_for(&name).await?.detach(&name).await?;
                Ok(0)
            }
            Command::KillServer => match Client::existing().await? {
                Some(client) => {
                    client.kill_server().await?;
                    Ok(0)
                }
                None => Err(fail("no server is running")),
            },
            Command::Send(args) => send(args).await,
            Command::Capture(args) => capture(args).await,
            Command::Wait(args) => wait(args).await,
            Command::DebugConnect { socket } => debug_connect(&socket).await,
            Command::Server => Ok(0),
        }
    })
}

/// Commands about one session start the server when none runs: it is what turns sessions
/// saved by a dead server into `lost` ones that can be captured and revived.
async fn existing_for(name: &str) -> Result<Client, Failure> {
    crate::paths::validate_session_name(name).map_err(usage)?;
    Ok(Client::connect().await?)
}

fn default_command() -> Vec<String> {
    vec![
        std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into()),
    ]
}

fn spec(
    name: &str,
    command: Vec<String>,
    cwd: Option<String>,
    env: &[String],
    scrollback: usize,
) -> Result<SessionSpec, Failure> {
    crate::paths::validate_session_name(name).map_err(usage)?;
    if scrollback > crate::state::MAX_SCROLLBACK {
        return Err(usage(format!(
            "--scrollback {scrollback} is too large (at most {} lines)",
            crate::state::MAX_SCROLLBACK
        )));
    }
    let cwd = match cwd {
        Some(dir) => working_dir(&dir)?,
        None => std::env::current_dir()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".into()),
    };
    let mut pairs = Vec::new();
    for item in env {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
                pairs.push((k.to_string(), v.to_string()))
            }
            _ => {
                return Err(usage(format!(
                    "invalid environment '{item}': expected KEY=VALUE"
                )));
            }
        }
    }
    if command.iter().any(|a| a.contains('\0')) {
        return Err(usage("command arguments must not contain NUL bytes"));
    }
    let command = if command.is_empty() {
        default_command()
    } else {
        command
    };
    let (rows, cols) = crate::client::attach::terminal_size();
    Ok(SessionSpec {
        name: name.into(),
        command,
        cwd,
        env: pairs,
        scrollback,
        rows,
        cols,
        resume_command: None,
        log_limit: 0,
    })
}

/// `-C DIR` as an absolute path, refused with the reason when it cannot be a working dir.
fn working_dir(dir: &str) -> Result<String, Failure> {
    let path = std::path::Path::new(dir);
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail(format!("directory {dir} does not exist")),
        _ => fail(format!("cannot use directory {dir}: {e}")),
    })?;
    if !meta.is_dir() {
        return Err(fail(format!("{dir} is not a directory")));
    }
    // A dir we cannot enter (no search permission) fails only when the program starts.
    if rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_err() {
        return Err(fail(format!(
            "cannot use directory {dir}: permission denied (no search permission)"
        )));
    }
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| fail(format!("cannot use directory {dir}: {e}")))?;
    absolute.into_os_string().into_string().map_err(|p| {
        fail(format!(
            "directory {} is not valid UTF-8; linger needs a UTF-8 path",
            std::path::Path::new(&p).display()
        ))
    })
}

async fn new(args: NewArgs, detach_key: DetachKey) -> Result<i32, Failure> {
    let spec = spec(
        &args.name,
        args.command,
        args.cwd,
        &args.env,
        args.scrollback,
    )?;
    let spec = SessionSpec {
        resume_command: args
            .resume_cmd
            .map(|cmd| vec!["/bin/sh".into(), "-c".into(), cmd]),
        log_limit: args
            .log_size
            .as_deref()
            .map(parse_size)
            .transpose()?
            .unwrap_or(0),
        ..spec
    };
    let client = Client::connect().await?;
    client.create(spec).await?;
    if args.detached {
        return Ok(0);
    }
    attach_with(
        &client,
        AttachOptions {
            name: args.name,
            read_only: false,
            create: None,
            detach_key,
        },
    )
    .await
}

async fn attach(args: AttachArgs, detach_key: DetachKey) -> Result<i32, Failure> {
    crate::paths::validate_session_name(&args.name).map_err(usage)?;
    if !args.create && !args.command.is_empty() {
        return Err(usage("a command after -- needs --create"));
    }
    let create = if args.create {
        Some(spec(&args.name, args.command, None, &[], 10_000)?)
    } else {
        None
    };
    let client = if create.is_some() {
        Client::connect().await?
    } else {
        existing_for(&args.name).await?
    };
    attach_with(
        &client,
        AttachOptions {
            name: args.name,
            read_only: args.read_only,
            create,
            detach_key,
        },
    )
    .await
}

async fn attach_with(client: &Client, opts: AttachOptions) -> Result<i32, Failure> {
    let inside = std::env::var("LINGER_SESSION").ok();
    let inside_dir = std::env::var_os("LINGER_DIR").map(std::path::PathBuf::from);
    if inside.as_deref() == Some(opts.name.as_str())
        && inside_dir.as_deref().is_none_or(|d| d == client.dir())
    {
        return Err(fail(format!(
            "refusing to attach to session '{}' from inside itself",
            opts.name
        )));
    }
    let name = opts.name.clone();
    let ending = crate::client::attach::attach(client, opts).await?;
    let mut out = std::io::stdout();
    match ending {
        Ending::Detached => {
            // The session's screen is still up and the cursor may sit mid-line: start afresh.
            let _ = writeln!(out, "\r\n[detached from {name}]");
            Ok(0)
        }
        Ending::Exited(message) => {
            let _ = writeln!(out, "\r\n{message}");
            Ok(0)
        }
        Ending::TerminalGone => Ok(0),
        Ending::ConnectionLost => Err(fail(format!(
            "lost the connection to the server while attached to '{name}'"
        ))),
    }
}

fn age(now_ms: u64, then_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Latest time RFC 3339 can write (9999-12-31T23:59:59.999Z), in unix milliseconds.
const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// A timestamp for JSON; `None` (null) for one past year 9999, which only a damaged or
/// hand-edited record can hold (humantime panics on those).
fn rfc3339(ms: u64) -> Option<String> {
    if ms > MAX_RFC3339_MS {
        return None;
    }
    let time = std::time::UNIX_EPOCH.checked_add(Duration::from_millis(ms))?;
    Some(humantime::format_rfc3339_millis(time).to_string())
}

fn session_json(s: &SessionInfo) -> serde_json::Value {
    let (exit_code, signal) = match s.state {
        SessionState::Exited(code) => (Some(code), None),
        SessionState::Killed(sig) => (None, Some(crate::signals::name(sig))),
        SessionState::Running | SessionState::Lost | SessionState::Broken => (None, None),
    };
    serde_json::json!({
        "name": s.name,
        "state": s.state.label(),
        "pid": s.pid,
        "command": s.command,
        "cwd": s.cwd,
        "clients": s.clients,
        "created_at": rfc3339(s.created_at),
        "last_output_at": rfc3339(s.last_output_at),
        "exit_code": exit_code,
        "signal": signal,
        "rows": s.rows,
        "cols": s.cols,
        "last_seen_at": (s.state == SessionState::Lost).then(|| rfc3339(s.last_output_at)),
        "notes": s.notes,
        "resume_command": s.resume_command,
        "persist_error": s.persist_error,
        "broken_reason": (s.state == SessionState::Broken).then_some(&s.persist_error),
    })
}

async fn ls(json: bool) -> Result<i32, Failure> {
    // Starting the server here is what turns sessions of a dead server into `lost` ones.
    let sessions = Client::connect().await?.list().await?;
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<_> = sessions.iter().map(session_json).collect();
        let _ = writeln!(out, "{}", serde_json::Value::Array(list));
        return Ok(0);
    }
    if sessions.is_empty() {
        return Ok(0);
    }
    let now = crate::server::session::unix_millis();
    let rows: Vec<[String; 7]> = sessions
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.state.label(),
                s.pid.to_string(),
                s.clients.to_string(),
                age(now, s.created_at),
                age(now, s.last_output_at),
                s.command.join(" "),
            ]
        })
        .collect();
    let header = [
        "NAME", "STATE", "PID", "CLIENTS", "CREATED", "IDLE", "COMMAND",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |out: &mut dyn Write, cells: &[&str]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    };
    print(&mut out, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        print(&mut out, &cells);
    }
    Ok(0)
}

fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| fail(format!("cannot read stdin: {e}")))?;
    Ok(data)
}

/// Text longer than this goes as a paste even on one line, so composers do not act on it early.
const LONG_TEXT: usize = 200;

async fn send(args: SendArgs) -> Result<i32, Failure> {
    let client = existing_for(&args.name).await?;
    if args.keys {
        let keys: Vec<String> = args
            .text
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(String::from)
            .collect();
        if keys.is_empty() && !args.enter {
            return Err(usage("--keys needs at least one key name"));
        }
        if !keys.is_empty() {
            client.send_keys(&args.name, &keys).await?;
        }
        if args.enter {
            client.send(&args.name, b"", false, true).await?;
        }
        return Ok(0);
    }
    let text = if args.text.len() == 1 && args.text[0] == "-" {
        read_stdin()?
    } else {
        args.text.join(" ").into_bytes()
    };
    if text.is_empty() && !args.enter {
        return Err(usage("nothing to send: give TEXT, - for stdin, or --enter"));
    }
    let paste = text.contains(&b'\n') || text.len() > LONG_TEXT;
    client.send(&args.name, &text, paste, args.enter).await?;
    Ok(0)
}

async fn capture(args: CaptureArgs) -> Result<i32, Failure> {
    let client = existing_for(&args.name).await?;
    let history = if args.all {
        Some(usize::MAX)
    } else {
        args.history
    };
    let cap = client
        .capture(&args.name, history, args.from_line, args.ansi)
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "name": cap.name,
            "rows": cap.rows,
            "cols": cap.cols,
            "cursor": {"row": cap.cursor_row, "col": cap.cursor_col, "visible": cap.cursor_visible},
            "title": cap.title,
            "alternate_screen": cap.alternate_screen,
            "history": cap.history.iter().map(|l| serde_json::json!({"line": l.line, "text": l.text})).collect::<Vec<_>>(),
            "screen": cap.screen,
            "next_line": cap.next_line,
        });
        let _ = writeln!(out, "{value}");
        return Ok(0);
    }
    for line in &cap.history {
        let _ = writeln!(out, "{}", line.text);
    }
    for line in &cap.screen {
        let _ = writeln!(out, "{line}");
    }
    Ok(0)
}

/// `16M`, `512K`, `1G` or plain bytes.
fn parse_size(text: &str) -> Result<u64, Failure> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| usage(format!("invalid size '{text}' (try 16M, 512K)")))?;
    let mult = match unit
        .trim_end_matches(['i', 'B', 'b'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(usage(format!("invalid size '{text}' (try 16M, 512K)"))),
    };
    let bytes = n.saturating_mul(mult);
    if bytes < 64 * 1024 {
        return Err(usage(format!(
            "log size {text} is too small (at least 64K)"
        )));
    }
    if bytes > crate::state::MAX_LOG_LIMIT {
        return Err(usage(format!("log size {text} is too large (at most 1G)")));
    }
    Ok(bytes)
}

fn duration(text: &str, flag: &str) -> Result<Duration, Failure> {
    humantime::parse_duration(text)
        .map_err(|e| usage(format!("invalid {flag} '{text}': {e} (try 500ms, 5s, 2m)")))
}

async fn wait(args: WaitArgs) -> Result<i32, Failure> {
    let client = existing_for(&args.name).await?;
    let timeout = args
        .timeout
        .as_deref()
        .map(|t| duration(t, "--timeout"))
        .transpose()?;
    let (condition, what) = if let Some(regex) = args.text {
        regex::Regex::new(&regex).map_err(|e| usage(format!("invalid regex: {e}")))?;
        let what = format!("text /{regex}/");
        (
            WaitCondition::Text {
                regex,
                from_line: args.from_line,
            },
            what,
        )
    } else if let Some(idle) = args.idle {
        let d = duration(&idle, "--idle")?;
        (
            WaitCondition::Idle {
                millis: d.as_millis() as u64,
            },
            format!("{idle} of idleness"),
        )
    } else {
        (WaitCondition::Exit, "exit".to_string())
    };
    let is_exit = matches!(condition, WaitCondition::Exit);
    match client.wait(&args.name, condition, timeout).await? {
        WaitOutcome::Done { line, exit_code } => {
            if !is_exit && !line.is_empty() {
                println!("{line}");
            }
            Ok(if is_exit { exit_code.unwrap_or(0) } else { 0 })
        }
        WaitOutcome::TimedOut => Err(Failure {
            code: 124,
            message: format!(
                "timed out after {} waiting for {what} in session '{}'",
                args.timeout.unwrap_or_default(),
                args.name
            ),
        }),
    }
}

async fn debug_connect(socket: &std::path::Path) -> Result<i32, Failure> {
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| fail(format!("cannot connect to {}: {e}", socket.display())))?;
    match tokio::time::timeout(
        Duration::from_secs(5),
        crate::protocol::read_frame::<_, crate::protocol::Hello>(&mut stream),
    )
    .await
    {
        Ok(Ok(hello)) => {
            println!("hello protocol {}", hello.protocol);
            Ok(0)
        }
        _ => {
            println!("refused");
            Ok(3)
        }
    }
}
