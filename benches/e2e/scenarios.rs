//! Scenarios on one attached client: output flood, keystroke echo, attach with history.

use crate::procfs::{cpu_secs, ctx_switches};
use crate::results::{Row, median, percentile, row};
use crate::systems::{Peers, System, raw};
use crate::term::Term;
use crate::*;
use std::fs::File;

/// Each run: the program prints READY, blocks on a fifo, then cats the corpus. The clock starts
/// when the fifo is released and stops when the reader sees the end marker.
struct FloodRun<'a> {
    work: &'a Path,
    file: PathBuf,
    fifos: usize,
}

impl FloodRun<'_> {
    fn script(&mut self) -> (String, PathBuf) {
        self.fifos += 1;
        let fifo = self.work.join(format!("go{}", self.fifos));
        let c = std::ffi::CString::new(fifo.to_string_lossy().as_bytes()).expect("fifo path");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo {}", fifo.display());
        let script = format!(
            "printf '{READY}\\n'; cat {} >/dev/null; cat {}; exec sleep 100000",
            sh_quote(&fifo.to_string_lossy()),
            sh_quote(&self.file.to_string_lossy())
        );
        (script, fifo)
    }

    /// Every client is spawned watching for READY and waits for it before this. Returns the seconds until the end marker and the bytes the client read meanwhile.
    fn go(term: &Term, fifo: &Path) -> (f64, u64) {
        term.arm(FLOOD_END.as_bytes());
        let before = term.received();
        let writer = File::options()
            .write(true)
            .open(fifo)
            .expect("cannot open the fifo");
        let start = Instant::now();
        drop(writer);
        let end = term.wait();
        (
            end.duration_since(start).as_secs_f64(),
            term.received() - before,
        )
    }
}

/// a. ~50 MB of mixed output while one client is attached; time until the client sees the end,
/// and the CPU time of whatever keeps the session.
pub fn flood(peers: &Peers, work: &Path, rows: &mut Vec<Row>) {
    println!(
        "flood: {} MB, {FLOOD_RUNS} runs each",
        FLOOD_BYTES / 1_000_000
    );
    let mut data = corpus::mixed(FLOOD_BYTES, ROWS, COLS, 11);
    data.extend_from_slice(format!("\x1b[m\r\n{FLOOD_END}\r\n").as_bytes());
    let file = work.join("flood.bin");
    std::fs::write(&file, &data).expect("cannot write the flood corpus");
    let mb = data.len() as f64 / 1e6;
    let mut runner = FloodRun {
        work,
        file,
        fifos: 0,
    };
    let mut systems = peers.systems("flood");
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    let mut cpus: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
    // The fewest bytes a client got in any run: one that fell behind gets a fresh screen
    // instead of its backlog, so its time may cover less than the whole flood.
    let mut least: Vec<f64> = vec![f64::MAX; systems.len()];
    let mut raw_times = Vec::new();
    for run in 0..FLOOD_RUNS {
        let (script, fifo) = runner.script();
        let (term, _) = raw(&script, "raw flood", Some(READY));
        term.wait();
        let (t, bytes) = FloodRun::go(&term, &fifo);
        println!("  run {run}: raw pty {t:.3} s ({bytes} bytes read)");
        raw_times.push(t);
        drop(term);
        for (i, sys) in systems.iter_mut().enumerate() {
            let (script, fifo) = runner.script();
            let name = format!("flood{run}");
            sys.new_session(&name, &script);
            let (term, _) = sys.attach(&name, Some(READY));
            // After READY, dtach's session process exists too.
            term.wait();
            let pids = sys.server_pids();
            let cpu0: f64 = pids.iter().map(|&p| cpu_secs(p)).sum();
            let (t, bytes) = FloodRun::go(&term, &fifo);
            let cpu = pids.iter().map(|&p| cpu_secs(p)).sum::<f64>() - cpu0;
            println!(
                "  run {run}: {} {t:.3} s ({bytes} bytes to the client, server CPU {cpu:.2} s)",
                sys.label()
            );
            times[i].push(t);
            cpus[i].push(cpu);
            least[i] = least[i].min(bytes as f64 / 1e6);
        }
    }
    let raw_t = median(&mut raw_times);
    let t: Vec<f64> = times.iter_mut().map(|v| median(v)).collect();
    let cpu: Vec<f64> = cpus.iter_mut().map(|v| median(v)).collect();
    let by_name = |v: &[f64]| peers.by_baseline(v);
    let [_, d, x] = by_name(&t);
    rows.push(row(
        "flood 50 MB, throughput (MB/s)",
        mb / t[0],
        [Some(mb / raw_t), d.map(|d| mb / d), x.map(|x| mb / x)],
        1,
    ));
    rows.push(row("flood 50 MB, time (s)", t[0], [Some(raw_t), d, x], 3));
    let [_, d, x] = by_name(&cpu);
    rows.push(row("flood 50 MB, server CPU (s)", cpu[0], [None, d, x], 2));
    let [_, d, x] = by_name(&least);
    rows.push(row(
        "flood 50 MB, least reaching the client in a run (MB; a client that fell behind gets a fresh screen instead of its backlog)",
        least[0],
        [Some(mb), d, x],
        1,
    ));
}

