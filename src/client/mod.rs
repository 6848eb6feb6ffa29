//! The typed client library: connect to the server (starting it when needed) and make requests.
//! The CLI is built on it; orchestrators can use it directly.

pub mod agents;
pub mod attach;
mod attach_keys;
mod catch_up;
mod direct;
mod keys_watch;
pub mod probe;
pub mod rawmode;
mod send;
mod start;
mod terminal_io;

pub use start::upgrade;
use start::{server_binary, start_server};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::protocol::{
    self, Capture, Hello, Request, Response, SessionInfo, SessionSpec, Stream, WaitCondition,
};

/// A failed request, with the message shown to the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Error(s)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// How long to wait for a server we just started to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection and the version handshake may take: a stopped or wedged server
/// gets one clear error instead of a hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may wait for its reply (not `wait`, `attach` or `send`, which have
/// their own limits).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `send` waits by default for the program to take its text.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Outcome of `wait`.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    /// The condition held; the matching line for text waits, the exit code for exit waits.
    Done {
        line: String,
        exit_code: Option<i32>,
    },
    TimedOut,
}

/// A connection factory bound to one runtime dir. Each request uses its own connection, so a
/// `Client` can be shared and used concurrently.
#[derive(Debug, Clone)]
pub struct Client {
    dir: PathBuf,
    /// The connection that found the server running, kept for the first request (a command
    /// then costs one connection, not two); taken only while fresh.
    spare: std::sync::Arc<std::sync::Mutex<Option<Spare>>>,
    /// Made by [`Client::connect`]: a request whose kept connection finds the server gone
    /// starts one, as the connect would have.
    starts_server: bool,
}

/// A kept connection. Our hello is sent; the server's is read by whoever takes it, so a
/// command's request follows the hello without waiting a round trip for the server's.
#[derive(Debug)]
struct Spare {
    stream: Stream,
    made: Instant,
}

/// How long a kept connection stays usable: well inside the server's handshake timeout.
const SPARE_FRESH: Duration = Duration::from_secs(2);
/// How long a request whose server went away waits for the next one (a keeper restarts a
/// crashed server, or an upgrade's answers, in milliseconds; more on a loaded machine).
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

impl Client {
    /// Connects to the server for `LINGER_DIR` (or the default dir), starting it if needed.
    pub async fn connect() -> Result<Client> {
        Client::connect_in(&crate::paths::runtime_dir()).await
    }

    pub async fn connect_in(dir: &Path) -> Result<Client> {
        Client::connect_with(dir, &server_binary()?).await
    }

    /// Like [`Client::connect_in`], starting the server from the given `linger` binary.
    pub async fn connect_with(dir: &Path, server_bin: &Path) -> Result<Client> {
        crate::paths::ensure_private_dir(dir)?;
        let client = Client {
            starts_server: true,
            ..Client::new(dir)
        };
        client.ensure_server_from(server_bin).await?;
        Ok(client)
    }

    /// Makes sure a server runs for this client's dir, starting one when none does (after a
    /// crash, say); the connection that found it is kept for the next request.
    pub async fn ensure_server(&self) -> Result<()> {
        self.ensure_server_from(&server_binary()?).await
    }

    async fn ensure_server_from(&self, server_bin: &Path) -> Result<()> {
        // Nobody listening: start a server. Someone listening who does not answer is a stuck
        // server, which a second one cannot replace: the first request says so.
        match self.greet_if_running().await? {
            Some(stream) => self.keep(stream),
            None => start_server(&self.dir, server_bin).await?,
        }
        Ok(())
    }

    /// A client for an already running server; `None` when no server runs.
    pub async fn existing() -> Result<Option<Client>> {
        Client::existing_in(&crate::paths::runtime_dir()).await
    }

