//! `dossier enrich`: a CSV or JSONL file of people through
//! `POST /api/enrichment/batch`, in batches of at most 10,000 rows, each
//! with an idempotency key made from the input's hash and the batch's
//! position, followed live over the event stream, resumable from the state
//! file beside the output.

pub mod mapping;
pub mod output;
pub mod state;
pub mod table;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use self::mapping::{Mapping, PersonRecord};
use self::output::{Counts, Outcome};
use self::state::{BatchState, State};
use self::table::{Format, Table};
use crate::client::{Client, Operation};
use crate::error::{CliError, Exit};

/// The API's most records per batch (`POST /api/enrichment/batch`).
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// Most bytes of records per request: the API takes 8 MiB bodies, and the
/// rest is headroom for the envelope.
const BODY_BUDGET: usize = 7 * 1024 * 1024;
/// Attempts at submitting one batch when the API is briefly unavailable.
const SUBMIT_ATTEMPTS: u32 = 5;

/// `dossier enrich` arguments.
#[derive(Debug, clap::Args)]
pub struct EnrichArgs {
    /// The input file: CSV with a header row, or JSONL (one object a line).
    pub input: PathBuf,
    /// The output file (default: `<input>.enriched.<ext>`); its format
    /// follows its extension, else the input's.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The input's format, when its extension does not say (also the
    /// output's, unless the output's extension says otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Feed a column to a record field, or ignore it with `-`; repeatable.
    /// Fields: email, linkedinUrl, fullName, firstName, lastName,
    /// companyName, companyDomain, externalId.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    pub map: Vec<String>,
    /// Rows per batch (tests; at most the API's 10,000).
    #[arg(long, hide = true, default_value_t = MAX_BATCH_RECORDS, value_parser = batch_size)]
    pub batch_size: usize,
    /// Stop as Ctrl-C would after this many batches finished in this run
    /// (tests of resuming).
    #[arg(long, hide = true)]
    pub stop_after_batches: Option<usize>,
}

/// Runs `dossier enrich`.
pub async fn run(client: &Client, args: EnrichArgs) -> Result<Exit, CliError> {
    let in_format = args
        .format
        .or_else(|| Format::from_path(&args.input))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "cannot tell the format of {} from its name: pass --format csv or --format jsonl",
                args.input.display()
            ))
        })?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.input, in_format));
    let out_format = Format::from_path(&output).unwrap_or(in_format);
    if same_file(&args.input, &output) {
        return Err(CliError::Usage(
            "the output would overwrite the input: choose another -o".to_owned(),
        ));
    }
    let bytes = std::fs::read(&args.input)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", args.input.display())))?;
    let input_sha256 = hex::encode(Sha256::digest(&bytes));
    let table = Table::read(&bytes, in_format)?;
    drop(bytes);
    if table.rows.is_empty() {
        return Err(CliError::Usage(format!(
            "{} has no rows",
            args.input.display()
        )));
    }
    let mapping = Mapping::resolve(&table.headers, &args.map)?;
    let records: Vec<PersonRecord> = table
        .rows
        .iter()
        .map(|row| mapping.record(|i| row.cells.get(i).map(String::as_str)))
        .collect();
    let plan = plan(&records, args.batch_size);
    let state_path = State::path_for(&output);
    let mut state = State::resume_or_new(&state_path, &input_sha256, args.batch_size, &plan)?;
    state.save(&state_path)?;

    let batch_count = state.batches.len();
    let bar = progress_bar(records.len());
    let mut outcomes: Vec<Option<Outcome>> = vec![None; records.len()];
    let mut finished_now = 0;
    for index in 0..batch_count {
        let was_done = state.batches[index].done;
        bar.set_message(format!("batch {}/{batch_count}", index + 1));
        let mut job = Batch {
            client,
            state: &mut state,
            state_path: &state_path,
            index,
            key: idempotency_key(&input_sha256, args.batch_size, index),
            bar: &bar,
        };
        for (row, outcome) in job.run(&records).await? {
            outcomes[row] = Some(outcome);
        }
        let batch = &state.batches[index];
        bar.set_position((batch.start + batch.len) as u64);
        if !was_done {
            finished_now += 1;
            if args.stop_after_batches == Some(finished_now) {
                bar.abandon();
                return Err(CliError::Interrupted);
            }
        }
    }
    bar.finish_and_clear();
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome::Failed {
                code: "no_answer".to_owned(),
                message: "the operation returned no answer for this row".to_owned(),
            })
        })
        .collect();
    output::write(&output, out_format, &table, &outcomes)?;
    // The output is complete: the resume file has served its purpose (a
    // rerun within the idempotency window still reuses the operations).
    let _ = std::fs::remove_file(&state_path);
    let counts = Counts::of(&outcomes);
    println!(
        "{}: {} rows in {} batch{} — {} matched, {} not found, {} failed, {} invalid",
        output.display(),
        outcomes.len(),
        batch_count,
        if batch_count == 1 { "" } else { "es" },
        counts.matched,
        counts.not_found,
        counts.failed,
        counts.invalid
    );
    Ok(if counts.failed + counts.invalid == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// Parses `--batch-size`: 1 to [`MAX_BATCH_RECORDS`].
fn batch_size(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_BATCH_RECORDS).contains(&n) => Ok(n),
        _ => Err(format!("a number from 1 to {MAX_BATCH_RECORDS}")),
    }
}

