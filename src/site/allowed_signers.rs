//! The `allowed_signers` file of `ssh-keygen -Y verify` (and git's
//! `gpg.ssh.allowedSignersFile`): which SSH keys may sign commits that run.
//!
//! Each line is `principals [options] keytype base64 [comment]`; `#` starts a comment
//! line. Options understood: `namespaces="git,..."` (a key limited to other namespaces
//! cannot sign commits), `valid-after=` / `valid-before=` (`YYYYMMDD[HHMM[SS]][Z]`,
//! compared with the commit's committer time, as git passes `-Overify-time`).
//! `cert-authority` lines are refused: drover checks plain keys, not certificates.

use jiff::Timestamp;
use ssh_key::PublicKey;
use ssh_key::public::KeyData;

/// One accepted key.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// The principals (identities) as written, comma-separated in the file.
    pub principals: Vec<String>,
    pub key: PublicKey,
    /// `None`: every namespace.
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<Timestamp>,
    pub valid_before: Option<Timestamp>,
    /// 1-based line in the file, for messages.
    pub line: usize,
}

/// Every key of one allowed_signers file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub signers: Vec<AllowedSigner>,
}

/// A line that could not be read; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignersLineError {
    pub line: usize,
    pub message: String,
}

impl AllowedSigners {
    /// Parses the whole file, reporting every bad line.
    pub fn parse(text: &str) -> Result<AllowedSigners, Vec<SignersLineError>> {
        let mut signers = Vec::new();
        let mut errors = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_line(line, i + 1) {
                Ok(s) => signers.push(s),
                Err(message) => errors.push(SignersLineError { line: i + 1, message }),
            }
        }
        if errors.is_empty() {
            Ok(AllowedSigners { signers })
        } else {
            Err(errors)
        }
    }

    /// The entries that allow `key` to sign in `namespace` at `time`: empty when the key
    /// is unknown, or known only for another namespace or another time.
    pub fn allowing(&self, key: &KeyData, namespace: &str, time: Timestamp) -> Vec<&AllowedSigner> {
        self.signers
            .iter()
            .filter(|s| s.key.key_data() == key)
            .filter(|s| {
                s.namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| namespace_matches(n, namespace)))
            })
            .filter(|s| s.valid_after.is_none_or(|t| time >= t))
            .filter(|s| s.valid_before.is_none_or(|t| time <= t))
            .collect()
    }

    /// Whether any entry names `key` at all (to say "not for namespace git" rather than
    /// "unknown key").
    pub fn knows(&self, key: &KeyData) -> bool {
        self.signers.iter().any(|s| s.key.key_data() == key)
    }
}

/// `ssh-keygen` namespace patterns allow `*` and `?` wildcards.
fn namespace_matches(pattern: &str, ns: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), ns.as_bytes())
}

/// Splits off the next whitespace-separated token, keeping double-quoted parts whole.
fn next_token(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return Some((&s[..i], &s[i..])),
            _ => {}
        }
    }
    Some((s, ""))
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
}

fn parse_line(line: &str, number: usize) -> Result<AllowedSigner, String> {
    let (principals, rest) = next_token(line).ok_or("empty line")?;
    let principals: Vec<String> = principals
        .trim_matches('"')
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if principals.is_empty() {
        return Err("no principal before the key".into());
    }
    let (second, after) = next_token(rest).ok_or("no key after the principals")?;
    let (options, key_text) = if is_key_type(second) {
        ("", rest.trim())
    } else {
        (second, after.trim())
    };
    let mut namespaces = None;
    let mut valid_after = None;
    let mut valid_before = None;
    for opt in split_options(options) {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(v.trim_matches('"'))),
            None => (opt.to_ascii_lowercase(), None),
        };
        match (name.as_str(), value) {
            ("namespaces", Some(v)) => {
                namespaces = Some(v.split(',').map(str::to_string).collect());
            }
            ("valid-after", Some(v)) => valid_after = Some(parse_time(v)?),
            ("valid-before", Some(v)) => valid_before = Some(parse_time(v)?),
            ("cert-authority", None) => {
                return Err("`cert-authority` is not supported: list the signing keys themselves".into());
            }
            _ => {
                return Err(format!(
                    "unknown option `{opt}`: expected namespaces=, valid-after= or valid-before="
                ));
            }
        }
    }
    if key_text.is_empty() {
        return Err("no key after the principals".into());
    }
    let key = PublicKey::from_openssh(key_text).map_err(|e| format!("not an SSH public key ({e})"))?;
    Ok(AllowedSigner {
        principals,
        key,
        namespaces,
        valid_after,
        valid_before,
        line: number,
    })
}

/// Options are comma-separated; commas inside quotes belong to the value.
fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, local time unless it ends in `Z`
/// (drover reads it as UTC either way: a controller's zone should not change who may
/// sign).
fn parse_time(v: &str) -> Result<Timestamp, String> {
    let digits = v.strip_suffix(['Z', 'z']).unwrap_or(v);
    let bad = || format!("invalid time `{v}`: expected YYYYMMDD, YYYYMMDDHHMM or YYYYMMDDHHMMSS");
    if !digits.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let n = |a: usize, b: usize| digits.get(a..b).and_then(|x| x.parse::<i16>().ok()).unwrap_or(0);
    let (y, mo, d) = (n(0, 4), n(4, 6), n(6, 8));
    let (h, mi, s) = (n(8, 10), n(10, 12), n(12, 14));
    let dt =
        jiff::civil::DateTime::new(y, mo as i8, d as i8, h as i8, mi as i8, s as i8, 0).map_err(|_| bad())?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKxHLAgVkJrRwfc3ZlsAtvBs8X2N76uPEdzb128XLvqB";

    #[test]
    fn reads_principals_options_and_key() {
        let text = format!(
            "# ops\n\nalice@example.com,bob {KEY} alice\nci namespaces=\"git,file\",valid-after=\"20260101\" {KEY}\n"
        );
        let s = AllowedSigners::parse(&text).unwrap();
        assert_eq!(s.signers.len(), 2);
        assert_eq!(s.signers[0].principals, ["alice@example.com", "bob"]);
        assert_eq!(s.signers[0].line, 3);
        assert_eq!(
            s.signers[1].namespaces.as_deref(),
            Some(&["git".to_string(), "file".into()][..])
        );
        let key = s.signers[0].key.key_data().clone();
        let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let before: Timestamp = "2025-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(s.allowing(&key, "git", now).len(), 2);
        // The second entry is not valid yet at `before`.
        assert_eq!(s.allowing(&key, "git", before).len(), 1);
        assert_eq!(s.allowing(&key, "email", now).len(), 1);
    }

    #[test]
    fn a_key_limited_to_other_namespaces_cannot_sign_commits() {
        let s = AllowedSigners::parse(&format!("ci namespaces=\"file\" {KEY}\n")).unwrap();
        let key = s.signers[0].key.key_data().clone();
        assert!(s.allowing(&key, "git", Timestamp::now()).is_empty());
        assert!(s.knows(&key));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text =
            format!("alice\n# fine\nbob cert-authority {KEY}\ncarol ssh-ed25519 AAAA-not-base64\n{KEY}\n");
        let e = AllowedSigners::parse(&text).unwrap_err();
        let lines: Vec<usize> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, [1, 3, 4, 5], "{e:?}");
        assert!(e[1].message.contains("cert-authority"), "{e:?}");
    }

    #[test]
    fn namespace_wildcards() {
        assert!(namespace_matches("g*", "git"));
        assert!(namespace_matches("g?t", "git"));
        assert!(!namespace_matches("file", "git"));
    }
}
