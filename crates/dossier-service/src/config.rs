//! A service's configuration from its command line and environment, and the
//! hidden `--print-env` that lists the environment variables it reads.
//!
//! `cargo xtask deploy-check` runs each built service with `--print-env` to
//! check the deploy files against what the binary really reads: xtask may
//! not link the services (xtask/tests/layering.rs), and clap's definitions
//! are the truth, not the source text.

/// The hidden first argument that prints the environment a service reads
/// (see [`env_listing`]) and exits.
pub const PRINT_ENV: &str = "--print-env";

/// `C::parse()`, but when the first argument is [`PRINT_ENV`], prints
/// [`env_listing`] of `C` and `read_directly` to stdout and exits with
/// success. `read_directly` names the variables the service reads outside
/// clap (telemetry's `RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT`).
pub fn parse_config<C: clap::Parser>(read_directly: &[&str]) -> C {
    if std::env::args_os().nth(1).is_some_and(|a| a == PRINT_ENV) {
        print!("{}", env_listing(&C::command(), read_directly));
        std::process::exit(0);
    }
    C::parse()
}

/// One line per environment variable of `command` (every argument with
/// `env = ...`, flattened structs included) and of `read_directly`:
/// `NAME<TAB>required|optional<TAB>default`, the default empty when there is
/// none and its values joined by `,` when there are several. `required`:
/// clap refuses to start without it; the variables read directly are
/// optional.
pub fn env_listing(command: &clap::Command, read_directly: &[&str]) -> String {
    let mut out = String::new();
    for arg in command.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let default = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy())
            .collect::<Vec<_>>()
            .join(",");
        let required = if arg.is_required_set() {
            "required"
        } else {
            "optional"
        };
        out.push_str(&format!(
            "{}\t{required}\t{default}\n",
            env.to_string_lossy()
        ));
    }
    for name in read_directly {
        out.push_str(&format!("{name}\toptional\t\n"));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Config {
        /// Where.
        #[arg(long, env = "DOSSIER_A", default_value = "127.0.0.1:8080")]
        a: String,
        #[arg(long, env = "DOSSIER_B")]
        b: Option<String>,
        #[arg(long, env = "DOSSIER_C")]
        c: String,
        #[arg(long)]
        no_env: bool,
        #[command(flatten)]
        inner: Inner,
    }

    #[derive(clap::Args)]
    struct Inner {
        #[arg(long, env = "DOSSIER_D", default_value_t = 4)]
        d: usize,
    }

    #[test]
    fn lists_every_variable_with_whether_it_is_required_and_its_default() {
        let listing = env_listing(&Config::command(), &["RUST_LOG"]);
        assert_eq!(
            listing,
            "DOSSIER_A\toptional\t127.0.0.1:8080\n\
             DOSSIER_B\toptional\t\n\
             DOSSIER_C\trequired\t\n\
             DOSSIER_D\toptional\t4\n\
             RUST_LOG\toptional\t\n"
        );
    }
}
