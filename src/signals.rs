//! Signal names and numbers as users type and read them.

const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("WINCH", libc::SIGWINCH),
];

/// `SIGTERM` for 15; the number itself for signals without a common name.
pub fn name(sig: i32) -> String {
    NAMES
        .iter()
        .find(|(_, n)| *n == sig)
        .map(|(name, _)| format!("SIG{name}"))
        .unwrap_or_else(|| sig.to_string())
}

/// Accepts `TERM`, `SIGTERM`, `sigterm` or `15`.
pub fn parse(text: &str) -> Result<i32, String> {
    if let Ok(n) = text.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(format!("signal number {n} is out of range (1-64)"));
    }
    let upper = text.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(name, _)| *name == bare)
        .map(|(_, n)| *n)
        .ok_or_else(|| format!("unknown signal '{text}' (try TERM, KILL, INT, HUP or a number)"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(super::parse("term"), Ok(libc::SIGTERM));
        assert_eq!(super::parse("SIGKILL"), Ok(libc::SIGKILL));
        assert_eq!(super::parse("9"), Ok(9));
        assert!(super::parse("nope").is_err());
        assert_eq!(super::name(15), "SIGTERM");
    }
}
