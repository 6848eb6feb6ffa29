//! The command line's shape: clap types for every command and its options.

use clap::{Args, Parser, Subcommand};

const AFTER_HELP: &str = "\
Without a command, linger attaches to the session `main`: it creates it (running the config
file's `command`, else $SHELL, in the current directory) when it does not exist, and revives it
when it has exited or was lost (after `kill-server` or a reboot), its old output kept above.

Environment:
  LINGER_DIR         runtime dir (socket, lock, log); default $XDG_RUNTIME_DIR/linger, else /tmp/linger-$UID
  LINGER_STATE_DIR   state dir (records, output logs); default $XDG_STATE_HOME/linger, else ~/.local/state/linger
  LINGER_DETACH_KEY  detach chord, e.g. C-a (an invalid one: attach warns and uses C-\\)
  LINGER_SESSION     set inside every session to its name
  LINGER_BIN         the linger binary to start the server with
  XDG_CONFIG_HOME    config file $XDG_CONFIG_HOME/linger/config.toml, else ~/.config/linger/config.toml

Flags beat environment variables, which beat the config file.";

#[derive(Parser, Debug)]
#[command(
    name = "linger",
    version,
    about = "Persistent terminal sessions for long-running agents",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Detach chord for attaching, e.g. 'C-\' (default) or 'C-a' [env: LINGER_DETACH_KEY]
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
        /// Machine-readable output: one JSON array of sessions
        #[arg(long)]
        json: bool,
    },
    /// Report an agent's state (for its lifecycle hooks): working, idle or waiting
    Status {
        /// Session name
        name: String,
        /// working, idle or waiting
        #[arg(value_parser = ["working", "idle", "waiting"])]
        state: String,
        /// Why (shown in `ls`: `waiting: permission`)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Exit 0 if a session exists (in any state), 1 if not; prints nothing
    Has {
        /// Session name
        name: String,
    },
    /// Signal a running session's process group and forget the session
    Kill {
        /// Session to kill and forget
        #[arg(required_unless_present_any = ["lost", "exited"], conflicts_with_all = ["lost", "exited"])]
        name: Option<String>,
        /// Signal to send first (SIGKILL follows after a grace period)
        #[arg(long, short = 's', value_name = "SIG")]
        signal: Option<String>,
        /// Forget every lost session
        #[arg(long, conflicts_with = "exited")]
        lost: bool,
        /// Forget every exited or killed session
        #[arg(long)]
        exited: bool,
    },
    /// End a session's program (SIGTERM, then SIGKILL after 2 s) but keep its record and output
    Stop {
        /// Session whose program to end
        name: String,
        /// Signal to send first
        #[arg(long, short = 's', value_name = "SIG")]
        signal: Option<String>,
    },
    /// Rename a session (also on disk)
    Rename {
        /// Current name
        name: String,
        /// New name
        new_name: String,
    },
    /// Start a lost or exited session again, its earlier output kept above
    Revive {
        /// Session to start again
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
        /// Session name
        name: String,
        /// New notes, or - to read them from stdin
        text: Vec<String>,
    },
    /// Detach every client of a session
    Detach {
        /// Session name
        name: String,
    },
    /// Print a session's transcript as lines (history, then the screen)
    Log(LogArgs),
    /// Run the server in the foreground (normally started on demand)
    Server,
    /// Stop the server and every session
    KillServer,
    /// Hand every session to the linger binary now on disk (programs keep running)
    Upgrade,
    /// Hold the programs' terminals across servers (started on demand)
    #[command(hide = true)]
    Keeper,
    /// Type text or keys into a session
    Send(SendArgs),
    /// Print a session's screen (and history)
    Capture(CaptureArgs),
    /// Wait for text, idleness or exit
    Wait(WaitArgs),
    /// Print a shell completion script (e.g. `linger completions bash > ~/.local/share/bash-completion/completions/linger`)
    Completions {
        /// Shell to complete for
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff; e.g. `linger man | man -l -`)
    Man,
    /// Stream what happens to sessions (created, state, attention, exited, queued, ...) until
    /// interrupted
    Events {
        /// Only these sessions (default: all, including ones created later)
        names: Vec<String>,
        /// One JSON object per line: {time, session, kind, state, reason, message}
        #[arg(long)]
        json: bool,
    },
    /// Queue a prompt for a session's agent, delivered (paste + Enter) when it is next idle
    Queue(QueueArgs),
    /// Test aid: connect to a socket without any checks and report what the server does
    #[command(hide = true)]
    DebugConnect { socket: std::path::PathBuf },
}

