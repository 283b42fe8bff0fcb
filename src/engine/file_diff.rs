//! What `--diff` shows of a file step on one node: how the file there differs from
//! what the step would write (a unified diff of text, sizes of binary content, mode
//! and owner), read by the check's own probe (`file_diff_probe`) in the same round
//! trip. A `secret: true` file's content is never read, so it cannot be shown.

use std::time::Duration;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};

use super::file_commands::DIFF_BYTES;
use crate::transport::ExecOutput;

/// How long one diff may take before `similar` settles for a coarser one: thousands of
/// nodes may each have one.
const DIFF_TIMEOUT: Duration = Duration::from_millis(200);

/// One file step's differences on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    pub step: String,
    /// The destination as rendered for the node.
    pub dest: String,
    pub content: ContentDiff,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Differs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Differs>,
}

/// A property as it is on the node and as the step would set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Differs {
    pub node: String,
    pub wanted: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContentDiff {
    /// The content is as wanted (the mode or owner is not).
    Same,
    /// The hunks of a unified diff (`@@ -1,4 +1,4 @@` and the lines; the `---`/`+++`
    /// header is the reader's to add, from `dest`). `node_bytes` is `None` when the
    /// file is not on the node.
    /// `truncated`: a side is over [`DIFF_BYTES`], and only the first [`DIFF_BYTES`] of
    /// each (to the last whole line) were compared.
    Text {
        unified: String,
        truncated: bool,
        node_bytes: Option<u64>,
        new_bytes: u64,
    },
    /// A side is not text (a NUL byte, or not UTF-8): only the sizes are shown.
    Binary { node_bytes: Option<u64>, new_bytes: u64 },
    /// `secret: true`: the content differs (or the file is missing), and is not shown.
    Secret { missing: bool },
    /// Something that is not a regular file is at the destination.
    NotAFile,
    /// The file could not be read on the node.
    Unreadable { error: String },
}

/// What a file step would write.
pub struct Wanted<'a> {
    pub content: &'a [u8],
    pub mode: Option<u32>,
    pub owner: Option<&'a str>,
    pub secret: bool,
}

impl FileDiff {
    /// Reads what `file_diff_probe` printed on a node whose file differs. `None` when it
    /// said nothing about the file (a destination that is not absolute: the step
    /// itself refuses it, with the reason).
    pub fn from_probe(step: &str, dest: &str, want: &Wanted<'_>, out: &ExecOutput) -> Option<FileDiff> {
        let mut lines = out.stdout.lines();
        let header = lines.find_map(|l| l.strip_prefix("drover-file "))?;
        let fields: Vec<&str> = header.split_whitespace().collect();
        let mut diff = FileDiff {
            step: step.to_string(),
            dest: dest.to_string(),
            content: ContentDiff::Same,
            mode: None,
            owner: None,
        };
        match fields.as_slice() {
            ["missing"] => {
                diff.content = if want.secret {
                    ContentDiff::Secret { missing: true }
                } else {
                    compare(None, want.content)
                };
            }
            ["other"] => diff.content = ContentDiff::NotAFile,
            [c, m, o, size, mode, owner] => {
                if *m == "0" {
                    diff.mode = Some(Differs {
                        node: octal(mode),
                        wanted: want.mode.map(|m| format!("{m:04o}")).unwrap_or_default(),
                    });
                }
                if *o == "0" {
                    diff.owner = Some(Differs {
                        node: (*owner).to_string(),
                        wanted: want.owner.unwrap_or_default().to_string(),
                    });
                }
                diff.content = match (*c, size.parse::<u64>()) {
                    ("1", _) => ContentDiff::Same,
                    (_, Err(_)) => unreadable(out),
                    _ if want.secret => ContentDiff::Secret { missing: false },
                    (_, Ok(size)) => {
                        let encoded: String = lines
                            .flat_map(|l| l.chars())
                            .filter(|c| !c.is_whitespace())
                            .collect();
                        match Base64::decode_vec(&encoded) {
                            Ok(bytes) if bytes.len() as u64 == size.min(DIFF_BYTES as u64) => {
                                compare(Some((&bytes, size)), want.content)
                            }
                            _ => unreadable(out),
                        }
                    }
                };
            }
            // Stat failed: the file went away, or cannot be looked at.
            _ => diff.content = unreadable(out),
        }
        Some(diff)
    }
}

