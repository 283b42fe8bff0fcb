//! Reading a user-named file without letting it hang or exhaust the controller.
//!
//! `metadata().len()` is 0 for `/dev/zero` and `/proc` files, and opening a FIFO blocks
//! until someone writes to it: a size check alone lets `--extra-vars @/dev/zero` read
//! forever and a FIFO named as a template source block `validate`. Every file a user
//! names (site files, `--extra-vars @FILE`, copy and template sources, secret files)
//! goes through [`read_regular`].

use std::io::{self, Read};
use std::path::Path;

/// Reads `path` if it is a regular file (after symlinks) of at most `max` bytes (no limit
/// with `None`). The error says which of the two it is not, as an [`io::Error`] so every
/// caller's "cannot read FILE: ERROR" message stays as it is.
pub fn read_regular(path: &Path, max: Option<u64>) -> io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::other(
            "not a regular file (a device, FIFO or socket could block or never end): expected a file",
        ));
    }
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    match max {
        Some(max) => {
            // `take(max + 1)`: a file that grew after `metadata` is still caught.
            file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > max {
                return Err(io::Error::other(format!(
                    "file is too large: more than {max} bytes (drover reads such files up to {} MiB)",
                    max / 1024 / 1024
                )));
            }
        }
        None => {
            let mut file = file;
            file.read_to_end(&mut bytes)?;
        }
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_text(path: &Path, max: Option<u64>) -> io::Result<String> {
    String::from_utf8(read_regular(path, max)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_fifos_are_refused_without_reading() {
        let e = read_regular(Path::new("/dev/zero"), Some(10)).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let e = read_regular(&fifo, None).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        std::fs::write(&f, vec![b'x'; 11]).unwrap();
        assert!(
            read_regular(&f, Some(10))
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
        assert_eq!(read_regular(&f, Some(11)).unwrap().len(), 11);
        assert_eq!(read_regular(&f, None).unwrap().len(), 11);
    }
}
