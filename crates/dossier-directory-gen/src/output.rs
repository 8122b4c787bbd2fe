//! The JSONL file the local directory loads.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::generate;

/// The file [`write_jsonl`] writes inside its folder.
pub const JSONL_FILE_NAME: &str = "directory.jsonl";

/// Writes [`generate`]'s records as JSONL (see [`crate::LocalDirectory`]'s
/// loader for the format) to `out`.
pub fn write_records(
    out: &mut impl Write,
    seed: u64,
    people: usize,
    companies: usize,
) -> io::Result<()> {
    for record in generate(seed, people, companies) {
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes a generated directory to `dir/directory.jsonl` (creating `dir`)
/// and returns the file's path; [`crate::load_directory`] on `dir` loads it.
pub fn write_jsonl(dir: &Path, seed: u64, people: usize, companies: usize) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(JSONL_FILE_NAME);
    let mut out = BufWriter::new(File::create(&path)?);
    write_records(&mut out, seed, people, companies)?;
    out.flush()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(seed: u64, people: usize, companies: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_records(&mut out, seed, people, companies).unwrap();
        out
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = bytes(7, 3_000, 300);
        assert_eq!(a, bytes(7, 3_000, 300));
        assert_ne!(a, bytes(8, 3_000, 300));
        assert!(!a.is_empty());
    }
}
