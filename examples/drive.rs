//! Drive a session from a program: start a shell, run a command, wait for its output, capture.
//!
//! Run with `cargo run --example drive` (uses `LINGER_DIR` if set).

use std::time::Duration;

use linger::Client;
use linger::client::WaitOutcome;
use linger::protocol::{SessionSpec, WaitCondition};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::connect().await?;
    let name = format!("example-{}", std::process::id());
    client
        .create(SessionSpec {
            name: name.clone(),
            command: vec!["sh".into()],
            cwd: std::env::current_dir()?.to_string_lossy().into_owned(),
            env: vec![],
            scrollback: 1000,
            rows: 24,
            cols: 80,
            ..Default::default()
        })
        .await?;
    client
        .send(&name, b"echo answer-$((6*7))", false, true)
        .await?;
    let outcome = client
        .wait(
            &name,
            WaitCondition::Text {
                regex: "^answer-42$".into(),
                from_line: None,
                new: false,
            },
            Some(Duration::from_secs(10)),
        )
        .await?;
    let WaitOutcome::Done { line, .. } = outcome else {
        return Err("the answer never appeared".into());
    };
    println!("matched: {line}");
    let capture = client.capture(&name, None, None, false).await?;
    for row in capture.screen.iter().filter(|r| !r.is_empty()) {
        println!("| {row}");
    }
    client.kill(&name, None).await?;
    Ok(())
}
