//! `dossier search`: a people search in a target account, printed as a
//! table (or the result's JSON).

use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::error::{CliError, Exit};
use crate::events::start_and_follow;

/// `dossier search` arguments. At least one of `--domain`, `--company`,
/// `--linkedin-handle` names the target account.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// The account's web domain (`acme.com`).
    #[arg(long)]
    pub domain: Option<String>,
    /// The account's name.
    #[arg(long)]
    pub company: Option<String>,
    /// The account's LinkedIn company page handle (or URL).
    #[arg(long)]
    pub linkedin_handle: Option<String>,
    /// Job titles to match; repeatable.
    #[arg(long = "title")]
    pub titles: Vec<String>,
    /// Seniorities: owner, c_suite, vp, director, manager, senior, entry; repeatable.
    #[arg(long = "seniority")]
    pub seniorities: Vec<String>,
    /// Departments (engineering, sales, marketing, …); repeatable.
    #[arg(long = "department")]
    pub departments: Vec<String>,
    /// Locations; repeatable.
    #[arg(long = "location")]
    pub locations: Vec<String>,
    /// Keywords; repeatable.
    #[arg(long = "keyword")]
    pub keywords: Vec<String>,
    /// Most people returned (1–100; the API's default is 25).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Print the result as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The request body.
fn body(args: &SearchArgs) -> Result<Value, CliError> {
    let mut account = Map::new();
    for (key, value) in [
        ("domain", &args.domain),
        ("name", &args.company),
        ("linkedinHandle", &args.linkedin_handle),
    ] {
        if let Some(value) = value {
            account.insert(key.to_owned(), json!(value));
        }
    }
    if account.is_empty() {
        return Err(CliError::Usage(
            "name the account: --domain, --company or --linkedin-handle".to_owned(),
        ));
    }
    let mut filters = Map::new();
    for (key, values) in [
        ("titles", &args.titles),
        ("seniorities", &args.seniorities),
        ("departments", &args.departments),
        ("locations", &args.locations),
        ("keywords", &args.keywords),
    ] {
        if !values.is_empty() {
            filters.insert(key.to_owned(), json!(values));
        }
    }
    let mut body = json!({ "targetAccount": account });
    if !filters.is_empty() {
        body["filters"] = Value::Object(filters);
    }
    if let Some(limit) = args.limit {
        body["limit"] = json!(limit);
    }
    Ok(body)
}

/// Runs `dossier search`.
pub async fn run(client: &Client, args: SearchArgs, wait: u32) -> Result<Exit, CliError> {
    let op = start_and_follow(client, "/api/search/people", &body(&args)?, wait, |_| {}).await?;
    let Some(result) = op.result.as_ref().filter(|_| op.status != "failed") else {
        eprintln!(
            "search {} {}: {}",
            op.id,
            op.status,
            op.error_text().unwrap_or_default()
        );
        return Ok(Exit::Failed);
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(result).unwrap_or_default()
        );
        return Ok(Exit::for_status(&op.status));
    }
    let people = result["data"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = people
        .iter()
        .map(|p| crate::render::person_cells(p).to_vec())
        .collect();
    if !rows.is_empty() {
        print!(
            "{}",
            crate::render::table(&crate::render::PERSON_HEADERS, &rows)
        );
    }
    let meta = &result["meta"];
    let mut summary = format!("{} people", rows.len());
    if let Some(outcome) = meta["targetAccountOutcome"].as_str() {
        summary.push_str(&format!(" · account: {outcome}"));
    }
    if let Some(message) = meta["message"].as_str().filter(|m| !m.is_empty()) {
        summary.push_str(&format!(" · {message}"));
    }
    println!("{summary}");
    Ok(Exit::for_status(&op.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<SearchArgs, clap::Error> {
        crate::parse_args(argv)
    }

    #[test]
    fn flags_become_the_documented_body() {
        let args = parse(&[
            "x",
            "--domain",
            "acme.com",
            "--title",
            "VP Sales",
            "--seniority",
            "vp",
            "--limit",
            "5",
        ])
        .unwrap();
        assert_eq!(
            body(&args).unwrap(),
            json!({ "targetAccount": { "domain": "acme.com" },
                    "filters": { "titles": ["VP Sales"], "seniorities": ["vp"] }, "limit": 5 })
        );
        let none = parse(&["x", "--title", "CEO"]).unwrap();
        assert!(matches!(body(&none), Err(CliError::Usage(_))));
    }
}
