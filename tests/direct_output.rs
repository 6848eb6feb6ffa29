//! Output the server writes straight to the client's terminal (small output while the client
//! has written everything relayed) and output relayed through the client (large output, or
//! while the client still has some to write) reach the terminal complete and in order, and a
//! detach leaves nothing of the session on the terminal after its notice.

mod common;

use common::*;

/// The numbers of the `L<n>` markers in `output`, in the order they appear.
fn markers(output: &[u8]) -> Vec<u32> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < output.len() {
        if output[i] == b'L' {
            let digits = output[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let end = i + 1 + digits;
            if digits > 0 && matches!(output.get(end), Some(b'\r' | b'\n' | b' ' | 0x1b)) {
                let text = std::str::from_utf8(&output[i + 1..end]).expect("digits");
                found.push(text.parse().expect("a marker's number"));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// While the client is stopped, a large piece of output waits for it in the socket; small
/// output after it must wait too (the terminal has room, but writing there directly would put
/// it ahead of the large piece). Once the client runs again it drops what it held for a fresh
/// screen (see client/catch_up.rs): the terminal shows no small line before the large piece's
/// end, and ends on the session's screen.
#[test]
fn output_relayed_to_a_stopped_client_stays_ahead_of_later_small_output() {
    let env = Env::new();
    let work = env.home.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    // 3000 lines in one write (about 20 KB: relayed), then ten lines one write each.
    let script = "printf 'READY\\n'; while [ ! -e go1 ]; do sleep 0.01; done; \
                  awk 'BEGIN { for (i = 1; i <= 3000; i++) s = s \"L\" i \"\\n\"; printf \"%s\", s }'; \
                  while [ ! -e go2 ]; do sleep 0.01; done; \
                  for i in 1 2 3 4 5 6 7 8 9 10; do echo L$((3000+i)); done";
    let dir = work.to_str().expect("utf-8");
    env.ok(&["new", "-d", "mix", "-C", dir, "--", "sh", "-c", script]);
    let mut client = env.term(&["attach", "mix"], 24, 80);
    client.wait_text("READY");
    client.signal(libc::SIGSTOP);
    std::fs::write(work.join("go1"), "").expect("go1");
    env.wait_capture("mix", "the large write", |s| s.contains("L3000"));
    std::fs::write(work.join("go2"), "").expect("go2");
    env.wait_capture("mix", "the small writes", |s| s.contains("L3010"));
    client.signal(libc::SIGCONT);
    client.wait_exit();
    let output = client.output();
    let seen = markers(&output);
    let first = |n: u32| seen.iter().position(|&m| m == n);
    let (large_end, small) = (first(3000), first(3001));
    assert!(
        large_end.is_some() && small.is_some() && large_end < small,
        "L3000 first at {large_end:?}, L3001 at {small:?}"
    );
    client.wait_screen("the session's last lines", |s| {
        let text = s.contents();
        text.contains("L2995\nL2996") && text.contains("L3009\nL3010")
    });
}

/// Attach and detach, eight times, while a line a time streams (small output, written
/// straight to the terminal): after each notice, nothing of the session reaches the terminal,
/// and nothing holds the terminal once the client has exited.
#[test]
fn detaching_while_output_streams_leaves_nothing_after_the_notice() {
    let env = Env::new();
    let beats = "i=0; while :; do i=$((i+1)); echo beat$i; sleep 0.001; done";
    env.ok(&["new", "-d", "stream", "--", "sh", "-c", beats]);
    for round in 0..8 {
        let mut client = env.term(&["attach", "stream"], 24, 80);
        // Two lines after the replay: the session's output is streaming to this client.
        client.wait_output("beats", |o| {
            o.windows(4).filter(|w| w == b"beat").count() > 2
        });
        client.write(b"\x1c");
        client.wait_exit();
        assert!(
            client.output_ended(),
            "round {round}: something still holds the terminal after the client exited"
        );
        let out = client.output();
        let notice = b"[detached from stream]";
        let at = out
            .windows(notice.len())
            .position(|w| w == notice)
            .unwrap_or_else(|| panic!("no notice in {:?}", String::from_utf8_lossy(&out)));
        let after = &out[at..];
        assert!(
            !contains(after, b"beat"),
            "round {round}: the session's output reached the terminal after the notice: {:?}",
            String::from_utf8_lossy(after)
        );
    }
    assert_eq!(listed(&env, "stream").expect("stream")["state"], "running");
}

/// While the client is stopped (its shell has the terminal back), nothing of the session may
/// land on the terminal: small output is relayed, for when the client runs again. It used to
/// be written straight to the terminal, over the shell's prompt and whatever ran there.
#[test]
fn a_stopped_client_s_terminal_gets_no_output_until_it_runs_again() {
    let env = Env::new();
    let work = env.home.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let script = "printf 'READY\\n'; while [ ! -e go0 ]; do sleep 0.01; done; echo WARM; \
                  while [ ! -e go1 ]; do sleep 0.01; done; echo SMALL-1; \
                  while [ ! -e go2 ]; do sleep 0.01; done; echo SMALL-2; exec sleep 1000";
    let dir = work.to_str().expect("utf-8");
    env.ok(&["new", "-d", "st", "-C", dir, "--", "sh", "-c", script]);
    let client = env.term(&["attach", "st"], 24, 80);
    client.wait_text("READY");
    // Small output while the client runs: the server takes the direct path for such output
    // once the client has passed its terminal and written everything relayed.
    std::fs::write(work.join("go0"), "").expect("go0");
    client.wait_text("WARM");
    client.signal(libc::SIGSTOP);
    eventually("the client to stop", || {
        linger::proc_stat::ProcStat::of(client.pid()).filter(|stat| stat.stopped())
    });
    // The user's shell takes the terminal back and prints its prompt; output comes later.
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(work.join("go1"), "").expect("go1");
    env.wait_capture("st", "the first line", |s| s.contains("SMALL-1"));
    std::fs::write(work.join("go2"), "").expect("go2");
    env.wait_capture("st", "the second line", |s| s.contains("SMALL-2"));
    let shown = String::from_utf8_lossy(&client.output()).into_owned();
    assert!(
        !shown.contains("SMALL-"),
        "output reached the stopped client's terminal: {shown:?}"
    );
    client.signal(libc::SIGCONT);
    client.wait_text("SMALL-2");
    let shown = String::from_utf8_lossy(&client.output()).into_owned();
    let first = shown.find("SMALL-1").expect("the first line after SIGCONT");
    assert!(
        first < shown.find("SMALL-2").expect("the second"),
        "{shown:?}"
    );
}
