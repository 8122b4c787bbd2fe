//! Input files: CSV (a header row) or JSONL (one object a line), read into
//! rows whose cells line up with one list of column names.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::CliError;

/// A file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// JSON Lines: one JSON object per line.
    Jsonl,
}

impl Format {
    /// The format a file name's extension says (`.csv`, `.jsonl`/`.ndjson`).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// One input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The cells, one per column of the [`Table`] (`""` when absent; a
    /// JSON scalar as text).
    pub cells: Vec<String>,
    /// The JSONL line as read, written back unchanged with the results.
    pub line: Option<String>,
}

/// A whole input file.
#[derive(Debug, Clone)]
pub struct Table {
    /// The format it was read as.
    pub format: Format,
    /// The column names: the CSV header, or the JSON keys in order of
    /// first appearance.
    pub headers: Vec<String>,
    /// The rows, in file order.
    pub rows: Vec<Row>,
}

impl Table {
    /// Parses `bytes` as `format`. Errors name the line.
    pub fn read(bytes: &[u8], format: Format) -> Result<Table, CliError> {
        match format {
            Format::Csv => read_csv(bytes),
            Format::Jsonl => read_jsonl(bytes),
        }
    }
}

fn read_csv(bytes: &[u8]) -> Result<Table, CliError> {
    // A UTF-8 byte order mark (spreadsheet exports) is not part of the
    // first column's name.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| CliError::Usage(format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| CliError::Usage(format!("invalid CSV: {e}")))?;
        rows.push(Row {
            cells: record.iter().map(str::to_owned).collect(),
            line: None,
        });
    }
    Ok(Table {
        format: Format::Csv,
        headers,
        rows,
    })
}

fn read_jsonl(bytes: &[u8]) -> Result<Table, CliError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| CliError::Usage(format!("the JSONL file is not UTF-8: {e}")))?;
    let mut headers: Vec<String> = Vec::new();
    let mut objects: Vec<(Map<String, Value>, String)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let object: Map<String, Value> = serde_json::from_str(line)
            .map_err(|e| CliError::Usage(format!("line {}: not a JSON object: {e}", number + 1)))?;
        for key in object.keys() {
            if !headers.contains(key) {
                headers.push(key.clone());
            }
        }
        objects.push((object, line.to_owned()));
    }
    let rows = objects
        .into_iter()
        .map(|(object, line)| Row {
            cells: headers
                .iter()
                .map(|h| match object.get(h) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(Value::Bool(b)) => b.to_string(),
                    // Nulls, lists and objects feed no field.
                    _ => String::new(),
                })
                .collect(),
            line: Some(line),
        })
        .collect();
    Ok(Table {
        format: Format::Jsonl,
        headers,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_jsonl_read_into_aligned_cells() {
        let csv = Table::read(
            b"\xEF\xBB\xBFemail,name\r\na@x.com,\"Doe, Jane\"\r\n",
            Format::Csv,
        )
        .unwrap();
        assert_eq!(csv.headers, ["email", "name"]);
        assert_eq!(csv.rows[0].cells, ["a@x.com", "Doe, Jane"]);
        let jsonl = Table::read(
            b"{\"email\":\"a@x.com\",\"id\":7}\n\n{\"name\":\"Bo\",\"tags\":[1]}\n",
            Format::Jsonl,
        )
        .unwrap();
        assert_eq!(jsonl.headers, ["email", "id", "name", "tags"]);
        assert_eq!(jsonl.rows.len(), 2);
        assert_eq!(jsonl.rows[0].cells, ["a@x.com", "7", "", ""]);
        assert_eq!(
            jsonl.rows[1].line.as_deref(),
            Some("{\"name\":\"Bo\",\"tags\":[1]}")
        );
        let bad = Table::read(b"{\"a\":1}\n[1,2]\n", Format::Jsonl);
        assert!(matches!(bad, Err(CliError::Usage(m)) if m.starts_with("line 2")));
        let ragged = Table::read(b"a,b\n1,2,3\n", Format::Csv);
        assert!(matches!(ragged, Err(CliError::Usage(_))));
        assert_eq!(
            Format::from_path(Path::new("x/People.CSV")),
            Some(Format::Csv)
        );
        assert_eq!(
            Format::from_path(Path::new("x.ndjson")),
            Some(Format::Jsonl)
        );
        assert_eq!(Format::from_path(Path::new("x.txt")), None);
    }
}
