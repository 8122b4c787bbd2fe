//! What each row came to, and the output file: the input's columns
//! unchanged plus the enrichment, in input order, written to a temporary
//! file beside the target and renamed over it only when complete.

use std::path::Path;

use serde_json::{Value, json};

use super::table::{Format, Row, Table};
use crate::error::CliError;
use crate::render::{person_cells, text};

/// What one row came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The API's answer for the record (`status` `matched`, `not_found` or
    /// `error`), without its position in the batch.
    Answered(Value),
    /// The API refused the record: the reasons it gave.
    Invalid(Vec<String>),
    /// The record's operation ended without an answer for it.
    Failed {
        /// snake_case code (`cancelled`, the operation's error code).
        code: String,
        /// What happened.
        message: String,
    },
}

impl Outcome {
    /// `matched`, `not_found`, `error` or `invalid`.
    pub fn status(&self) -> &str {
        match self {
            Outcome::Answered(record) => record["status"].as_str().unwrap_or("error"),
            Outcome::Invalid(_) => "invalid",
            Outcome::Failed { .. } => "error",
        }
    }

    /// The outcome as the `dossier` object of a JSONL line.
    fn to_json(&self) -> Value {
        match self {
            Outcome::Answered(record) => record.clone(),
            Outcome::Invalid(reasons) => json!({ "status": "invalid", "errors": reasons }),
            Outcome::Failed { code, message } => {
                json!({ "status": "error", "error": { "code": code, "message": message } })
            }
        }
    }
}

/// The counts the summary prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// `matched`.
    pub matched: usize,
    /// `not_found`.
    pub not_found: usize,
    /// `error`: the providers failed, or the operation did.
    pub failed: usize,
    /// Refused by the API's validation.
    pub invalid: usize,
}

impl Counts {
    /// Counts `outcomes`.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = &'a Outcome>) -> Counts {
        let mut counts = Counts::default();
        for outcome in outcomes {
            match outcome.status() {
                "matched" => counts.matched += 1,
                "not_found" => counts.not_found += 1,
                "invalid" => counts.invalid += 1,
                _ => counts.failed += 1,
            }
        }
        counts
    }
}

/// The columns a CSV output adds after the input's own.
pub const CSV_COLUMNS: [&str; 16] = [
    "dossier_status",
    "dossier_reason",
    "dossier_matched_by",
    "dossier_confidence",
    "dossier_full_name",
    "dossier_title",
    "dossier_seniority",
    "dossier_department",
    "dossier_location",
    "dossier_email",
    "dossier_linkedin_url",
    "dossier_company_name",
    "dossier_company_domain",
    "dossier_company_linkedin_handle",
    "dossier_company_industry",
    "dossier_company_size",
];

/// The added CSV cells of one outcome.
fn csv_cells(outcome: &Outcome) -> Vec<String> {
    let mut cells = vec![outcome.status().to_owned()];
    match outcome {
        Outcome::Answered(r) => {
            let reason = match r["status"].as_str() {
                Some("error") => text(&r["error"]["message"]),
                _ => text(&r["reason"]),
            };
            let c = &r["company"];
            cells.extend([reason, text(&r["matchedBy"]), text(&r["confidence"])]);
            cells.extend(person_cells(&r["person"]));
            cells.extend(
                ["name", "domain", "linkedinHandle", "industry", "sizeBand"]
                    .iter()
                    .map(|k| text(&c[k])),
            );
        }
        Outcome::Invalid(reasons) => cells.push(reasons.join("; ")),
        Outcome::Failed { message, .. } => cells.push(message.clone()),
    }
    cells.resize(CSV_COLUMNS.len(), String::new());
    cells
}

