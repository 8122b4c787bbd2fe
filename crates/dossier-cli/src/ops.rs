//! `dossier ops list | get | watch | cancel`: the tenant's operations.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::client::{Client, Operation, operation_path};
use crate::error::{CliError, Exit};

/// `dossier ops` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OpsCommand {
    /// List operations, newest first.
    List {
        /// Only this status (queued, processing, succeeded, failed,
        /// partial_success, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only this kind (enrichment.batch, search.people, research.deep).
        #[arg(long)]
        kind: Option<String>,
        /// Most operations listed (pages of up to 100 are followed).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print the operations as JSON (one array).
        #[arg(long)]
        json: bool,
    },
    /// Show one operation (its result with --json).
    Get {
        /// The operation id.
        id: String,
        /// Print the operation as the API answers it.
        #[arg(long)]
        json: bool,
    },
    /// Follow an operation live until it ends; exits with its outcome.
    Watch {
        /// The operation id.
        id: String,
    },
    /// Ask for an operation to be cancelled.
    Cancel {
        /// The operation id.
        id: String,
    },
}

/// Runs `dossier ops …`.
pub async fn run(client: &Client, command: OpsCommand) -> Result<Exit, CliError> {
    match command {
        OpsCommand::List {
            status,
            kind,
            limit,
            json,
        } => list(client, status, kind, limit, json).await,
        OpsCommand::Get { id, json } => get(client, &id, json).await,
        OpsCommand::Watch { id } => watch(client, &id).await,
        OpsCommand::Cancel { id } => cancel(client, &id).await,
    }
}

async fn list(
    client: &Client,
    status: Option<String>,
    kind: Option<String>,
    limit: usize,
    json: bool,
) -> Result<Exit, CliError> {
    let mut ops: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    // Bounded: each page adds at least one operation or ends the listing.
    while ops.len() < limit {
        let page_size = (limit - ops.len()).min(100);
        let mut request = client
            .request(Method::GET, "/api/operations")
            .query(&[("limit", page_size)]);
        for (key, value) in [("status", &status), ("kind", &kind), ("cursor", &cursor)] {
            if let Some(value) = value {
                request = request.query(&[(key, value)]);
            }
        }
        let page: Value = client.json(request).await?;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        let got = data.len();
        ops.extend(data);
        cursor = page["meta"]["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() || got == 0 {
            break;
        }
    }
    ops.truncate(limit);
    if json {
        println!("{}", serde_json::to_string_pretty(&ops).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    let text = crate::render::text;
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|op| {
            vec![
                text(&op["id"]),
                text(&op["kind"]),
                text(&op["status"]),
                op["progress"]
                    .as_u64()
                    .map(|p| format!("{p}%"))
                    .unwrap_or_default(),
                text(&op["createdAt"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no operations");
    } else {
        print!(
            "{}",
            crate::render::table(&["ID", "KIND", "STATUS", "PROGRESS", "CREATED"], &rows)
        );
    }
    Ok(Exit::Ok)
}

async fn get(client: &Client, id: &str, json: bool) -> Result<Exit, CliError> {
    let value = client.operation_json(id).await?;
    let op: Operation = serde_json::from_value(value.clone())
        .map_err(|e| CliError::Network(format!("unexpected operation from the API: {e}")))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        println!("id        {}", op.id);
        println!("kind      {}", op.kind);
        println!("status    {}", op.status);
        if let Some(progress) = op.progress {
            println!("progress  {progress}%");
        }
        if let Some(created) = &op.created_at {
            println!("created   {created}");
        }
        if let Some(error) = op.error_text() {
            println!("error     {error}");
        }
        if op.result.is_some() {
            println!("result    dossier ops get {id} --json");
        }
    }
    // Reading an operation succeeded whatever its state.
    Ok(Exit::Ok)
}

/// One line for a state: `processing 40%`, `succeeded`.
fn status_line(op: &Operation) -> String {
    let mut line = op.status.clone();
    if let (Some(progress), false) = (op.progress, op.is_terminal()) {
        line.push_str(&format!(" {progress}%"));
    }
    if op.cancel_requested && !op.is_terminal() {
        line.push_str(" (cancellation requested)");
    }
    if let Some(error) = op.error_text() {
        line.push_str(&format!(" — {error}"));
    }
    line
}

async fn watch(client: &Client, id: &str) -> Result<Exit, CliError> {
    let op = crate::events::follow(client, id, |state| println!("{}", status_line(state))).await?;
    Ok(Exit::for_status(&op.status))
}

async fn cancel(client: &Client, id: &str) -> Result<Exit, CliError> {
    let response = client
        .send(client.request(Method::POST, &format!("{}/cancel", operation_path(id))))
        .await?;
    let requested = response.status() == StatusCode::ACCEPTED;
    let op: Operation = response
        .json()
        .await
        .map_err(|e| CliError::Network(format!("unexpected answer from the API: {e}")))?;
    if requested {
        println!(
            "cancellation requested: {} stops between steps ({})",
            op.id, op.status
        );
    } else {
        println!("{} {}", op.id, op.status);
    }
    Ok(Exit::Ok)
}
