//! `dossier research`: a research report on a company or a person, shown
//! on the terminal as plain text, printed as Markdown when piped, or
//! written to a file.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::error::{CliError, Exit};
use crate::events::start_and_follow;

/// `dossier research` arguments: a company (`--company`, `--domain`,
/// `--linkedin-handle`) or a person (`--email`, `--linkedin`).
#[derive(Debug, clap::Args)]
pub struct ResearchArgs {
    /// The company: a domain (`acme.com`) or a name (`"Acme Corp"`).
    #[arg(long)]
    pub company: Option<String>,
    /// The company's web domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// The company's LinkedIn page handle (or URL).
    #[arg(long)]
    pub linkedin_handle: Option<String>,
    /// A person, by email.
    #[arg(long, conflicts_with_all = ["company", "domain", "linkedin_handle"])]
    pub email: Option<String>,
    /// A person, by LinkedIn profile URL.
    #[arg(long, conflicts_with_all = ["company", "domain", "linkedin_handle"])]
    pub linkedin: Option<String>,
    /// A question the report answers; repeatable (at most 10).
    #[arg(long = "question", short = 'q')]
    pub questions: Vec<String>,
    /// `standard` (up to 30 s) or `deep` (up to 90 s).
    #[arg(long, value_parser = ["standard", "deep"])]
    pub depth: Option<String>,
    /// Write the Markdown report to this file instead of the terminal.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Print the whole result (report, sections, sources, steps) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Whether `value` reads as a domain rather than a company name.
fn looks_like_domain(value: &str) -> bool {
    let v = value.trim();
    v.contains('.') && !v.contains(char::is_whitespace)
}

/// The request body.
fn body(args: &ResearchArgs) -> Result<Value, CliError> {
    let subject = if args.email.is_some() || args.linkedin.is_some() {
        let mut person = Map::new();
        if let Some(email) = &args.email {
            person.insert("email".to_owned(), json!(email));
        }
        if let Some(url) = &args.linkedin {
            person.insert("linkedinUrl".to_owned(), json!(url));
        }
        json!({ "person": person })
    } else {
        let mut company = Map::new();
        if let Some(value) = &args.company {
            let key = if looks_like_domain(value) {
                "domain"
            } else {
                "name"
            };
            company.insert(key.to_owned(), json!(value));
        }
        if let Some(domain) = &args.domain {
            company.insert("domain".to_owned(), json!(domain));
        }
        if let Some(handle) = &args.linkedin_handle {
            company.insert("linkedinHandle".to_owned(), json!(handle));
        }
        if company.is_empty() {
            return Err(CliError::Usage(
                "name a company (--company, --domain, --linkedin-handle) or a person (--email, --linkedin)".to_owned(),
            ));
        }
        json!({ "company": company })
    };
    let mut body = json!({ "subject": subject, "questions": args.questions });
    if let Some(depth) = &args.depth {
        body["depth"] = json!(depth);
    }
    Ok(body)
}

/// Runs `dossier research`.
pub async fn run(client: &Client, args: ResearchArgs, wait: u32) -> Result<Exit, CliError> {
    // A progress line only for a person watching, not in a log.
    let terminal = std::io::stderr().is_terminal();
    let op = start_and_follow(client, "/api/research", &body(&args)?, wait, |state| {
        if let (Some(progress), true) = (state.progress, terminal) {
            eprint!("\rresearching… {progress:>3}%");
        }
    })
    .await?;
    if terminal {
        eprint!("\r\x1b[2K");
    }
    let Some(result) = op.result.as_ref() else {
        eprintln!(
            "research {} {}: {}",
            op.id,
            op.status,
            op.error_text().unwrap_or_default()
        );
        return Ok(Exit::Failed);
    };
    let report = result["markdown"].as_str().unwrap_or_default();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(result).unwrap_or_default()
        );
    } else if let Some(path) = &args.output {
        crate::atomic::write_file(path, |out| out.write_all(report.as_bytes()))?;
        eprintln!("report written to {}", path.display());
    } else if std::io::stdout().is_terminal() {
        print!("{}", crate::render::markdown(report));
    } else {
        print!("{report}");
    }
    // Say which steps fell short, so a partial report is not mistaken for
    // a complete one.
    for step in result["steps"].as_array().into_iter().flatten() {
        if step["status"] == "failed" {
            eprintln!(
                "step {} failed: {}",
                step["name"].as_str().unwrap_or("?"),
                step["error"].as_str().unwrap_or("")
            );
        }
    }
    if op.status != "succeeded" {
        eprintln!("research {} ended {}", op.id, op.status);
    }
    Ok(Exit::for_status(&op.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<ResearchArgs, clap::Error> {
        crate::parse_args(argv)
    }

    #[test]
    fn a_company_is_a_domain_or_a_name_and_a_person_an_email() {
        let domain = parse(&["x", "--company", "acme.com", "-q", "Who leads sales?"]).unwrap();
        assert_eq!(
            body(&domain).unwrap(),
            json!({ "subject": { "company": { "domain": "acme.com" } }, "questions": ["Who leads sales?"] })
        );
        let name = parse(&["x", "--company", "Acme Corp", "--depth", "deep"]).unwrap();
        assert_eq!(
            body(&name).unwrap()["subject"]["company"],
            json!({ "name": "Acme Corp" })
        );
        assert_eq!(body(&name).unwrap()["depth"], "deep");
        let person = parse(&["x", "--email", "jane@acme.com"]).unwrap();
        assert_eq!(
            body(&person).unwrap()["subject"],
            json!({ "person": { "email": "jane@acme.com" } })
        );
        assert!(parse(&["x", "--email", "a@b.c", "--company", "acme.com"]).is_err());
        let nothing = parse(&["x"]).unwrap();
        assert!(matches!(body(&nothing), Err(CliError::Usage(_))));
    }
}