/// `644` as `0644`.
fn octal(mode: &str) -> String {
    u32::from_str_radix(mode, 8).map_or_else(|_| mode.to_string(), |m| format!("{m:04o}"))
}

fn unreadable(out: &ExecOutput) -> ContentDiff {
    let why = out.stderr.trim_end().lines().last().unwrap_or("").trim();
    ContentDiff::Unreadable {
        error: if why.is_empty() {
            "its content could not be read on the node".to_string()
        } else {
            why.to_string()
        },
    }
}

/// The diff of the node's file (`(first bytes, size)`, or `None` when missing) and the
/// new content.
fn compare(node: Option<(&[u8], u64)>, new: &[u8]) -> ContentDiff {
    let cap = DIFF_BYTES as u64;
    let node_bytes = node.map(|(_, n)| n);
    let new_bytes = new.len() as u64;
    let node_cut = node_bytes.is_some_and(|n| n > cap);
    let new_cut = new_bytes > cap;
    let old = match node {
        None => Some(""),
        Some((b, _)) => text_prefix(b, node_cut),
    };
    let new = text_prefix(&new[..new.len().min(DIFF_BYTES)], new_cut);
    let (Some(old), Some(new)) = (old, new) else {
        return ContentDiff::Binary {
            node_bytes,
            new_bytes,
        };
    };
    let unified = similar::TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .to_string();
    ContentDiff::Text {
        unified,
        truncated: node_cut || new_cut,
        node_bytes,
        new_bytes,
    }
}

