//! `dossier`, the command-line client of the Dossier API: enrich CSV/JSONL
//! files in resumable batches, search people in an account, run research,
//! and follow or cancel operations. It speaks only the public HTTP API (no
//! crate of the services), so it works against any deployment.
#![forbid(unsafe_code)]

pub mod atomic;
pub mod client;
pub mod config;
pub mod enrich;
pub mod error;
pub mod events;
pub mod ops;
pub mod render;
pub mod research;
pub mod search;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::client::Client;
use crate::config::{ENV_API_KEY, ENV_API_URL, ENV_CONFIG};
use crate::error::{CliError, EXIT_CODES_HELP, Exit};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "dossier",
    version,
    about = "Enrich, search and research with the Dossier API from a terminal",
    after_help = EXIT_CODES_HELP,
)]
pub struct Cli {
    /// Base URL of the API [default: http://127.0.0.1:8080, or api_url in the config file].
    #[arg(long, env = ENV_API_URL, global = true)]
    pub api_url: Option<String>,
    /// The API key [or api_key in the config file]. Never printed.
    #[arg(long, env = ENV_API_KEY, global = true, hide_env_values = true)]
    pub api_key: Option<String>,
    /// Configuration file (TOML: api_url, api_key) [default: ~/.config/dossier/config.toml].
    #[arg(long, env = ENV_CONFIG, global = true)]
    pub config: Option<PathBuf>,
    /// Seconds a search or research may be waited for in its request
    /// (`Prefer: wait`) before the client follows its event stream.
    #[arg(long, global = true, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=60))]
    pub wait: u32,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrich a CSV or JSONL file of people; resumable (rerun the same command).
    Enrich(enrich::EnrichArgs),
    /// Search people in a target account.
    Search(search::SearchArgs),
    /// Research a company or a person; prints the report.
    Research(research::ResearchArgs),
    /// List, show, follow or cancel operations.
    Ops {
        /// The operations subcommand.
        #[command(subcommand)]
        command: ops::OpsCommand,
    },
}

/// Runs the parsed command line until it ends or Ctrl-C; returns the exit
/// code and prints failures (with the problem and request id) to stderr.
pub async fn run(cli: Cli) -> Exit {
    let outcome = tokio::select! {
        outcome = execute(cli) => outcome,
        // Work in progress is saved as it goes (the enrich state file is
        // written atomically between awaits), so stopping here is safe.
        _ = tokio::signal::ctrl_c() => Err(CliError::Interrupted),
    };
    match outcome {
        Ok(exit) => exit,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit()
        }
    }
}

async fn execute(cli: Cli) -> Result<Exit, CliError> {
    let settings = config::resolve(cli.api_url, cli.api_key, cli.config.as_deref())?;
    let client = Client::new(&settings)?;
    match cli.command {
        Command::Enrich(args) => enrich::run(&client, args).await,
        Command::Search(args) => search::run(&client, args, cli.wait).await,
        Command::Research(args) => research::run(&client, args, cli.wait).await,
        Command::Ops { command } => ops::run(&client, command).await,
    }
}

/// Parses `argv` (the first item is the program name) into a command's
/// arguments, for the commands' unit tests.
#[cfg(test)]
pub(crate) fn parse_args<T: clap::Args>(argv: &[&str]) -> Result<T, clap::Error> {
    let matches = T::augment_args(clap::Command::new("test")).try_get_matches_from(argv)?;
    <T as clap::FromArgMatches>::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed_and_its_help_lists_the_exit_codes() {
        // clap checks ids, conflicts and defaults fully only here.
        Cli::command().debug_assert();
        let help = Cli::command().render_long_help().to_string();
        assert!(
            help.contains("Exit codes:") && help.contains("130"),
            "{help}"
        );
    }
}
