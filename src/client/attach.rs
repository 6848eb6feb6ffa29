//! The attach loop: the user's terminal in raw mode, keyboard to the session, output to the
//! screen, until detach, exit, or the terminal goes away.

use std::os::fd::AsFd;
use std::time::Instant;

use crate::protocol::stream::{ReadHalf, WriteHalf};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use super::direct::{self, Relayed};
use super::rawmode::RawMode;
use super::terminal_io::{self, KeyboardReader};
use super::{Client, Error, Result};
use crate::keyboard::chord::{Action, ChordMatcher, DetachKey};
use crate::keyboard::focus::Piece;
use crate::protocol::{self, FrameCodec, FrameReader, Request, Response, SessionSpec};

#[derive(Clone)]
pub struct AttachOptions {
    pub name: String,
    pub read_only: bool,
    pub create: Option<SessionSpec>,
    pub detach_key: DetachKey,
    /// At most this many of the newest history lines are replayed (`u64::MAX`: all).
    pub history: u64,
}

/// How an attach ended; the caller prints the message after the terminal is restored.
pub enum Ending {
    Detached,
    Exited(String),
    /// The server handed its sessions to a new one: attach again there.
    Upgrading,
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
    let stream = client.open().await?;
    // Raw mode first: the terminal's answers to the probe must not echo or wait for Enter.
    // They come back with the keyboard input, and the profile follows the attach.
    let raw = RawMode::enable()?;
    let asked = Instant::now();
    super::probe::ask();
    let mut keyboard = take_keyboard();
    let mut prober = super::probe::Prober::default();
    let mut input = Keyboard {
        rx: &mut keyboard,
        prober: &mut prober,
        typed: Vec::new(),
        focus: Default::default(),
    };
    // A session this attach creates starts its program now: let the program's first
    // questions be answered from this terminal's profile rather than the defaults.
    let profile = match opts.create {
        Some(_) => input.await_profile(asked + PROBE_WAIT).await,
        None => None,
    };
    let request = Request::Attach(crate::protocol::AttachRequest {
        name: opts.name.clone(),
        read_only: opts.read_only,
        rows,
        cols,
        create: opts.create,
        profile,
        history: opts.history,
    });
    let ending = match start(stream, &request).await {
        Ok(frames) => Ok(run(frames, &mut input, opts.read_only, opts.detach_key).await),
        Err(e) => Err(e),
    };
    // The terminal may still owe answers (an attach that failed or ended at once): they must
    // not reach the shell as typed text once the terminal is back in cooked mode.
    input.settle(asked + PROBE_SETTLE).await;
    keep_keyboard(keyboard);
    drop(raw);
    ending
}

/// The keyboard reader outlives an attachment (it reads until it can send nothing): the
/// attachment after an `upgrade` takes it over, so no key typed meanwhile goes to a reader
/// nobody listens to.
static KEYBOARD: std::sync::Mutex<Option<KeyboardReader>> = std::sync::Mutex::new(None);

fn take_keyboard() -> KeyboardReader {
    let kept = KEYBOARD.lock().unwrap_or_else(|p| p.into_inner()).take();
    let mut keyboard = kept.unwrap_or_else(KeyboardReader::spawn);
    // Handed to the server of the attachment before, which has let go of it since.
    keyboard.resume();
    keyboard
}

fn keep_keyboard(keyboard: KeyboardReader) {
    *KEYBOARD.lock().unwrap_or_else(|p| p.into_inner()) = Some(keyboard);
}

/// How long a creating attach waits for the terminal's profile before starting the session.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How long after the probe went out its answers are awaited before the terminal is given
/// back: a terminal answers in milliseconds; one that never answers costs this much, only when
/// the attach ends sooner.
const PROBE_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Sends the attach request and reads the server's yes or no.
async fn start(
    mut stream: protocol::Stream,
    request: &Request,
) -> Result<(FrameReader<ReadHalf>, WriteHalf)> {
    protocol::write_frame(&mut stream, request)
        .await
        .map_err(|e| Error(format!("lost the server: {e}")))?;
    let (rd, wr) = stream.into_split();
    let mut frames = FrameReader::new(rd, FrameCodec::responses());
    match protocol::next_message::<_, Response>(&mut frames).await {
        Ok(Response::Ok) => Ok((frames, wr)),
        Ok(Response::Error(e)) => Err(Error(e)),
        Ok(other) => Err(Error(format!(
            "unexpected reply from the server: {other:?}"
        ))),
        Err(e) => Err(Error(format!("lost the server: {e}"))),
    }
}

/// The keyboard, with the probe's answers picked out of it.
struct Keyboard<'a> {
    rx: &'a mut KeyboardReader,
    prober: &'a mut super::probe::Prober,
    /// Keys typed before the attach started, to be sent once it has.
    typed: Vec<u8>,
    focus: crate::keyboard::focus::FocusFilter,
}

