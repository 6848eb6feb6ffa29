//! Scenarios on what sessions cost at rest: memory, idle wake-ups, creating and listing many.

use crate::procfs::{cpu_secs, ctx_switches, per_thread_switches, rss_mib, switches_since};
use crate::results::{Row, row};
use crate::systems::{Peers, System};
use crate::*;

/// d. Server RSS with 1 and 50 idle sessions, and after one session printed 100,000 lines.
pub fn memory(peers: &Peers, work: &Path, rows: &mut Vec<Row>) {
    println!("memory");
    // dtach's figure is the sum over its 50 session processes.
    let rss = |sys: &dyn System| -> f64 { sys.server_pids().into_iter().map(rss_mib).sum() };
    let idle = |sys: &mut dyn System, wide: bool| -> [f64; 2] {
        sys.new_idle("s0", wide);
        let one = rss(sys);
        for i in 1..50 {
            sys.new_idle(&format!("s{i}"), wide);
        }
        assert_eq!(sys.list(), 50, "{}: expected 50 sessions", sys.label());
        [one, rss(sys)]
    };
    let mut lines = Vec::new();
    let mut rng = corpus::Rng::new(5);
    for n in 0..100_000u64 {
        let line = if n % 2 == 0 {
            corpus::plain_line(&mut rng, n)
        } else {
            corpus::sgr_line(&mut rng, n)
        };
        lines.extend_from_slice(line.as_bytes());
        lines.extend_from_slice(b"\r\n");
    }
    lines.extend_from_slice(format!("{LINES_DONE}\r\n").as_bytes());
    let file = work.join("lines.bin");
    std::fs::write(&file, &lines).expect("cannot write the lines corpus");
    println!(
        "  100,000 lines: {:.1} MB (plain and SGR log lines)",
        lines.len() as f64 / 1e6
    );
    let script = format!(
        "cat {}; exec sleep 100000",
        sh_quote(&file.to_string_lossy())
    );
    let big = |sys: &mut dyn System| -> f64 {
        sys.new_session("big", &script);
        sys.wait_text("big", LINES_DONE);
        // Measured once the server is quiet again: deferred work after a burst (log flushes,
        // returning freed memory) is part of the steady state.
        let pid = sys.server_pid();
        settle(pid, Duration::from_millis(1500));
        rss_mib(pid)
    };

    for (wide, size) in [(false, "80x24"), (true, "200x50")] {
        let figures: Vec<[f64; 2]> = peers
            .systems(&format!("mem{size}"))
            .iter_mut()
            .map(|sys| idle(sys.as_mut(), wide))
            .collect();
        for (i, label) in ["1 idle session", "50 idle sessions"].iter().enumerate() {
            let values: Vec<f64> = figures.iter().map(|f| f[i]).collect();
            rows.push(row(
                &format!("server RSS, {label} {size} (MiB; dtach: sum of its processes)"),
                values[0],
                peers.by_baseline(&values),
                1,
            ));
        }
    }
    let lbig = big(peers.linger("big").as_mut());
    let tbig = peers.tmux("big").map(|mut t| big(t.as_mut()));
    rows.push(row(
        "server RSS, 1 session 200x50 after 100k lines (MiB; 10k history)",
        lbig,
        [None, None, tbig],
        1,
    ));
}

/// Polls until `pid` has not switched context for `quiet_for`: the startup burst and any
/// deferred work after the last output (linger flushes its output logs 0.5 s after output) are
/// over.
fn settle(pid: i32, quiet_for: Duration) {
    let start = Instant::now();
    let mut last = ctx_switches(pid);
    let mut quiet = Duration::ZERO;
    while quiet < quiet_for && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
        let now = ctx_switches(pid);
        quiet = if now == last {
            quiet + Duration::from_millis(100)
        } else {
            Duration::ZERO
        };
        last = now;
    }
}

/// e. CPU time and context switches over 10 s with 10 idle sessions and one attached client.
pub fn idle(peers: &Peers, rows: &mut Vec<Row>) {
    println!("idle: {} s window per system", IDLE_WINDOW.as_secs());
    let window = |sys: &mut dyn System| -> [f64; 4] {
        sys.new_session("s0", &format!("printf '{READY}'; exec sleep 100000"));
        for i in 1..10 {
            sys.new_idle(&format!("s{i}"), true);
        }
        let (term, _) = sys.attach("s0", Some(READY));
        term.wait();
        let servers = sys.server_pids();
        let client = term.pid();
        // Past linger's 3 s after the last output, when a quiet program's agent state turns
        // idle (a one-off event, not an idle cost).
        servers
            .iter()
            .for_each(|&pid| settle(pid, Duration::from_secs(4)));
        let cpu = || servers.iter().map(|&p| cpu_secs(p)).sum::<f64>();
        let s0: Vec<_> = servers.iter().map(|&p| per_thread_switches(p)).collect();
        let c0 = cpu();
        let (cc0, cs0) = (cpu_secs(client), per_thread_switches(client));
        std::thread::sleep(IDLE_WINDOW);
        let server_switches: u64 = servers
            .iter()
            .zip(&s0)
            .map(|(&p, before)| switches_since(p, before))
            .sum();
        [
            (cpu() - c0) * 1e3,
            server_switches as f64,
            (cpu_secs(client) - cc0) * 1e3,
            switches_since(client, &cs0) as f64,
        ]
    };
    let figures: Vec<[f64; 4]> = peers
        .systems("idle")
        .iter_mut()
        .map(|sys| window(sys.as_mut()))
        .collect();
    let labels = [
        "idle 10 s: server CPU (ms)",
        "idle 10 s: server context switches",
        "idle 10 s: client CPU (ms)",
        "idle 10 s: client context switches",
    ];
    for (i, label) in labels.iter().enumerate() {
        let values: Vec<f64> = figures.iter().map(|f| f[i]).collect();
        rows.push(row(label, values[0], peers.by_baseline(&values), 0));
    }
}

/// f. Create 100 detached sessions one command at a time, then list them.
pub fn scale(peers: &Peers, rows: &mut Vec<Row>) {
    println!("scale: 100 sessions");
    let figures: Vec<[f64; 2]> = peers
        .systems("scale")
        .iter_mut()
        .map(|sys| {
            let start = Instant::now();
            for i in 0..100 {
                sys.new_idle(&format!("s{i}"), false);
            }
            let created = start.elapsed().as_secs_f64();
            let ls_start = Instant::now();
            let n = sys.list();
            let ls = ls_start.elapsed().as_secs_f64();
            assert_eq!(n, 100, "{} listed {n} sessions, expected 100", sys.label());
            [created, ls * 1e3]
        })
        .collect();
    // The floor for 100 CLI invocations: starting the binary and exiting, no server involved.
    let start = Instant::now();
    for _ in 0..100 {
        run_ok(
            Command::new(&peers.linger).arg("--version"),
            "linger --version",
        );
    }
    println!(
        "  100 x `linger --version` (process start only): {:.3} s",
        start.elapsed().as_secs_f64()
    );
    let labels = [
        ("create 100 sessions (s)", 3),
        ("list 100 sessions (ms; dtach: a directory listing)", 1),
    ];
    for (i, (label, digits)) in labels.iter().enumerate() {
        let values: Vec<f64> = figures.iter().map(|f| f[i]).collect();
        rows.push(row(label, values[0], peers.by_baseline(&values), *digits));
    }
}
