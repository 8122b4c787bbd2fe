//! The JSONL file on disk: byte-identical for a seed, and what the local
//! directory loads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dossier_directory::load_directory;
use dossier_directory_gen::{JSONL_FILE_NAME, write_jsonl};

#[test]
fn write_jsonl_is_byte_identical_for_a_seed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let pa = write_jsonl(a.path(), 11, 2_000, 200).unwrap();
    let pb = write_jsonl(b.path(), 11, 2_000, 200).unwrap();
    assert_eq!(pa.file_name().unwrap(), JSONL_FILE_NAME);
    let (ba, bb) = (std::fs::read(&pa).unwrap(), std::fs::read(&pb).unwrap());
    assert_eq!(ba, bb);
    assert_eq!(ba.iter().filter(|&&b| b == b'\n').count(), 2_200);

    let (dir, stats) = load_directory(a.path()).unwrap();
    assert_eq!((stats.companies, stats.people), (200, 2_000));
    assert_eq!(dir.people().len(), 2_000);
}
