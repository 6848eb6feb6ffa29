//! Removes terminal queries from the output forwarded to clients: the server answers every
//! query itself, once, from the session's state and its terminal profile (`term::answers`), so
//! attached terminals must never see one (their late answers would arrive as typed input, and
//! two terminals would answer twice).
//!
//! Recognised: DA1/DA2/DA3, DSR 5/6, `CSI ? 6 n`, `CSI ? 996 n`, DECRQM (`CSI ? Ps $ p`,
//! `CSI Ps $ p`), XTVERSION (`CSI > q`), kitty's `CSI ? u`, XTWINOPS reports 14/16/18, OSC
//! 10/11/12/4 and 52 queries (a `?` value), DECRQSS (`DCS $ q`) and XTGETTCAP (`DCS + q`).

mod escapes;

use bytes::Bytes;
use escapes::Escapes;

/// A CSI longer than this is not a query; it is passed on rather than held back.
const MAX_QUERY_LEN: usize = 32;
/// An OSC or DCS query longer than this is passed on rather than held back.
const MAX_STRING_QUERY_LEN: usize = 512;
/// A clipboard write (OSC 52, base64) longer than this reaches no client: it is held until its
/// end to go to one client only, and holding more per session is not worth a copy that big
/// (xterm's own limit is lower).
pub const MAX_CLIPBOARD_LEN: usize = 1024 * 1024;

#[derive(Default)]
pub struct QueryFilter {
    /// The start of a possible query or clipboard write split across reads, waiting for its
    /// end; at most [`MAX_CLIPBOARD_LEN`].
    held: Vec<u8>,
    /// Inside a clipboard write that passed the bound: dropped up to its end.
    discarding: bool,
    /// The last chunk with its clipboard writes kept, for the client that owns the clipboard.
    clipboard: Option<Bytes>,
}

enum Scan {
    Query(usize),
    /// An OSC 52 clipboard write (not a query) of this length.
    Clipboard(usize),
    /// A clipboard write longer than [`MAX_CLIPBOARD_LEN`], not finished in what was read.
    TooLong,
    /// Not a query nor a clipboard write; no escape starts in its first this many bytes.
    Other(usize),
    Incomplete,
}

/// Looks at the escape sequence starting at `seq[0] == ESC`.
fn scan(seq: &[u8]) -> Scan {
    match seq.get(1) {
        None => Scan::Incomplete,
        Some(b'[') => scan_csi(seq),
        Some(b']') if seq[2..].starts_with(b"52;") => scan_clipboard(seq),
        Some(b']') => scan_string(seq, is_osc_query, MAX_STRING_QUERY_LEN),
        Some(b'P') => scan_string(seq, is_dcs_query, MAX_STRING_QUERY_LEN),
        Some(_) => Scan::Other(1),
    }
}

fn scan_csi(seq: &[u8]) -> Scan {
    let mut i = 2;
    let marker = match seq.get(i) {
        None => return Scan::Incomplete,
        Some(&m @ (b'>' | b'?' | b'=')) => {
            i += 1;
            Some(m)
        }
        Some(_) => None,
    };
    let params_start = i;
    // Bytes past MAX_QUERY_LEN are not looked at: a sequence that long is no query.
    let end = seq.len().min(MAX_QUERY_LEN + 1);
    let params_len = seq
        .get(params_start..end)
        .unwrap_or_default()
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b';'));
    let Some(params_len) = params_len else {
        return match end < seq.len() {
            true => Scan::Other(end),
            false => Scan::Incomplete,
        };
    };
    let i = params_start + params_len;
    match seq[i] {
        b'$' => {
            // DECRQM: `CSI [?] Ps $ p`.
            match seq.get(i + 1) {
                None => Scan::Incomplete,
                Some(b'p') if marker != Some(b'>') => Scan::Query(i + 2),
                Some(_) => Scan::Other(i + 1),
            }
        }
        b => {
            if is_csi_query(marker, &seq[params_start..i], b) {
                Scan::Query(i + 1)
            } else {
                // `b` itself may be an escape (the sequence was cut short).
                Scan::Other(i)
            }
        }
    }
}

