#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: research_worker::Config =
        dossier_service::config::parse_config(dossier_telemetry::ENV_READ_DIRECTLY);
    let _telemetry = dossier_telemetry::init("research-worker", &config.service.log)?;
    let app = research_worker::App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
