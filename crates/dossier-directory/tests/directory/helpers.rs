//! Shared test helpers.

use std::path::PathBuf;
use std::sync::OnceLock;

use dossier_directory::{LocalDirectory, LocalDirectoryConfig, Person};

/// The crate's `fixtures/` folder.
pub(crate) fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The committed fixture, loaded once per test binary.
pub(crate) fn fixture() -> &'static LocalDirectory {
    static DIR: OnceLock<LocalDirectory> = OnceLock::new();
    DIR.get_or_init(|| {
        LocalDirectory::load(&LocalDirectoryConfig {
            name: "fixture".into(),
            files: vec![fixtures_dir().join("directory.jsonl")],
        })
        .expect("fixture loads")
    })
}

/// The ids of `people`, in order.
pub(crate) fn ids(people: &[Person]) -> Vec<&str> {
    people.iter().map(|p| p.id.as_str()).collect()
}