fn is_csi_query(marker: Option<u8>, params: &[u8], action: u8) -> bool {
    match (marker, action) {
        (None | Some(b'>') | Some(b'='), b'c') => params.is_empty() || params == b"0",
        (None, b'n') => params == b"5" || params == b"6",
        (Some(b'?'), b'n') => params == b"6" || params == b"996",
        (Some(b'>'), b'q') => params.is_empty() || params == b"0",
        (Some(b'?'), b'u') => params.is_empty(),
        (None, b't') => {
            let first = params.split(|b| *b == b';').next().unwrap_or_default();
            matches!(first, b"14" | b"16" | b"18")
        }
        _ => false,
    }
}

/// OSC 52: a query (`52;c;?`, answered by the server) or a clipboard write, up to its BEL or
/// ST (or the ESC of whatever comes next, which ends it in vte-based terminals).
fn scan_clipboard(seq: &[u8]) -> Scan {
    let Some(i) = memchr::memchr2(0x07, 0x1b, &seq[2..]).map(|p| p + 2) else {
        return if seq.len() > MAX_CLIPBOARD_LEN {
            Scan::TooLong
        } else {
            Scan::Incomplete
        };
    };
    let len = match (seq[i], seq.get(i + 1)) {
        (0x07, _) => i + 1,
        (_, Some(b'\\')) => i + 2,
        (_, None) => return Scan::Incomplete,
        _ => i,
    };
    if is_osc_query(&seq[2..i]) {
        Scan::Query(len)
    } else {
        Scan::Clipboard(len)
    }
}

/// An OSC or DCS string: up to BEL or ST, at most `max` bytes.
fn scan_string(seq: &[u8], is_query: fn(&[u8]) -> bool, max: usize) -> Scan {
    let body_start = 2;
    let mut i = body_start;
    while i < seq.len() {
        if i > max {
            return Scan::Other(i);
        }
        match seq[i] {
            0x07 => return verdict(is_query(&seq[body_start..i]), i + 1),
            0x1b => {
                return match seq.get(i + 1) {
                    None => Scan::Incomplete,
                    Some(b'\\') => verdict(is_query(&seq[body_start..i]), i + 2),
                    Some(_) => Scan::Other(i),
                };
            }
            _ => i += 1,
        }
    }
    Scan::Incomplete
}

fn verdict(query: bool, len: usize) -> Scan {
    if query {
        Scan::Query(len)
    } else {
        Scan::Other(len)
    }
}

fn is_osc_query(body: &[u8]) -> bool {
    let mut fields = body.split(|b| *b == b';');
    let command = fields.next().unwrap_or_default();
    match command {
        b"10" | b"11" | b"12" | b"7501" => fields.next() == Some(b"?"),
        b"4" | b"52" => fields.any(|f| f == b"?"),
        _ => false,
    }
}

fn is_dcs_query(body: &[u8]) -> bool {
    body.starts_with(b"$q") || body.starts_with(b"+q")
}

impl QueryFilter {
    /// Returns what to forward to every client: queries and clipboard writes removed. The
    /// common case (no query, nothing held) returns `chunk` itself without copying. When the
    /// chunk wrote the clipboard, [`QueryFilter::take_clipboard`] has the version for the
    /// client that owns it.
    pub fn filter(&mut self, chunk: Bytes) -> Bytes {
        self.clipboard = None;
        let chunk = if self.discarding {
            self.skip_discarded(chunk)
        } else {
            chunk
        };
        if self.held.is_empty() && memchr::memchr(0x1b, &chunk).is_none() {
            return chunk;
        }
        let data: Bytes = if self.held.is_empty() {
            chunk
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(&chunk);
            Bytes::from(joined)
        };
        // Byte ranges taken out, and whether each is a clipboard write.
        let mut cuts: Vec<(usize, usize, bool)> = Vec::new();
        let mut end = data.len();
        let mut pos = 0;
        let mut escapes = Escapes::new(&data);
        while let Some(start) = escapes.next() {
            if start < pos {
                // Inside a string or a query passed over.
                continue;
            }
            if let Some(len) = escapes.pass_over(start) {
                pos = start + len;
                continue;
            }
            match scan(&data[start..]) {
                Scan::Query(len) => {
                    cuts.push((start, start + len, false));
                    pos = start + len;
                }
                Scan::Clipboard(len) => {
                    cuts.push((start, start + len, true));
                    pos = start + len;
                }
                Scan::TooLong => {
                    self.discarding = true;
                    end = start;
                    break;
                }
                Scan::Other(len) => pos = start + len.max(1),
                Scan::Incomplete => {
                    self.held.extend_from_slice(&data[start..]);
                    end = start;
                    break;
                }
            }
        }
        if cuts.is_empty() && end == data.len() {
            return data;
        }
        if cuts.iter().any(|c| c.2) {
            self.clipboard = Some(keep(&data, end, cuts.iter().filter(|c| !c.2)));
        }
        keep(&data, end, cuts.iter())
    }