#[derive(Args, Debug)]
pub struct QueueArgs {
    /// Session name
    pub name: String,
    /// The prompt (joined with spaces), or - for stdin
    #[arg(conflicts_with_all = ["list", "clear"], required_unless_present_any = ["list", "clear"])]
    pub text: Vec<String>,
    /// Print the queued prompts, oldest first
    #[arg(long, conflicts_with = "clear")]
    pub list: bool,
    /// With --list: one JSON array of strings
    #[arg(long, requires = "list")]
    pub json: bool,
    /// Drop every queued prompt
    #[arg(long)]
    pub clear: bool,
}

#[derive(Args, Debug)]
pub struct NewArgs {
    /// Session name: [A-Za-z0-9._-], at most 64, not starting with '.' or '-'
    pub name: String,
    /// Do not attach
    #[arg(short = 'd', long)]
    pub detached: bool,
    /// Working directory (default: the current one)
    #[arg(short = 'C', long = "cwd", value_name = "DIR")]
    pub cwd: Option<String>,
    /// Environment variable for the program, over the caller's environment
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// History lines kept (default: the config file's, else 10000; at most 200000)
    #[arg(long, value_name = "LINES")]
    pub scrollback: Option<usize>,
    /// Command `linger revive` runs (through sh -c); presets exist for claude, codex, aider, gemini
    #[arg(long, value_name = "CMD")]
    pub resume_cmd: Option<String>,
    /// Bound on the output log kept on disk (e.g. 16M, 512K)
    #[arg(long, value_name = "SIZE")]
    pub log_size: Option<String>,
    /// Program and arguments, after -- (default: the config file's command, else $SHELL)
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Session name
    pub name: String,
    /// Watch only: no typing, no resizing
    #[arg(short = 'r', long)]
    pub read_only: bool,
    /// Detach every other client first
    #[arg(short = 'd', long = "detach-others")]
    pub detach_others: bool,
    /// Create the session if it does not exist
    #[arg(long)]
    pub create: bool,
    /// Replay at most N of the newest history lines into the terminal's scrollback, or `all`
    /// (default 2000, or `attach_history` in the config file)
    #[arg(long, value_name = "N|all")]
    pub history: Option<String>,
    /// Program for --create, after -- (default: $SHELL)
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogArgs {
    /// Session name
    pub name: String,
    /// Keep printing complete lines as they come, until the session ends
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Keep colours and attributes (SGR)
    #[arg(long)]
    pub ansi: bool,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Session name
    pub name: String,
    /// Press Enter after the text, as a separate write
    #[arg(long)]
    pub enter: bool,
    /// Arguments are key names (Enter, C-c, Up, C-Up, NPage, F1, ...; any case)
    #[arg(long)]
    pub keys: bool,
    /// How long the program may go without taking any of the text before send fails,
    /// saying how much it took (e.g. 30s, 5m)
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
    /// Text (joined with spaces), or - for stdin (one trailing newline is dropped)
    pub text: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// Session name
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
    /// Machine-readable output, with `next_line` (one past the last non-blank line)
    #[arg(long)]
    pub json: bool,
    /// Only the lines numbered N and later, history and screen (N from `next_line`)
    #[arg(long, value_name = "N", conflicts_with_all = ["history", "all"])]
    pub from_line: Option<u64>,
}

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("condition").required(true).multiple(false).args(["text", "idle", "exit", "state"])))]
pub struct WaitArgs {
    /// Session name
    pub name: String,
    /// Until a line (soft-wrapped rows joined) matches this regex, on the screen or printed later
    #[arg(long, value_name = "REGEX")]
    pub text: Option<String>,
    /// Until there was no output for this long (500ms, 5s, 2m)
    #[arg(long, value_name = "DURATION")]
    pub idle: Option<String>,
    /// Until the program exits; exits with its code
    #[arg(long)]
    pub exit: bool,
    /// Until the agent is working, idle or waiting (for its user), or the program exited
    #[arg(long, value_name = "STATE", value_parser = ["working", "idle", "waiting", "exited"])]
    pub state: Option<String>,
    /// Give up after this long, with exit status 124 (default: never)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// With --text: only lines numbered N and later count (N from `capture --json`)
    #[arg(long, value_name = "N", requires = "text")]
    pub from_line: Option<u64>,
    /// With --text: only output printed after the wait began counts
    #[arg(long, requires = "text", conflicts_with = "from_line")]
    pub new: bool,
}
