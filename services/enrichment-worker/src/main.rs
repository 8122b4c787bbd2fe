use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = enrichment_worker::Config::parse();
    let _telemetry = dossier_telemetry::init("enrichment-worker", &config.service.log)?;
    let app = enrichment_worker::App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
