//! The controller-side files of `copy` and `template` steps, read once per run: a
//! 2,000-node run would otherwise read (and hash) the same file 2,000 times, on the
//! runtime's threads.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::step_error::StepError;

/// A source file's content and its sha256 (hex), as the node compares it.
#[derive(Debug)]
pub struct Source {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

type Cell = Arc<OnceCell<Result<Arc<Source>, StepError>>>;

/// Every source read so far in this run, by path. The first node to need a file reads
/// it (off the runtime threads); the others wait for that read and share it.
#[derive(Debug, Default)]
pub struct FileSources {
    files: Mutex<HashMap<PathBuf, Cell>>,
}

impl FileSources {
    pub async fn get(&self, path: &Path) -> Result<Arc<Source>, StepError> {
        let cell = {
            let mut files = self.files.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(files.entry(path.to_path_buf()).or_default())
        };
        cell.get_or_init(|| read(path.to_path_buf())).await.clone()
    }
}

async fn read(path: PathBuf) -> Result<Arc<Source>, StepError> {
    let p = path.clone();
    let read = tokio::task::spawn_blocking(move || crate::bounded_read::read_regular(&p, None)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return Err(StepError::Read {
                path,
                source: Arc::new(e),
            });
        }
        Err(e) => {
            return Err(StepError::Read {
                path,
                source: Arc::new(std::io::Error::other(e.to_string())),
            });
        }
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(Arc::new(Source { bytes, sha256 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_is_read_once_and_shared() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a");
        std::fs::write(&f, "one").unwrap();
        let sources = FileSources::default();
        let first = sources.get(&f).await.unwrap();
        std::fs::write(&f, "two").unwrap();
        let second = sources.get(&f).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(second.bytes, b"one");
        assert!(sources.get(&dir.path().join("missing")).await.is_err());
    }
}
