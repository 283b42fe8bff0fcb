//! A path into a YAML document (`steps[2].check`), used to locate errors found after
//! parsing: validators speak in paths, the loaded [`Node`](super::Node) tree turns a
//! path back into a line and column.

use std::fmt;

/// One step of a [`Path`]: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where in a document a problem is. Whether the error underlines the key itself or its
/// value is decided by [`Target`](crate::diag::Target), not by the path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }

    pub fn segs(&self) -> &[Seg] {
        &self.0
    }

    /// A new path one key deeper.
    #[must_use]
    pub fn key(&self, k: impl Into<String>) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.into()));
        Path(v)
    }

    /// A new path one index deeper.
    #[must_use]
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Path(v)
    }

    /// `self` followed by every segment of `rest`.
    #[must_use]
    pub fn join(&self, rest: &Path) -> Self {
        let mut v = self.0.clone();
        v.extend(rest.0.iter().cloned());
        Path(v)
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.segs().starts_with(prefix.segs())
    }

    pub fn parent(&self) -> Option<Path> {
        if self.0.is_empty() {
            None
        } else {
            Some(Path(self.0[..self.0.len() - 1].to_vec()))
        }
    }

    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

impl From<Vec<Seg>> for Path {
    fn from(v: Vec<Seg>) -> Self {
        Path(v)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_an_accessor() {
        let p = Path::root().key("steps").index(2).key("check");
        assert_eq!(p.to_string(), "steps[2].check");
        assert_eq!(p.parent().map(|p| p.to_string()).as_deref(), Some("steps[2]"));
        assert_eq!(Path::root().to_string(), "(document)");
    }
}
