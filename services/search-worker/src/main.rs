#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: search_worker::Config =
        dossier_service::config::parse_config(dossier_telemetry::ENV_READ_DIRECTLY);
    let _telemetry = dossier_telemetry::init("search-worker", &config.service.log)?;
    let app = search_worker::App::build(config).await?;
    app.run(dossier_service::shutdown_token()).await
}
