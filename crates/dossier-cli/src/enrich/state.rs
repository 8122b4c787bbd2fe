//! The resume file beside the output (`enriched.csv.dossier-state.json`):
//! which input it is for, how it was cut into batches, each batch's
//! operation and whether it is done. Saved (atomically) after every change,
//! so a crash or Ctrl-C at any point loses nothing: a rerun follows the
//! operations already started and never submits a finished batch again.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// The format of the file; a different one is not read.
const VERSION: u32 = 1;

/// One batch's progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchState {
    /// First row (0-based, in the input).
    pub start: usize,
    /// Rows in the batch.
    pub len: usize,
    /// The operation that enriches it, once accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Rows (input positions) the API refused, with its reasons; the
    /// operation holds the others, in order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub invalid: BTreeMap<usize, Vec<String>>,
    /// The operation ended (its result is read again from the API).
    #[serde(default)]
    pub done: bool,
}

impl BatchState {
    /// The input rows of the batch.
    pub fn rows(&self) -> Range<usize> {
        self.start..self.start + self.len
    }

    /// The rows the operation holds, in its order.
    pub fn submitted(&self) -> Vec<usize> {
        self.rows()
            .filter(|r| !self.invalid.contains_key(r))
            .collect()
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// [`VERSION`].
    pub version: u32,
    /// SHA-256 (hex) of the input file's bytes.
    pub input_sha256: String,
    /// The batch size the input was cut with.
    pub batch_size: usize,
    /// The batches, in input order.
    pub batches: Vec<BatchState>,
}

impl State {
    /// A fresh state for an input of hash `input_sha256` cut into `plan`.
    pub fn new(input_sha256: &str, batch_size: usize, plan: &[Range<usize>]) -> State {
        State {
            version: VERSION,
            input_sha256: input_sha256.to_owned(),
            batch_size,
            batches: plan
                .iter()
                .map(|r| BatchState {
                    start: r.start,
                    len: r.len(),
                    ..BatchState::default()
                })
                .collect(),
        }
    }

    /// The state file of `output`.
    pub fn path_for(output: &Path) -> PathBuf {
        let mut name = output.as_os_str().to_owned();
        name.push(".dossier-state.json");
        PathBuf::from(name)
    }

    /// The saved state at `path`, if any.
    pub fn load(path: &Path) -> Result<Option<State>, CliError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CliError::Usage(format!(
                    "cannot read the resume file {}: {e}",
                    path.display()
                )));
            }
        };
        let state: State = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Usage(format!(
                "the resume file {} is damaged ({e}); delete it to start over",
                path.display()
            ))
        })?;
        if state.version != VERSION {
            return Err(CliError::Usage(format!(
                "the resume file {} was written by another version; delete it to start over",
                path.display()
            )));
        }
        Ok(Some(state))
    }

    /// The saved state at `path` when it belongs to this input and cut,
    /// else a fresh one. A state for another input is an error: resuming
    /// it would mix two files' results.
    pub fn resume_or_new(
        path: &Path,
        input_sha256: &str,
        batch_size: usize,
        plan: &[Range<usize>],
    ) -> Result<State, CliError> {
        let fresh = State::new(input_sha256, batch_size, plan);
        let Some(saved) = State::load(path)? else {
            return Ok(fresh);
        };
        if saved.input_sha256 != input_sha256 {
            return Err(CliError::Usage(format!(
                "{} belongs to another input file (or this one changed): delete it to start over, or choose another output",
                path.display()
            )));
        }
        let same_cut = saved.batch_size == batch_size
            && saved.batches.len() == fresh.batches.len()
            && saved
                .batches
                .iter()
                .zip(&fresh.batches)
                .all(|(a, b)| a.rows() == b.rows());
        if !same_cut {
            return Err(CliError::Usage(format!(
                "{} was written with batches of {} rows: rerun with the same batch size, or delete it to start over",
                path.display(),
                saved.batch_size
            )));
        }
        Ok(saved)
    }

    /// Saves the state to `path`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| CliError::Output(format!("cannot encode the resume file: {e}")))?;
        crate::atomic::write_file(path, |out| out.write_all(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_round_trips_and_refuses_another_input_or_cut() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("enriched.csv");
        let path = State::path_for(&output);
        assert!(path.ends_with("enriched.csv.dossier-state.json"));
        let plan = [0..3, 3..5];
        // Nothing saved: a fresh state.
        let mut state = State::resume_or_new(&path, "abc", 3, &plan).unwrap();
        assert_eq!(state, State::new("abc", 3, &plan));
        state.batches[0].operation_id = Some("op-1".into());
        state.batches[0]
            .invalid
            .insert(1, vec!["/email: not an email".into()]);
        state.batches[0].done = true;
        state.save(&path).unwrap();
        let resumed = State::resume_or_new(&path, "abc", 3, &plan).unwrap();
        assert_eq!(resumed, state);
        assert_eq!(resumed.batches[0].submitted(), [0, 2]);
        assert_eq!(resumed.batches[1].submitted(), [3, 4]);
        // Another input, or another cut, is refused.
        let other = State::resume_or_new(&path, "def", 3, &plan);
        assert!(matches!(other, Err(CliError::Usage(m)) if m.contains("another input")));
        let recut = State::resume_or_new(&path, "abc", 2, &[0..2, 2..4, 4..5]);
        assert!(matches!(recut, Err(CliError::Usage(m)) if m.contains("batches of 3 rows")));
        // A damaged file says so.
        std::fs::write(&path, b"{").unwrap();
        assert!(matches!(State::load(&path), Err(CliError::Usage(m)) if m.contains("damaged")));
    }
}