impl Keyboard<'_> {
    /// Takes the probe's answers and focus reports out of `bytes`, tells the server what they
    /// said (unless read-only) and sends the keys on, all in the order they came; `Some` when
    /// the keys detached.
    async fn deliver(
        &mut self,
        bytes: &[u8],
        wr: &mut WriteHalf,
        matcher: &mut ChordMatcher,
        read_only: bool,
    ) -> Option<Ending> {
        let typed = self.prober.feed(bytes);
        if let Some(profile) = self.prober.take_profile().filter(|_| !read_only) {
            // A server that stopped listening has its last word (the exit notice) waiting in
            // the socket: the read side says how this ends.
            let _ = protocol::write_frame(wr, &Request::Profile(profile)).await;
        }
        for piece in self.focus.feed(&typed) {
            match piece {
                Piece::Keys(keys) => {
                    let actions = matcher.feed(&keys, Instant::now());
                    if let Some(ending) = send_keys(wr, actions, read_only).await {
                        return Some(ending);
                    }
                }
                Piece::Focus(focused) if !read_only => {
                    let _ = protocol::write_frame(wr, &Request::Focus(focused)).await;
                }
                Piece::Focus(_) => {}
            }
        }
        None
    }

    /// The terminal's profile, once it answered the probe's sentinel (before `deadline`).
    async fn await_profile(&mut self, deadline: Instant) -> Option<crate::term::Profile> {
        while !self.prober.finished() {
            match tokio::time::timeout_at(deadline.into(), self.rx.recv()).await {
                Ok(Some(Some(bytes))) => {
                    let typed = self.prober.feed(&bytes);
                    self.typed.extend_from_slice(&typed);
                }
                _ => break,
            }
        }
        self.prober.take_profile()
    }

    /// Drops input until the terminal answered the probe's sentinel, or `deadline`.
    async fn settle(&mut self, deadline: Instant) {
        while !self.prober.finished() {
            match tokio::time::timeout_at(deadline.into(), self.rx.recv()).await {
                Ok(Some(Some(bytes))) => {
                    self.prober.feed(&bytes);
                }
                _ => return,
            }
        }
    }
}

/// How an attachment's loop stopped.
enum Stop {
    /// The server ended it (exit, detach, upgrade) or went away: nothing of it writes to our
    /// terminal any more.
    ByServer(Ending),
    /// We ended it (the detach chord, a terminal that failed): the server may still be
    /// writing to our terminal.
    ByUs(Ending),
    /// The terminal is going away: give up on it at once.
    TerminalGone,
}

/// An attachment in progress: the connection, the screen writer and the keys' state.
struct Attachment {
    frames: FrameReader<ReadHalf>,
    wr: WriteHalf,
    screen: mpsc::Sender<Vec<u8>>,
    /// How many output frames the screen writer has written.
    written: tokio::sync::watch::Receiver<u64>,
    relayed: Relayed,
    matcher: ChordMatcher,
    /// Output waiting for room in the screen writer's queue.
    unwritten: Option<Vec<u8>>,
    read_only: bool,
    /// Whether the server reads our keyboard (then this loop does not).
    keys: Keys,
    /// While the server reads our keyboard: fires if it leaves keys unread.
    keys_watch: Option<super::keys_watch::KeysWatch>,
}

#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// Read here, to be handed to the server as soon as that changes no key's meaning.
    Here,
    /// Read here for good: a read-only viewer, a keyboard that cannot be handed over, or a
    /// hand-over that failed.
    HereOnly,
    /// The server reads them.
    Server,
}

/// Tells the server the terminal's size (a viewer's size does not count).
async fn send_size(wr: &mut WriteHalf, read_only: bool) {
    if !read_only {
        let (rows, cols) = terminal_size();
        // Failed writes end nothing: the read side says how the attachment ends.
        let _ = protocol::write_frame(wr, &Request::Resize { rows, cols }).await;
    }
}

/// The signals that change an attachment without ending it.
struct Signals {
    /// The window changed size.
    winch: tokio::signal::unix::Signal,
    /// The client was continued after a stop (`fg`): the shell had the terminal in its own
    /// mode meanwhile (raw mode goes back on), and the window may have changed size.
    cont: tokio::signal::unix::Signal,
}

