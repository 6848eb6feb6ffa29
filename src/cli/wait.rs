//! `wait`: block until text appears, output stops or the program exits.

use super::args::WaitArgs;
use super::parse::duration;
use super::{Failure, existing_for, print_out};
use crate::client::WaitOutcome;
use crate::protocol::WaitCondition;

pub(crate) async fn wait(args: WaitArgs) -> Result<i32, Failure> {
    let timeout = args
        .timeout
        .as_deref()
        .map(|t| duration(t, "--timeout"))
        .transpose()?;
    let (condition, what) = if let Some(regex) = args.text {
        super::parse::regex(&regex)?;
        let what = format!("text /{regex}/");
        (
            WaitCondition::Text {
                regex,
                from_line: args.from_line,
                new: args.new,
            },
            what,
        )
    } else if let Some(idle) = args.idle {
        let d = duration(&idle, "--idle")?;
        (
            WaitCondition::Idle {
                millis: d.as_millis() as u64,
            },
            format!("{idle} of idleness"),
        )
    } else if let Some(state) = args.state.as_deref().filter(|s| *s != "exited") {
        let agent = crate::protocol::AgentState::parse(state).map_err(super::usage)?;
        (WaitCondition::State(agent), format!("state {state}"))
    } else {
        (WaitCondition::Exit, "exit".to_string())
    };
    let is_exit = matches!(condition, WaitCondition::Exit);
    let client = existing_for(&args.name).await?;
    match client.wait(&args.name, condition, timeout).await? {
        WaitOutcome::Done { line, exit_code } => {
            if !is_exit && !line.is_empty() {
                print_out(&format!("{line}\n"))?;
            }
            Ok(if is_exit { exit_code.unwrap_or(0) } else { 0 })
        }
        WaitOutcome::TimedOut => Err(Failure {
            code: 124,
            message: format!(
                "timed out after {} waiting for {what} in session '{}'",
                args.timeout.unwrap_or_default(),
                args.name
            ),
        }),
    }
}