/// The JSONL line of `row` with its outcome: the line exactly as read, with
/// `"dossier": {…}` added as its last member (re-encoded only when the
/// input already had a `dossier` member, which is replaced).
fn jsonl_line(row: &Row, outcome: &Outcome) -> Result<String, CliError> {
    let dossier = outcome.to_json().to_string();
    let line = row.line.as_deref().unwrap_or("{}").trim();
    let mut object: serde_json::Map<String, Value> = serde_json::from_str(line)
        .map_err(|e| CliError::Output(format!("cannot re-read an input line: {e}")))?;
    if object.contains_key("dossier") || !line.ends_with('}') {
        object.insert("dossier".to_owned(), outcome.to_json());
        return Ok(Value::Object(object).to_string());
    }
    let body = &line[..line.len() - 1];
    let separator = if object.is_empty() { "" } else { "," };
    Ok(format!("{body}{separator}\"dossier\":{dossier}}}"))
}

/// Writes `table`'s rows with their `outcomes` to `path` as `format`,
/// atomically.
pub fn write(
    path: &Path,
    format: Format,
    table: &Table,
    outcomes: &[Outcome],
) -> Result<(), CliError> {
    crate::atomic::write_file(path, |out| match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            let header = table.headers.iter().map(String::as_str).chain(CSV_COLUMNS);
            writer.write_record(header).map_err(csv_error)?;
            for (row, outcome) in table.rows.iter().zip(outcomes) {
                let cells = row.cells.iter().cloned().chain(csv_cells(outcome));
                writer.write_record(cells).map_err(csv_error)?;
            }
            writer.flush()
        }
        Format::Jsonl => {
            for (row, outcome) in table.rows.iter().zip(outcomes) {
                let line = match &row.line {
                    Some(_) => jsonl_line(row, outcome),
                    // A CSV input written as JSONL: its cells by column.
                    None => {
                        let mut object: serde_json::Map<String, Value> = table
                            .headers
                            .iter()
                            .cloned()
                            .zip(row.cells.iter().cloned().map(Value::String))
                            .collect();
                        object.insert("dossier".to_owned(), outcome.to_json());
                        Ok(Value::Object(object).to_string())
                    }
                }
                .map_err(|e| std::io::Error::other(e.to_string()))?;
                writeln!(out, "{line}")?;
            }
            Ok(())
        }
    })
}

fn csv_error(error: csv::Error) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_lines_keep_the_input_as_written_and_add_the_outcome() {
        let row = Row {
            cells: vec![],
            line: Some(r#"{"z":1,"email":"a@x.com"}"#.to_owned()),
        };
        let matched = Outcome::Answered(json!({"status":"matched","person":{"fullName":"A"}}));
        assert_eq!(
            jsonl_line(&row, &matched).unwrap(),
            r#"{"z":1,"email":"a@x.com","dossier":{"person":{"fullName":"A"},"status":"matched"}}"#
        );
        let empty = Row {
            cells: vec![],
            line: Some("{}".to_owned()),
        };
        let invalid = Outcome::Invalid(vec!["/email: not an email".to_owned()]);
        assert_eq!(
            jsonl_line(&empty, &invalid).unwrap(),
            r#"{"dossier":{"errors":["/email: not an email"],"status":"invalid"}}"#
        );
        assert_eq!(
            Counts::of([&matched, &invalid]),
            Counts {
                matched: 1,
                invalid: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn csv_cells_line_up_with_the_columns() {
        let failed = Outcome::Failed {
            code: "cancelled".into(),
            message: "cancelled".into(),
        };
        let cells = csv_cells(&failed);
        assert_eq!(cells.len(), CSV_COLUMNS.len());
        assert_eq!(&cells[..2], ["error", "cancelled"]);
        let matched = Outcome::Answered(json!({
            "status":"matched","matchedBy":"email","confidence":0.99,
            "person":{"fullName":"Jane","location":{"city":"Austin","country":"US"}},
            "company":{"domain":"acme.com"}}));
        let cells = csv_cells(&matched);
        assert_eq!(cells[2..5], ["email", "0.99", "Jane"]);
        assert_eq!(cells[8], "Austin, US");
        assert_eq!(cells.len(), CSV_COLUMNS.len());
        assert_eq!(cells[12], "acme.com");
    }
}