async fn run(
    (frames, mut wr): (FrameReader<ReadHalf>, WriteHalf),
    keyboard: &mut Keyboard<'_>,
    read_only: bool,
    key: DetachKey,
) -> Ending {
    let screen = terminal_io::spawn_screen_writer();
    let mut matcher = ChordMatcher::new(key);
    let (Ok(winch), Ok(mut hup), Ok(mut term), Ok(cont)) = (
        signal(SignalKind::window_change()),
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::from_raw(libc::SIGCONT)),
    ) else {
        return Ending::ConnectionLost;
    };
    let early = std::mem::take(&mut keyboard.typed);
    if let Some(ending) = send_keys(&mut wr, matcher.feed(&early, Instant::now()), read_only).await
    {
        return ending;
    }
    let mut relayed = Relayed::default();
    relayed.pass(&mut wr, screen.for_server).await;
    let mut attachment = Attachment {
        frames,
        wr,
        screen: screen.tx,
        written: screen.written,
        relayed,
        matcher,
        unwritten: None,
        read_only,
        keys: if read_only {
            Keys::HereOnly
        } else {
            Keys::Here
        },
        keys_watch: None,
    };
    let signals = Signals { winch, cont };
    let ending = match attachment
        .relay(keyboard, signals, &mut hup, &mut term)
        .await
    {
        Stop::ByServer(ending) => ending,
        Stop::ByUs(ending) => {
            if attachment.relayed.passed() {
                direct::release(&mut attachment.frames, &mut attachment.wr).await;
            }
            ending
        }
        Stop::TerminalGone => return Ending::TerminalGone,
    };
    // The server has let go of the keyboard (it does before it ends an attachment or closes a
    // connection we shut down). It stays unread here: keys typed from now on are the shell's
    // (an attach after an upgrade reads it again, see `take_keyboard`).
    let Attachment {
        screen: tx,
        unwritten,
        ..
    } = attachment;
    finish_screen(tx, screen.done, unwritten, &mut hup, &mut term).await;
    ending
}

impl Attachment {
    /// Output to the screen, keys to the server, until one side ends the attachment.
    async fn relay(
        &mut self,
        keyboard: &mut Keyboard<'_>,
        mut signals: Signals,
        hup: &mut tokio::signal::unix::Signal,
        term: &mut tokio::signal::unix::Signal,
    ) -> Stop {
        loop {
            if self.keys == Keys::Here && self.may_hand_over(keyboard) {
                self.hand_over_keys(keyboard).await;
            }
            let deadline = self.matcher.deadline();
            // Every branch is cancellation-safe: the frame reader keeps partial frames in its
            // own buffer, output waiting for the terminal stays in `unwritten`, channel
            // receives, watch changes and reservations lose nothing, and frames to the server
            // are written only in the bodies.
            let mut keys_back = false;
            let actions = tokio::select! {
                received = protocol::next_message::<_, Response>(&mut self.frames), if self.unwritten.is_none() => {
                    match received {
                        Ok(Response::Output(data)) => {
                            self.relayed.received(&data);
                            self.unwritten = Some(data);
                            continue;
                        }
                        other => return Stop::ByServer(ending_of(other)),
                    }
                }
                Ok(()) = self.written.changed(), if self.relayed.passed() => {
                    let frames = *self.written.borrow_and_update();
                    if let Some(report) = self.relayed.report(frames) {
                        let _ = protocol::write_frame(&mut self.wr, &report).await;
                    }
                    continue;
                }
                permit = self.screen.reserve(), if self.unwritten.is_some() => {
                    match (permit, self.unwritten.take()) {
                        (Ok(permit), Some(data)) => permit.send(data),
                        // The screen writer failed: the terminal is gone or broken.
                        _ => return Stop::ByUs(Ending::TerminalGone),
                    }
                    continue;
                }
                input = keyboard.rx.recv() => match input {
                    // The terminal's answers to the probe are not keys: never pass them on.
                    Some(Some(bytes)) => {
                        let (wr, matcher) = (&mut self.wr, &mut self.matcher);
                        match keyboard.deliver(&bytes, wr, matcher, self.read_only).await {
                            Some(ending) => return Stop::ByUs(ending),
                            None => continue,
                        }
                    }
                    _ => return Stop::TerminalGone,
                },
                _ = keys_left_unread(&mut self.keys_watch) => {
                    keys_back = true;
                    Vec::new()
                }
                _ = sleep_until_opt(deadline), if deadline.is_some() => self.matcher.tick(Instant::now()),
                _ = signals.winch.recv() => {
                    send_size(&mut self.wr, self.read_only).await;
                    continue;
                }
                _ = signals.cont.recv() => {
                    super::rawmode::reapply();
                    send_size(&mut self.wr, self.read_only).await;
                    continue;
                }
                // The terminal is going away: do not wait for output it may never take.
                _ = hup.recv() => return Stop::TerminalGone,
                _ = term.recv() => return Stop::TerminalGone,
            };
            if keys_back {
                self.take_keys_back(keyboard).await;
            }
            if let Some(ending) = send_keys(&mut self.wr, actions, self.read_only).await {
                return Stop::ByUs(ending);
            }
        }
    }

