//! Removes terminal queries (DA1, DA2, DSR, CPR) from the output forwarded to clients: the
//! server answers them once from the model, so attached terminals must never see them.

use bytes::Bytes;

/// A CSI longer than this is not a query; it is passed on rather than held back.
const MAX_QUERY_LEN: usize = 16;

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
    let Some(&second) = seq.get(1) else {
        return Scan::Incomplete;
    };
    if second != b'[' {
        return Scan::Other;
    }
    let mut i = 2;
    let marker = match seq.get(i) {
        None => return Scan::Incomplete,
        Some(&m @ (b'>' | b'?')) => {
            i += 1;
            Some(m)
        }
        Some(_) => None,
    };
    let params_start = i;
    while let Some(&b) = seq.get(i) {
        if b.is_ascii_digit() {
            i += 1;
            if i > MAX_QUERY_LEN {
                return Scan::Other;
            }
            continue;
        }
        let params = &seq[params_start..i];
        let is_query = match (marker, b) {
            (None | Some(b'>'), b'c') => params.is_empty() || params == b"0",
            (None, b'n') => params == b"5" || params == b"6",
            (Some(b'?'), b'n') => params == b"6",
            _ => false,
        };
        return if is_query {
            Scan::Query(i + 1)
        } else {
            Scan::Other
        };
    }
    Scan::Incomplete
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
    fn passes_plain_text_untouched() {
        let mut f = QueryFilter::default();
        let chunk = Bytes::from_static(b"hello world");
        let out = f.filter(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
    }
}
