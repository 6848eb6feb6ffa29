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
    let mut total = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("cannot list /proc/PID/task");
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in text.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}