    /// Whether the server could take over the keyboard now without changing what any key
    /// means: the probe is answered (its answers are not keys) and nothing typed is half-way
    /// through a chord, an escape sequence or a paste.
    fn may_hand_over(&self, keyboard: &Keyboard<'_>) -> bool {
        self.relayed.passed()
            && keyboard.prober.finished()
            && keyboard.typed.is_empty()
            && self.matcher.is_idle()
            && keyboard.focus.is_idle()
    }

    /// Stops reading the keyboard and passes it to the server, which reads the keys from then
    /// on: a keystroke wakes the server alone. Without it, keys stay read here.
    async fn hand_over_keys(&mut self, keyboard: &mut Keyboard<'_>) {
        if !self.server_may_read_our_keys() {
            self.keys = Keys::HereOnly;
            return;
        }
        let Some(fd) = keyboard.rx.stop().await else {
            // Keys read but not yet taken (the loop takes them first), or a reader that
            // cannot stop: try again later, or never.
            if !keyboard.rx.can_stop() {
                self.keys = Keys::HereOnly;
            }
            return;
        };
        let frame = protocol::encode(&Request::Keyboard(self.matcher.key()));
        if self.wr.write_with_fd(&frame, fd.as_fd()).await.is_ok() {
            self.keys = Keys::Server;
            self.keys_watch = super::keys_watch::watch(fd);
        } else {
            keyboard.rx.resume();
            self.keys = Keys::HereOnly;
        }
    }

    /// The server left keys unread (it hangs, or skipped keys typed while we were stopped):
    /// read the keyboard here again, for the rest of this attachment. The server, if it reads
    /// anything of the connection again, reads this first and lets go of the keyboard.
    async fn take_keys_back(&mut self, keyboard: &mut Keyboard<'_>) {
        self.keys_watch = None;
        self.keys = Keys::HereOnly;
        let _ = protocol::write_frame(&mut self.wr, &Request::KeyboardBack).await;
        keyboard.rx.resume();
    }

    /// Whether a server given our keyboard would read it: it reads only while we run in the
    /// foreground of the terminal on our stdin (not so for a client started without a
    /// controlling terminal: the watch would take its keys back a second late), and it must
    /// not run in that terminal itself (`linger server &` there: reading it from the
    /// background would stop the server).
    fn server_may_read_our_keys(&self) -> bool {
        use crate::proc_stat::ProcStat;
        let Ok(ours) = rustix::fs::fstat(rustix::stdio::stdin()).map(|st| st.st_rdev) else {
            return false;
        };
        let in_front = ProcStat::ours().is_some_and(|us| us.in_foreground() && us.tty_nr == ours);
        let server = self.frames.get_ref().peer_pid().ok().and_then(ProcStat::of);
        in_front && server.is_none_or(|stat| stat.tty_nr != ours)
    }
}

/// Sends what the chord matcher let through; `Some` when the attachment should end.
async fn send_keys(wr: &mut WriteHalf, actions: Vec<Action>, read_only: bool) -> Option<Ending> {
    for action in actions {
        match action {
            Action::Detach => return Some(Ending::Detached),
            Action::Forward(_) if read_only => {}
            Action::Forward(bytes) => {
                // A server that stopped reading (the program ended) still has its exit notice
                // in the socket: keep reading rather than end on the failed write.
                let _ = protocol::write_frame(wr, &Request::Input(bytes)).await;
            }
        }
    }
    None
}

/// Lets the terminal show the last output (the final screen of an exited program) before the
/// notice, unless the terminal is going away.
async fn finish_screen(
    screen: mpsc::Sender<Vec<u8>>,
    done: oneshot::Receiver<bool>,
    unwritten: Option<Vec<u8>>,
    hup: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
) {
    let flush = async {
        if let Some(data) = unwritten {
            let _ = screen.send(data).await;
        }
        drop(screen);
        let _ = done.await;
    };
    tokio::select! {
        () = flush => {}
        _ = hup.recv() => {}
        _ = term.recv() => {}
    }
}

/// How the server's last word on the attach stream ends it.
fn ending_of(received: std::result::Result<Response, protocol::FrameError>) -> Ending {
    match received {
        Ok(Response::Exited(message)) => Ending::Exited(message),
        Ok(Response::Detached) => Ending::Detached,
        Ok(Response::Upgrading) => Ending::Upgrading,
        _ => Ending::ConnectionLost,
    }
}

/// Resolves once the watch says the server left keys unread; never without a watch.
async fn keys_left_unread(watch: &mut Option<super::keys_watch::KeysWatch>) {
    if let Some(running) = watch {
        if (&mut running.unread).await.is_ok() {
            return;
        }
        // The watch ended without finding anything (the terminal hung up): a finished receiver
        // must not be polled again.
        *watch = None;
    }
    std::future::pending().await
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