/// b. Keystroke-to-echo latency through an attached client, on a raw-mode `cat`.
pub fn echo(peers: &Peers, rows: &mut Vec<Row>) {
    println!(
        "echo: {ECHO_KEYS} keystrokes each (after {ECHO_WARMUP} warm-up), in {ECHO_ROUNDS} \
         interleaved rounds"
    );
    let script = format!("stty raw -echo; printf '{READY}'; exec cat");
    // Letters that are not final bytes of the escape sequences a multiplexer writes.
    let keys = b"wxyz";
    // Clients are spawned watching for READY.
    let measure = |term: &Term, n: usize, lat: &mut Vec<f64>| {
        for i in 0..n {
            let k = keys[i % keys.len()];
            term.arm(&[k]);
            let start = Instant::now();
            term.type_bytes(&[k]);
            let at = term.wait();
            lat.push(at.duration_since(start).as_secs_f64() * 1e3);
        }
    };
    let (raw_term, _) = raw(&script, "raw echo", Some(READY));
    raw_term.wait();
    let mut systems = peers.systems("echo");
    let terms: Vec<Term> = systems
        .iter_mut()
        .map(|sys| {
            sys.new_session("echo", &script);
            let (term, _) = sys.attach("echo", Some(READY));
            term.wait();
            term
        })
        .collect();
    // Context switches per key, server and client together: unlike latency, a count that the
    // machine's other load does not move.
    let pids: Vec<Vec<i32>> = systems
        .iter()
        .zip(&terms)
        .map(|(sys, term)| {
            let mut pids = sys.server_pids();
            pids.push(term.pid());
            pids
        })
        .collect();
    let mut warm = Vec::new();
    measure(&raw_term, ECHO_WARMUP, &mut warm);
    for term in &terms {
        measure(term, ECHO_WARMUP, &mut warm);
    }
    // Every tool takes a share of each round, so load that comes and goes on the machine falls
    // on all of them alike rather than on whichever ran at that moment.
    let mut raw_lat = Vec::with_capacity(ECHO_KEYS);
    let mut lats: Vec<Vec<f64>> = vec![Vec::with_capacity(ECHO_KEYS); terms.len()];
    let mut switches = vec![0u64; terms.len()];
    let per_round = ECHO_KEYS / ECHO_ROUNDS;
    for _ in 0..ECHO_ROUNDS {
        measure(&raw_term, per_round, &mut raw_lat);
        for (i, term) in terms.iter().enumerate() {
            let before: u64 = pids[i].iter().map(|&p| ctx_switches(p)).sum();
            measure(term, per_round, &mut lats[i]);
            let after: u64 = pids[i].iter().map(|&p| ctx_switches(p)).sum();
            switches[i] += after - before;
        }
    }
    drop(raw_term);
    drop(terms);
    let keys_typed = (per_round * ECHO_ROUNDS) as f64;
    report_echo(peers, rows, &mut lats, &mut raw_lat, &switches, keys_typed);
}

/// The echo rows: latency percentiles per tool (the raw pty's beside them) and context
/// switches per key.
fn report_echo(
    peers: &Peers,
    rows: &mut Vec<Row>,
    lats: &mut [Vec<f64>],
    raw_lat: &mut [f64],
    switches: &[u64],
    keys_typed: f64,
) {
    let switches: Vec<f64> = switches.iter().map(|&n| n as f64 / keys_typed).collect();
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        let at: Vec<f64> = lats.iter_mut().map(|v| percentile(v, p)).collect();
        let [_, d, x] = peers.by_baseline(&at);
        rows.push(row(
            &format!("echo latency {label} (ms)"),
            at[0],
            [Some(percentile(raw_lat, p)), d, x],
            3,
        ));
    }
    let [_, d, x] = peers.by_baseline(&switches);
    rows.push(row(
        "echo: context switches per key (server + client)",
        switches[0],
        [None, d, x],
        1,
    ));
}

/// c. Attach to a session with 10,000 lines of history and a full screen; time to the screen.
/// dtach replays nothing, so it has no figure here.
pub fn attach(peers: &Peers, work: &Path, rows: &mut Vec<Row>) {
    println!("attach: {ATTACH_RUNS} attaches each");
    let data = corpus::history_then_screen(10_000 + ROWS as usize, ROWS, COLS, ATTACH_MARK);
    let file = work.join("attach.bin");
    std::fs::write(&file, &data).expect("cannot write the attach corpus");
    let file_q = sh_quote(&file.to_string_lossy());
    let script = format!("cat {file_q}; exec sleep 100000");

    let times = |sys: &mut dyn System| -> f64 {
        sys.new_session("att", &script);
        sys.wait_text("att", ATTACH_MARK);
        let mut t = Vec::new();
        let mut bytes = 0;
        for _ in 0..ATTACH_RUNS {
            let (term, start) = sys.attach("att", Some(ATTACH_MARK));
            let at = term.wait();
            t.push(at.duration_since(start).as_secs_f64() * 1e3);
            bytes = term.received();
        }
        println!("  {} client received {bytes} bytes per attach", sys.label());
        median(&mut t)
    };

    let mut raw_t = Vec::new();
    for _ in 0..ATTACH_RUNS {
        let (term, start) = raw(&format!("exec cat {file_q}"), "raw cat", Some(ATTACH_MARK));
        raw_t.push(term.wait().duration_since(start).as_secs_f64() * 1e3);
    }
    let linger_t = times(peers.linger("attach").as_mut());
    let all_t = times(peers.linger_all_history().as_mut());
    let tmux_t = peers.tmux("attach").map(|mut t| times(t.as_mut()));
    let raw_t = median(&mut raw_t);
    rows.push(row(
        "attach, 10k history, default replay of the newest 2000 lines + screen (ms, median; raw = cat of all 10k; tmux sends the screen only)",
        linger_t,
        [Some(raw_t), None, tmux_t],
        1,
    ));
    rows.push(row(
        "attach, 10k history, --history all (ms, median)",
        all_t,
        [Some(raw_t), None, tmux_t],
        1,
    ));
}
