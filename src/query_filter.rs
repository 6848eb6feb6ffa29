//! Removes terminal queries from the output forwarded to clients: the server answers every
//! query itself, once, from the session's state and its terminal profile (`term::answers`), so
//! attached terminals must never see one (their late answers would arrive as typed input, and
//! two terminals would answer twice).
//!
//! Recognised: DA1/DA2/DA3, DSR 5/6, `CSI ? 6 n`, `CSI ? 996 n`, DECRQM (`CSI ? Ps $ p`,
//! `CSI Ps $ p`), XTVERSION (`CSI > q`), kitty's `CSI ? u`, XTWINOPS reports 14/16/18, OSC
//! 10/11/12/4 and 52 queries (a `?` value), DECRQSS (`DCS $ q`) and XTGETTCAP (`DCS + q`).

use bytes::Bytes;

/// A CSI longer than this is not a query; it is passed on rather than held back.
const MAX_QUERY_LEN: usize = 32;
/// An OSC or DCS query longer than this is passed on rather than held back.
const MAX_STRING_QUERY_LEN: usize = 512;

#[derive(Default)]
pub struct QueryFilter {
    /// The start of a possible query split across reads, waiting for its end.
    held: Vec<u8>,
}

enum Scan {
    Query(usize),
    Other,
    Incomplete,
}

/// Looks at the escape sequence starting at `seq[0] == ESC`.
fn scan(seq: &[u8]) -> Scan {
    match seq.get(1) {
        None => Scan::Incomplete,
        Some(b'[') => scan_csi(seq),
        Some(b']') => scan_string(seq, is_osc_query),
        Some(b'P') => scan_string(seq, is_dcs_query),
        Some(_) => Scan::Other,
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
    while let Some(&b) = seq.get(i) {
        if i > MAX_QUERY_LEN {
            return Scan::Other;
        }
        match b {
            b'0'..=b'9' | b';' => i += 1,
            b'$' => {
                // DECRQM: `CSI [?] Ps $ p`.
                return match seq.get(i + 1) {
                    None => Scan::Incomplete,
                    Some(b'p') if marker != Some(b'>') => Scan::Query(i + 2),
                    Some(_) => Scan::Other,
                };
            }
            _ => {
                let params = &seq[params_start..i];
                return if is_csi_query(marker, params, b) {
                    Scan::Query(i + 1)
                } else {
                    Scan::Other
                };
            }
        }
    }
    Scan::Incomplete
}

fn is_csi_query(marker: Option<u8>, params: &[u8], action: u8) -> bool {
    let first = params.split(|b| *b == b';').next().unwrap_or_default();
    match (marker, action) {
        (None | Some(b'>') | Some(b'='), b'c') => params.is_empty() || params == b"0",
        (None, b'n') => params == b"5" || params == b"6",
        (Some(b'?'), b'n') => params == b"6" || params == b"996",
        (Some(b'>'), b'q') => params.is_empty() || params == b"0",
        (Some(b'?'), b'u') => params.is_empty(),
        (None, b't') => matches!(first, b"14" | b"16" | b"18"),
        _ => false,
    }
}

/// An OSC or DCS string: up to BEL or ST, bounded.
fn scan_string(seq: &[u8], is_query: fn(&[u8]) -> bool) -> Scan {
    let body_start = 2;
    let mut i = body_start;
    while i < seq.len() {
        if i > MAX_STRING_QUERY_LEN {
            return Scan::Other;
        }
        match seq[i] {
            0x07 => return verdict(is_query(&seq[body_start..i]), i + 1),
            0x1b => {
                return match seq.get(i + 1) {
                    None => Scan::Incomplete,
                    Some(b'\\') => verdict(is_query(&seq[body_start..i]), i + 2),
                    Some(_) => Scan::Other,
                };
            }
            _ => i += 1,
        }
    }
    Scan::Incomplete
}

fn verdict(query: bool, len: usize) -> Scan {
    if query { Scan::Query(len) } else { Scan::Other }
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
    /// Returns what to forward. The common case (no query, nothing held) returns `chunk` itself
    /// without copying.
    pub fn filter(&mut self, chunk: Bytes) -> Bytes {
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
        let mut out: Option<Vec<u8>> = None;
        let mut copied_to = 0;
        let mut pos = 0;
        while let Some(off) = memchr::memchr(0x1b, &data[pos..]) {
            let start = pos + off;
            match scan(&data[start..]) {
                Scan::Query(len) => {
                    let out = out.get_or_insert_with(|| Vec::with_capacity(data.len()));
                    out.extend_from_slice(&data[copied_to..start]);
                    copied_to = start + len;
                    pos = start + len;
                }
                Scan::Other => pos = start + 1,
                Scan::Incomplete => {
                    self.held.extend_from_slice(&data[start..]);
                    let out = out.get_or_insert_with(|| Vec::with_capacity(data.len()));
                    out.extend_from_slice(&data[copied_to..start]);
                    return Bytes::from(std::mem::take(out));
                }
            }
        }
        match out {
            None => data,
            Some(mut out) => {
                out.extend_from_slice(&data[copied_to..]);
                Bytes::from(out)
            }
        }
    }

    /// Anything held back, for when the output ends.
    pub fn flush(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.held))
    }
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
    fn passes_plain_text_untouched() {
        let mut f = QueryFilter::default();
        let chunk = Bytes::from_static(b"hello world");
        let out = f.filter(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
    }
}
