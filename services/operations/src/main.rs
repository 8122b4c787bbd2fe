//! The operations service binary: configuration in, [`operations::App`] out.
#![forbid(unsafe_code)]

use operations::{App, Config};

/// The allocator, chosen by measurement (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config =
        dossier_service::config::parse_config(dossier_telemetry::ENV_READ_DIRECTLY);
    let _telemetry = dossier_telemetry::init("operations", &config.log)?;
    let app = App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
