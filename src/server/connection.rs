//! One client connection: peer check, version handshake, then one request (or an attach
//! stream).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Server;
use super::commands::{SendText, SessionCmd};
use crate::log;
use crate::protocol::stream::{ReadHalf, WriteHalf};
use crate::protocol::{self, FrameCodec, FrameReader, Hello, Request, Response, Stream};

/// A client must say hello and its request within this; idle sockets are not kept.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handle(stream: tokio::net::UnixStream, server: Arc<Server>) {
    let stream = match Stream::from_tokio(stream) {
        Ok(stream) => stream,
        Err(e) => {
            log::warn(&format!("cannot take a connection: {e}"));
            return;
        }
    };
    if !peer_is_us(&stream) {
        return;
    }
    let (rd, mut wr) = stream.into_split();
    let mut rd = FrameReader::new(rd, FrameCodec::requests());
    let Some(request) = handshake(&mut rd, &mut wr).await else {
        return;
    };
    let response = match request {
        Request::Attach(wanted) => return super::attached::attach(server, rd, wr, wanted).await,
        Request::Wait {
            name,
            condition,
            timeout_ms,
        } => wait(&server, &mut rd, &name, condition, timeout_ms).await,
        Request::Send {
            name,
            len,
            paste,
            enter,
            timeout_ms,
        } => {
            let text = SendRequest {
                len,
                paste,
                enter,
                timeout: Duration::from_millis(timeout_ms),
            };
            send(&server, &mut rd, &name, text).await
        }
        Request::Events { names } => return super::events::stream(rd, wr, names).await,
        other => dispatch(&server, other).await,
    };
    let _ = protocol::write_frame(&mut wr, &response).await;
}

/// Only the server's own user may talk to it.
fn peer_is_us(stream: &Stream) -> bool {
    let me = rustix::process::getuid().as_raw();
    match stream.peer_uid() {
        Ok(uid) if uid == me => {}
        Ok(uid) => {
            log::warn(&format!(
                "refused a connection from uid {uid} (server runs as uid {me})"
            ));
            return false;
        }
        Err(e) => {
            log::warn(&format!(
                "refused a connection without peer credentials: {e}"
            ));
            return false;
        }
    }
    true
}

/// Exchanges hellos and reads the one request, each within [`HANDSHAKE_TIMEOUT`]; `None` when
/// the client left, was refused or was too slow.
async fn handshake(rd: &mut FrameReader<ReadHalf>, wr: &mut WriteHalf) -> Option<Request> {
    if protocol::write_frame(wr, &Hello::ours()).await.is_err() {
        return None;
    }
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let hello: Hello = protocol::next_message(rd).await?;
        Ok::<_, protocol::FrameError>(hello)
    })
    .await;
    let hello = match first {
        Ok(Ok(hello)) => hello,
        Ok(Err(e)) => {
            if !e.is_eof() {
                log::warn(&format!("dropped a client during handshake: {e}"));
            }
            return None;
        }
        Err(_) => return None,
    };
    if hello.protocol != protocol::protocol_version() {
        let msg = protocol::mismatch_message(&hello, &Hello::ours());
        let _ = protocol::write_frame(wr, &Response::Error(msg)).await;
        return None;
    }
    let request =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, protocol::next_message::<_, Request>(rd))
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                if !e.is_eof() {
                    log::warn(&format!("dropped a client: {e}"));
                    let _ =
                        protocol::write_frame(wr, &Response::Error(format!("bad request: {e}")))
                            .await;
                }
                return None;
            }
            Err(_) => return None,
        };
    Some(request)
}

pub(super) fn no_session(name: &str) -> Response {
    Response::Error(format!("no session named '{name}' (see `linger ls`)"))
}

