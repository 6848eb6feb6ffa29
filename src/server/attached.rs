//! An attached client's connection: its keys and reports in, its session's output out, until
//! one side ends the attachment.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Server;
use super::commands::{ClientId, ClientLink, SessionCmd};
use super::connection::no_session;
use super::direct;
use super::keyboard::{Key, Keyboard};
use super::outbox::{Control, Outbox, Outgoing};
use crate::log;
use crate::protocol::stream::{ReadHalf, WriteHalf};
use crate::protocol::{self, AttachRequest, FrameReader, Request, Response};

/// What an attaching client asked for.
pub(super) async fn attach(
    server: Arc<Server>,
    rd: FrameReader<ReadHalf>,
    mut wr: WriteHalf,
    wanted: AttachRequest,
) {
    let AttachRequest {
        name,
        read_only,
        rows,
        cols,
        create,
        profile,
        history,
    } = wanted;
    let tx = match server.registry.get(&name) {
        Some(tx) => tx,
        None => match create {
            Some(spec) => match server.create(spec, profile.clone()).await {
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
    let attach = SessionCmd::Attach {
        read_only,
        rows,
        cols,
        profile,
        history: usize::try_from(history).unwrap_or(usize::MAX),
        reply,
    };
    let link = match tx.send(attach).await {
        Ok(()) => link_rx.await.ok(),
        Err(_) => None,
    };
    let Some(link) = link else {
        let _ = protocol::write_frame(&mut wr, &no_session(&name)).await;
        return;
    };
    if protocol::write_frame(&mut wr, &Response::Ok).await.is_err() {
        let _ = tx.send(SessionCmd::Leave { client: link.id }).await;
        return;
    }
    let id = link.id;
    let outbox = Arc::clone(&link.outbox);
    let direct = Arc::new(direct::Shared::default());
    let writer = tokio::spawn(write_to_client(wr, link, tx.clone(), Arc::clone(&direct)));
    let client = Client {
        id,
        outbox: &outbox,
        direct: &direct,
    };
    read_from_client(rd, &tx, client, writer).await;
    let _ = tx.send(SessionCmd::Leave { client: id }).await;
}

/// The attached client, as its reader sees it.
struct Client<'a> {
    id: ClientId,
    outbox: &'a Outbox,
    direct: &'a direct::Shared,
}

/// Passes an attached client's keys and reports to its session until the client goes away or
/// the writer ends the attachment; then stops the writer.
async fn read_from_client(
    mut rd: FrameReader<ReadHalf>,
    tx: &mpsc::Sender<SessionCmd>,
    client: Client<'_>,
    mut writer: tokio::task::JoinHandle<()>,
) {
    let Client { id, outbox, direct } = client;
    let mut keyboard: Option<Keyboard> = None;
    loop {
        // Every branch is cancellation-safe: the frame reader keeps a partly read frame in its
        // own buffer, the keyboard reads only once it returns, and a finished writer is simply
        // observed. The writer comes first: once it has sent the attachment's end, the client
        // may give the keyboard to its shell, and not one more key may be read here.
        let cmd = tokio::select! {
            biased;
            _ = &mut writer => break,
            _ = outbox.ended(), if keyboard.is_some() => {
                // Ended, the writer perhaps stuck behind a slow terminal: see `stop_reading_keys`.
                if !stop_reading_keys(&mut keyboard, tx, id).await {
                    return last_word(writer, keyboard).await;
                }
                continue;
            }
            request = protocol::next_message::<_, Request>(&mut rd) => match request {
                Ok(Request::Input(data)) => SessionCmd::Input { client: id, data },
                Ok(Request::Resize { rows, cols }) => SessionCmd::Resize { client: id, rows, cols },
                Ok(Request::Profile(profile)) => SessionCmd::Profile { client: id, profile },
                Ok(Request::Focus(focused)) => SessionCmd::Focus { client: id, focused },
                Ok(Request::Refresh) => SessionCmd::Refresh { client: id },
                Ok(Request::Terminal) => {
                    let client = rd.get_ref().peer_pid();
                    if let (Some(terminal), Ok(client)) = (rd.get_mut().take_passed(), client) {
                        direct.offer(terminal, client);
                    }
                    continue;
                }
                Ok(Request::Keyboard(key)) => match take_keyboard(&mut rd, key) {
                    Some(taken) => {
                        keyboard = Some(taken);
                        continue;
                    }
                    // The client no longer reads its keys: without them it cannot stay.
                    None => SessionCmd::Detach { client: id },
                },
                Ok(Request::KeyboardBack) => {
                    if !stop_reading_keys(&mut keyboard, tx, id).await {
                        return last_word(writer, keyboard).await;
                    }
                    continue;
                }
                Ok(Request::Drained(frames)) => {
                    direct.drained(frames);
                    continue;
                }
                _ => break,
            },
            keys = next_keys(&mut keyboard), if keyboard.is_some() => {
                if keys.is_empty() {
                    // A wake-up with no keys (the client was behind, a read was interrupted).
                    // Should a terminal ever stay ready like that, every other task of the
                    // server's one thread still gets its turn.
                    tokio::task::yield_now().await;
                    continue;
                }
                if pass_keys(keys, &mut keyboard, tx, id).await.is_err() {
                    return last_word(writer, keyboard).await;
                }
                continue;
            }
        };
        if tx.send(cmd).await.is_err() {
            return last_word(writer, keyboard).await;
        }
    }
    // Let go of the keyboard before the socket closes: the client waits for that close.
    drop(keyboard);
    writer.abort();
}

/// Stops reading the keyboard: the client asked for it back, or the session ended the
/// attachment (an upgrade, a detach, the program's end) while the writer may still wait long
/// to send that end behind a slow terminal. What the user types from here stays in the
/// terminal, for the client (and, after an upgrade, the new server); the keys the keyboard
/// held back (half a chord or an escape sequence) go to the session first. False when the
/// session has gone.
async fn stop_reading_keys(
    keyboard: &mut Option<Keyboard>,
    tx: &mpsc::Sender<SessionCmd>,
    id: ClientId,
) -> bool {
    let held = keyboard.take().map(Keyboard::release).unwrap_or_default();
    pass_keys(held, keyboard, tx, id).await.is_ok()
}

/// How long the writer may take to send the end of an attachment whose session has gone.
const LAST_WORD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The session has gone (an upgrade handed it on, the program ended), and it ended its
/// clients first: the writer has that end to send, and the client waits for it (an upgrade's
/// client attaches again, and keeps the keys typed meanwhile for then). No key is read here
/// any more: what the user types stays in the terminal for the client.
async fn last_word(mut writer: tokio::task::JoinHandle<()>, keyboard: Option<Keyboard>) {
    let _ = tokio::time::timeout(LAST_WORD_WAIT, &mut writer).await;
    drop(keyboard);
    writer.abort();
}

/// The keyboard passed with a `Keyboard` request, watched; `None` when none came with it or it
/// cannot be watched.
fn take_keyboard(
    rd: &mut FrameReader<ReadHalf>,
    key: crate::keyboard::chord::DetachKey,
) -> Option<Keyboard> {
    let terminal = rd.get_mut().take_passed()?;
    let client = match rd.get_ref().peer_pid() {
        Ok(pid) => pid,
        Err(e) => {
            log::warn(&format!(
                "cannot tell which process attached ({e}); detached it"
            ));
            return None;
        }
    };
    match Keyboard::new(terminal, key, client) {
        Ok(keyboard) => Some(keyboard),
        Err(e) => {
            log::warn(&format!(
                "cannot read an attached client's keyboard ({e}); detached it"
            ));
            None
        }
    }
}

async fn next_keys(keyboard: &mut Option<Keyboard>) -> Vec<Key> {
    match keyboard {
        Some(keyboard) => keyboard.next().await,
        None => std::future::pending().await,
    }
}

/// Hands keys to the session in the order typed. The detach chord, or a terminal that hung up,
/// ends the attachment: the keyboard is let go of first, so no key after it is read here.
async fn pass_keys(
    keys: Vec<Key>,
    keyboard: &mut Option<Keyboard>,
    tx: &mpsc::Sender<SessionCmd>,
    id: ClientId,
) -> Result<(), mpsc::error::SendError<SessionCmd>> {
    for key in keys {
        let cmd = match key {
            Key::Typed(data) => SessionCmd::Input { client: id, data },
            Key::Focus(focused) => SessionCmd::Focus {
                client: id,
                focused,
            },
            Key::Detach | Key::Gone => {
                *keyboard = None;
                return tx.send(SessionCmd::Detach { client: id }).await;
            }
        };
        tx.send(cmd).await?;
    }
    Ok(())
}

/// Writes a client's queue to its socket until the attachment ends. When the client fell
/// behind, its backlog is already gone: ask the session for a fresh screen.
async fn write_to_client(
    mut wr: WriteHalf,
    link: ClientLink,
    session: mpsc::Sender<SessionCmd>,
    direct: Arc<direct::Shared>,
) {
    let mut direct = direct::Direct::new(direct);
    loop {
        match link.outbox.next().await {
            Outgoing::Output(data) => {
                let rest = direct.write(&data);
                if rest.is_empty() {
                    continue;
                }
                match write_output(&mut wr, rest).await {
                    Ok(frames) => direct.relayed(frames),
                    Err(_) => return,
                }
            }
            Outgoing::Fresh(screen) => {
                let header = protocol::fresh_header(screen.len());
                if write_both(&mut wr, &header, &screen).await.is_err() {
                    return;
                }
                // Relayed output like any: the client reports it written like any.
                direct.relayed(1);
            }
            Outgoing::Resync => {
                if session
                    .send(SessionCmd::Resync { client: link.id })
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Outgoing::End(control) => {
                let response = match control {
                    Control::Exited { message, screen } => Response::Exited {
                        message,
                        screen: screen.to_vec(),
                    },
                    Control::Detached => Response::Detached,
                    Control::Upgrading => Response::Upgrading,
                };
                let _ = protocol::write_frame(&mut wr, &response).await;
                return;
            }
        }
    }
}

/// Output up to this size goes out as one write with its header (a keystroke's echo is one
/// `sendto`, not two); larger output is written in place rather than copied.
const COALESCE_OUTPUT: usize = 16 * 1024;

/// Writes `data` as output frames; returns how many.
async fn write_output(wr: &mut WriteHalf, data: &[u8]) -> std::io::Result<u64> {
    use tokio::io::AsyncWriteExt;
    if data.len() <= COALESCE_OUTPUT {
        let header = protocol::output_header(data.len());
        let mut frame = Vec::with_capacity(header.len() + data.len());
        frame.extend_from_slice(&header);
        frame.extend_from_slice(data);
        wr.write_all(&frame).await?;
        return Ok(1);
    }
    let mut frames = 0;
    for chunk in data.chunks(protocol::OUTPUT_CHUNK) {
        write_both(wr, &protocol::output_header(chunk.len()), chunk).await?;
        frames += 1;
    }
    Ok(frames)
}

/// Writes `head` then `body`, in one `sendmsg` when the socket has room for both.
async fn write_both(wr: &mut WriteHalf, head: &[u8], body: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut sent = 0;
    while sent < head.len() {
        let bufs = [
            std::io::IoSlice::new(&head[sent..]),
            std::io::IoSlice::new(body),
        ];
        match wr.write_vectored(&bufs).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => sent += n,
        }
    }
    wr.write_all(&body[sent - head.len()..]).await
}