/// `people.csv` → `people.enriched.csv`.
fn default_output(input: &Path, format: Format) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    let ext = match format {
        Format::Csv => "csv",
        Format::Jsonl => "jsonl",
    };
    input.with_file_name(format!("{stem}.enriched.{ext}"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Cuts the records into batches of at most `batch_size` rows whose JSON
/// stays within [`BODY_BUDGET`]. The same records and size always give the
/// same cut, which the idempotency keys rely on.
pub fn plan(records: &[PersonRecord], batch_size: usize) -> Vec<Range<usize>> {
    let mut plan = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        let size = serde_json::to_vec(record).map_or(0, |v| v.len()) + 1;
        if i > start && (i - start == batch_size || bytes + size > BODY_BUDGET) {
            plan.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < records.len() {
        plan.push(start..records.len());
    }
    plan
}

/// The batch's `Idempotency-Key`: the same input, cut and position always
/// give the same key, so a batch submitted again after a crash (before its
/// operation id was saved) gets the operation it already has.
pub fn idempotency_key(input_sha256: &str, batch_size: usize, index: usize) -> String {
    let hash = input_sha256.get(..32).unwrap_or(input_sha256);
    format!("dossier-cli-{hash}-{batch_size}-{index}")
}

fn progress_bar(rows: usize) -> ProgressBar {
    let bar = ProgressBar::new(rows as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows · {msg}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// One batch being run.
struct Batch<'a> {
    client: &'a Client,
    state: &'a mut State,
    state_path: &'a Path,
    index: usize,
    key: String,
    bar: &'a ProgressBar,
}

impl Batch<'_> {
    /// Submits the batch unless it has an operation, follows it to its end
    /// unless it is done, and returns each row's outcome.
    async fn run(&mut self, records: &[PersonRecord]) -> Result<Vec<(usize, Outcome)>, CliError> {
        let operation_id = match self.state.batches[self.index].operation_id.clone() {
            Some(id) => Some(id),
            None => {
                let rows = self.state.batches[self.index].rows();
                let (id, invalid) = self.submit(rows, records).await?;
                let batch = &mut self.state.batches[self.index];
                batch.invalid = invalid;
                batch.operation_id = id.clone();
                // Saved before anything else happens: a crash from here on
                // resumes this operation instead of submitting again.
                self.state.save(self.state_path)?;
                id
            }
        };
        let batch = self.state.batches[self.index].clone();
        let op = match &operation_id {
            None => None,
            Some(id) => Some(self.finish(id, &batch).await?),
        };
        let outcomes = match &op {
            Some(op) => collect(self.client, op, &batch).await?,
            // Every row was refused: nothing was submitted.
            None => collect_invalid(&batch),
        };
        if let (Some(op), true) = (&op, self.bar.is_hidden()) {
            eprintln!(
                "batch {}/{}: operation {} {}",
                self.index + 1,
                self.state.batches.len(),
                op.id,
                op.status
            );
        }
        self.state.batches[self.index].done = true;
        self.state.save(self.state_path)?;
        Ok(outcomes)
    }

    /// The operation at its end: read as it is when the batch is done,
    /// else followed over the event stream, which moves the bar.
    async fn finish(&self, id: &str, batch: &BatchState) -> Result<Operation, CliError> {
        if batch.done {
            let op = self.client.operation(id).await?;
            if op.is_terminal() {
                return Ok(op);
            }
        }
        let bar = self.bar;
        crate::events::follow(self.client, id, |state| {
            if let Some(progress) = state.progress {
                let done = batch.len * usize::from(progress.min(100)) / 100;
                bar.set_position((batch.start + done) as u64);
            }
        })
        .await
    }

    /// Submits the rows, leaving out each one the API refuses (a 400 whose
    /// errors all point into records) and submitting the rest again, so a
    /// few bad rows do not hold back the file. Returns the operation (none
    /// when every row was refused) and the refused rows with the reasons.
    async fn submit(
        &self,
        rows: Range<usize>,
        records: &[PersonRecord],
    ) -> Result<(Option<String>, BTreeMap<usize, Vec<String>>), CliError> {
        let rows: Vec<usize> = rows.collect();
        let mut invalid: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut attempts = 0;
        // Bounded: each round refuses at least one more row, or returns, or
        // counts an attempt.
        for _ in 0..=rows.len() + SUBMIT_ATTEMPTS as usize {
            let remaining: Vec<usize> = rows
                .iter()
                .copied()
                .filter(|r| !invalid.contains_key(r))
                .collect();
            if remaining.is_empty() {
                return Ok((None, invalid));
            }
            let body =
                json!({ "records": remaining.iter().map(|r| &records[*r]).collect::<Vec<_>>() });
            match self
                .client
                .start("/api/enrichment/batch", &body, Some(&self.key), None)
                .await
            {
                Ok(started) => return Ok((Some(started.id().to_owned()), invalid)),
                Err(CliError::Api(problem)) if problem.status == 400 => {
                    let refused = refused_rows(&problem.errors, &remaining);
                    if refused.is_empty() {
                        return Err(CliError::Api(problem));
                    }
                    for (row, reason) in refused {
                        invalid.entry(row).or_default().push(reason);
                    }
                }
                Err(error) if retryable(&error) && attempts + 1 < SUBMIT_ATTEMPTS => {
                    attempts += 1;
                    // The same key makes a retry safe: a request that was
                    // in fact accepted returns the same operation.
                    tokio::time::sleep(Duration::from_millis(500) * 2u32.pow(attempts)).await;
                }
                Err(error) => return Err(error),
            }
        }
        Err(CliError::Network(
            "the API kept refusing the batch".to_owned(),
        ))
    }
}

/// Whether a failed request may succeed when sent again.
fn retryable(error: &CliError) -> bool {
    match error {
        CliError::Network(_) => true,
        CliError::Api(problem) => problem.status == 429 || problem.status >= 500,
        _ => false,
    }
}

/// The rows the errors of a 400 name (`/records/3/email` → the fourth of
/// `remaining`), with the reasons; empty when any error is about something
/// other than one record (the list, a header), which no row explains.
fn refused_rows(errors: &[crate::error::FieldError], remaining: &[usize]) -> Vec<(usize, String)> {
    let mut refused = Vec::new();
    for error in errors {
        let Some(rest) = error
            .pointer
            .as_deref()
            .and_then(|p| p.strip_prefix("/records/"))
        else {
            return Vec::new();
        };
        let (position, field) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(row) = position
            .parse::<usize>()
            .ok()
            .and_then(|p| remaining.get(p))
        else {
            return Vec::new();
        };
        let reason = if field.is_empty() {
            error.detail.clone()
        } else {
            format!("{field}: {}", error.detail)
        };
        refused.push((*row, reason));
    }
    refused
}

/// The refused rows' outcomes.
fn collect_invalid(batch: &BatchState) -> Vec<(usize, Outcome)> {
    batch
        .invalid
        .iter()
        .map(|(row, reasons)| (*row, Outcome::Invalid(reasons.clone())))
        .collect()
}

/// Every row's outcome from the finished operation: its result's items
/// (each carries its position among the submitted rows), the refused rows,
/// and, for rows the operation has no answer for (it failed, or was
/// cancelled part way), its error.
async fn collect(
    client: &Client,
    op: &Operation,
    batch: &BatchState,
) -> Result<Vec<(usize, Outcome)>, CliError> {
    let submitted = batch.submitted();
    let mut answers: Vec<Option<Outcome>> = vec![None; submitted.len()];
    for mut item in client.result_items(op).await? {
        let Some(position) = item["index"].as_u64().map(|i| i as usize) else {
            continue;
        };
        if let (Some(slot), Value::Object(fields)) = (answers.get_mut(position), &mut item) {
            fields.remove("index");
            *slot = Some(Outcome::Answered(item));
        }
    }
    let (code, message) = match &op.error {
        Some(error) => (error.code.clone(), error.message.clone()),
        None => (
            op.status.clone(),
            format!("the operation ended {}", op.status),
        ),
    };
    let mut outcomes = collect_invalid(batch);
    for (row, answer) in submitted.into_iter().zip(answers) {
        outcomes.push((
            row,
            answer.unwrap_or_else(|| Outcome::Failed {
                code: code.clone(),
                message: message.clone(),
            }),
        ));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldError;

    #[test]
    fn files_are_cut_into_batches_by_count_and_size_the_same_way_every_time() {
        let records = vec![PersonRecord::default(); 25];
        assert_eq!(plan(&records, 10), [0..10, 10..20, 20..25]);
        assert_eq!(plan(&records, 25), vec![0..25]);
        // Records too big for one body are cut by size too.
        let big = PersonRecord {
            full_name: Some("x".repeat(3 * 1024 * 1024)),
            ..PersonRecord::default()
        };
        assert_eq!(plan(&[big.clone(), big.clone(), big], 10), [0..2, 2..3]);
        let key = idempotency_key(&"ab".repeat(32), 10, 2);
        assert_eq!(key, format!("dossier-cli-{}-10-2", "ab".repeat(16)));
    }

    #[test]
    fn a_400_names_the_rows_to_leave_out_or_none_when_it_is_not_about_rows() {
        let error = |pointer: &str| FieldError {
            pointer: Some(pointer.to_owned()),
            detail: "bad".to_owned(),
            ..FieldError::default()
        };
        let remaining = [3, 5, 9];
        assert_eq!(
            refused_rows(
                &[error("/records/1/email"), error("/records/2")],
                &remaining
            ),
            [(5, "email: bad".to_owned()), (9, "bad".to_owned())]
        );
        assert!(refused_rows(&[error("/records")], &remaining).is_empty());
        assert!(
            refused_rows(
                &[error("/records/1/email"), error("/records/7")],
                &remaining
            )
            .is_empty()
        );
        let header = FieldError {
            header: Some("idempotency-key".into()),
            ..FieldError::default()
        };
        assert!(refused_rows(&[header], &remaining).is_empty());
    }
}
