//! Reliability under load and hostile input: a stopped client during a flood, attach churn
//! with SIGKILLed clients, many flooding sessions with two clients each, hundreds of idle
//! connections, endless lines and huge sizes (misbehaving children: tests/child_faults.rs).
//! Every test is bounded: counts are scaled for a debug build on two shared cores (override
//! them with the variables in `scaled`, tests/common/load.rs), and every wait has a deadline. Figures are printed as `RELIABILITY ...` lines (run with
//! `--nocapture`) and recorded in docs/RELIABILITY.md.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::load::*;
use common::{Env, Term, alive, captured, rss_kib};

/// A program that waits for Enter, prints `bytes` of lines, then DONE, and stays.
fn flood_script(bytes: u64) -> String {
    format!("read x; yes '{FLOOD_LINE}' | head -c {bytes}; echo; echo DONE; exec sleep 1000")
}

/// Starts the flood and returns how long until `wait --text DONE` saw its end.
fn run_flood(env: &Env, name: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    env.ok(&["send", name, "--enter", ""]);
    let timeout = format!("{}ms", limit.as_millis());
    let out = env.run(&["wait", name, "--text", "^DONE$", "--timeout", &timeout]);
    assert!(
        out.status.success(),
        "flood on {name} did not finish within {limit:?} (exit {:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed()
}

/// A client stopped with SIGSTOP during a flood costs the session nothing: the program
/// finishes in about the time it takes unattached, the server's memory stays bounded, another
/// client keeps receiving output, and the stopped client catches up with the current screen
/// once it runs again.
#[test]
fn stopped_client_during_a_flood() {
    const T: &str = "slow_client";
    let bytes = scaled("LINGER_FLOOD_BYTES", 4_000_000, 50_000_000);
    let env = Env::new();
    let script = flood_script(bytes);

    // The same flood with no client, for the reference time.
    env.ok(&["new", "-d", "base", "--", "sh", "-c", &script]);
    let pid = server_pid(&env);
    let rss_start = rss_kib(pid);
    let sampler = RssSampler::start(pid);
    let unattached = run_flood(&env, "base", Duration::from_secs(300));
    let rss_base_max = sampler.stop();
    env.ok(&["kill", "base"]);

    env.ok(&["new", "-d", "flood", "--", "sh", "-c", &script]);
    let stopped = env.term(&["attach", "flood"], 24, 80);
    stopped.wait_output("replay", |o| !o.is_empty());
    let live = env.term(&["attach", "flood"], 24, 80);
    live.wait_output("replay", |o| !o.is_empty());
    within(Duration::from_secs(20), "two clients", || {
        (clients(&env, "flood") == 2).then_some(())
    });
    stopped.signal(libc::SIGSTOP);
    let fds_before = fd_count(pid);
    let sampler = RssSampler::start(pid);
    let limit = unattached * 3 + Duration::from_secs(15);
    let attached = run_flood(&env, "flood", limit);
    let rss_max = sampler.stop();

    wait_screen_within(
        &live,
        Duration::from_secs(120),
        "DONE on the live client",
        |s| s.lines().any(|l| l == "DONE"),
    );
    let live_caught_up = wait_client_matches_capture(&env, "flood", &live, Duration::from_secs(60));
    let live_bytes = live.output().len();
    assert_eq!(clients(&env, "flood"), 2, "a client was dropped");

    stopped.signal(libc::SIGCONT);
    let stopped_caught_up =
        wait_client_matches_capture(&env, "flood", &stopped, Duration::from_secs(60));
    let stopped_bytes = stopped.output().len();
    let fds_after = fd_count(pid);

    report(
        T,
        &format!(
            "flood {bytes} B; unattached {unattached:.2?}; one client stopped + one live \
             {attached:.2?} (limit {limit:.2?}); server RSS start {rss_start} KiB, max \
             unattached {rss_base_max} KiB, max attached {rss_max} KiB; live client got \
             {live_bytes} B, matched capture {live_caught_up:.2?} after DONE; stopped client \
             got {stopped_bytes} B, matched capture {stopped_caught_up:.2?} after SIGCONT; \
             server fds {fds_before} -> {fds_after}"
        ),
    );
    assert!(
        rss_max < 300 * 1024,
        "server RSS reached {rss_max} KiB during the flood"
    );
}

/// Attach, then SIGKILL the client — at once, after its first output (mid-replay of a long
/// history) or once the live screen shows — many times: the session keeps running, and the
/// server's fds and memory return to where they started.
#[test]
fn attach_kill9_churn_leaks_nothing() {
    const T: &str = "churn";
    let cycles = scaled("LINGER_CHURN_CYCLES", 150, 1000);
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "churn",
        "--",
        "sh",
        "-c",
        &format!(
            "yes '{FLOOD_LINE}' | head -n 3000; i=0; \
             while :; do i=$((i+1)); echo tick $i; sleep 0.05; done"
        ),
    ]);
    env.ok(&["wait", "churn", "--text", "tick", "--timeout", "20s"]);
    let pid = server_pid(&env);
    // One full attach first, so lazily created server state counts as the baseline.
    {
        let warm = env.term(&["attach", "churn"], 24, 80);
        warm.wait_screen("live screen", |s| s.contents().contains("tick"));
        warm.signal(libc::SIGKILL);
    }
    within(Duration::from_secs(20), "no clients", || {
        (clients(&env, "churn") == 0).then_some(())
    });
    let fd_start = fd_count(pid);
    let rss_start = rss_kib(pid);
    let start = Instant::now();
    let (fd_peak, trend) = churn(&env, pid, cycles, fd_start);
    let churn_time = start.elapsed();
    let settle = Instant::now();
    let fd_end = within(Duration::from_secs(30), "fds back to start", || {
        let n = fd_count(pid);
        (n <= fd_start + 1 && clients(&env, "churn") == 0).then_some(n)
    });
    let settled = settle.elapsed();
    let rss_end = rss_kib(pid);
    // Still alive and still modelled.
    let before = session_json(&env, "churn");
    assert_eq!(before["state"], "running");
    let next = |env: &Env| -> u64 {
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["capture", "churn", "--json"])).unwrap();
        v["next_line"].as_u64().unwrap()
    };
    let line = next(&env);
    within(
        Duration::from_secs(20),
        "new output after the churn",
        || (next(&env) > line).then_some(()),
    );
    report(
        T,
        &format!(
            "{cycles} cycles (kill at once / after first output / after live screen) in \
             {churn_time:.2?}; server fds start {fd_start}, peak {fd_peak}, end {fd_end} \
             (settled in {settled:.2?}); RSS start {rss_start} KiB, end {rss_end} KiB; trend [{}]",
            trend.join(", ")
        ),
    );
    assert!(
        rss_end < rss_start + 16 * 1024,
        "server RSS grew from {rss_start} KiB to {rss_end} KiB over {cycles} cycles"
    );
}

