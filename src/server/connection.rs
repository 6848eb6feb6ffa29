//! One client connection: peer check, version handshake, then one request (or an attach
//! stream).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::Server;
use super::session::{ClientLink, Control, SessionCmd};
use crate::log;
use crate::protocol::{self, Hello, Request, Response};

/// A client must say hello and its request within this; idle sockets are not kept.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle(stream: UnixStream, server: Arc<Server>) {
    let me = rustix::process::getuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => {}
        Ok(cred) => {
            log::warn(&format!(
                "refused a connection from uid {} (server runs as uid {me})",
                cred.uid()
            ));
            return;
        }
        Err(e) => {
            log::warn(&format!(
                "refused a connection without peer credentials: {e}"
            ));
            return;
        }
    }
    let (mut rd, mut wr) = stream.into_split();
    if protocol::write_frame(&mut wr, &Hello::ours())
        .await
        .is_err()
    {
        return;
    }
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let hello: Hello = protocol::read_frame(&mut rd).await?;
        Ok::<_, protocol::FrameError>(hello)
    })
    .await;
    let hello = match first {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => {
            if !e.is_eof() {
                log::warn(&format!("dropped a client during handshake: {e}"));
            }
            return;
        }
        Err(_) => return,
    };
    if hello.protocol != protocol::protocol_version() {
        let msg = protocol::mismatch_message(&hello, &Hello::ours());
        let _ = protocol::write_frame(&mut wr, &Response::Error(msg)).await;
        return;
    }
    let request = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        protocol::read_frame::<_, Request>(&mut rd),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            if !e.is_eof() {
                log::warn(&format!("dropped a client: {e}"));
                let _ =
                    protocol::write_frame(&mut wr, &Response::Error(format!("bad request: {e}")))
                        .await;
            }
            return;
        }
        Err(_) => return,
    };
    let response = match request {
        Request::Attach {
            name,
            read_only,
            rows,
            cols,
            create,
        } => {
            return attach(server, rd, wr, name, read_only, rows, cols, create).await;
        }
        Request::Wait {
            name,
            condition,
            timeout_ms,
        } => wait(&server, &mut rd, &name, condition, timeout_ms).await,
        other => dispatch(&server, other).await,
    };
    let _ = protocol::write_frame(&mut wr, &response).await;
}

fn no_session(name: &str) -> Response {
    Response::Error(format!("no session named '{name}' (see `linger ls`)"))
}

/// Sends a command that answers through a oneshot, mapping a vanished session to an error.
async fn ask(
    server: &Server,
    name: &str,
    make: impl FnOnce(oneshot::Sender<Response>) -> SessionCmd,
) -> Response {
    let Some(tx) = server.registry.get(name) else {
        return no_session(name);
    };
    let (reply, rx) = oneshot::channel();
    if tx.send(make(reply)).await.is_err() {
        return no_session(name);
    }
    rx.await.unwrap_or_else(|_| no_session(name))
}

async fn dispatch(server: &Server, request: Request) -> Response {
    match request {
        Request::List => {
            let mut sessions = Vec::new();
            for tx in server.registry.all() {
                let (reply, rx) = oneshot::channel();
                if tx.send(SessionCmd::Info(reply)).await.is_ok()
                    && let Ok(info) = rx.await
                {
                    sessions.push(info);
                }
            }
            Response::Sessions(sessions)
        }
        Request::Create(spec) => match server.create(spec) {
            Ok(_) => Response::Ok,
            Err(e) => Response::Error(e),
        },
        Request::Kill { name, signal } => {
            ask(server, &name, |reply| SessionCmd::Kill { signal, reply }).await
        }
        Request::Detach { name } => match server.registry.get(&name) {
            Some(tx) => {
                let _ = tx.send(SessionCmd::DetachAll).await;
                Response::Ok
            }
            None => no_session(&name),
        },
        Request::KillServer => {
            server.shutdown.notify_one();
            Response::Ok
        }
        Request::Send {
            name,
            text,
            paste,
            enter,
        } => {
            ask(server, &name, |reply| SessionCmd::Send {
                data: text,
                paste,
                enter,
                reply,
            })
            .await
        }
        Request::SendKeys { name, keys } => {
            ask(server, &name, |reply| SessionCmd::SendKeys { keys, reply }).await
        }
        Request::Capture {
            name,
            history,
            from_line,
            ansi,
        } => {
            ask(server, &name, |reply| SessionCmd::Capture {
                history,
                from_line,
                ansi,
                reply,
            })
            .await
        }
        Request::Note { name, text } => match text {
            Some(t) if t.len() > crate::state::MAX_NOTES => Response::Error(format!(
                "notes of {} bytes are too long (at most {})",
                t.len(),
                crate::state::MAX_NOTES
            )),
            text => ask(server, &name, |reply| SessionCmd::Note { text, reply }).await,
        },
        Request::Revive {
            name,
            command,
            rows,
            cols,
            cwd,
        } => match server
            .revive(
                &name,
                super::revive::ReviveRequest {
                    command,
                    cwd,
                    rows,
                    cols,
                },
            )
            .await
        {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error(e),
        },
        Request::KillLost => {
            let mut forgotten = 0;
            for tx in server.registry.all() {
                let (reply, rx) = oneshot::channel();
                if tx.send(SessionCmd::ForgetIfLost { reply }).await.is_ok() && rx.await == Ok(true)
                {
                    forgotten += 1;
                }
            }
            Response::Forgotten(forgotten)
        }
        Request::Input(_) | Request::Resize { .. } => {
            Response::Error("input and resize are only valid while attached".into())
        }
        Request::Attach { .. } | Request::Wait { .. } => {
            Response::Error("unexpected request".into())
        }
    }
}

