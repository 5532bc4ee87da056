// SPDX-License-Identifier: GPL-2.0
//! A streaming matcher for a marker in the guest's console output: fed the
//! bytes the guest transmits, in whatever pieces they come (the PL011 sends
//! one byte per register write), it reports the byte that completes the
//! marker inside one line. A match never spans a line break, so a marker
//! split by an interleaved kernel message line is not found, and a marker
//! that is a prefix of itself (`aab` in `aaab`) is found all the same
//! (Knuth-Morris-Pratt).

/// Longest marker accepted: a console line, not a document.
pub const MARKER_MAX: usize = 256;

/// Finds a marker in a stream of console bytes.
#[derive(Debug, Clone)]
pub struct Marker {
    pattern: Vec<u8>,
    /// `fail[i]`: length of the longest proper border of `pattern[..=i]`.
    fail: Vec<usize>,
    /// Bytes of the pattern matched so far on the current line.
    matched: usize,
    /// How often the marker was seen.
    seen: u64,
}

impl Marker {
    /// A matcher for `pattern`: 1 to [`MARKER_MAX`] bytes, no line break,
    /// no control character.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let p = pattern.as_bytes();
        if p.is_empty() {
            return Err("the marker is empty".into());
        }
        if p.len() > MARKER_MAX {
            return Err(format!("the marker is {} bytes, at most {MARKER_MAX}", p.len()));
        }
        if p.iter().any(|b| b.is_ascii_control()) {
            return Err("the marker has a control character (it must fit in one console line)".into());
        }
        let mut fail = vec![0; p.len()];
        let mut k = 0;
        for i in 1..p.len() {
            while k > 0 && p[i] != p[k] {
                k = fail[k - 1];
            }
            if p[i] == p[k] {
                k += 1;
            }
            fail[i] = k;
        }
        Ok(Marker { pattern: p.to_vec(), fail, matched: 0, seen: 0 })
    }

    /// How often the marker was completed so far (tests).
    #[cfg(test)]
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Feeds one byte; returns whether it completed the marker.
    pub fn feed_byte(&mut self, b: u8) -> bool {
        if b == b'\n' || b == b'\r' {
            self.matched = 0;
            return false;
        }
        while self.matched > 0 && self.pattern[self.matched] != b {
            self.matched = self.fail[self.matched - 1];
        }
        if self.pattern[self.matched] == b {
            self.matched += 1;
        }
        if self.matched == self.pattern.len() {
            self.matched = self.fail[self.matched - 1];
            self.seen += 1;
            return true;
        }
        false
    }

    /// Feeds `bytes`; returns how many times they completed the marker.
    pub fn feed(&mut self, bytes: &[u8]) -> u64 {
        bytes.iter().map(|b| u64::from(self.feed_byte(*b))).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "APF-WORK: filled";

    #[test]
    fn finds_the_marker_in_one_write() {
        let mut m = Marker::new(M).unwrap();
        assert_eq!(m.feed(b"APF-L2: booted\nAPF-WORK: filled pages=1024\n"), 1);
        assert_eq!(m.seen(), 1);
    }

    #[test]
    fn finds_it_across_every_split() {
        let text = b"noise APF-WORK: filled pages=1024\r\n";
        for cut in 0..=text.len() {
            for cut2 in cut..=text.len() {
                let mut m = Marker::new(M).unwrap();
                let n = m.feed(&text[..cut]) + m.feed(&text[cut..cut2]) + m.feed(&text[cut2..]);
                assert_eq!(n, 1, "cuts {cut} {cut2}");
            }
        }
        // One byte at a time, as the PL011 sends them.
        let mut m = Marker::new(M).unwrap();
        let hits: Vec<usize> = (0..text.len()).filter(|i| m.feed_byte(text[*i])).collect();
        assert_eq!(hits, [6 + M.len() - 1]);
    }

    #[test]
    fn a_line_break_inside_is_no_match() {
        let mut m = Marker::new(M).unwrap();
        assert_eq!(m.feed(b"APF-WORK: fil\nled\n"), 0);
        assert_eq!(m.feed(b"APF-WORK: fil\rled\n"), 0);
        assert_eq!(m.feed(b"APF-WORK: fi"), 0);
        assert_eq!(m.feed(b"lled"), 1);
    }

    #[test]
    fn self_overlapping_markers_and_repeats() {
        let mut m = Marker::new("aab").unwrap();
        assert_eq!(m.feed(b"aaab"), 1);
        assert_eq!(m.feed(b"aabaab"), 2);
        let mut m = Marker::new("abab").unwrap();
        assert_eq!(m.feed(b"ababab"), 2);
        let mut m = Marker::new("x").unwrap();
        assert_eq!(m.feed(b"xx\nx"), 3);
        assert_eq!(m.seen(), 3);
    }

    #[test]
    fn near_misses_are_no_match() {
        let mut m = Marker::new(M).unwrap();
        assert_eq!(m.feed(b"APF-WORK: fille\nAPF-WORK:  filled\napf-work: filled\n"), 0);
    }

    #[test]
    fn bad_markers_are_refused() {
        assert!(Marker::new("").is_err());
        assert!(Marker::new("a\nb").is_err());
        assert!(Marker::new("tab\there").is_err());
        assert!(Marker::new(&"x".repeat(MARKER_MAX + 1)).is_err());
        assert!(Marker::new(&"x".repeat(MARKER_MAX)).is_ok());
    }
}