/// `cycles` attaches to `churn`, each SIGKILLed at once, after its first output or once the
/// live screen shows; returns the server's peak fd count and a few samples of fds and memory.
fn churn(env: &Env, pid: i32, cycles: u64, fd_start: usize) -> (usize, Vec<String>) {
    let mut trend = Vec::new();
    let mut fd_peak = fd_start;
    for i in 0..cycles {
        let term = env.term(&["attach", "churn"], 24, 80);
        match i % 3 {
            0 => {}
            1 => term.wait_output("first output", |o| !o.is_empty()),
            _ => term.wait_screen("live screen", |s| s.contents().contains("tick")),
        }
        term.signal(libc::SIGKILL);
        drop(term);
        fd_peak = fd_peak.max(fd_count(pid));
        if (i + 1) % (cycles / 4).max(1) == 0 {
            trend.push(format!(
                "{}: {} fds {} KiB",
                i + 1,
                fd_count(pid),
                rss_kib(pid)
            ));
        }
    }
    (fd_peak, trend)
}

/// Several sessions flood at once, each with two clients: every flood completes and every
/// client ends up showing exactly its session's screen.
#[test]
fn many_flooding_sessions_with_two_clients_each() {
    const T: &str = "many";
    let sessions = scaled("LINGER_MANY_SESSIONS", 4, 16) as usize;
    let bytes = scaled("LINGER_MANY_BYTES", 1_000_000, 5_000_000);
    let env = Env::new();
    let names: Vec<String> = (0..sessions).map(|i| format!("m{i}")).collect();
    for name in &names {
        // Coloured numbered lines, then a cursor move and an attribute so the final screen is
        // more than the last lines of a scroll.
        let lines = bytes / 60;
        let script = format!(
            "stty -echo; read x; awk 'BEGIN {{ for (i = 0; i < {lines}; i++) \
             printf \"\\033[3%dm{name} %07d\\033[m payload payload payload payload\\n\", i % 8, i }}'; \
             printf '\\033[5;20H\\033[1;4mMARK {name}\\033[m\\033[20;1H\\033[2K'; echo DONE-{name}; exec sleep 1000"
        );
        env.ok(&["new", "-d", name, "--", "sh", "-c", &script]);
    }
    let pid = server_pid(&env);
    let terms: Vec<(String, Term)> = names
        .iter()
        .flat_map(|n| (0..2).map(move |_| n.clone()).collect::<Vec<_>>())
        .map(|n| {
            let t = env.term(&["attach", &n], 24, 80);
            (n, t)
        })
        .collect();
    for (_, t) in &terms {
        t.wait_output("replay", |o| !o.is_empty());
    }
    for name in &names {
        within(Duration::from_secs(20), "two clients each", || {
            (clients(&env, name) == 2).then_some(())
        });
    }
    let sampler = RssSampler::start(pid);
    let start = Instant::now();
    for name in &names {
        env.ok(&["send", name, "--enter", ""]);
    }
    for name in &names {
        let regex = format!("^DONE-{name}$");
        env.ok(&["wait", name, "--text", &regex, "--timeout", "240s"]);
    }
    let all_done = start.elapsed();
    let rss_max = sampler.stop();
    let mut slowest = Duration::ZERO;
    for (name, term) in &terms {
        let t = wait_client_matches_capture(&env, name, term, Duration::from_secs(120));
        slowest = slowest.max(t);
    }
    for name in &names {
        assert_eq!(clients(&env, name), 2, "{name} lost a client");
        let (rows, _) = captured(&env, name);
        assert!(rows.iter().any(|r| r.contains(&format!("MARK {name}"))));
    }
    let received: usize = terms.iter().map(|(_, t)| t.output().len()).sum();
    report(
        T,
        &format!(
            "{sessions} sessions x {bytes} B, 2 clients each: all DONE in {all_done:.2?}; \
             slowest client matched capture {slowest:.2?} later; clients received {received} B \
             in total; server RSS max {rss_max} KiB"
        ),
    );
}

