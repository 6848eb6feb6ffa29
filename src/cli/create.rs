//! `new` and `attach`: what a session runs and where, and attaching to it.

use std::io::Write;

use super::args::{AttachArgs, NewArgs};
use super::parse::parse_size;
use super::{Failure, detach_key, existing_for, fail, usage};
use crate::client::Client;
use crate::client::attach::{AttachOptions, Ending};
use crate::config::Config;
use crate::keyboard::chord::DetachKey;
use crate::protocol::{MAX_ENV_BYTES, SessionSpec, SessionState};

fn default_command(config: &Config) -> Vec<String> {
    if let Some(command) = config.command.clone().filter(|c| !c.is_empty()) {
        return command;
    }
    vec![
        std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into()),
    ]
}

/// Variables of the caller's that a session never inherits: linger sets its own terminal
/// type and session variables, and `TMUX` makes Claude Code lower its colours.
const NOT_INHERITED: [&str; 6] = [
    "TERM",
    "COLORTERM",
    "TMUX",
    "TMUX_PANE",
    "LINGER_SESSION",
    "LINGER_DIR",
];

/// The caller's environment (UTF-8 variables only), with `-e K=V` over it; at most
/// [`MAX_ENV_BYTES`] in all.
fn session_env(extra: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut pairs: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| !NOT_INHERITED.contains(&k.as_str()))
        .collect();
    for item in extra {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
                pairs.retain(|(key, _)| key != k);
                pairs.push((k.to_string(), v.to_string()));
            }
            _ => {
                return Err(usage(format!(
                    "invalid environment '{item}': expected KEY=VALUE"
                )));
            }
        }
    }
    let bytes: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if bytes > MAX_ENV_BYTES {
        return Err(fail(format!(
            "the environment is {} KiB; a session takes at most {} KiB: unset large variables first",
            bytes / 1024,
            MAX_ENV_BYTES / 1024
        )));
    }
    Ok(pairs)
}

/// What `new` and `attach --create` ask for, before the config file's defaults.
struct Wanted<'a> {
    name: &'a str,
    command: Vec<String>,
    cwd: Option<String>,
    env: &'a [String],
    scrollback: Option<usize>,
}

fn spec(wanted: Wanted<'_>, config: &Config) -> Result<SessionSpec, Failure> {
    crate::paths::validate_session_name(wanted.name).map_err(usage)?;
    let scrollback = wanted.scrollback.or(config.scrollback).unwrap_or(10_000);
    if scrollback > crate::state::MAX_SCROLLBACK {
        return Err(usage(format!(
            "--scrollback {scrollback} is too large (at most {} lines)",
            crate::state::MAX_SCROLLBACK
        )));
    }
    let cwd = match wanted.cwd {
        Some(dir) => working_dir(&dir)?,
        None => match std::env::current_dir() {
            Ok(dir) => dir.into_os_string().into_string().map_err(|d| {
                fail(format!(
                    "the current directory {} is not valid UTF-8, which linger needs; use -C DIR",
                    std::path::Path::new(&d).display()
                ))
            })?,
            // Deleted under us, say: start where every program can.
            Err(_) => "/".into(),
        },
    };
    let mut env = session_env(wanted.env)?;
    // The caller's PWD names the caller's directory; shells trust it when it matches theirs.
    if !wanted.env.iter().any(|e| e.starts_with("PWD=")) {
        env.retain(|(k, _)| k != "PWD");
        env.push(("PWD".into(), cwd.clone()));
    }
    if wanted.command.iter().any(|a| a.contains('\0')) {
        return Err(usage("command arguments must not contain NUL bytes"));
    }
    if let [line] = wanted.command.as_slice()
        && line.contains(|c: char| c.is_whitespace() || "&|;<>()$`".contains(c))
        && !std::path::Path::new(line).exists()
    {
        let quoted = line.replace('\'', r"'\''");
        return Err(usage(format!(
            "no program named '{line}'; to run a shell command line, use: -- sh -c '{quoted}'"
        )));
    }
    let command = if wanted.command.is_empty() {
        default_command(config)
    } else {
        wanted.command
    };
    let (rows, cols) = crate::client::attach::terminal_size();
    Ok(SessionSpec {
        name: wanted.name.into(),
        resume_command: config.resume_for(&command),
        command,
        cwd,
        env,
        scrollback,
        rows,
        cols,
        log_limit: match &config.log_size {
            Some(size) => parse_size(size)?,
            None => 0,
        },
        clear_env: true,
    })
}

/// Attaching needs a terminal: say so before anything is created.
fn need_terminal(hint: &str) -> Result<(), Failure> {
    if rustix::termios::isatty(rustix::stdio::stdin()) {
        return Ok(());
    }
    Err(fail(format!("attaching needs a terminal on stdin; {hint}")))
}

