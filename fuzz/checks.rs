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
///    output anywhere): both models end with the same screen and the same replay.
/// 2. The replay (history, then screen and modes) fed to a fresh model rebuilds the screen:
///    same cell contents, same cursor, same modes (see `compare`).
///
/// A vt100 panic is caught by `Model::process` and reported here as a violation.
pub fn check_model(data: &[u8]) -> Result<(), String> {
    let mut whole = Model::new(ROWS, COLS, 100);
    whole
        .process(data)
        .map_err(|e| format!("model panicked: {e}"))?;
    let replay = whole.replay(true);

    if let Some(&first) = data.first() {
        let mut at = (first as usize * data.len()) / 256;
        // Never split before a UTF-8 continuation byte: vte 0.15.0 drops up to two characters
        // after a sequence split across `advance` calls (alacritty/vte#159), a known gap
        // pinned by `utf8_split_across_reads_keeps_every_character` in tests/fuzz_logic.rs.
        while at > 0 && at < data.len() && (0x80..0xc0).contains(&data[at]) {
            at -= 1;
        }
        let mut split = Model::new(ROWS, COLS, 100);
        split
            .process(&data[..at])
            .and_then(|()| split.process(&data[at..]))
            .map_err(|e| format!("model panicked on split input: {e}"))?;
        compare(whole.screen(), split.screen(), true)
            .map_err(|e| format!("split at {at} changes the screen: {e}"))?;
        if split.replay(true) != replay {
            return Err(format!("split at {at} changes the replay"));
        }
    }

    let mut fresh = Model::new(ROWS, COLS, 100);
    fresh
        .process(&replay)
        .map_err(|e| format!("model panicked on its own replay: {e}"))?;
    compare(whole.screen(), fresh.screen(), false).map_err(|e| format!("replay differs: {e}"))
}

/// Compares what a user sees. With `exact`, every attribute too (two models fed the same bytes
/// must agree on everything).
pub fn compare(a: &vt100::Screen, b: &vt100::Screen, exact: bool) -> Result<(), String> {
    if a.size() != b.size() {
        return Err(format!("size {:?} vs {:?}", a.size(), b.size()));
    }
    let (rows, cols) = (a.size().0.get(), a.size().1.get());
    // `Screen::cell` walks the rows on every call; compare formatted rows first and look at
    // cells only to explain a difference.
    let cells_equal = a.rows_formatted(0, cols).eq(b.rows_formatted(0, cols));
    for r in (0..rows).filter(|_| !cells_equal) {
        for c in 0..cols {
            let (x, y) = (a.cell(r, c).unwrap(), b.cell(r, c).unwrap());
            if x.contents() != y.contents() {
                return Err(format!(
                    "cell {r},{c}: {:?} vs {:?}\n--- expected\n{}\n--- got\n{}",
                    x.contents(),
                    y.contents(),
                    a.contents(),
                    b.contents()
                ));
            }
            if x.is_wide() != y.is_wide() || x.is_wide_continuation() != y.is_wide_continuation() {
                return Err(format!("cell {r},{c}: width differs"));
            }
            let attrs = |z: &vt100::Cell| {
                (
                    z.fgcolor(),
                    z.bgcolor(),
                    z.bold(),
                    z.dim(),
                    z.italic(),
                    z.underline(),
                    z.inverse(),
                )
            };
            if attrs(x) != attrs(y) {
                return Err(format!(
                    "cell {r},{c} ({:?}): attributes {:?} vs {:?}",
                    x.contents(),
                    attrs(x),
                    attrs(y)
                ));
            }
        }
    }
    let modes = |s: &vt100::Screen| {
        (
            s.cursor_position(),
            s.hide_cursor(),
            s.alternate_screen(),
            s.application_cursor(),
            s.application_keypad(),
            s.bracketed_paste(),
            s.mouse_protocol_mode(),
            s.mouse_protocol_encoding(),
        )
    };
    if modes(a) != modes(b) {
        return Err(format!("cursor/modes {:?} vs {:?}", modes(a), modes(b)));
    }
    if exact && a.contents_formatted() != b.contents_formatted() {
        return Err("formatted contents differ".into());
    }
    Ok(())
}
