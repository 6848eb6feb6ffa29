//! The attach loop: the user's terminal in raw mode, keyboard to the session, output to the
//! screen, until detach, exit, or the terminal goes away.

use std::os::fd::AsFd;
use std::time::Instant;

use crate::protocol::stream::{ReadHalf, WriteHalf};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use super::attach_keys::{Keyboard, send_keys};
use super::catch_up::{CatchUp, Chunk};
use super::direct::{self, Relayed};
use super::rawmode::RawMode;
use super::terminal_io::{self, KeyboardReader};
use super::{Client, Error, Result};
use crate::keyboard::chord::{Action, ChordMatcher, DetachKey};
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
    let (mut keyboard, unsent) = take_keyboard();
    let mut prober = super::probe::Prober::default();
    let mut input = Keyboard {
        rx: &mut keyboard,
        prober: &mut prober,
        typed: unsent,
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
    // Keys the old server of an upgrade did not take go to the new one first; others are the
    // program's that ended, or the user's who detached.
    let unsent = match ending {
        Ok(Ending::Upgrading) => std::mem::take(&mut input.typed),
        _ => Vec::new(),
    };
    keep_keyboard(keyboard, unsent);
    drop(raw);
    ending
}

/// The keyboard reader outlives an attachment (it reads until it can send nothing): the
/// attachment after an `upgrade` takes it over, so no key typed meanwhile goes to a reader
/// nobody listens to. With it, the keys the old server did not take, sent first by the next
/// attachment: at most one keyboard read (the keyboard is not read while keys wait).
static KEYBOARD: std::sync::Mutex<Option<(KeyboardReader, Vec<u8>)>> = std::sync::Mutex::new(None);

fn take_keyboard() -> (KeyboardReader, Vec<u8>) {
    let kept = KEYBOARD.lock().unwrap_or_else(|p| p.into_inner()).take();
    let (mut keyboard, unsent) = kept.unwrap_or_else(|| (KeyboardReader::spawn(), Vec::new()));
    // Handed to the server of the attachment before, which has let go of it since.
    keyboard.resume();
    (keyboard, unsent)
}

fn keep_keyboard(keyboard: KeyboardReader, unsent: Vec<u8>) {
    *KEYBOARD.lock().unwrap_or_else(|p| p.into_inner()) = Some((keyboard, unsent));
}

/// How long a creating attach waits for the terminal's profile before starting the session.
const PROBE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// How long after the probe went out its answers are awaited before the terminal is given
/// back: a local terminal answers in milliseconds, one over a slow link in up to a second or
/// so (more, and its late answers are typed into the shell); one that never answers costs this
/// much, only when the attach ends sooner.
const PROBE_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

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

