//! linger: persistent terminal sessions for long-running agents. A per-user server keeps each
//! session's program in a pseudo-terminal with a screen model; clients attach, detach and
//! script sessions over a Unix socket.

pub mod cli;
pub mod client;
pub mod config;
pub mod history;
pub mod keeper;
pub mod keyboard;
pub mod keys;
pub mod log;
pub mod model;
pub mod paths;
pub mod proc_stat;
pub mod protocol;
pub mod pty;
pub mod query_filter;
pub mod server;
pub mod signals;
pub mod spawn;
pub mod state;
pub mod term;
pub mod write_room;

pub use client::Client;
