//! `new` and `attach`: what a session runs and where, and attaching to it.

use std::io::Write;

use super::args::{AttachArgs, NewArgs};
use super::parse::parse_size;
use super::{Failure, existing_for, fail, usage};
use crate::client::Client;
use crate::client::attach::{AttachOptions, Ending};
use crate::client::chord::DetachKey;
use crate::protocol::SessionSpec;

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

pub(crate) async fn new(args: NewArgs, detach_key: DetachKey) -> Result<i32, Failure> {
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

pub(crate) async fn attach(args: AttachArgs, detach_key: DetachKey) -> Result<i32, Failure> {
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
            // The program's leftover rows (an inline UI's status line) may sit below the
            // cursor: start on a fresh line and clear what is below it.
            let _ = writeln!(out, "\r\n\x1b[J[detached from {name}]");
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
