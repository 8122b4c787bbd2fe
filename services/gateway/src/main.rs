//! The gateway binary: reads [`gateway::Config`], sets up telemetry, and runs
//! the HTTP API until Ctrl-C or SIGTERM.
#![forbid(unsafe_code)]

/// The allocator, chosen by measurement (docs/performance.md, "Allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: gateway::Config =
        dossier_service::config::parse_config(dossier_telemetry::ENV_READ_DIRECTLY);
    let _telemetry = dossier_telemetry::init("gateway", &config.log)?;
    let app = gateway::App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
