//! Splits the output of a [`super::Script`] back into its commands' outputs.

use super::exec_output::{OutputSink, OutputTail};

/// A marker line longer than this is not one of ours (ours are a few dozen bytes).
const MAX_MARKER: usize = 256;

/// One command's part of a stream: its own bounded tail (as much as a command run
/// alone keeps), and the fields of its end marker once it has ended.
#[derive(Debug, Default)]
pub(super) struct Frame {
    pub(super) tail: OutputTail,
    pub(super) started: bool,
    pub(super) end: Option<Vec<String>>,
}

/// Reads one stream (stdout or stderr) of a script whose commands are framed by marker
/// lines `\n<boundary> B <i>` (command `i` begins) and `\n<boundary> E <i> [fields]`
/// (it ended). The boundary is random per script and never appears literally in the
/// script's text, so no command's output can contain it unless the command guesses 128
/// random bits; everything between the markers, whatever its bytes, is the command's
/// output, exactly (the `\n` before a marker is the marker's own).
#[derive(Debug)]
pub(super) struct FrameReader {
    /// `\n<boundary> `.
    pattern: Vec<u8>,
    /// How much of `pattern` the last bytes matched (held back until it is known
    /// whether they begin a marker).
    matched: usize,
    /// The rest of a marker line being read, after `pattern`.
    marker: Option<Vec<u8>>,
    /// Content not yet pushed to its frame.
    pending: Vec<u8>,
    current: Option<usize>,
    pub(super) frames: Vec<Frame>,
    /// Output outside every frame: what the wrapper around the script printed (a lock
    /// that could not be taken, a timeout).
    pub(super) outside: OutputTail,
    /// The script has run all its commands and waits for more (a `W` marker outside
    /// every frame: [`super::Script::hold`]).
    pub(super) waiting: bool,
}

impl FrameReader {
    pub(super) fn new(boundary: &str) -> FrameReader {
        let mut pattern = b"\n".to_vec();
        pattern.extend_from_slice(boundary.as_bytes());
        pattern.push(b' ');
        FrameReader {
            pattern,
            matched: 0,
            marker: None,
            pending: Vec::new(),
            current: None,
            frames: Vec::new(),
            outside: OutputTail::default(),
            waiting: false,
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let to = match self.current {
            Some(i) => &mut self.frames[i].tail,
            None => &mut self.outside,
        };
        to.push(&self.pending);
        self.pending.clear();
    }

    fn on_marker(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let mut fields = text.split(' ');
        let kind = fields.next();
        let index = fields.next().and_then(|i| i.parse::<usize>().ok());
        match (kind, index) {
            (Some("B"), Some(i)) if i < 100_000 => {
                self.flush();
                if self.frames.len() <= i {
                    self.frames.resize_with(i + 1, Frame::default);
                }
                self.frames[i].started = true;
                self.current = Some(i);
            }
            (Some("E"), Some(i)) if self.current == Some(i) => {
                self.flush();
                self.frames[i].end = Some(fields.map(str::to_string).collect());
                self.current = None;
            }
            (Some("W"), None) if self.current.is_none() && line == b"W" => {
                self.flush();
                self.waiting = true;
            }
            _ => {
                // Not a marker of ours after all: it is output.
                let pattern = self.pattern.clone();
                self.pending.extend_from_slice(&pattern);
                self.pending.extend_from_slice(line);
                self.pending.push(b'\n');
            }
        }
    }

    /// The stream ended: what was held back is output.
    pub(super) fn finish(&mut self) {
        if let Some(m) = self.marker.take() {
            let pattern = self.pattern.clone();
            self.pending.extend_from_slice(&pattern);
            self.pending.extend_from_slice(&m);
        } else if self.matched > 0 {
            let held = self.pattern[..self.matched].to_vec();
            self.pending.extend_from_slice(&held);
        }
        self.matched = 0;
        self.flush();
    }
}

impl OutputSink for FrameReader {
    fn push(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if let Some(m) = &mut self.marker {
                if b == b'\n' {
                    let line = std::mem::take(m);
                    self.marker = None;
                    self.on_marker(&line);
                } else if m.len() < MAX_MARKER {
                    m.push(b);
                } else {
                    let m = self.marker.take().unwrap_or_default();
                    let pattern = self.pattern.clone();
                    self.pending.extend_from_slice(&pattern);
                    self.pending.extend_from_slice(&m);
                    self.pending.push(b);
                }
                continue;
            }
            if b == self.pattern[self.matched] {
                self.matched += 1;
                if self.matched == self.pattern.len() {
                    self.matched = 0;
                    self.marker = Some(Vec::new());
                }
                continue;
            }
            if self.matched > 0 {
                // The pattern starts with its only `\n`, so a mismatch can restart a
                // match only at this byte.
                let held = self.pattern[..self.matched].to_vec();
                self.pending.extend_from_slice(&held);
                self.matched = 0;
                if b == self.pattern[0] {
                    self.matched = 1;
                    continue;
                }
            }
            self.pending.push(b);
        }
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(boundary: &str, chunks: &[&[u8]]) -> FrameReader {
        let mut r = FrameReader::new(boundary);
        for c in chunks {
            r.push(c);
        }
        r.finish();
        r
    }

