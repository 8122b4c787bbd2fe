//! Files replaced whole or not at all: written to a temporary file in the
//! target's directory, flushed to disk, then renamed over the target, so a
//! crash or Ctrl-C never leaves half a file behind.

use std::io::Write;
use std::path::Path;

use crate::error::CliError;

/// Writes `path` with `fill`, atomically.
pub fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), CliError> {
    let failed = |e: &dyn std::fmt::Display| {
        CliError::Output(format!("cannot write {}: {e}", path.display()))
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| failed(&e))?;
    {
        let mut buffered = std::io::BufWriter::new(file.as_file_mut());
        fill(&mut buffered).map_err(|e| failed(&e))?;
        buffered.flush().map_err(|e| failed(&e))?;
    }
    file.as_file().sync_all().map_err(|e| failed(&e))?;
    file.persist(path).map_err(|e| failed(&e.error))?;
    Ok(())
}