    /// Like [`Client::existing`], for the server of `dir`.
    pub async fn existing_in(dir: &Path) -> Result<Option<Client>> {
        let dir = dir.to_path_buf();
        if !dir.exists() {
            return Ok(None);
        }
        crate::paths::check_private_dir(&dir)?;
        // No server, or one that is going away: none. Anything else (a version mismatch, say)
        // the user must hear about.
        let client = Client::new(&dir);
        Ok(client.greet_if_running().await?.map(|stream| {
            client.keep(stream);
            client
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn new(dir: &Path) -> Client {
        Client {
            dir: dir.to_path_buf(),
            spare: Default::default(),
            starts_server: false,
        }
    }

    fn keep(&self, stream: Stream) {
        let spare = Spare {
            stream,
            made: Instant::now(),
        };
        *self.spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(spare);
    }

    /// The kept connection, while fresh.
    fn take_spare(&self) -> Option<Stream> {
        let spare = self
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        (spare.made.elapsed() < SPARE_FRESH).then_some(spare.stream)
    }

    /// Opens a connection and completes the version handshake, within [`CONNECT_TIMEOUT`]
    /// (or completes it on the fresh one [`Client::connect`] made).
    pub async fn open(&self) -> Result<Stream> {
        if let Some(mut stream) = self.take_spare() {
            if self.read_hello(&mut stream).await? {
                return Ok(stream);
            }
            // The server this client found went away before its hello (one dying as we
            // connected, which the keeper restarts; an upgrade): the next one.
            return self.open_after_handover().await;
        }
        match self.open_if_running().await? {
            Some(stream) => Ok(stream),
            None => Err(self.not_running()),
        }
    }

    /// The server this client found went away before answering (an upgrade handing over, a
    /// crash the keeper restarts it from, a `kill-server`): the one that follows, if one comes
    /// within [`HANDOVER_WAIT`].
    async fn open_after_handover(&self) -> Result<Stream> {
        let deadline = Instant::now() + HANDOVER_WAIT;
        loop {
            if let Some(stream) = self.open_if_running().await? {
                return Ok(stream);
            }
            if Instant::now() >= deadline {
                return Err(self.not_running());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn not_running(&self) -> Error {
        Error(format!(
            "no server is running in {} (any linger command that needs one starts it)",
            self.dir.display()
        ))
    }

    /// Like [`Client::open`], with `None` when no server runs: nobody listens on the socket,
    /// or the one listening went away during the handshake (a server that just died or was
    /// killed keeps its socket for as long as its last thread takes to exit).
    async fn open_if_running(&self) -> Result<Option<Stream>> {
        let Some(mut stream) = self.greet_if_running().await? else {
            return Ok(None);
        };
        Ok(self.read_hello(&mut stream).await?.then_some(stream))
    }

    /// Connects and sends our hello, within [`CONNECT_TIMEOUT`]; `None` when nobody listens.
    async fn greet_if_running(&self) -> Result<Option<Stream>> {
        let path = crate::paths::socket_path(&self.dir);
        let greeting = async {
            let mut stream = match Stream::connect(&path).await {
                Ok(stream) => stream,
                Err(e) if no_listener(&e) => return Ok(None),
                Err(e) => return Err(Error(format!("cannot connect to {}: {e}", path.display()))),
            };
            match protocol::write_frame(&mut stream, &Hello::ours()).await {
                Ok(()) => Ok(Some(stream)),
                Err(e) if went_away(&e) => Ok(None),
                Err(e) => Err(Error(format!("lost the server during handshake: {e}"))),
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, greeting).await {
            Ok(greeted) => greeted,
            Err(_) => Err(self.stuck()),
        }
    }

    /// Reads the server's hello, within [`CONNECT_TIMEOUT`]: `false` when the server closed
    /// the connection without one (it is exiting, or was killed; it saw nothing we sent).
    async fn read_hello(&self, stream: &mut Stream) -> Result<bool> {
        let read = tokio::time::timeout(CONNECT_TIMEOUT, protocol::read_frame::<_, Hello>(stream));
        let theirs = match read.await {
            Err(_) => return Err(self.stuck()),
            Ok(Ok(hello)) => hello,
            Ok(Err(protocol::FrameError::Io(e))) if went_away(&e) => return Ok(false),
            Ok(Err(e)) => {
                return Err(Error(format!(
                    "the server did not complete the handshake: {e}"
                )));
            }
        };
        let ours = Hello::ours();
        if theirs.protocol != ours.protocol {
            return Err(Error(protocol::mismatch_message(&ours, &theirs)));
        }
        Ok(true)
    }

    fn stuck(&self) -> Error {
        Error(format!(
            "the server in {} did not answer within {}s; it may be stopped or stuck \
             (see {}; `linger kill-server` or kill the pid in {})",
            self.dir.display(),
            CONNECT_TIMEOUT.as_secs(),
            crate::paths::log_path(&self.dir).display(),
            crate::paths::pid_path(&self.dir).display(),
        ))
    }

    /// Sends one request and reads its one response, within [`REQUEST_TIMEOUT`].
    pub async fn request(&self, request: &Request) -> Result<Response> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.request_unbounded(request)).await {
            Ok(response) => response,
            Err(_) => Err(Error(format!(
                "the server did not answer within {}s; it may be stuck (see {})",
                REQUEST_TIMEOUT.as_secs(),
                crate::paths::log_path(&self.dir).display()
            ))),
        }
    }

    /// Sends one request and reads its one response, however long that takes. On the kept
    /// connection the request follows our hello at once; the server reads it only after
    /// checking that hello, and one that went away before answering it never saw the request,
    /// which then goes to a fresh connection (to a server started for it, for a client that
    /// starts servers).
    async fn request_unbounded(&self, request: &Request) -> Result<Response> {
        if let Some(mut stream) = self.take_spare() {
            let sent = protocol::write_frame(&mut stream, request).await;
            if self.read_hello(&mut stream).await? {
                sent.map_err(|e| Error(format!("lost the server: {e}")))?;
                return read_reply(&mut stream).await;
            }
        }
        let mut stream = if self.starts_server {
            match self.open_if_running().await? {
                Some(stream) => stream,
                None => {
                    start_server(&self.dir, &server_binary()?).await?;
                    self.open().await?
                }
            }
        } else {
            self.open_after_handover().await?
        };
        protocol::write_frame(&mut stream, request)
            .await
            .map_err(|e| Error(format!("lost the server: {e}")))?;
        read_reply(&mut stream).await
    }

    async fn expect_ok(&self, request: &Request) -> Result<()> {
        match self.request(request).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn list(&self) -> Result<Vec<SessionInfo>> {
        match self.request(&Request::List).await? {
            Response::Sessions(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    pub async fn create(&self, spec: SessionSpec) -> Result<()> {
        self.expect_ok(&Request::Create(spec)).await
    }

    pub async fn kill(&self, name: &str, signal: Option<i32>) -> Result<()> {
        self.expect_ok(&Request::Kill {
            name: name.into(),
            signal,
        })
        .await
    }

    pub async fn detach(&self, name: &str) -> Result<()> {
        self.expect_ok(&Request::Detach { name: name.into() }).await
    }

    /// Stops the server and returns once it has exited (its lock is free), so a command right
    /// after this starts a fresh server rather than racing the old one.
    pub async fn kill_server(&self) -> Result<()> {
        self.expect_ok(&Request::KillServer).await?;
        let lock_path = crate::paths::lock_path(&self.dir);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let Ok(file) = std::fs::OpenOptions::new().write(true).open(&lock_path) else {
                return Ok(());
            };
            if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(Error("the server did not exit within 15s".into()))
    }

    /// Sets the notes when `text` is given; returns the session's notes.
    pub async fn note(&self, name: &str, text: Option<String>) -> Result<String> {
        match self
            .request(&Request::Note {
                name: name.into(),
                text,
            })
            .await?
        {
            Response::Notes(notes) => Ok(notes),
            other => Err(unexpected(other)),
        }
    }

    pub async fn revive(
        &self,
        name: &str,
        command: Option<Vec<String>>,
        rows: u16,
        cols: u16,
    ) -> Result<()> {
        self.revive_in(name, command, None, rows, cols).await
    }

    /// Like [`Client::revive`], in the absolute directory `cwd` instead of the saved one.
    pub async fn revive_in(
        &self,
        name: &str,
        command: Option<Vec<String>>,
        cwd: Option<String>,
        rows: u16,
        cols: u16,
    ) -> Result<()> {
        self.expect_ok(&Request::Revive {
            name: name.into(),
            command,
            rows,
            cols,
            cwd,
        })
        .await
    }

    /// Forgets every lost session; returns how many.
    pub async fn kill_lost(&self) -> Result<usize> {
        match self.request(&Request::KillLost).await? {
            Response::Forgotten(n) => Ok(n as usize),
            other => Err(unexpected(other)),
        }
    }

    /// Forgets every exited or killed session; returns how many.
    pub async fn kill_exited(&self) -> Result<usize> {
        match self.request(&Request::KillExited).await? {
            Response::Forgotten(n) => Ok(n as usize),
            other => Err(unexpected(other)),
        }
    }

    /// Ends the session's program (`signal`, else SIGTERM, then SIGKILL after a grace) and
    /// returns once it has ended; the session stays, with its output.
    pub async fn stop(&self, name: &str, signal: Option<i32>) -> Result<()> {
        let request = Request::Stop {
            name: name.into(),
            signal,
        };
        // The server escalates to SIGKILL after its grace, well within the request timeout.
        match self.request(&request).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn rename(&self, name: &str, new_name: &str) -> Result<()> {
        self.expect_ok(&Request::Rename {
            name: name.into(),
            new_name: new_name.into(),
        })
        .await
    }

    /// Reports an agent's state (its hooks call `linger status`).
    pub async fn status(
        &self,
        name: &str,
        state: crate::protocol::AgentState,
        reason: Option<String>,
    ) -> Result<()> {
        self.expect_ok(&Request::Status {
            name: name.into(),
            state,
            reason,
        })
        .await
    }

    pub async fn capture(
        &self,
        name: &str,
        history: Option<usize>,
        from_line: Option<u64>,
        ansi: bool,
    ) -> Result<Capture> {
        match self
            .request(&Request::Capture {
                name: name.into(),
                history,
                from_line,
                ansi,
            })
            .await?
        {
            Response::Capture(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    pub async fn wait(
        &self,
        name: &str,
        condition: WaitCondition,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome> {
        let request = Request::Wait {
            name: name.into(),
            condition,
            timeout_ms: timeout.map(|t| t.as_millis() as u64),
        };
        // A wait takes as long as it takes; its own timeout is the server's to keep.
        match self.request_unbounded(&request).await? {
            Response::WaitDone { line, exit_code } => Ok(WaitOutcome::Done { line, exit_code }),
            Response::WaitTimeout => Ok(WaitOutcome::TimedOut),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(response: Response) -> Error {
    Error(format!("unexpected reply from the server: {response:?}"))
}

/// The one response to a request; a server's error is this call's error.
async fn read_reply(stream: &mut Stream) -> Result<Response> {
    match protocol::read_response(stream).await {
        Ok(Response::Error(e)) => Err(Error(e)),
        Ok(r) => Ok(r),
        Err(e) => Err(Error(format!("lost the server: {e}"))),
    }
}

/// Whether connecting failed because no server listens on the socket (or there is none).
fn no_listener(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), NotFound | ConnectionRefused)
}

/// Whether a handshake failed because the server closed its end without a word: it is exiting
/// (or was killed), and a fresh one may be started.
fn went_away(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionRefused | BrokenPipe | UnexpectedEof
    )
}
