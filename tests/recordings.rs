//! The engine against alacritty's reference recordings (`../shared/alacritty_ref`): each
//! recording is fed at its size and the screen (text, colours, attributes) and cursor are
//! compared with the grid alacritty produced.
//!
//! Two recordings are allowed to differ, by choice:
//! - `deccolm_reset`: DECCOLM (`CSI ? 3 h/l`) is not honoured; xterm only honours it with
//!   `allowColumns`, and resizing the session from the app side would fight the clients'
//!   sizes. alacritty clears the screen on it; linger leaves the screen alone.
//! - `selective_erasure`: alacritty ignores DECSED/DECSEL (`CSI ? J`, `CSI ? K`) and so keeps
//!   every cell; linger does what xterm does: erases the cells not protected by DECSCA
//!   (`CSI 1 " q`), so only the protected `B`s stay.

use std::io::Read;
use std::path::{Path, PathBuf};

use linger::history::History;
use linger::term::{Color, Style, Term, Underline};
use serde_json::Value;

const ALLOWED_TO_DIFFER: &[&str] = &["deccolm_reset", "selective_erasure"];

fn ref_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/alacritty_ref");
    dir.is_dir().then_some(dir)
}

fn named(name: &str) -> Color {
    const NAMES: [&str; 8] = [
        "Black", "Red", "Green", "Yellow", "Blue", "Magenta", "Cyan", "White",
    ];
    if let Some(i) = NAMES.iter().position(|n| *n == name) {
        return Color::Idx(i as u8);
    }
    if let Some(rest) = name.strip_prefix("Bright")
        && let Some(i) = NAMES.iter().position(|n| *n == rest)
    {
        return Color::Idx(i as u8 + 8);
    }
    Color::Default
}

fn color(v: &Value) -> Color {
    if let Some(n) = v.get("Named").and_then(Value::as_str) {
        return named(n);
    }
    if let Some(i) = v.get("Indexed").and_then(Value::as_u64) {
        return Color::Idx(i as u8);
    }
    if let Some(s) = v.get("Spec") {
        let c = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0) as u8;
        return Color::Rgb(c("r"), c("g"), c("b"));
    }
    Color::Default
}

/// What both sides are compared on, per cell.
#[derive(Debug, PartialEq)]
struct Seen {
    text: String,
    fg: Color,
    bg: Color,
    bold: bool,
    dim: bool,
    italic: bool,
    inverse: bool,
    hidden: bool,
    strike: bool,
    underline: Underline,
    underline_color: Color,
    link: Option<String>,
}

