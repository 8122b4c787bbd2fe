//! The endpoints store: every endpoint of a tenant in one value of
//! `dossier_webhook_endpoints`, under the tenant id.
//!
//! One value per tenant is what makes the rules simple: the per-tenant
//! limit is kept by the same compare-and-set that writes (two concurrent
//! registrations cannot both take the last slot), and the delivery path
//! reads every endpoint of a record's tenant with one get. A tenant has at
//! most a few dozen endpoints, so the value stays a few KiB.

use async_nats::jetstream::kv;
use dossier_contracts::v1::{WebhookEndpoint, WebhookEndpoints};
use prost::Message as _;
use secrecy::SecretSlice;

use crate::error::Error;

/// Tries of a compare-and-set before giving up ([`Error::Contention`]).
const CAS_TRIES: usize = 10;

/// The endpoints bucket.
#[derive(Clone)]
pub(crate) struct Endpoints {
    kv: kv::Store,
}

impl Endpoints {
    pub(crate) fn new(kv: kv::Store) -> Endpoints {
        Endpoints { kv }
    }

    /// The tenant's endpoints (none when it has none).
    pub(crate) async fn load(&self, tenant: &str) -> Result<Vec<WebhookEndpoint>, Error> {
        Ok(self.read(tenant).await?.0.endpoints)
    }

    /// The stored value and its revision (`None`: no value yet).
    async fn read(&self, tenant: &str) -> Result<(WebhookEndpoints, Option<u64>), Error> {
        let entry = self
            .kv
            .entry(tenant)
            .await
            .map_err(Error::broker("read webhook endpoints"))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let value =
                    WebhookEndpoints::decode(entry.value).map_err(|error| Error::Corrupt {
                        what: "webhook endpoints",
                        key: tenant.to_owned(),
                        reason: error.to_string(),
                    })?;
                Ok((value, Some(entry.revision)))
            }
            // A deleted value has a revision too: writing over it is an
            // update of that revision.
            Some(entry) => Ok((WebhookEndpoints::default(), Some(entry.revision))),
            None => Ok((WebhookEndpoints::default(), None)),
        }
    }

    /// Changes the tenant's endpoints with `change` and writes them back by
    /// compare-and-set, re-reading and re-applying on a lost race. `change`
    /// may refuse (its error is returned, nothing written) or leave the
    /// endpoints as they are (`Ok` with `false` as the first value: nothing
    /// written).
    pub(crate) async fn modify<R>(
        &self,
        tenant: &str,
        mut change: impl FnMut(&mut Vec<WebhookEndpoint>) -> Result<(bool, R), Error>,
    ) -> Result<R, Error> {
        for _ in 0..CAS_TRIES {
            let (mut value, revision) = self.read(tenant).await?;
            let (changed, answer) = change(&mut value.endpoints)?;
            if !changed {
                return Ok(answer);
            }
            let bytes = value.encode_to_vec().into();
            // `true` when written, `false` when another writer came first
            // (read again).
            let written = match revision {
                Some(revision) => match self.kv.update(tenant, bytes, revision).await {
                    Ok(_) => true,
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
                    Err(e) => return Err(Error::broker("write webhook endpoints")(e)),
                },
                None => match self.kv.create(tenant, bytes).await {
                    Ok(_) => true,
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => false,
                    Err(e) => return Err(Error::broker("write webhook endpoints")(e)),
                },
            };
            if written {
                return Ok(answer);
            }
        }
        Err(Error::Contention(format!(
            "the webhook endpoints of {tenant}"
        )))
    }
}

/// The keys that sign for `endpoint` at `now`: its secret, and the one
/// before while the rotation's grace period lasts.
pub(crate) fn signing_keys(
    endpoint: &WebhookEndpoint,
    now: time::OffsetDateTime,
) -> Vec<SecretSlice<u8>> {
    let mut keys = vec![SecretSlice::from(endpoint.secret.clone())];
    let previous_valid = endpoint
        .previous_secret_expires_at
        .as_ref()
        .and_then(dossier_contracts::time_ext::from_timestamp)
        .is_some_and(|until| now < until);
    if previous_valid && !endpoint.previous_secret.is_empty() {
        keys.push(SecretSlice::from(endpoint.previous_secret.clone()));
    }
    keys
}
