//! Server-Sent Events as the daemon writes them (`event:` and `data:` lines, a blank
//! line ending each event, `:` comments as keep-alives), read from chunks that may
//! split a line or a character anywhere.

/// One event: its name (`message` when none was given) and its data lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub name: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes not yet ending in a newline (a chunk may end mid-line, or mid-character).
    partial: Vec<u8>,
    name: String,
    data: Vec<String>,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.partial.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(e) = self.line(line) {
                events.push(e);
            }
        }
        events
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if self.data.is_empty() && self.name.is_empty() {
                return None;
            }
            let name = std::mem::take(&mut self.name);
            return Some(SseEvent {
                name: if name.is_empty() { "message".into() } else { name },
                data: std::mem::take(&mut self.data).join("\n"),
            });
        }
        if line.starts_with(':') {
            return None; // a comment: the keep-alive
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {} // id, retry: not used by the daemon
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_put_together() {
        let text = ": keep-alive\n\nevent: run\ndata: {\"a\":\"ä\"}\n\nevent:end\r\ndata:{}\r\n\r\n";
        let bytes = text.as_bytes();
        // Every split point, including inside the two-byte `ä`.
        for cut in 0..bytes.len() {
            let mut p = SseParser::new();
            let mut got = p.feed(&bytes[..cut]);
            got.extend(p.feed(&bytes[cut..]));
            assert_eq!(
                got,
                vec![
                    SseEvent {
                        name: "run".into(),
                        data: "{\"a\":\"ä\"}".into()
                    },
                    SseEvent {
                        name: "end".into(),
                        data: "{}".into()
                    }
                ],
                "cut at {cut}"
            );
        }
    }
}
