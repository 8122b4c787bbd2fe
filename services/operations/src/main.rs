//! The operations service binary: configuration in, [`operations::App`] out.
#![forbid(unsafe_code)]

use clap::Parser as _;
use operations::{App, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _telemetry = dossier_telemetry::init("operations", &config.log)?;
    let app = App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
