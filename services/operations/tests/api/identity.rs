//! Service identity (issue 14): only calls carrying a valid service token
//! reach the operations API, each acts only for its token's tenant, and the
//! transport can be TLS, mutual or not. Reflection is off unless asked for.

use dossier_contracts::Kind;
use dossier_contracts::Status;
use dossier_contracts::v1::operations_client::OperationsClient;
use dossier_contracts::v1::{
    CancelOperationRequest, GetOperationRequest, GetOperationResultsRequest, ListOperationsRequest,
    Tenanted,
};
use dossier_identity::TokenSigner;
use futures::StreamExt as _;
use operations::App;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::helpers::{SEARCH, TestApp, create_request, signed, status};

/// Every method of the API with `tenant`'s request for `id`, each turned into
/// a call by `call` (which adds, or does not add, a token), and the codes
/// they answered.
async fn codes_of_every_method(
    client: &OperationsClient<Channel>,
    tenant: &str,
    id: &str,
    call: impl Fn(&mut tonic::metadata::MetadataMap, &str),
) -> Vec<(&'static str, Code)> {
    fn request<T: Tenanted>(
        message: T,
        call: &impl Fn(&mut tonic::metadata::MetadataMap, &str),
    ) -> tonic::Request<T> {
        let tenant = message.tenant_id().to_owned();
        let mut request = tonic::Request::new(message);
        call(request.metadata_mut(), &tenant);
        request
    }
    let get = || GetOperationRequest {
        tenant_id: tenant.to_owned(),
        id: id.to_owned(),
    };
    let mut client = client.clone();
    let mut codes = Vec::new();
    let code = |result: Result<(), tonic::Status>| result.err().map_or(Code::Ok, |s| s.code());
    codes.push((
        "create",
        code(
            client
                .create_operation(request(
                    create_request(tenant, Kind::SearchPeople, SEARCH, ""),
                    &call,
                ))
                .await
                .map(drop),
        ),
    ));
    codes.push((
        "get",
        code(client.get_operation(request(get(), &call)).await.map(drop)),
    ));
    codes.push((
        "list",
        code(
            client
                .list_operations(request(
                    ListOperationsRequest {
                        tenant_id: tenant.to_owned(),
                        ..Default::default()
                    },
                    &call,
                ))
                .await
                .map(drop),
        ),
    ));
    codes.push((
        "cancel",
        code(
            client
                .cancel_operation(request(
                    CancelOperationRequest {
                        tenant_id: tenant.to_owned(),
                        id: id.to_owned(),
                    },
                    &call,
                ))
                .await
                .map(drop),
        ),
    ));
    codes.push((
        "results",
        code(
            client
                .get_operation_results(request(
                    GetOperationResultsRequest {
                        tenant_id: tenant.to_owned(),
                        id: id.to_owned(),
                        ..Default::default()
                    },
                    &call,
                ))
                .await
                .map(drop),
        ),
    ));
    // A watch's refusal comes as the call's status, or as the stream's
    // first item.
    let watch = match client.watch_operation(request(get(), &call)).await {
        Err(status) => status.code(),
        Ok(stream) => match stream.into_inner().next().await {
            Some(Err(status)) => status.code(),
            _ => Code::Ok,
        },
    };
    codes.push(("watch", watch));
    codes
}

fn bearer(metadata: &mut tonic::metadata::MetadataMap, token: &str) {
    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
}

#[tokio::test]
async fn calls_without_a_valid_service_token_are_refused() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    let client = app.client();

    // A key the service does not trust, signing as the gateway.
    let (intruder_key, _) = dossier_identity::generate_key_pair();
    let intruder = TokenSigner::from_pem(intruder_key.as_bytes(), "gateway").unwrap();
    let no_token = |_: &mut tonic::metadata::MetadataMap, _: &str| {};
    let garbage = |m: &mut tonic::metadata::MetadataMap, _: &str| bearer(m, "not.a.token");
    let basic = |m: &mut tonic::metadata::MetadataMap, _: &str| {
        m.insert("authorization", "Basic Z2F0ZXdheTpwdw==".parse().unwrap());
    };
    let forged = |m: &mut tonic::metadata::MetadataMap, tenant: &str| {
        bearer(m, &intruder.token(tenant).unwrap())
    };
    for (name, codes) in [
        (
            "no token",
            codes_of_every_method(&client, "acme", &op.id, no_token).await,
        ),
        (
            "garbage",
            codes_of_every_method(&client, "acme", &op.id, garbage).await,
        ),
        (
            "basic",
            codes_of_every_method(&client, "acme", &op.id, basic).await,
        ),
        (
            "untrusted key",
            codes_of_every_method(&client, "acme", &op.id, forged).await,
        ),
    ] {
        for (method, code) in codes {
            assert_eq!(code, Code::Unauthenticated, "{name}: {method}");
        }
    }

    // Nothing was created or cancelled; the operation is still the
    // tenant's, and a call with a valid token reads it.
    assert_eq!(app.record_count().await, 1);
    assert_eq!(app.job_count().await, 1);
    let read = app.get("acme", &op.id).await.unwrap();
    assert_eq!(status(&read), Status::Queued);
}