    fn text(t: OutputTail) -> String {
        t.into_text()
    }

    #[test]
    fn frames_keep_their_exact_bytes_in_any_chunking() {
        let b = "0123abcd";
        let stream: Vec<u8> = [
            &b"pre\n0123abcd fake\n"[..],
            b"\n0123abcd B 0\nline one\nno newline",
            b"\n0123abcd E 0 3 1.00 1.50\n",
            b"\n0123abcd B 1\n\n\n0123abc\xff\x00 \n",
            b"\n0123abcd E 1 0 - -\nafter",
        ]
        .concat();
        for size in [1, 2, 3, 7, 1000] {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            let mut r = read(b, &chunks);
            assert_eq!(r.frames.len(), 2);
            let f1 = std::mem::take(&mut r.frames[1]);
            let f0 = std::mem::take(&mut r.frames[0]);
            assert_eq!(f0.end, Some(vec!["3".into(), "1.00".into(), "1.50".into()]));
            assert_eq!(text(f0.tail), "line one\nno newline", "chunks of {size}");
            assert_eq!(f1.end, Some(vec!["0".into(), "-".into(), "-".into()]));
            assert_eq!(text(f1.tail), "\n\n0123abc\u{fffd}\u{0} \n", "chunks of {size}");
            assert_eq!(text(std::mem::take(&mut r.outside)), "pre\n0123abcd fake\nafter");
        }
    }

    /// `W` outside every frame says the script waits; inside a frame, or with more on
    /// its line, it is output.
    #[test]
    fn a_wait_marker_counts_only_between_frames() {
        let r = read("zz", &[b"\nzz B 0\nx\nzz W\n", b"\nzz E 0 0\n\nzz W now\n"]);
        assert!(!r.waiting);
        for size in [1, 3, 100] {
            let stream = b"\nzz B 0\nx\nzz E 0 0\n\nzz W\n";
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            assert!(read("zz", &chunks).waiting, "chunks of {size}");
        }
    }

    #[test]
    fn a_frame_that_never_ends_keeps_what_it_printed() {
        let mut r = read("zz", &[b"\nzz B 0\nworking", b"\nzz B"]);
        let f = std::mem::take(&mut r.frames[0]);
        assert!(f.started && f.end.is_none());
        assert_eq!(text(f.tail), "working\nzz B");
    }

    #[test]
    fn each_frame_is_bounded_like_a_single_command() {
        let big = vec![b'x'; crate::transport::TAIL_BYTES * 2];
        let mut r = read("zz", &[b"\nzz B 0\n", &big, b"\nzz E 0 0\n"]);
        let t = text(std::mem::take(&mut r.frames[0].tail));
        assert!(t.starts_with(&format!("[... {} bytes cut ...]\n", crate::transport::TAIL_BYTES)));
    }
}