/// Hundreds of connections that never say hello: `ls` keeps answering promptly, each costs the
/// server little memory, and the server drops them after its handshake timeout.
#[test]
fn idle_connections_cost_little_and_are_dropped() {
    const T: &str = "idle";
    let n = scaled("LINGER_IDLE_CONNECTIONS", 500, 500) as usize;
    let env = Env::new();
    env.ok(&["new", "-d", "keep", "--", "sleep", "1000"]);
    // `note` answers once the session's record is written: the writer thread's files are
    // closed again before the count (a quiet session keeps no file of its own open).
    env.ok(&["note", "keep", "idle connections"]);
    let pid = server_pid(&env);
    let fd_start = fd_count(pid);
    let rss_start = rss_kib(pid);
    let opened = Instant::now();
    let idle: Vec<UnixStream> = (0..n)
        .map(|_| UnixStream::connect(env.socket()).expect("connect"))
        .collect();
    // `fd_start` may still count the connection of the `note` above, which the server closes
    // a moment later (under load, after the count): allow for that one.
    within(Duration::from_secs(20), "all connections accepted", || {
        (fd_count(pid) + 1 >= fd_start + n).then_some(())
    });
    let accepted = opened.elapsed();
    let rss_open = rss_kib(pid);
    let mut worst = Duration::ZERO;
    let mut total = Duration::ZERO;
    const LS: u32 = 10;
    for _ in 0..LS {
        let t = Instant::now();
        assert!(env.ok(&["ls"]).contains("keep"));
        let took = t.elapsed();
        worst = worst.max(took);
        total += took;
    }
    let per_conn = (rss_open.saturating_sub(rss_start) * 1024) / n as u64;
    // The server closes connections that say nothing within its 10 s handshake timeout.
    let dropped = within(Duration::from_secs(30), "idle connections dropped", || {
        (fd_count(pid) <= fd_start + 1).then(|| opened.elapsed())
    });
    let mut first = idle.into_iter().next().expect("a connection");
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let _ = first.read_to_end(&mut got);
    report(
        T,
        &format!(
            "{n} idle connections accepted in {accepted:.2?}; server fds {fd_start} -> {} ; RSS \
             {rss_start} -> {rss_open} KiB ({per_conn} B per connection); `ls` x{LS} while \
             open: mean {:.2?}, worst {worst:.2?}; dropped by the server {dropped:.2?} after \
             opening",
            fd_start + n,
            total / LS
        ),
    );
    assert!(
        worst < Duration::from_secs(3),
        "ls took {worst:?} with {n} idle connections"
    );
    assert!(per_conn < 64 * 1024, "{per_conn} bytes per idle connection");
    assert!(!got.is_empty(), "the server says hello first");
}

