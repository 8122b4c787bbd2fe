//! The `dossier` binary: parses the command line and runs it (see the
//! library, `dossier_cli`).
#![forbid(unsafe_code)]

use clap::Parser as _;

fn main() {
    // Usage errors exit 2 (clap's code), --help and --version 0.
    let cli = dossier_cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start: {error}");
            std::process::exit(dossier_cli::error::Exit::Failed.code());
        }
    };
    let exit = runtime.block_on(dossier_cli::run(cli));
    std::process::exit(exit.code());
}