async fn send_keys(server: &Server, name: &str, keys: Vec<String>, timeout_ms: u64) -> Response {
    let timeout = std::time::Duration::from_millis(timeout_ms);
    ask(server, name, |reply| SessionCmd::SendKeys {
        keys,
        timeout,
        reply,
    })
    .await
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

async fn list(server: &Server) -> Response {
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

/// `kill --lost`: every lost session forgets itself.
async fn kill_lost(server: &Server) -> Response {
    let mut forgotten = 0;
    for tx in server.registry.all() {
        let (reply, rx) = oneshot::channel();
        if tx.send(SessionCmd::ForgetIfLost { reply }).await.is_ok() && rx.await == Ok(true) {
            forgotten += 1;
        }
    }
    Response::Forgotten(forgotten)
}

async fn dispatch(server: &Server, request: Request) -> Response {
    match request {
        Request::List => list(server).await,
        Request::Create(spec) => match server.create(spec, None).await {
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
        Request::SendKeys {
            name,
            keys,
            timeout_ms,
        } => send_keys(server, &name, keys, timeout_ms).await,
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
        Request::Revive { .. }
        | Request::KillLost
        | Request::Stop { .. }
        | Request::Rename { .. }
        | Request::KillExited
        | Request::Status { .. }
        | Request::Queue { .. } => manage(server, request).await,
        Request::Input(_)
        | Request::Resize { .. }
        | Request::Profile(_)
        | Request::Focus(_)
        | Request::Terminal
        | Request::Keyboard(_)
        | Request::KeyboardBack
        | Request::Refresh
        | Request::Drained(_) => {
            Response::Error("input and resize are only valid while attached".into())
        }
        Request::Attach(_)
        | Request::Wait { .. }
        | Request::Send { .. }
        | Request::Events { .. } => Response::Error("unexpected request".into()),
        Request::SendData(_) => Response::Error("text without a send request".into()),
    }
}

/// Requests that start, end, rename or forget sessions.
async fn manage(server: &Server, request: Request) -> Response {
    match request {
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
        Request::KillLost => kill_lost(server).await,
        Request::Stop { name, signal } => {
            match ask(server, &name, |reply| SessionCmd::Stop { signal, reply }).await {
                Response::WaitDone { .. } => Response::Ok,
                other => other,
            }
        }
        Request::Rename { name, new_name } if new_name == name => {
            // Already so named: nothing to do, as tmux does.
            match server.registry.get(&name) {
                Some(_) => Response::Ok,
                None => no_session(&name),
            }
        }
        Request::Rename { name, new_name } => {
            ask(server, &name, |reply| SessionCmd::Rename {
                new_name,
                reply,
            })
            .await
        }
        Request::KillExited => kill_exited(server).await,
        Request::Status {
            name,
            state,
            reason,
        } => {
            ask(server, &name, |reply| SessionCmd::Status {
                state,
                reason,
                reply,
            })
            .await
        }
        Request::Queue { name, op } => {
            ask(server, &name, |reply| SessionCmd::Queue { op, reply }).await
        }
        other => Response::Error(format!("unexpected request {other:?}")),
    }
}

/// Forgets every session whose program has ended (exited or killed), as `kill` would.
async fn kill_exited(server: &Server) -> Response {
    let Response::Sessions(sessions) = list(server).await else {
        return Response::Forgotten(0);
    };
    let mut forgotten = 0;
    for info in sessions {
        if !matches!(
            info.state,
            protocol::SessionState::Exited(_) | protocol::SessionState::Killed(_)
        ) {
            continue;
        }
        let name = info.name;
        if ask(server, &name, |reply| SessionCmd::Kill {
            signal: None,
            reply,
        })
        .await
            == Response::Ok
        {
            forgotten += 1;
        }
    }
    Response::Forgotten(forgotten)
}

/// Waits for a condition; gives up on timeout or when the client goes away.
async fn wait(
    server: &Server,
    rd: &mut FrameReader<ReadHalf>,
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
    tokio::select! {
        response = waiting => response,
        _ = timeout => Response::WaitTimeout,
        // Anything, or EOF, from a waiting client means it has gone.
        _ = protocol::next_message::<_, Request>(rd) => Response::Error("client went away".into()),
    }
}

/// What a `send` asked for; its text follows on the connection.
struct SendRequest {
    len: u64,
    paste: bool,
    enter: bool,
    timeout: Duration,
}

/// Chunks of one send's text in flight between its connection and the session: with
/// [`protocol::SEND_CHUNK`]-sized chunks, at most this many times that per sender.
const SEND_CHUNKS_IN_FLIGHT: usize = 2;

/// Streams a send's text from the client to the session as the program takes it, and answers
/// once the session has written it all (or gave up).
async fn send(
    server: &Server,
    rd: &mut FrameReader<ReadHalf>,
    name: &str,
    request: SendRequest,
) -> Response {
    let Some(session) = server.registry.get(name) else {
        return no_session(name);
    };
    let (chunks_tx, chunks) = mpsc::channel(SEND_CHUNKS_IN_FLIGHT);
    let (reply, mut answer) = oneshot::channel();
    let text = SendText {
        chunks,
        len: request.len,
        paste: request.paste,
        enter: request.enter,
        timeout: request.timeout,
        reply,
    };
    if session.send(SessionCmd::Send(text)).await.is_err() {
        return no_session(name);
    }
    let forward = async {
        let mut left = request.len;
        while left > 0 {
            let data = match protocol::next_message::<_, Request>(rd).await {
                Ok(Request::SendData(data)) if data.len() as u64 <= left => data,
                // A client that leaves or misbehaves mid-send: the session closes the paste.
                _ => return,
            };
            left -= data.len() as u64;
            if chunks_tx.send(data).await.is_err() {
                // The session gave up on this send; its answer says why.
                return;
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        biased;
        answer = &mut answer => return answer.unwrap_or_else(|_| no_session(name)),
        () = forward => {}
    }
    // Either way the session answers: the channel's end tells it the text stopped.
    drop(chunks_tx);
    answer.await.unwrap_or_else(|_| no_session(name))
}
