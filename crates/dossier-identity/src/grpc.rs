//! The tokens on gRPC calls: attached by the caller, checked by the server.

use std::path::Path;
use std::sync::Arc;

use dossier_contracts::v1::Tenanted;
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

use crate::{AUTHORIZATION_METADATA, Error, Identity, TokenSigner, TokenVerifier};

impl TokenSigner {
    /// `message` as a request to the operations API carrying a token for
    /// the tenant it acts for.
    pub fn request<T: Tenanted>(&self, message: T) -> Result<Request<T>, Error> {
        self.request_for(crate::OPERATIONS_AUDIENCE, message)
    }

    /// `message` as a request to the API `audience` carrying a token for
    /// the tenant it acts for.
    pub fn request_for<T: Tenanted>(
        &self,
        audience: &str,
        message: T,
    ) -> Result<Request<T>, Error> {
        let token = self.token_for(audience, message.tenant_id())?;
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

/// The TLS settings of a gRPC server from PEM files: its certificate chain
/// and private key, and, for mutual TLS, the CA that client certificates
/// must chain to. The process's rustls crypto provider must be installed
/// first (`dossier_nats::install_crypto_provider`).
pub fn server_tls(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<tonic::transport::ServerTlsConfig, Error> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })
    };
    let mut tls = tonic::transport::ServerTlsConfig::new().identity(
        tonic::transport::Identity::from_pem(read(cert)?, read(key)?),
    );
    if let Some(ca) = client_ca {
        tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?));
    }
    Ok(tls)
}
