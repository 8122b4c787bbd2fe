//! The gRPC API `dossier.v1.Webhooks`: endpoints and their deliveries, per
//! tenant. Every handler first checks that the call's service token acts
//! for the request's tenant (`dossier_identity::grpc::authorized_tenant`);
//! another tenant's endpoint is NOT_FOUND, like a missing one.

use std::sync::Arc;

use dossier_contracts::api::FieldErrors;
use dossier_contracts::api::webhooks::check_webhook;
use dossier_contracts::time_ext;
use dossier_contracts::v1::webhooks_server::Webhooks;
use dossier_contracts::v1::{
    CreateEndpointRequest, CreateEndpointResponse, DeleteEndpointResponse, DeliveryView,
    EndpointView, GetEndpointRequest, ListDeliveriesRequest, ListDeliveriesResponse,
    ListEndpointsRequest, ListEndpointsResponse, WebhookDelivery, WebhookEndpoint,
};
use dossier_identity::grpc::authorized_tenant;
use dossier_netguard::UrlRefused;
use secrecy::ExposeSecret as _;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::{Shared, signing};

/// Deliveries per page by default, and at most.
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// The gRPC handlers.
pub(crate) struct WebhooksService {
    shared: Arc<Shared>,
}

impl WebhooksService {
    pub(crate) fn new(shared: Arc<Shared>) -> WebhooksService {
        WebhooksService { shared }
    }

    /// The tenant of `request`, once its token is known to act for it and
    /// it is a valid tenant id (the endpoints' key).
    fn tenant<T: dossier_contracts::v1::Tenanted>(request: &Request<T>) -> Result<String, Status> {
        let tenant = authorized_tenant(request)?;
        if !crate::is_valid_tenant(tenant) {
            return Err(Error::field("tenant_id", "must be 1-64 of [A-Za-z0-9_-]").into());
        }
        tracing::Span::current().record("tenant.id", tenant);
        Ok(tenant.to_owned())
    }

    /// Checks an endpoint URL against the service's policy: https (unless
    /// plain http is allowed) and public addresses only, now.
    async fn check_url(&self, raw: &str) -> Result<(), Error> {
        let url = dossier_contracts::api::webhooks::check_webhook_url(raw)
            .map_err(|why| Error::field("url", why))?;
        if url.scheme() != "https" && !self.shared.settings.allow_http {
            return Err(Error::field("url", "must be an https:// URL"));
        }
        let settings = &self.shared.settings;
        match settings
            .guard
            .check_url(&url, settings.resolver.as_ref())
            .await
        {
            Ok(()) => Ok(()),
            Err(UrlRefused::NotPublic(refused)) => Err(Error::field(
                "url",
                format!(
                    "must reach the public internet; its host is or resolves to a {} address",
                    refused.class
                ),
            )),
            Err(UrlRefused::NoHost) => Err(Error::field("url", "must name a host")),
            Err(UrlRefused::Unresolved(_)) => Err(Error::field(
                "url",
                "its host name does not resolve to any address",
            )),
        }
    }
}

/// The answer form of a stored endpoint: never its secret.
fn view(endpoint: &WebhookEndpoint) -> EndpointView {
    EndpointView {
        id: endpoint.id.clone(),
        url: endpoint.url.clone(),
        event_types: endpoint.event_types.clone(),
        description: endpoint.description.clone(),
        disabled: endpoint.disabled_at.is_some(),
        disabled_reason: endpoint.disabled_reason.clone(),
        disabled_at: endpoint.disabled_at,
        created_at: endpoint.created_at,
        updated_at: endpoint.updated_at,
        previous_secret_expires_at: endpoint.previous_secret_expires_at.filter(|until| {
            time_ext::from_timestamp(until)
                .is_some_and(|until| until > time::OffsetDateTime::now_utc())
        }),
    }
}

fn delivery_view(record: WebhookDelivery) -> DeliveryView {
    DeliveryView {
        webhook_id: record.webhook_id,
        event_type: record.event_type,
        operation_id: record.operation_id,
        status: record.status,
        attempts: record.attempts,
        created_at: record.created_at,
        updated_at: record.updated_at,
        next_attempt_at: record.next_attempt_at,
    }
}

