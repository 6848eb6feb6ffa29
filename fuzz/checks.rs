//! The properties the fuzz targets check, shared with `tests/fuzz_logic.rs` (which runs them as
//! proptest cases on stable) through `#[path]`. Each check returns the first violation as an
//! error message; a panic inside linger is a finding too.

#![allow(dead_code)]

use linger::model::Model;
use linger::protocol::{
    self, FrameError, Hello, MAX_FRAME, Request, Response, decode, encode, encode_output,
};

/// Frames, two ways:
/// 1. `data` as a frame body: decoding as `Request`, `Response` or `Hello` never panics, and
///    whatever decodes survives an encode/decode round trip unchanged.
/// 2. `data` as a byte stream: `read_frame_into` reads exactly the frames a reference parser
///    finds, refuses a length over `MAX_FRAME` without allocating it, and reports a short frame
///    as end of stream.
///
/// Plus: `encode_output(data)` is a valid frame that decodes to `Output(data)`.
pub fn check_frames(data: &[u8]) -> Result<(), String> {
    round_trip::<Request>(data, "Request")?;
    round_trip::<Response>(data, "Response")?;
    round_trip::<Hello>(data, "Hello")?;

    let frame = encode_output(data);
    let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    if len != frame.len() - 4 {
        return Err(format!(
            "encode_output header says {len}, body is {}",
            frame.len() - 4
        ));
    }
    match decode::<Response>(&frame[4..]) {
        Ok(Response::Output(back)) if back == data => {}
        other => return Err(format!("encode_output did not decode to itself: {other:?}")),
    }

    check_stream(data)
}

fn round_trip<T>(body: &[u8], what: &str) -> Result<(), String>
where
    T: serde::Serialize + for<'a> serde::Deserialize<'a> + PartialEq + std::fmt::Debug,
{
    let Ok(msg) = decode::<T>(body) else {
        return Ok(());
    };
    let frame = encode(&msg);
    match decode::<T>(&frame[4..]) {
        Ok(back) if back == msg => Ok(()),
        other => Err(format!(
            "{what} {msg:?} decoded from {body:?} does not survive a round trip: {other:?}"
        )),
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("current-thread runtime")
    })
}

fn check_stream(data: &[u8]) -> Result<(), String> {
    runtime().block_on(async {
        let mut reader: &[u8] = data;
        let mut rest: &[u8] = data;
        let mut buf = Vec::new();
        loop {
            let got = protocol::read_frame_into(&mut reader, &mut buf).await;
            // What a reference parser expects from the same position.
            if rest.len() < 4 {
                return match got {
                    Err(e) if e.is_eof() => Ok(()),
                    other => Err(format!(
                        "{} header bytes: expected end of stream, got {other:?}",
                        rest.len()
                    )),
                };
            }
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            if len > MAX_FRAME {
                if buf.capacity() > 2 * MAX_FRAME {
                    return Err(format!("allocated {} bytes", buf.capacity()));
                }
                return match got {
                    Err(FrameError::TooLarge(n)) if n == len => Ok(()),
                    other => Err(format!("length {len}: expected TooLarge, got {other:?}")),
                };
            }
            if rest.len() - 4 < len {
                return match got {
                    Err(e) if e.is_eof() => Ok(()),
                    other => Err(format!(
                        "length {len} with {} bytes left: expected end of stream, got {other:?}",
                        rest.len() - 4
                    )),
                };
            }
            if let Err(e) = got {
                return Err(format!("complete frame of {len} bytes refused: {e}"));
            }
            if buf != rest[4..4 + len] {
                return Err(format!("frame of {len} bytes read wrong"));
            }
            // What the server and the client do with a frame body.
            let _ = decode::<Request>(&buf);
            let _ = decode::<Response>(&buf);
            rest = &rest[4 + len..];
        }
    })
}

pub const ROWS: u16 = 24;
pub const COLS: u16 = 80;

/// A session's output, two ways:
/// 1. Fed at once and fed split in two at a point chosen by the first byte (pty reads split
///    output anywhere, even inside a UTF-8 sequence): both models end with the same screen and
///    the same replay.
/// 2. The replay (history, then screen and modes) fed to a fresh model rebuilds the screen:
///    same cell contents and attributes, same cursor, same modes (see `compare`).
///
/// An engine panic is caught by `Model::process` and reported here as a violation.
pub fn check_model(data: &[u8]) -> Result<(), String> {
    let mut whole = Model::new(ROWS, COLS, 100);
    whole
        .process(data)
        .map_err(|e| format!("model panicked: {e}"))?;
    let replay = whole.replay(true);

    if let Some(&first) = data.first() {
        let at = (first as usize * data.len()) / 256;
        let mut split = Model::new(ROWS, COLS, 100);
        split
            .process(&data[..at])
            .and_then(|()| split.process(&data[at..]))
            .map_err(|e| format!("model panicked on split input: {e}"))?;
        compare(&whole, &split, true)
            .map_err(|e| format!("split at {at} changes the screen: {e}"))?;
        if split.replay(true) != replay {
            return Err(format!("split at {at} changes the replay"));
        }
    }

    let mut fresh = Model::new(ROWS, COLS, 100);
    fresh
        .process(&replay)
        .map_err(|e| format!("model panicked on its own replay: {e}"))?;
    compare(&whole, &fresh, false).map_err(|e| format!("replay differs: {e}"))
}

/// Compares what a user sees: every visible cell (text, width, style, link), the cursor, the
/// modes (synchronized output excepted: a replay never turns it on), scroll region, title and
/// kitty flags. With `exact`, the screen under the alternate one and the saved cursors too
/// (two models fed the same bytes must agree on everything).
pub fn compare(a: &Model, b: &Model, exact: bool) -> Result<(), String> {
    if a.size() != b.size() {
        return Err(format!("size {:?} vs {:?}", a.size(), b.size()));
    }
    let (x, y) = (a.engine(), b.engine());
    let (rows, cols) = x.size();
    for r in 0..rows {
        for c in 0..cols {
            let cell = |e: &linger::term::Engine| {
                e.cell(r, c).map(|v| {
                    (
                        v.text(),
                        v.wide(),
                        v.spacer(),
                        v.style().without_link(),
                        v.link().map(str::to_string),
                    )
                })
            };
            if cell(x) != cell(y) {
                return Err(format!(
                    "cell {r},{c}: {:?} vs {:?}\n--- expected\n{}\n--- got\n{}",
                    cell(x),
                    cell(y),
                    a.screen_lines(false).join("\n"),
                    b.screen_lines(false).join("\n"),
                ));
            }
        }
    }
    let state = |e: &linger::term::Engine| {
        let mut modes = *e.modes();
        modes.synchronized = false;
        let cur = e.cursor();
        (
            (cur.row, cur.col, cur.pending_wrap, cur.pen, cur.charsets),
            modes,
            e.alternate_screen(),
            e.scroll_region(),
            e.title().to_string(),
            e.kitty_flags(),
        )
    };
    if state(x) != state(y) {
        return Err(format!("cursor/modes {:?} vs {:?}", state(x), state(y)));
    }
    if exact && x.debug_state() != y.debug_state() {
        return Err("hidden state (main under alt, saved cursors, tabs) differs".into());
    }
    Ok(())
}
