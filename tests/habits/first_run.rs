//! First run and discoverability: completions, man page, config file, errors with hints,
//! help text, resume presets, detach key precedence.

use crate::common::{self, Env};
use crate::{script, session, stderr, wait_text};

#[test]
fn completions_and_man_page() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.ok(&["completions", shell]);
        assert!(out.contains("capture") && out.contains("linger"), "{shell}");
    }
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH linger"), "{man}");
    assert_eq!(env.run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn config_file_sets_defaults_and_a_bad_one_is_one_clear_line() {
    let env = Env::new();
    let dir = env.home.join(".config/linger");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("config.toml");
    let fakebin = env.home.join("fakebin");
    let agent = script(&fakebin, "myagent", "exec sleep 300");
    std::fs::write(
        &file,
        "command = [\"sh\", \"-c\", \"echo from-config; exec sleep 300\"]\nscrollback = 123\ndetach_key = \"nonsense\"\n[resume]\nmyagent = [\"--again\"]\n",
    )
    .expect("config");
    env.ok(&["new", "-d", "c"]);
    wait_text(&env, "c", "from-config");
    env.ok(&[
        "new",
        "-d",
        "a",
        "--",
        agent.to_str().expect("utf-8"),
        "--x",
    ]);
    let a = session(&env, "a").expect("a");
    assert_eq!(
        a["resume_command"],
        serde_json::json!([agent.to_str(), "--x", "--again"])
    );
    let term = env.term(&["attach", "c"], 24, 80);
    term.wait_text("from-config");
    assert!(
        term.text()
            .contains("config.toml: invalid detach key 'nonsense'"),
        "{}",
        term.text()
    );

    std::fs::write(&file, "scrollback = 10\nscrolback = 5\n").expect("config");
    let out = env.run(&["new", "-d", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&file.display().to_string()) && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(env.run(&["has", "bad"]).status.code(), Some(1));
}

#[test]
fn errors_keep_hints_and_names_print_as_written() {
    let env = Env::new();
    let out = env.run(&["captur", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'capture'"), "{}", stderr(&out));
    let out = env.run(&["new", "x", "echo", "hi"]);
    assert!(stderr(&out).contains("after --"), "{}", stderr(&out));
    let out = env.run(&["attach", "ün"]);
    assert!(stderr(&out).contains("'ün'"), "{}", stderr(&out));
    env.ok(&["new", "-d", "agent", "--", "sleep", "300"]);
    let term = env.term(&["attach", "agnet"], 24, 80);
    term.wait_text("did you mean 'agent'?");
    let out = env.run(&["capture", "agnet"]);
    assert!(
        stderr(&out).ends_with("; did you mean 'agent'?\n"),
        "{}",
        stderr(&out)
    );
    let help = env.ok(&["--help"]);
    assert!(help.contains("Without a command, linger attaches to the session `main`"));
    for var in [
        "LINGER_DIR",
        "LINGER_STATE_DIR",
        "LINGER_DETACH_KEY",
        "XDG_CONFIG_HOME",
    ] {
        assert!(help.contains(var), "{var}");
    }
    for cmd in [
        "new", "attach", "kill", "stop", "rename", "log", "send", "capture", "wait",
    ] {
        let help = env.ok(&[cmd, "--help"]);
        let args = help.split("Arguments:").nth(1).unwrap_or("");
        for line in args.lines().take_while(|l| !l.is_empty()) {
            assert!(
                line.trim().split_once("  ").is_some(),
                "{cmd}: undescribed {line}"
            );
        }
    }
}

#[test]
fn resume_presets_keep_the_original_flags() {
    let env = Env::new();
    let claude = script(
        &env.home.join("fakebin"),
        "claude",
        "echo \"claude $*\"; exec sleep 300",
    );
    let claude = claude.to_str().expect("utf-8");
    env.ok(&["new", "-d", "cl", "--", claude, "--model", "opus"]);
    wait_text(&env, "cl", "^claude --model opus$");
    env.ok(&["stop", "cl"]);
    env.ok(&["revive", "cl"]);
    wait_text(&env, "cl", "^claude --model opus --continue$");
}

#[test]
fn detach_key_flag_beats_environment_beats_file() {
    let env = Env::new();
    let dir = env.home.join(".config/linger");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "detach_key = \"C-a\"\n").expect("config");
    env.ok(&[
        "new",
        "-d",
        "s",
        "--",
        "sh",
        "-c",
        "echo up-$((5*5)); exec sleep 300",
    ]);
    let attach = |flag: &[&str], chord: u8| {
        let mut cmd = env.cmd();
        cmd.args(["attach", "s"])
            .args(flag)
            .env("LINGER_DETACH_KEY", "C-]");
        let mut term = common::Term::spawn(cmd, 24, 80);
        term.wait_text("up-25");
        term.write(&[chord]);
        term.wait_text("[detached from s]");
        assert!(term.wait_exit().success());
    };
    attach(&[], 0x1d);
    attach(&["--detach-key", "C-b"], 0x02);
    let mut cmd = env.cmd();
    cmd.args(["attach", "s"]);
    let mut term = common::Term::spawn(cmd, 24, 80);
    term.wait_text("up-25");
    term.write(&[0x01]);
    term.wait_text("[detached from s]");
    assert!(term.wait_exit().success());
}
