//! The gateway binary: reads [`gateway::Config`], sets up telemetry, and runs
//! the HTTP API until Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = gateway::Config::parse();
    let _telemetry = dossier_telemetry::init("gateway", &config.log)?;
    let app = gateway::App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
