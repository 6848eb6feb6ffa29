//! The attach loop: the user's terminal in raw mode, keyboard to the session, output to the
//! screen, until detach, exit, or the terminal goes away.

use std::io::{Read, Write};
use std::time::Instant;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::chord::{Action, ChordMatcher, DetachKey};
use super::rawmode::RawMode;
use super::{Client, Error, Result};
use crate::protocol::{self, Request, Response, SessionSpec};

pub struct AttachOptions {
    pub name: String,
    pub read_only: bool,
    pub create: Option<SessionSpec>,
    pub detach_key: DetachKey,
}

/// How an attach ended; the caller prints the message after the terminal is restored.
pub enum Ending {
    Detached,
    Exited(String),
    TerminalGone,
    ConnectionLost,
}

pub fn terminal_size() -> (u16, u16) {
    for fd in [rustix::stdio::stdout(), rustix::stdio::stdin()] {
        if let Ok(ws) = rustix::termios::tcgetwinsize(fd)
            && ws.ws_row > 0
            && ws.ws_col > 0
        {
            return (ws.ws_row, ws.ws_col);
        }
    }
    (24, 80)
}

pub async fn attach(client: &Client, opts: AttachOptions) -> Result<Ending> {
    if !rustix::termios::isatty(rustix::stdio::stdin()) {
        return Err(Error(
            "attach needs a terminal on stdin (use `linger send`/`capture` from scripts)".into(),
        ));
    }
    let (rows, cols) = terminal_size();
    let mut stream = client.open().await?;
    let request = Request::Attach {
        name: opts.name.clone(),
        read_only: opts.read_only,
        rows,
        cols,
        create: opts.create,
    };
    protocol::write_frame(&mut stream, &request)
        .await
        .map_err(|e| Error(format!("lost the server: {e}")))?;
    match protocol::read_response(&mut stream).await {
        Ok(Response::Ok) => {}
        Ok(Response::Error(e)) => return Err(Error(e)),
        Ok(other) => {
            return Err(Error(format!(
                "unexpected reply from the server: {other:?}"
            )));
        }
        Err(e) => return Err(Error(format!("lost the server: {e}"))),
    }
    let raw = RawMode::enable()?;
    let ending = run(stream, opts.read_only, opts.detach_key).await;
    drop(raw);
    Ok(ending)
}

/// Reads the keyboard on a plain thread: a blocking read cannot be cancelled, and the process
/// exits when attach ends anyway.
fn spawn_stdin_reader() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                // SIGSTOP/SIGCONT and SIGWINCH interrupt the read; the terminal is still there.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

async fn run(stream: tokio::net::UnixStream, read_only: bool, key: DetachKey) -> Ending {
    let (mut rd, mut wr) = stream.into_split();
    let mut keyboard = spawn_stdin_reader();
    let mut matcher = ChordMatcher::new(key);
    let (Ok(mut winch), Ok(mut hup), Ok(mut term)) = (
        signal(SignalKind::window_change()),
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
    ) else {
        return Ending::ConnectionLost;
    };
    let mut stdout = std::io::stdout().lock();
    let mut frame = Vec::new();
    loop {
        let deadline = matcher.deadline();
        let actions = tokio::select! {
            received = protocol::read_frame_limited(&mut rd, &mut frame, protocol::MAX_RESPONSE_FRAME) => {
                if received.is_err() {
                    return Ending::ConnectionLost;
                }
                match protocol::decode::<Response>(&frame) {
                    Ok(Response::Output(data)) => {
                        if stdout.write_all(&data).and_then(|_| stdout.flush()).is_err() {
                            return Ending::TerminalGone;
                        }
                        continue;
                    }
                    Ok(Response::Exited(message)) => return Ending::Exited(message),
                    Ok(Response::Detached) => return Ending::Detached,
                    _ => return Ending::ConnectionLost,
                }
            }
            input = keyboard.recv() => match input {
                Some(Some(bytes)) => matcher.feed(&bytes, Instant::now()),
                _ => return Ending::TerminalGone,
            },
            _ = sleep_until_opt(deadline), if deadline.is_some() => matcher.tick(Instant::now()),
            _ = winch.recv() => {
                if !read_only {
                    let (rows, cols) = terminal_size();
                    if protocol::write_frame(&mut wr, &Request::Resize { rows, cols }).await.is_err() {
                        return Ending::ConnectionLost;
                    }
                }
                continue;
            }
            _ = hup.recv() => return Ending::TerminalGone,
            _ = term.recv() => return Ending::TerminalGone,
        };
        for action in actions {
            match action {
                Action::Detach => return Ending::Detached,
                Action::Forward(bytes) => {
                    if read_only {
                        continue;
                    }
                    if protocol::write_frame(&mut wr, &Request::Input(bytes))
                        .await
                        .is_err()
                    {
                        return Ending::ConnectionLost;
                    }
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