#[tokio::test]
async fn a_token_acts_only_for_the_tenant_it_names() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    let client = app.client();

    // A valid token for globex on requests for acme.
    let globex = |m: &mut tonic::metadata::MetadataMap, _: &str| {
        let token = signed(GetOperationRequest {
            tenant_id: "globex".to_owned(),
            id: String::new(),
        });
        let value = token.metadata().get("authorization").unwrap().clone();
        m.insert("authorization", value);
    };
    for (method, code) in codes_of_every_method(&client, "acme", &op.id, globex).await {
        assert_eq!(code, Code::PermissionDenied, "{method}");
    }
    assert_eq!(app.record_count().await, 1);
    assert_eq!(
        status(&app.get("acme", &op.id).await.unwrap()),
        Status::Queued
    );

    // With its own tenant's token, globex does not see acme's operation.
    let own = app.get("globex", &op.id).await.unwrap_err();
    assert_eq!(own.code(), Code::NotFound);
}

/// Starts a replica of `app` with `adjust`ed configuration; the returned
/// token stops it.
async fn start(
    app: &TestApp,
    adjust: impl FnOnce(&mut operations::Config),
) -> (std::net::SocketAddr, CancellationToken) {
    let mut config = app.config();
    adjust(&mut config);
    let service = App::build(config).await.unwrap();
    let addr = service.grpc_addr();
    let stop = CancellationToken::new();
    tokio::spawn(service.run(stop.clone()));
    (addr, stop)
}

#[tokio::test]
async fn reflection_is_off_unless_configured_and_then_speaks_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1, v1alpha};
    let app = TestApp::spawn().await;

    async fn v1_services(channel: Channel) -> Result<Vec<String>, tonic::Status> {
        let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel);
        let request = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            )),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await?
            .into_inner();
        let response = stream.message().await?.unwrap_or_default();
        match response.message_response {
            Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) => {
                Ok(list.service.into_iter().map(|s| s.name).collect())
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }
    async fn v1alpha_services(channel: Channel) -> Result<Vec<String>, tonic::Status> {
        let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
        let request = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        };
        let mut stream = client
            .server_reflection_info(tokio_stream::iter([request]))
            .await?
            .into_inner();
        let response = stream.message().await?.unwrap_or_default();
        match response.message_response {
            Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(
                list,
            )) => Ok(list.service.into_iter().map(|s| s.name).collect()),
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }
    let channel = |addr| {
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy()
    };

    // The default replica: no reflection at all.
    let (off, stop_off) = start(&app, |_| {}).await;
    let error = v1_services(channel(off)).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
    let error = v1alpha_services(channel(off)).await.unwrap_err();
    assert_eq!(error.code(), Code::Unimplemented);
    stop_off.cancel();

    let (on, stop_on) = start(&app, |config| config.reflection = true).await;
    let services = v1_services(channel(on)).await.unwrap();
    assert!(
        services.iter().any(|s| s == "dossier.v1.Operations"),
        "{services:?}"
    );
    let services = v1alpha_services(channel(on)).await.unwrap();
    assert!(
        services.iter().any(|s| s == "dossier.v1.Operations"),
        "{services:?}"
    );
    stop_on.cancel();
}

#[tokio::test]
async fn with_tls_the_service_speaks_only_tls_and_with_a_client_ca_only_to_clients_it_issued() {
    let app = TestApp::spawn().await;
    let pki = dossier_testkit::TestPki::new();
    let server = pki.issue("operations");
    let gateway = pki.issue("gateway");
    let ca = Certificate::from_pem(std::fs::read(pki.ca()).unwrap());
    let identity = Identity::from_pem(
        std::fs::read(&gateway.cert).unwrap(),
        std::fs::read(&gateway.key).unwrap(),
    );
    let list = || {
        signed(ListOperationsRequest {
            tenant_id: "acme".to_owned(),
            ..Default::default()
        })
    };
    async fn connect(
        addr: std::net::SocketAddr,
        tls: Option<ClientTlsConfig>,
    ) -> OperationsClient<Channel> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint =
            Channel::from_shared(format!("{scheme}://localhost:{}", addr.port())).unwrap();
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).unwrap();
        }
        OperationsClient::new(endpoint.connect_lazy())
    }
    let trusting = || {
        ClientTlsConfig::new()
            .ca_certificate(ca.clone())
            .domain_name("localhost")
    };

    // Server TLS: a client trusting the CA is served; a plain-text client
    // and one that does not trust the CA are not.
    let (addr, stop) = start(&app, |config| {
        config.tls.tls_cert = Some(server.cert.clone());
        config.tls.tls_key = Some(server.key.clone());
    })
    .await;
    connect(addr, Some(trusting()))
        .await
        .list_operations(list())
        .await
        .unwrap();
    assert!(
        connect(addr, None)
            .await
            .list_operations(list())
            .await
            .is_err()
    );
    let other_ca = dossier_testkit::TestPki::new();
    let untrusting = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(other_ca.ca()).unwrap()))
        .domain_name("localhost");
    assert!(
        connect(addr, Some(untrusting))
            .await
            .list_operations(list())
            .await
            .is_err()
    );
    stop.cancel();

    // Mutual TLS: only a client with a certificate of the CA gets in.
    let (addr, stop) = start(&app, |config| {
        config.tls.tls_cert = Some(server.cert.clone());
        config.tls.tls_key = Some(server.key.clone());
        config.tls.tls_client_ca = Some(pki.ca());
    })
    .await;
    assert!(
        connect(addr, Some(trusting()))
            .await
            .list_operations(list())
            .await
            .is_err()
    );
    connect(addr, Some(trusting().identity(identity)))
        .await
        .list_operations(list())
        .await
        .unwrap();
    stop.cancel();
}
