//! The command line's shape: clap types for every command and its options.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "linger",
    version,
    about = "Persistent terminal sessions for long-running agents"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Detach chord, e.g. 'C-\' (default) or 'C-a' [env: LINGER_DETACH_KEY]
    #[arg(long, global = true, value_name = "KEY")]
    pub detach_key: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
pub struct NewArgs {
    pub name: String,
    /// Do not attach
    #[arg(short = 'd', long)]
    pub detached: bool,
    /// Working directory
    #[arg(short = 'C', long = "cwd", value_name = "DIR")]
    pub cwd: Option<String>,
    /// Environment variable for the program
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// History lines kept
    #[arg(long, value_name = "LINES", default_value_t = 10_000)]
    pub scrollback: usize,
    /// Command `linger revive` runs (through sh -c); presets exist for claude, codex, aider, gemini
    #[arg(long, value_name = "CMD")]
    pub resume_cmd: Option<String>,
    /// Bound on the output log kept on disk (e.g. 16M, 512K)
    #[arg(long, value_name = "SIZE")]
    pub log_size: Option<String>,
    /// Program and arguments (default: $SHELL)
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    pub name: String,
    /// Watch only: no typing, no resizing
    #[arg(short = 'r', long)]
    pub read_only: bool,
    /// Create the session if it does not exist
    #[arg(long)]
    pub create: bool,
    /// Program for --create (default: $SHELL)
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    pub name: String,
    /// Press Enter after the text, as a separate write
    #[arg(long)]
    pub enter: bool,
    /// Arguments are key names (Enter, C-c, Up, F1, ...)
    #[arg(long)]
    pub keys: bool,
    /// How long the program may go without taking any of the text before send fails,
    /// saying how much it took (e.g. 30s, 5m)
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
    /// Text (joined with spaces), or - for stdin
    pub text: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    pub name: String,
    /// Include the last N history lines
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub history: Option<usize>,
    /// Include all history
    #[arg(long)]
    pub all: bool,
    /// Keep colours and attributes (SGR)
    #[arg(long)]
    pub ansi: bool,
    #[arg(long)]
    pub json: bool,
    /// Only history lines numbered N and later
    #[arg(long, value_name = "N")]
    pub from_line: Option<u64>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("condition").required(true).multiple(false).args(["text", "idle", "exit"])))]
pub struct WaitArgs {
    pub name: String,
    /// Until a line matches this regex
    #[arg(long, value_name = "REGEX")]
    pub text: Option<String>,
    /// Until there was no output for this long (500ms, 5s, 2m)
    #[arg(long, value_name = "DURATION")]
    pub idle: Option<String>,
    /// Until the program exits; exits with its code
    #[arg(long)]
    pub exit: bool,
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// With --text: also search history from line N
    #[arg(long, value_name = "N")]
    pub from_line: Option<u64>,
}