/// A program printing one enormous line (no newline) must not grow the server without bound:
/// the history is bounded in bytes (`--scrollback 100` allows 64 KiB), and so are the line
/// being assembled from wrapped rows and what waits for the disk.
#[test]
fn endless_line_memory_is_bounded() {
    const T: &str = "endless_line";
    let bytes = scaled("LINGER_LINE_BYTES", 8_000_000, 64_000_000);
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "line",
        "--scrollback",
        "100",
        "--",
        "sh",
        "-c",
        &format!(
            "read x; head -c {bytes} /dev/zero | tr '\\0' x; echo; echo DONE; exec sleep 1000"
        ),
    ]);
    let pid = server_pid(&env);
    let rss_start = rss_kib(pid);
    let sampler = RssSampler::start(pid);
    run_flood(&env, "line", Duration::from_secs(300));
    let rss_max = sampler.stop();
    let grew = rss_max.saturating_sub(rss_start);
    report(
        T,
        &format!(
            "one {bytes} B line with --scrollback 100: RSS {rss_start} -> max {rss_max} KiB (+{grew} KiB)"
        ),
    );
    // The budget: the line's newest history pieces (64 KiB ring), fresh lines for the log
    // (1 MiB), unsaved output on each side of the disk writer's queue (1 MiB each), a read
    // batch per client queue, and the allocator's slack. An 8 MB line grows the server 5-7
    // MiB, a 64 MB one about 8: bounded, not proportional.
    assert!(
        grew < 12 * 1024,
        "server grew by {grew} KiB for one {bytes} B line"
    );
}

