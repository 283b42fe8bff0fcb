//! `drover schema`.

use std::io::Write;
use std::path::Path;

use crate::{exit_code, schemas};

pub fn schema(dir: &Path, check: bool, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut stale = Vec::new();
    for (name, text) in schemas::generate() {
        let path = dir.join(name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
            continue;
        }
        if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
            let _ = writeln!(err, "error: cannot write {}: {e}", path.display());
            return exit_code::FAILURE;
        }
        let _ = writeln!(out, "wrote {}", path.display());
    }
    if stale.is_empty() {
        exit_code::OK
    } else {
        let _ = writeln!(
            err,
            "error: out of date: {}\nhelp: run `drover schema --out {}`",
            stale.join(", "),
            dir.display()
        );
        exit_code::OUT_OF_DATE
    }
}