/// The bytes as text, or `None` when they are not (a NUL, or not UTF-8). A prefix that
/// was `cut` from a longer file ends at its last whole line, and a character the cut
/// split is not taken for binary.
fn text_prefix(bytes: &[u8], cut: bool) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    let bytes = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) if cut => &bytes[..=i],
        _ => bytes,
    };
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s),
        Err(e) if cut && e.error_len().is_none() => std::str::from_utf8(&bytes[..e.valid_up_to()]).ok(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stdout: &str) -> ExecOutput {
        ExecOutput {
            code: Some(1),
            stdout: stdout.to_string(),
            stderr: String::new(),
            timed_out: false,
        }
    }

    fn want(content: &[u8]) -> Wanted<'_> {
        Wanted {
            content,
            mode: Some(0o600),
            owner: Some("app:app"),
            secret: false,
        }
    }

    fn b64(b: &[u8]) -> String {
        Base64::encode_string(b)
    }

    #[test]
    fn a_changed_line_is_a_unified_diff() {
        let o = out(&format!(
            "drover-file 0 1 1 8 600 app:app\n{}\n",
            b64(b"a\nb\nc\nd\n")
        ));
        let d = FileDiff::from_probe("conf", "/etc/x", &want(b"a\nB\nc\nd\n"), &o).unwrap();
        let ContentDiff::Text {
            unified, truncated, ..
        } = &d.content
        else {
            panic!("{d:?}")
        };
        assert_eq!(unified, "@@ -1,4 +1,4 @@\n a\n-b\n+B\n c\n d\n");
        assert!(!truncated);
        assert_eq!((d.mode, d.owner), (None, None));
    }

    #[test]
    fn a_missing_file_is_all_new_and_a_secret_says_nothing_of_it() {
        let d =
            FileDiff::from_probe("conf", "/etc/x", &want(b"hi\n"), &out("drover-file missing\n")).unwrap();
        assert!(
            matches!(&d.content, ContentDiff::Text { unified, node_bytes: None, .. } if unified == "@@ -0,0 +1 @@\n+hi\n"),
            "{d:?}"
        );
        let secret = Wanted {
            secret: true,
            ..want(b"hunter2\n")
        };
        let d = FileDiff::from_probe("pw", "/etc/pw", &secret, &out("drover-file missing\n")).unwrap();
        assert_eq!(d.content, ContentDiff::Secret { missing: true });
        let d = FileDiff::from_probe(
            "pw",
            "/etc/pw",
            &secret,
            &out("drover-file 0 1 1 8 600 app:app\n"),
        )
        .unwrap();
        assert_eq!(d.content, ContentDiff::Secret { missing: false });
    }

    #[test]
    fn mode_and_owner_differences_are_named() {
        let o = out("drover-file 1 0 0 3 644 root:root\n");
        let d = FileDiff::from_probe("conf", "/etc/x", &want(b"hi\n"), &o).unwrap();
        assert_eq!(d.content, ContentDiff::Same);
        assert_eq!(
            d.mode,
            Some(Differs {
                node: "0644".into(),
                wanted: "0600".into()
            })
        );
        assert_eq!(
            d.owner,
            Some(Differs {
                node: "root:root".into(),
                wanted: "app:app".into()
            })
        );
    }

    #[test]
    fn binary_content_is_not_diffed() {
        let o = out(&format!("drover-file 0 1 1 3 600 app:app\n{}\n", b64(b"a\0b")));
        let d = FileDiff::from_probe("blob", "/x", &want(b"text\n"), &o).unwrap();
        assert_eq!(
            d.content,
            ContentDiff::Binary {
                node_bytes: Some(3),
                new_bytes: 5
            }
        );
        let o = out(&format!("drover-file 0 1 1 5 600 app:app\n{}\n", b64(b"text\n")));
        let d = FileDiff::from_probe("blob", "/x", &want(&[0xff, 0xfe, b'\n']), &o).unwrap();
        assert!(matches!(d.content, ContentDiff::Binary { .. }), "{d:?}");
    }

    #[test]
    fn large_files_are_compared_by_their_first_bytes_and_said_to_be_cut() {
        let line = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdé\n";
        let old: String = line.repeat(400);
        let mut new = old.clone();
        new.replace_range(0..1, "X");
        // The node sent its first DIFF_BYTES, the last character cut in two.
        let sent = &old.as_bytes()[..DIFF_BYTES];
        let o = out(&format!(
            "drover-file 0 1 1 {} 600 app:app\n{}\n",
            old.len(),
            b64(sent)
        ));
        let d = FileDiff::from_probe("big", "/x", &want(new.as_bytes()), &o).unwrap();
        let ContentDiff::Text {
            unified,
            truncated,
            node_bytes,
            new_bytes,
        } = &d.content
        else {
            panic!("{d:?}")
        };
        assert!(truncated);
        assert_eq!(
            (*node_bytes, *new_bytes),
            (Some(old.len() as u64), new.len() as u64)
        );
        assert!(
            unified.contains("\n-0123") && unified.contains("\n+X123"),
            "{unified}"
        );
        assert_eq!(
            unified.lines().filter(|l| l.starts_with(['-', '+'])).count(),
            2,
            "{unified}"
        );
    }

    #[test]
    fn content_that_did_not_arrive_whole_is_unreadable_not_a_diff() {
        // `base64` missing on the node: the size says 8 bytes, nothing came.
        let mut o = out("drover-file 0 1 1 8 600 app:app\n");
        o.stderr = "sh: 1: base64: not found\n".into();
        let d = FileDiff::from_probe("conf", "/x", &want(b"hi\n"), &o).unwrap();
        assert_eq!(
            d.content,
            ContentDiff::Unreadable {
                error: "sh: 1: base64: not found".into()
            }
        );
        // A file the user cannot read: no size.
        let d = FileDiff::from_probe(
            "conf",
            "/x",
            &want(b"hi\n"),
            &out("drover-file 0 1 1  600 root:root\n"),
        )
        .unwrap();
        assert!(matches!(d.content, ContentDiff::Unreadable { .. }), "{d:?}");
        // Nothing said (a relative destination): no diff.
        assert_eq!(FileDiff::from_probe("conf", "x", &want(b"hi\n"), &out("")), None);
    }
}
