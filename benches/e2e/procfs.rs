//! What /proc says about a process: memory, CPU time, context switches.

pub fn proc_status(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

pub fn rss_mib(pid: i32) -> f64 {
    let kb: f64 = proc_status(pid, "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("cannot read VmRSS from /proc/PID/status");
    kb / 1024.0
}

/// utime + stime of the whole process, in seconds.
pub fn cpu_secs(pid: i32) -> f64 {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("cannot read /proc/PID/stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').expect("malformed /proc/PID/stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (utime + stime) / hz
}

/// Voluntary + involuntary context switches summed over every thread.
pub fn ctx_switches(pid: i32) -> u64 {
    per_thread_switches(pid).values().sum()
}

/// Voluntary + involuntary context switches of each thread, by thread id.
pub fn per_thread_switches(pid: i32) -> std::collections::HashMap<String, u64> {
    let mut counts = std::collections::HashMap::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("cannot list /proc/PID/task");
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        let total: u64 = text
            .lines()
            .filter_map(|line| {
                line.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .map(|v| v.trim().parse::<u64>().unwrap_or(0))
            .sum();
        counts.insert(task.file_name().to_string_lossy().into_owned(), total);
    }
    counts
}

/// Context switches since `before` (from [`per_thread_switches`]): threads started since count
/// from zero; a thread that ended since takes its count with it (it cannot go negative).
pub fn switches_since(pid: i32, before: &std::collections::HashMap<String, u64>) -> u64 {
    per_thread_switches(pid)
        .iter()
        .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}