/// Waits for a condition; gives up on timeout or when the client goes away.
async fn wait(
    server: &Server,
    rd: &mut OwnedReadHalf,
    name: &str,
    condition: protocol::WaitCondition,
    timeout_ms: Option<u64>,
) -> Response {
    let waiting = ask(server, name, |reply| SessionCmd::Wait { condition, reply });
    let timeout = async {
        match timeout_ms {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending().await,
        }
    };
    let mut probe = [0u8; 1];
    tokio::select! {
        response = waiting => response,
        _ = timeout => Response::WaitTimeout,
        // Any byte or EOF from a waiting client means it has gone.
        _ = rd.read(&mut probe) => Response::Error("client went away".into()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn attach(
    server: Arc<Server>,
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    name: String,
    read_only: bool,
    rows: u16,
    cols: u16,
    create: Option<protocol::SessionSpec>,
) {
    let tx = match server.registry.get(&name) {
        Some(tx) => tx,
        None => match create {
            Some(spec) => match server.create(spec) {
                Ok(tx) => tx,
                // Lost a race with another creator: attach to theirs.
                Err(e) => match server.registry.get(&name) {
                    Some(tx) => tx,
                    None => {
                        let _ = protocol::write_frame(&mut wr, &Response::Error(e)).await;
                        return;
                    }
                },
            },
            None => {
                let _ = protocol::write_frame(&mut wr, &no_session(&name)).await;
                return;
            }
        },
    };
    let (reply, link_rx) = oneshot::channel();
    if tx
        .send(SessionCmd::Attach {
            read_only,
            rows,
            cols,
            reply,
        })
        .await
        .is_err()
    {
        let _ = protocol::write_frame(&mut wr, &no_session(&name)).await;
        return;
    }
    let Ok(link) = link_rx.await else {
        let _ = protocol::write_frame(&mut wr, &no_session(&name)).await;
        return;
    };
    if protocol::write_frame(&mut wr, &Response::Ok).await.is_err() {
        let _ = tx.send(SessionCmd::Leave { client: link.id }).await;
        return;
    }
    let id = link.id;
    let mut writer = tokio::spawn(write_to_client(wr, link, tx.clone()));
    let mut buf = Vec::new();
    loop {
        tokio::select! {
            _ = &mut writer => break,
            frame = protocol::read_frame_into(&mut rd, &mut buf) => {
                if frame.is_err() {
                    break;
                }
                let cmd = match protocol::decode::<Request>(&buf) {
                    Ok(Request::Input(data)) => SessionCmd::Input { client: id, data },
                    Ok(Request::Resize { rows, cols }) => SessionCmd::Resize { client: id, rows, cols },
                    _ => break,
                };
                if tx.send(cmd).await.is_err() {
                    break;
                }
            }
        }
    }
    writer.abort();
    let _ = tx.send(SessionCmd::Leave { client: id }).await;
}

/// Streams a client's queue to its socket. When the session marked it lagging, what is still
/// queued is stale: drop it and ask the session for a fresh screen instead.
async fn write_to_client(
    mut wr: OwnedWriteHalf,
    mut link: ClientLink,
    session: mpsc::Sender<SessionCmd>,
) {
    let mut control = None;
    loop {
        tokio::select! {
            biased;
            data = link.output.recv() => {
                // The session dropped our queue: whatever it has to say is in `control`.
                let Some(data) = data else { break };
                if write_output(&mut wr, &data).await.is_err() {
                    return;
                }
                if link.lagging.load(Ordering::Acquire) {
                    while link.output.try_recv().is_ok() {}
                    if session.send(SessionCmd::Resync { client: link.id }).await.is_err() {
                        return;
                    }
                }
            }
            received = &mut link.control => {
                control = Some(received);
                break;
            }
        }
    }
    // Output queued before the control message still goes first, unless it is stale.
    if !link.lagging.load(Ordering::Acquire) {
        while let Ok(data) = link.output.try_recv() {
            if write_output(&mut wr, &data).await.is_err() {
                return;
            }
        }
    }
    let control = match control {
        Some(received) => received,
        None => link.control.await,
    };
    let response = match control {
        Ok(Control::Exited(message)) => Response::Exited(message),
        Ok(Control::Detached) => Response::Detached,
        Err(_) => return,
    };
    let _ = protocol::write_frame(&mut wr, &response).await;
}

async fn write_output(wr: &mut OwnedWriteHalf, data: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    for chunk in data.chunks(protocol::OUTPUT_CHUNK) {
        wr.write_all(&protocol::encode_output(chunk)).await?;
    }
    Ok(())
}
