//! The server's log: one timestamped line per event on stderr (a file when daemonized). Never
//! session output or input.

fn line(level: &str, message: &str) {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    eprintln!("{now} {level} {message}");
}

pub fn info(message: &str) {
    line("INFO", message);
}

pub fn warn(message: &str) {
    line("WARN", message);
}