#[tonic::async_trait]
impl Webhooks for WebhooksService {
    #[tracing::instrument(skip_all, fields(tenant.id))]
    async fn create_endpoint(
        &self,
        request: Request<CreateEndpointRequest>,
    ) -> Result<Response<CreateEndpointResponse>, Status> {
        let tenant = Self::tenant(&request)?;
        let request = request.into_inner();
        let mut errors = FieldErrors::new();
        let description = (!request.description.is_empty()).then_some(request.description.as_str());
        check_webhook(
            "",
            &request.url,
            &request.event_types,
            description,
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(Error::from_fields(errors).into());
        }
        self.check_url(&request.url).await?;
        let key = signing::new_key();
        let now = time_ext::now();
        let endpoint = WebhookEndpoint {
            id: uuid::Uuid::now_v7().to_string(),
            url: request.url,
            event_types: request.event_types,
            description: request.description,
            secret: key.expose_secret().to_vec(),
            created_at: Some(now),
            updated_at: Some(now),
            ..Default::default()
        };
        let limit = self.shared.settings.max_endpoints;
        self.shared
            .endpoints
            .modify(&tenant, |endpoints| {
                if endpoints.len() >= limit {
                    return Err(Error::LimitReached(limit));
                }
                endpoints.push(endpoint.clone());
                Ok((true, ()))
            })
            .await?;
        tracing::info!(message = "Webhook endpoint registered.", endpoint_id = %endpoint.id);
        Ok(Response::new(CreateEndpointResponse {
            endpoint: Some(view(&endpoint)),
            secret: signing::display(&key).expose_secret().to_owned(),
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant.id))]
    async fn list_endpoints(
        &self,
        request: Request<ListEndpointsRequest>,
    ) -> Result<Response<ListEndpointsResponse>, Status> {
        let tenant = Self::tenant(&request)?;
        let endpoints = self.shared.endpoints.load(&tenant).await?;
        Ok(Response::new(ListEndpointsResponse {
            endpoints: endpoints.iter().map(view).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant.id))]
    async fn get_endpoint(
        &self,
        request: Request<GetEndpointRequest>,
    ) -> Result<Response<EndpointView>, Status> {
        let tenant = Self::tenant(&request)?;
        let id = request.into_inner().id;
        let endpoints = self.shared.endpoints.load(&tenant).await?;
        let endpoint = endpoints
            .iter()
            .find(|e| e.id == id)
            .ok_or(Error::NotFound)?;
        Ok(Response::new(view(endpoint)))
    }

    #[tracing::instrument(skip_all, fields(tenant.id))]
    async fn delete_endpoint(
        &self,
        request: Request<GetEndpointRequest>,
    ) -> Result<Response<DeleteEndpointResponse>, Status> {
        let tenant = Self::tenant(&request)?;
        let id = request.into_inner().id;
        self.shared
            .endpoints
            .modify(&tenant, |endpoints| {
                let before = endpoints.len();
                endpoints.retain(|e| e.id != id);
                if endpoints.len() == before {
                    return Err(Error::NotFound);
                }
                Ok((true, ()))
            })
            .await?;
        tracing::info!(message = "Webhook endpoint deleted.", endpoint_id = %id);
        Ok(Response::new(DeleteEndpointResponse {}))
    }

    #[tracing::instrument(skip_all, fields(tenant.id))]
    async fn rotate_secret(
        &self,
        request: Request<GetEndpointRequest>,
    ) -> Result<Response<CreateEndpointResponse>, Status> {
        let tenant = Self::tenant(&request)?;
        let id = request.into_inner().id;
        let key = signing::new_key();
        let now = time::OffsetDateTime::now_utc();
        let until = time_ext::to_timestamp(now + self.shared.settings.rotation_grace);
        let rotated = self
            .shared
            .endpoints
            .modify(&tenant, |endpoints| {
                let endpoint = endpoints
                    .iter_mut()
                    .find(|e| e.id == id)
                    .ok_or(Error::NotFound)?;
                endpoint.previous_secret =
                    std::mem::replace(&mut endpoint.secret, key.expose_secret().to_vec());
                endpoint.previous_secret_expires_at = Some(until);
                endpoint.updated_at = Some(time_ext::to_timestamp(now));
                Ok((true, endpoint.clone()))
            })
            .await?;
        tracing::info!(message = "Webhook secret rotated.", endpoint_id = %id);
        Ok(Response::new(CreateEndpointResponse {
            endpoint: Some(view(&rotated)),
            secret: signing::display(&key).expose_secret().to_owned(),
        }))
    }

    #[tracing::instrument(skip_all, fields(tenant.id))]
    async fn list_deliveries(
        &self,
        request: Request<ListDeliveriesRequest>,
    ) -> Result<Response<ListDeliveriesResponse>, Status> {
        let tenant = Self::tenant(&request)?;
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_PAGE,
            n if n <= MAX_PAGE => n,
            _ => return Err(Error::field("limit", "must be from 1 to 100").into()),
        };
        let cursor = (!request.cursor.is_empty()).then_some(request.cursor.as_str());
        if cursor.is_some_and(|c| !c.starts_with("msg_") || c.contains(['.', '*', '>', ' '])) {
            return Err(Error::field("cursor", "not a cursor of this list").into());
        }
        let endpoints = self.shared.endpoints.load(&tenant).await?;
        if !endpoints.iter().any(|e| e.id == request.endpoint_id) {
            return Err(Error::NotFound.into());
        }
        let (records, next) = self
            .shared
            .deliveries
            .page(&request.endpoint_id, cursor, limit as usize)
            .await?;
        Ok(Response::new(ListDeliveriesResponse {
            deliveries: records.into_iter().map(delivery_view).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }
}