/// `-C DIR` as an absolute path, refused with the reason when it cannot be a working dir.
pub(crate) fn working_dir(dir: &str) -> Result<String, Failure> {
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

pub(crate) async fn new(args: NewArgs, flag_key: Option<String>) -> Result<i32, Failure> {
    if !args.detached {
        need_terminal("use `linger new -d` from scripts")?;
    }
    let config = crate::config::load().map_err(fail)?;
    let mut spec = spec(
        Wanted {
            name: &args.name,
            command: args.command,
            cwd: args.cwd,
            env: &args.env,
            scrollback: args.scrollback,
        },
        &config,
    )?;
    if let Some(cmd) = args.resume_cmd {
        spec.resume_command = Some(vec!["/bin/sh".into(), "-c".into(), cmd]);
    }
    if let Some(size) = args.log_size.as_deref() {
        spec.log_limit = parse_size(size)?;
    }
    let detach_key = if args.detached {
        DetachKey::default()
    } else {
        detach_key(flag_key, &config)?
    };
    let client = Client::connect().await?;
    if args.detached {
        client.create(spec).await?;
        return Ok(0);
    }
    // The attach creates the session, so the program starts knowing this terminal (its
    // colours, kitty support) from its first question; `new` still refuses a taken name.
    if client.list().await?.iter().any(|s| s.name == args.name) {
        return Err(fail(format!(
            "session '{}' already exists (see `linger ls`; `linger kill {}` forgets it)",
            args.name, args.name
        )));
    }
    let history = config.attach_history(None).map_err(usage)?;
    attach_with(
        &client,
        options(args.name, false, Some(spec), detach_key, history),
    )
    .await
}

fn options(
    name: String,
    read_only: bool,
    create: Option<SessionSpec>,
    detach_key: DetachKey,
    history: u64,
) -> AttachOptions {
    AttachOptions {
        name,
        read_only,
        create,
        detach_key,
        history,
    }
}

pub(crate) async fn attach(args: AttachArgs, flag_key: Option<String>) -> Result<i32, Failure> {
    crate::paths::validate_session_name(&args.name).map_err(usage)?;
    if !args.create && !args.command.is_empty() {
        return Err(usage("a command after -- needs --create"));
    }
    let config = crate::config::load().map_err(fail)?;
    let detach_key = detach_key(flag_key, &config)?;
    let history = config
        .attach_history(args.history.as_deref())
        .map_err(usage)?;
    let create = if args.create {
        need_terminal("use `linger new -d` from scripts")?;
        let wanted = Wanted {
            name: &args.name,
            command: args.command,
            cwd: None,
            env: &[],
            scrollback: None,
        };
        Some(spec(wanted, &config)?)
    } else {
        None
    };
    let client = if create.is_some() {
        Client::connect().await?
    } else {
        existing_for(&args.name).await?
    };
    if args.detach_others
        && let Err(e) = client.detach(&args.name).await
        && create.is_none()
    {
        return Err(e.into());
    }
    let opts = options(args.name, args.read_only, create, detach_key, history);
    attach_with(&client, opts).await
}

/// Bare `linger`: attach to `main`, creating it when missing and reviving it when it ended
/// or was lost, so the old output stays above the new.
pub(crate) async fn bare(flag_key: Option<String>) -> Result<i32, Failure> {
    let config = crate::config::load().map_err(fail)?;
    let detach_key = detach_key(flag_key, &config)?;
    need_terminal("use `linger new -d main` from scripts")?;
    let client = Client::connect().await?;
    let sessions = client.list().await?;
    let main = sessions.iter().find(|s| s.name == "main");
    let create = match main.map(|s| &s.state) {
        None => {
            let wanted = Wanted {
                name: "main",
                command: Vec::new(),
                cwd: None,
                env: &[],
                scrollback: None,
            };
            Some(spec(wanted, &config)?)
        }
        Some(SessionState::Exited(_) | SessionState::Killed(_) | SessionState::Lost) => {
            let (rows, cols) = crate::client::attach::terminal_size();
            client.revive_in("main", None, None, rows, cols).await?;
            None
        }
        Some(_) => None,
    };
    let history = config.attach_history(None).map_err(usage)?;
    attach_with(
        &client,
        options("main".into(), false, create, detach_key, history),
    )
    .await
}

/// How many times one `attach` follows its session to a new server after the old one crashed.
const MAX_REATTACH_AFTER_CRASH: u32 = 3;

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
    let mut ending = crate::client::attach::attach(client, opts.clone()).await?;
    let mut crashes = 0;
    // Between two attachments the terminal stays raw: keys typed meanwhile are neither echoed
    // nor line-buffered, and reach the session once it is back.
    let mut between = None;
    loop {
        if matches!(ending, Ending::Upgrading | Ending::ConnectionLost) {
            // The attachment that ended gave the terminal back: take it again (a guard left
            // from an earlier gap has nothing left to restore).
            drop(between.take());
            between = crate::client::rawmode::RawMode::enable().ok();
        }
        match ending {
            // `linger upgrade`: the session is adopted by the new server; stay attached.
            Ending::Upgrading => client.wait_for_server().await?,
            // The server crashed, and a keeper holds the program: the next server adopts it
            // (the keeper starts it, or this does); stay attached. A server that keeps
            // crashing is left alone.
            Ending::ConnectionLost
                if crashes < MAX_REATTACH_AFTER_CRASH && crate::keeper::runs(client.dir()) =>
            {
                crashes += 1;
                client.ensure_server().await?;
            }
            _ => break,
        }
        let again = crate::client::attach::AttachOptions {
            create: None,
            ..opts.clone()
        };
        ending = crate::client::attach::attach(client, again).await?;
    }
    drop(between);
    let mut out = std::io::stdout();
    match ending {
        Ending::Detached => {
            // The session's screen is still up and the cursor may sit mid-line: start afresh.
            // The program's leftover rows (an inline UI's status line) may sit below the
            // cursor: start on a fresh line and clear what is below it.
            let _ = writeln!(out, "\r\n\x1b[J[detached from {name}]");
            Ok(0)
        }
        Ending::Exited(message) => {
            let _ = writeln!(out, "\r\n{message}");
            Ok(0)
        }
        Ending::TerminalGone | Ending::Upgrading => Ok(0),
        Ending::ConnectionLost => Err(fail(format!(
            "lost the connection to the server while attached to '{name}'"
        ))),
    }
}
