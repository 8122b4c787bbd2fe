//! The webhooks service binary: configuration in, [`webhooks::App`] out.
#![forbid(unsafe_code)]

use webhooks::{App, Config};

/// The allocator, chosen by measurement (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: Config =
        dossier_service::config::parse_config(dossier_telemetry::ENV_READ_DIRECTLY);
    let _telemetry = dossier_telemetry::init("webhooks", &config.log)?;
    let app = App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