/// What woke the relay, for what it does next.
enum Wake {
    Frame(std::result::Result<Response, protocol::FrameError>),
    /// The terminal fell behind (see catch_up.rs).
    Behind,
    /// The client was continued after a stop.
    Continued,
    /// The server left keys unread: read them here again.
    KeysBack,
    /// What the chord matcher lets through once its wait ran out.
    Keys(Vec<Action>),
    /// What the keyboard read.
    Typed(Vec<u8>),
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
    screen: mpsc::Sender<Chunk>,
    catch_up: CatchUp,
    /// How many output frames the screen writer has written.
    written: tokio::sync::watch::Receiver<u64>,
    relayed: Relayed,
    matcher: ChordMatcher,
    /// Output waiting for room in the screen writer's queue.
    unwritten: Option<Chunk>,
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
    let actions = matcher.feed(&early, Instant::now());
    if let Some(ending) = send_keys(&mut wr, actions, read_only, &mut keyboard.typed).await {
        return ending;
    }
    let mut relayed = Relayed::default();
    relayed.pass(&mut wr, screen.for_server).await;
    let mut attachment = Attachment {
        frames,
        wr,
        screen: screen.tx,
        catch_up: screen.catch_up,
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
    if matches!(ending, Ending::Detached | Ending::Upgrading) {
        // The user is leaving, or the attachment after the upgrade starts with a replay: what
        // the terminal has not shown yet would only delay that.
        attachment.drop_unshown();
    }
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
            let wake = tokio::select! {
                received = protocol::next_message::<_, Response>(&mut self.frames), if self.unwritten.is_none() => Wake::Frame(received),
                () = self.catch_up.fell_behind() => Wake::Behind,
                Ok(()) = self.written.changed(), if self.relayed.passed() => {
                    let frames = *self.written.borrow_and_update();
                    if let Some(report) = self.relayed.report(frames) {
                        let _ = protocol::write_frame(&mut self.wr, &report).await;
                    }
                    continue;
                }
                permit = self.screen.reserve(), if self.unwritten.is_some() => {
                    match (permit, self.unwritten.take()) {
                        (Ok(permit), Some(chunk)) => permit.send(chunk),
                        // The screen writer failed: the terminal is gone or broken.
                        _ => return Stop::ByUs(Ending::TerminalGone),
                    }
                    continue;
                }
                // Not while keys wait for a server that went away: they stay in order.
                input = keyboard.rx.recv(), if keyboard.typed.is_empty() => match input {
                    Some(Some(bytes)) => Wake::Typed(bytes),
                    _ => return Stop::TerminalGone,
                },
                _ = keys_left_unread(&mut self.keys_watch) => Wake::KeysBack,
                _ = sleep_until_opt(deadline), if deadline.is_some() => Wake::Keys(self.matcher.tick(Instant::now())),
                _ = signals.winch.recv() => {
                    send_size(&mut self.wr, self.read_only).await;
                    continue;
                }
                _ = signals.cont.recv() => Wake::Continued,
                // The terminal is going away: do not wait for output it may never take.
                _ = hup.recv() => return Stop::TerminalGone,
                _ = term.recv() => return Stop::TerminalGone,
            };
            if let Some(stop) = self.on_wake(wake, keyboard).await {
                return stop;
            }
        }
    }

    /// What the relay does for a wake-up that needs more than one part of the attachment.
    async fn on_wake(&mut self, wake: Wake, keyboard: &mut Keyboard<'_>) -> Option<Stop> {
        match wake {
            Wake::Frame(received) => return self.on_frame(received).await,
            Wake::Behind => {
                if self.catch_up.behind(self.unwritten.is_some()) {
                    self.catch_up_now().await;
                }
            }
            Wake::Continued => {
                super::rawmode::reapply();
                send_size(&mut self.wr, self.read_only).await;
                // Whatever waited here is stale, and the shell wrote over the screen.
                self.catch_up_now().await;
            }
            Wake::KeysBack => self.take_keys_back(keyboard).await,
            Wake::Keys(actions) => {
                let unsent = &mut keyboard.typed;
                let ending = send_keys(&mut self.wr, actions, self.read_only, unsent).await;
                if ending.is_some() {
                    return ending.map(Stop::ByUs);
                }
            }
            Wake::Typed(bytes) => {
                // The terminal's answers to the probe are not keys: never pass them on.
                let (wr, matcher) = (&mut self.wr, &mut self.matcher);
                if let Some(ending) = keyboard.deliver(&bytes, wr, matcher, self.read_only).await {
                    return Some(Stop::ByUs(ending));
                }
            }
        }
        if !keyboard.typed.is_empty() && !self.catch_up.awaiting_fresh() {
            // The server has gone: take its last word (the upgrade, the program's end with its
            // final screen) at once, without showing the output before it first. No screen
            // is asked of a server that has gone.
            self.start_catching_up();
        }
        None
    }

    /// A frame from the server: output for the screen (dropped while a fresh screen is on its
    /// way), that screen's announcement, or the attachment's end.
    async fn on_frame(
        &mut self,
        received: std::result::Result<Response, protocol::FrameError>,
    ) -> Option<Stop> {
        match received {
            Ok(Response::Output(data)) => {
                self.relayed.received(&data);
                if self.catch_up.awaiting_fresh() {
                    self.relayed.dropped();
                } else {
                    self.unwritten = Some(self.catch_up.chunk(data, false));
                    if self.catch_up.behind(true) {
                        self.catch_up_now().await;
                    }
                }
                None
            }
            Ok(Response::Fresh(screen)) => {
                self.relayed.received(&screen);
                self.catch_up.fresh_arrived();
                self.unwritten = Some(self.catch_up.chunk(screen, true));
                None
            }
            Ok(Response::Exited { message, screen })
                if self.catch_up.awaiting_fresh() && !screen.is_empty() =>
            {
                // The fresh screen will not come: the program's final one takes its place.
                self.unwritten = Some(self.catch_up.chunk(screen, true));
                Some(Stop::ByServer(Ending::Exited(message)))
            }
            other => Some(Stop::ByServer(ending_of(other))),
        }
    }

    /// Drops the output not shown yet and asks the server for the screen as it is now.
    async fn catch_up_now(&mut self) {
        if self.start_catching_up() {
            // A failed write ends nothing: the read side says how the attachment ends.
            let _ = protocol::write_frame(&mut self.wr, &Request::Refresh).await;
        }
    }

    /// Drops the output not shown yet and waits for a fresh screen; `true` when one must be
    /// asked for.
    fn start_catching_up(&mut self) -> bool {
        self.drop_unwritten();
        self.catch_up.start()
    }

    /// Drops the output received and not yet on the terminal.
    fn drop_unshown(&mut self) {
        self.drop_unwritten();
        self.catch_up.drop_handed();
    }

    /// Drops the output waiting for room in the screen writer's queue.
    fn drop_unwritten(&mut self) {
        if self.unwritten.take().is_some() {
            self.relayed.dropped();
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

/// Lets the terminal show the last output (the final screen of an exited program) before the
/// notice, unless the terminal is going away.
async fn finish_screen(
    screen: mpsc::Sender<Chunk>,
    done: oneshot::Receiver<bool>,
    unwritten: Option<Chunk>,
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
        Ok(Response::Exited { message, .. }) => Ending::Exited(message),
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
