//! linger's terminal identity, the way feature detectors see it: each query sent with DA1 right
//! after it, answered before that DA1 whether or not a client is attached, exactly once, from
//! the profile of the terminal that attached last, and nothing else arriving as input.

mod common;

use common::Env;

/// Sends each query followed by DA1 and logs, per query, every byte that came back before the
/// DA1 answer (hex), then everything else that arrives within a moment.
const PROBER: &str = r#"
import os, sys, select, time
os.system("stty raw -echo")
queries = [b"\x1b[>q", b"\x1b[?2026$p", b"\x1b]11;?\x1b\\", b"\x1b[?u", b"\x1b[18t", b"\x1bP+q544e\x1b\\"]
out = open(sys.argv[1], "w")
pending = b""
def read_until_da1():
    global pending
    deadline = time.time() + 5
    while b"\x1b[?62;22c" not in pending and time.time() < deadline:
        r, _, _ = select.select([0], [], [], 0.1)
        if r:
            pending += os.read(0, 4096)
    before, _, after = pending.partition(b"\x1b[?62;22c")
    pending = after
    return before
for q in queries:
    os.write(1, q + b"\x1b[c")
    out.write(read_until_da1().hex() + "\n")
    out.flush()
r, _, _ = select.select([0], [], [], 0.3)
extra = pending + (os.read(0, 4096) if r else b"")
out.write("extra " + extra.hex() + "\n")
out.close()
os.system("stty sane")
print("PROBE-DONE")
"#;

fn answers(log: &std::path::Path) -> Vec<String> {
    let text = common::eventually("the probe's log", || {
        let text = std::fs::read_to_string(log).ok()?;
        text.contains("extra").then_some(text)
    });
    text.lines()
        .map(|l| {
            let hex = l.strip_prefix("extra ").unwrap_or(l);
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect()
}

fn run_probe(env: &Env, name: &str, log: &str) -> Vec<String> {
    let script = env.home.join("prober.py");
    std::fs::write(&script, PROBER).expect("prober");
    let log = env.home.join(log);
    let command = format!("python3 {} {}", script.display(), log.display());
    env.ok(&["send", name, "--enter", &command]);
    answers(&log)
}

#[test]
fn every_query_is_answered_before_its_da1_attached_or_not() {
    let env = Env::new();
    env.ok(&["new", "-d", "sh", "--", "sh"]);
    // Detached, before any client came: linger's defaults (a dark background, no kitty).
    let got = run_probe(&env, "sh", "detached.txt");
    let version = format!("\x1bP>|linger {}\x1b\\", env!("CARGO_PKG_VERSION"));
    assert_eq!(got[0], version, "XTVERSION");
    assert_eq!(got[1], "\x1b[?2026;2$y", "DECRQM ?2026: supported, off");
    assert_eq!(got[2], "\x1b]11;rgb:1c1c/1c1c/1c1c\x1b\\", "OSC 11 default");
    assert_eq!(
        got[3], "",
        "kitty flags: the terminal does not have it, so no answer"
    );
    assert!(got[4].starts_with("\x1b[8;"), "size report: {:?}", got[4]);
    assert_eq!(
        got[5], "\x1bP1+r544e=787465726D2D323536636F6C6F72\x1b\\",
        "XTGETTCAP TN"
    );
    assert_eq!(got[6], "", "nothing else arrives as input");

    // A client attaches: its terminal's background is what programs now hear.
    let client = env.term(&["attach", "sh"], 24, 80);
    client.wait_output("the replay", |o| !o.is_empty());
    // The client's profile follows its attach (its terminal answers the probe as it likes).
    let mut attempt = 0;
    let got = common::eventually("the client's profile", || {
        attempt += 1;
        let got = run_probe(&env, "sh", &format!("attached-{attempt}.txt"));
        (got[2] == "\x1b]11;rgb:2020/3030/4040\x1b\\").then_some(got)
    });
    assert_eq!(
        got[6], "",
        "the client's terminal answered nothing the program sees"
    );
    let seen = String::from_utf8_lossy(&client.output()).into_owned();
    assert!(
        !seen.contains("\x1b[>q") && !seen.contains("\x1b]11;?\x1b\\\x1b[c\x1b[?u"),
        "a program's query reached the user's terminal"
    );
    drop(client);

    // Detached again: the last terminal's profile stays.
    let got = run_probe(&env, "sh", "after.txt");
    assert_eq!(
        got[2], "\x1b]11;rgb:2020/3030/4040\x1b\\",
        "OSC 11 after detaching"
    );
}