/// `capture --all` of a history the defaults allow (10,000 lines, 5 MiB) must work; it is one
/// response frame, and frames are capped at 1 MiB.
#[test]
fn capture_all_of_a_full_default_history() {
    let env = Env::new();
    let line = "y".repeat(120);
    env.ok(&[
        "new",
        "-d",
        "big",
        "--",
        "sh",
        "-c",
        &format!("yes '{line}' | head -n 12000; echo DONE; exec sleep 1000"),
    ]);
    env.ok(&["wait", "big", "--text", "^DONE$", "--timeout", "120s"]);
    let out = env.run(&["capture", "big", "--all"]);
    assert!(
        out.status.success(),
        "capture --all failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 10_000);
}

/// A client may state any terminal size; the server should not allocate a screen for
/// whatever it is told. 2000 x 2000 cells are 32 MB of 8-byte cells once written; the
/// protocol allows 65535 x 65535 (137 GB).
#[test]
fn huge_size_from_a_client_is_bounded() {
    const T: &str = "huge_size";
    use linger::protocol::{self, Hello, Request, Response};
    let env = Env::new();
    env.ok(&["new", "-d", "s", "--", "sleep", "1000"]);
    let pid = server_pid(&env);
    let rss_start = rss_kib(pid);
    let mut s = UnixStream::connect(env.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&protocol::encode(&Hello::ours())).unwrap();
    s.write_all(&protocol::encode(&Request::Attach(
        protocol::AttachRequest {
            name: "s".into(),
            read_only: false,
            rows: 2000,
            cols: 2000,
            create: None,
            profile: None,
            history: u64::MAX,
        },
    )))
    .unwrap();
    let read_frame = |s: &mut UnixStream| -> Vec<u8> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).unwrap();
        body
    };
    let _hello = read_frame(&mut s);
    let ok: Response = protocol::decode(&read_frame(&mut s)).unwrap();
    assert_eq!(ok, Response::Ok);
    let size = within(Duration::from_secs(60), "resize applied", || {
        let v = session_json(&env, "s");
        Some((v["rows"].as_u64()?, v["cols"].as_u64()?))
    });
    let rss = rss_kib(pid);
    report(
        T,
        &format!(
            "attach asking for 2000x2000: session size {size:?}, RSS {rss_start} -> {rss} KiB"
        ),
    );
    drop(s);
    assert!(alive(pid));
    assert!(
        rss < rss_start + 64 * 1024,
        "server RSS went from {rss_start} to {rss} KiB for one client's stated size"
    );
}

/// The server is a daemon started by whichever client comes first: it must not keep that
/// client's other open files (a CI runner's pipe, make's jobserver fds), nor hand them to
/// every session's program. A pipe's write end left open at fd 77 in the starting client
/// must reach EOF once that client has exited.
#[test]
fn server_does_not_keep_the_starting_clients_fds() {
    use std::os::unix::process::CommandExt;
    const FD: i32 = 77;
    let env = Env::new();
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 into a local array; both ends are close-on-exec in this process.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (r, w) = (fds[0], fds[1]);
    let mut cmd = env.cmd();
    cmd.args(["new", "-d", "s", "--", "sleep", "1000"]);
    // SAFETY: dup2 is async-signal-safe; the copy at FD is inherited only by this child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(w, FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("linger new");
    assert!(out.status.success());
    // SAFETY: closing our own write end; only inherited copies can keep the pipe open now.
    unsafe {
        libc::close(w);
    }
    let server = server_pid(&env);
    let child = session_json(&env, "s")["pid"].as_i64().unwrap() as i32;
    let held_by = |pid: i32| std::fs::read_link(format!("/proc/{pid}/fd/{FD}")).ok();
    let (in_server, in_child) = (held_by(server), held_by(child));
    let mut pfd = libc::pollfd {
        fd: r,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on our own read end for up to 2 s.
    let ready = unsafe { libc::poll(&mut pfd, 1, 2000) };
    // SAFETY: closing our own read end.
    unsafe {
        libc::close(r);
    }
    report(
        "inherited_fds",
        &format!(
            "fd {FD} of the starting client: in server {in_server:?}, in session program {in_child:?}"
        ),
    );
    assert!(
        in_server.is_none() && in_child.is_none(),
        "fd {FD} kept: server {in_server:?}, session program {in_child:?}"
    );
    assert!(
        ready == 1 && pfd.revents & libc::POLLHUP != 0,
        "the pipe never saw EOF"
    );
}