    /// Drops the rest of an over-long clipboard write, up to its BEL or ST.
    fn skip_discarded(&mut self, chunk: Bytes) -> Bytes {
        let Some(i) = memchr::memchr2(0x07, 0x1b, &chunk) else {
            return Bytes::new();
        };
        self.discarding = false;
        if chunk[i] == 0x07 {
            return chunk.slice(i + 1..);
        }
        if chunk.get(i + 1) == Some(&b'\\') {
            return chunk.slice(i + 2..);
        }
        // An ESC that starts something else (or whose next byte is still to come) ends the
        // string and is kept.
        chunk.slice(i..)
    }

    /// The last filtered chunk with its clipboard writes kept (queries still removed), if it
    /// had any.
    pub fn take_clipboard(&mut self) -> Option<Bytes> {
        self.clipboard.take()
    }

    /// Anything held back, for when the output ends. An unfinished clipboard write is no
    /// copy: it is dropped.
    pub fn flush(&mut self) -> Bytes {
        let held = std::mem::take(&mut self.held);
        if held.starts_with(b"\x1b]52;") {
            return Bytes::new();
        }
        Bytes::from(held)
    }
}

/// `data[..end]` without the `cuts` (in order, not overlapping).
fn keep<'a>(
    data: &Bytes,
    end: usize,
    cuts: impl Iterator<Item = &'a (usize, usize, bool)>,
) -> Bytes {
    let mut out = Vec::with_capacity(end);
    let mut from = 0;
    for &(start, stop, _) in cuts {
        out.extend_from_slice(&data[from..start]);
        from = stop;
    }
    out.extend_from_slice(&data[from..end]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<u8> {
        let mut f = QueryFilter::default();
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&f.filter(Bytes::copy_from_slice(c)));
        }
        out.extend_from_slice(&f.flush());
        out
    }

    #[test]
    fn strips_queries_and_keeps_everything_else() {
        assert_eq!(
            run(&[b"a\x1b[6nb\x1b[cc\x1b[>0cd\x1b[5ne\x1b[31mf"]),
            b"abcde\x1b[31mf"
        );
    }

    #[test]
    fn strips_queries_split_across_reads() {
        assert_eq!(run(&[b"a\x1b", b"[", b"6", b"nb"]), b"ab");
        assert_eq!(run(&[b"a\x1b[3", b"1mb"]), b"a\x1b[31mb");
    }

    #[test]
    fn strips_every_query_linger_answers() {
        let queries: &[&[u8]] = &[
            b"\x1b[=c",
            b"\x1b[>q",
            b"\x1b[?2026$p",
            b"\x1b[4$p",
            b"\x1b[?u",
            b"\x1b[14t",
            b"\x1b[18t",
            b"\x1b[?996n",
            b"\x1b]11;?\x07",
            b"\x1b]10;?\x1b\\",
            b"\x1b]4;1;?\x1b\\",
            b"\x1b]52;c;?\x07",
            b"\x1b]7501;?\x1b\\",
            b"\x1bP$qm\x1b\\",
            b"\x1bP+q544e\x1b\\",
        ];
        for q in queries {
            let mut input = b"a".to_vec();
            input.extend_from_slice(q);
            input.extend_from_slice(b"b");
            assert_eq!(run(&[&input]), b"ab", "{q:?}");
            let (x, y) = input.split_at(input.len() / 2);
            assert_eq!(run(&[x, y]), b"ab", "split {q:?}");
        }
        // Not queries: setting colours, titles, kitty push, window ops that change things.
        for keep in [
            &b"\x1b]11;#000000\x07"[..],
            b"\x1b]2;title\x07",
            b"\x1b]7501;state=idle\x1b\\",
            b"\x1b[>1u",
            b"\x1b[8;24;80t",
            b"\x1b[?2026h",
        ] {
            assert_eq!(run(&[keep]), keep, "{keep:?}");
        }
    }

    #[test]
    fn clipboard_writes_are_kept_only_in_the_owners_version() {
        let mut f = QueryFilter::default();
        let all = f.filter(Bytes::from_static(b"a\x1b]52;c;aGk=\x07b\x1b[cc"));
        assert_eq!(&all[..], b"abc");
        let owner = f.take_clipboard().expect("the owner's version");
        assert_eq!(&owner[..], b"a\x1b]52;c;aGk=\x07bc");
        // Split across reads, ended by ST.
        assert_eq!(&f.filter(Bytes::from_static(b"x\x1b]52;c;aG"))[..], b"x");
        assert!(f.take_clipboard().is_none());
        assert_eq!(&f.filter(Bytes::from_static(b"k=\x1b\\y"))[..], b"y");
        assert_eq!(
            &f.take_clipboard().expect("owner")[..],
            b"\x1b]52;c;aGk=\x1b\\y"
        );
    }

    #[test]
    fn a_clipboard_write_past_the_bound_reaches_nobody() {
        let mut f = QueryFilter::default();
        let mut big = b"a\x1b]52;c;".to_vec();
        big.resize(MAX_CLIPBOARD_LEN + 10, b'A');
        assert_eq!(&f.filter(Bytes::from(big))[..], b"a");
        assert_eq!(&f.filter(Bytes::from_static(b"AAAA"))[..], b"");
        assert_eq!(
            &f.filter(Bytes::from_static(b"AA\x07b\x1b[1mc"))[..],
            b"b\x1b[1mc"
        );
        assert!(f.take_clipboard().is_none());
        // Just under the bound it is held and goes to the owner.
        let mut under = b"\x1b]52;c;".to_vec();
        under.resize(MAX_CLIPBOARD_LEN - 10, b'A');
        assert_eq!(&f.filter(Bytes::from(under.clone()))[..], b"");
        assert_eq!(&f.filter(Bytes::from_static(b"\x07z"))[..], b"z");
        under.extend_from_slice(b"\x07z");
        assert_eq!(f.take_clipboard().expect("owner"), under);
    }

    proptest::proptest! {
        /// Any mix of text, ordinary sequences and queries, cut anywhere into reads, comes out
        /// as exactly the pieces that are not queries.
        #[test]
        fn only_the_queries_are_taken_out(
            pieces in proptest::collection::vec(
                (proptest::bool::ANY, 0usize..KEPT.len().max(QUERIES.len())),
                0..40,
            ),
            cuts in proptest::collection::vec(1usize..48, 1..6),
        ) {
            let mut all = Vec::new();
            let mut kept = Vec::new();
            for (query, n) in pieces {
                if query {
                    all.extend_from_slice(QUERIES[n % QUERIES.len()]);
                } else {
                    all.extend_from_slice(KEPT[n % KEPT.len()]);
                    kept.extend_from_slice(KEPT[n % KEPT.len()]);
                }
            }
            let mut reads: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= all.len() {
                    break;
                }
                let end = (at + cut).min(all.len());
                reads.push(&all[at..end]);
                at = end;
            }
            proptest::prop_assert_eq!(run(&reads), kept);
        }
    }

    const KEPT: &[&[u8]] = &[
        b"plain text ",
        b"$p cn qut 6n",
        b"\x1b[31m",
        b"\x1b[1;38;5;208;48;2;1;2;3m",
        b"\x1b[m",
        b"\x1b[12;40H",
        b"\x1b[K",
        b"\x1b[?25h",
        b"\x1b[?1049l",
        b"\x1b[2J",
        b"\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17m",
        b"\x1b]0;a title\x07",
        b"\x1b]8;;http://example.com\x1b\\",
        b"\x1b]10;rgb:0/0/0\x07",
        b"\x1bc",
        b"\x1b7\x1b8",
        b"\r\n",
        b"\xe6\xbc\xa2\xe5\xad\x97",
    ];

    const QUERIES: &[&[u8]] = &[
        b"\x1b[6n",
        b"\x1b[5n",
        b"\x1b[c",
        b"\x1b[0c",
        b"\x1b[>c",
        b"\x1b[>q",
        b"\x1b[?u",
        b"\x1b[14t",
        b"\x1b[?2026$p",
        b"\x1b[4$p",
        b"\x1b]10;?\x07",
        b"\x1b]11;?\x1b\\",
        b"\x1b]4;1;?\x07",
        b"\x1bP$qm\x1b\\",
        b"\x1bP+q544e\x1b\\",
    ];

    #[test]
    fn passes_plain_text_untouched() {
        let mut f = QueryFilter::default();
        let chunk = Bytes::from_static(b"hello world");
        let out = f.filter(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
    }
}