fn expected_cell(v: &Value) -> Seen {
    let flags = v["flags"].as_str().unwrap_or("");
    let has = |f: &str| flags.split(" | ").any(|x| x == f);
    let mut text = v["c"].as_str().unwrap_or(" ").replace('\t', " ");
    let extra = &v["extra"];
    if let Some(zw) = extra.get("zerowidth").and_then(Value::as_array) {
        for z in zw {
            text.push_str(z.as_str().unwrap_or(""));
        }
    }
    if has("WIDE_CHAR_SPACER") {
        text.clear();
    }
    let underline = if has("DOUBLE_UNDERLINE") {
        Underline::Double
    } else if has("UNDERCURL") {
        Underline::Curly
    } else if has("DOTTED_UNDERLINE") {
        Underline::Dotted
    } else if has("DASHED_UNDERLINE") {
        Underline::Dashed
    } else if has("UNDERLINE") {
        Underline::Single
    } else {
        Underline::None
    };
    Seen {
        text,
        fg: color(&v["fg"]),
        bg: color(&v["bg"]),
        bold: has("BOLD") || has("BOLD_ITALIC"),
        dim: has("DIM"),
        italic: has("ITALIC") || has("BOLD_ITALIC"),
        inverse: has("INVERSE"),
        hidden: has("HIDDEN"),
        strike: has("STRIKEOUT"),
        underline,
        underline_color: extra.get("underline_color").map_or(Color::Default, color),
        link: extra
            .get("hyperlink")
            .and_then(|h| h.get("inner"))
            .and_then(|h| h.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn actual_cell(t: &Term, row: usize, col: usize) -> Seen {
    let cell = t.engine().cell(row, col).expect("cell on screen");
    let s: Style = cell.style();
    Seen {
        text: if cell.spacer() {
            String::new()
        } else {
            cell.text()
        },
        fg: s.fg(),
        bg: s.bg(),
        bold: s.has(linger::term::BOLD),
        dim: s.has(linger::term::DIM),
        italic: s.has(linger::term::ITALIC),
        inverse: s.has(linger::term::INVERSE),
        hidden: s.has(linger::term::HIDDEN),
        strike: s.has(linger::term::STRIKE),
        underline: s.underline(),
        underline_color: s.underline_color(),
        link: cell.link().map(str::to_string),
    }
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).expect("read json");
    serde_json::from_slice(&bytes).expect("parse json")
}

fn read_grid(path: &Path) -> Value {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open grid"))
        .read_to_string(&mut text)
        .expect("gunzip grid");
    serde_json::from_str(&text).expect("parse grid")
}

/// Compares one recording; the first difference found, if any.
fn check(dir: &Path, name: &str, cursors: &Value) -> Result<(), String> {
    let size = read_json(&dir.join(name).join("size.json"));
    let cols = size["columns"].as_u64().unwrap_or(80) as u16;
    let rows = size["screen_lines"].as_u64().unwrap_or(24) as u16;
    let bytes = std::fs::read(dir.join(name).join("alacritty.recording")).expect("recording");
    let mut term = Term::new(rows, cols, History::new(1000));
    term.process(&bytes);
    let grid = read_grid(&dir.join(name).join("grid.json.gz"));
    let raw = &grid["raw"];
    let inner = raw["inner"].as_array().expect("rows");
    let zero = raw["zero"].as_u64().unwrap_or(0) as usize;
    let lines = grid["lines"].as_u64().unwrap_or(rows as u64) as usize;
    // alacritty's ring keeps the bottom screen line at `zero`, the top at `zero + lines - 1`.
    for line in 0..lines {
        let row = &inner[(zero + lines - 1 - line) % inner.len()]["inner"];
        let cells = row.as_array().expect("cells");
        for (col, v) in cells.iter().enumerate().take(cols as usize) {
            let want = expected_cell(v);
            let got = actual_cell(&term, line, col);
            if want != got {
                return Err(format!(
                    "row {line} col {col}: want {want:?}, got {got:?}\n  row: {:?}",
                    term.engine().row_text(line, false)
                ));
            }
        }
    }
    let c = &cursors[name];
    let e = term.engine();
    let want = (
        c["row"].as_u64().unwrap_or(0) as usize,
        c["col"].as_u64().unwrap_or(0) as usize,
        c["pending_wrap"].as_bool().unwrap_or(false),
        c["visible"].as_bool().unwrap_or(true),
        c["alt_screen"].as_bool().unwrap_or(false),
    );
    let got = (
        e.cursor().row,
        e.cursor().col,
        e.cursor().pending_wrap,
        e.modes().cursor_visible,
        e.alternate_screen(),
    );
    if want != got {
        return Err(format!(
            "cursor (row, col, wrap, visible, alt): want {want:?}, got {got:?}"
        ));
    }
    Ok(())
}

#[test]
fn engine_matches_alacritty_recordings() {
    let Some(dir) = ref_dir() else {
        println!("skipped: ../shared/alacritty_ref not found");
        return;
    };
    let cursors = read_json(&dir.join("cursors.json"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("list recordings")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("alacritty.recording").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut matched = 0;
    let mut failures = Vec::new();
    for name in &names {
        match check(&dir, name, &cursors) {
            Ok(()) => matched += 1,
            Err(e) => {
                println!("{name}: {e}");
                if !ALLOWED_TO_DIFFER.contains(&name.as_str()) {
                    failures.push(name.clone());
                }
            }
        }
    }
    println!("recordings matched: {matched}/{}", names.len());
    assert!(failures.is_empty(), "recordings that differ: {failures:?}");
}
