//! The tokens on gRPC calls: attached by the caller, checked by the server.

use std::sync::Arc;

use dossier_contracts::v1::Tenanted;
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

use crate::{AUTHORIZATION_METADATA, Error, Identity, TokenSigner, TokenVerifier};

impl TokenSigner {
    /// `message` as a request carrying a token for the tenant it acts for.
    pub fn request<T: Tenanted>(&self, message: T) -> Result<Request<T>, Error> {
        let token = self.token(message.tenant_id())?;
        let value = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Error::Invalid("a token is not a valid metadata value".to_owned()))?;
        let mut request = Request::new(message);
        request.metadata_mut().insert(AUTHORIZATION_METADATA, value);
        Ok(request)
    }
}

/// A tonic interceptor that lets a call through only with a valid token,
/// and hands the caller's [`Identity`] to the handler (request extensions;
/// see [`authorized_tenant`]). Without one: UNAUTHENTICATED.
pub fn authenticate(
    verifier: Arc<TokenVerifier>,
) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let value = request
            .metadata()
            .get(AUTHORIZATION_METADATA)
            .and_then(|value| value.to_str().ok());
        match verifier.verify_bearer(value) {
            Ok(identity) => {
                request.extensions_mut().insert(identity);
                Ok(request)
            }
            Err(error) => {
                tracing::warn!(message = "Call refused: no valid service token.", %error);
                Err(Status::unauthenticated(error.to_string()))
            }
        }
    }
}

/// The tenant `request` acts for, once its token (checked by
/// [`authenticate`]) is known to act for that same tenant. A request for
/// another tenant is PERMISSION_DENIED; one that never passed
/// [`authenticate`] is UNAUTHENTICATED.
pub fn authorized_tenant<T: Tenanted>(request: &Request<T>) -> Result<&str, Status> {
    let identity = request
        .extensions()
        .get::<Identity>()
        .ok_or_else(|| Status::unauthenticated(Error::Missing.to_string()))?;
    let tenant = request.get_ref().tenant_id();
    if identity.tenant != tenant {
        tracing::warn!(
            message = "Call refused: the token acts for another tenant.",
            service = %identity.service,
            token_tenant = %identity.tenant,
            requested_tenant = %tenant
        );
        return Err(Status::permission_denied(
            "the service token does not act for this tenant",
        ));
    }
    Ok(tenant)
}
