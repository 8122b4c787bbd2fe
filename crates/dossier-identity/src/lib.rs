//! Service identity between Dossier's services.
//!
//! The operations service holds every tenant's operations and must not trust
//! whoever reaches its port. Each call to it carries a short-lived token in
//! its `authorization` metadata (`Bearer <token>`): a JWT signed with
//! Ed25519 by the calling service (the gateway), naming the caller
//! (`iss`), the operations API (`aud`) and the one tenant the call acts for
//! (`sub`). The operations service holds only public keys, so a breach of it
//! cannot mint tokens, and a token taken from one call only acts for its
//! tenant, for at most [`TOKEN_LIFETIME`].
//!
//! - [`TokenSigner`] (the gateway): signs a token per tenant and reuses it
//!   for half its lifetime, so signing costs nothing per request.
//! - [`TokenVerifier`] (the operations service): checks signature,
//!   audience, issuer and expiry against one or more public keys (several,
//!   so that keys can be rotated), caching recent verdicts by token.
//! - [`grpc`]: the caller's side ([`TokenSigner::request`]) and the
//!   server's ([`grpc::authenticate`], an interceptor, and
//!   [`grpc::authorized_tenant`], the check each handler makes).
//! - [`generate_key_pair`] / [`write_key_pair`]: an Ed25519 key pair in PEM
//!   (PKCS#8 private, SPKI public: what `openssl genpkey -algorithm ed25519`
//!   writes), for `cargo xtask up` and tests.
#![forbid(unsafe_code)]

pub mod grpc;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The audience of tokens for the operations gRPC API.
pub const OPERATIONS_AUDIENCE: &str = "dossier.v1.Operations";
/// The audience of tokens for the webhooks gRPC API: a token taken from a
/// call to one API is refused by the other.
pub const WEBHOOKS_AUDIENCE: &str = "dossier.v1.Webhooks";
/// How long a token is valid after it is signed.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(120);
/// How long a signer reuses a token: half its lifetime, so a reused token
/// always has a minute left when it arrives.
const TOKEN_REUSE: Duration = Duration::from_secs(60);
/// Clock skew tolerated between services.
const LEEWAY_SECS: u64 = 5;
/// Tokens (signer: tenants; verifier: tokens) remembered at most; past this
/// the cache starts over, which costs one signature or verification each.
const CACHE_ENTRIES: usize = 4096;
/// The metadata key the token travels in.
pub const AUTHORIZATION_METADATA: &str = "authorization";

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    /// The calling service.
    iss: String,
    /// The API the token is for.
    aud: String,
    /// The tenant the call acts for.
    sub: String,
    iat: u64,
    exp: u64,
}

/// The verified caller of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The calling service (`iss`), e.g. `gateway`.
    pub service: String,
    /// The only tenant the call may act for (`sub`).
    pub tenant: String,
}

/// Why a key could not be loaded or a token made or accepted. The texts are
/// safe to return to the caller: they hold no key material.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key file could not be read.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file is not an Ed25519 key in PEM.
    #[error("{path} is not an Ed25519 {what} in PEM: {source}")]
    Key {
        /// The file.
        path: PathBuf,
        /// "private key (PKCS#8)" or "public key (SPKI)".
        what: &'static str,
        /// Why.
        source: jsonwebtoken::errors::Error,
    },
    /// No public key was configured.
    #[error("no public key to verify service tokens with")]
    NoKeys,
    /// A token could not be signed.
    #[error("cannot sign a service token: {0}")]
    Sign(jsonwebtoken::errors::Error),
    /// The call carried no token.
    #[error("the call carries no service token")]
    Missing,
    /// The token is malformed, forged, expired, or for another audience or
    /// issuer.
    #[error("the service token is not valid: {0}")]
    Invalid(String),
    /// Key files could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A small bounded map of values stamped with a time (seconds); past
/// [`CACHE_ENTRIES`] it starts over, which costs one signature or
/// verification per entry.
struct Cache<V>(Mutex<HashMap<String, (V, u64)>>);

impl<V> Default for Cache<V> {
    fn default() -> Self {
        Cache(Mutex::new(HashMap::new()))
    }
}

impl<V: Clone> Cache<V> {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (V, u64)>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value under `key` if its stamp is still `fresh`.
    fn get(&self, key: &str, fresh: impl Fn(u64) -> bool) -> Option<V> {
        self.entries()
            .get(key)
            .filter(|(_, stamp)| fresh(*stamp))
            .map(|(value, _)| value.clone())
    }

    fn insert(&self, key: &str, value: V, stamp: u64) {
        let mut entries = self.entries();
        if entries.len() >= CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(key.to_owned(), (value, stamp));
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// Signs service tokens for one calling service.
pub struct TokenSigner {
    key: EncodingKey,
    issuer: String,
    /// Tenant → token, stamped with when it was signed.
    cache: Cache<String>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// A signer with the Ed25519 private key in `pem` (PKCS#8), signing as
    /// `issuer`.
    pub fn from_pem(pem: &[u8], issuer: &str) -> Result<TokenSigner, jsonwebtoken::errors::Error> {
        Ok(TokenSigner {
            key: EncodingKey::from_ed_pem(pem)?,
            issuer: issuer.to_owned(),
            cache: Cache::default(),
        })
    }

    /// A signer with the private key in the PEM file at `path`.
    pub fn from_file(path: &Path, issuer: &str) -> Result<TokenSigner, Error> {
        TokenSigner::from_pem(&read(path)?, issuer).map_err(|source| Error::Key {
            path: path.to_owned(),
            what: "private key (PKCS#8)",
            source,
        })
    }

    /// A token for a call to the operations API acting for `tenant`: a
    /// cached one while it is younger than half its lifetime, else a fresh
    /// one.
    pub fn token(&self, tenant: &str) -> Result<String, Error> {
        self.token_for(OPERATIONS_AUDIENCE, tenant)
    }

    /// A token for a call to the API `audience` acting for `tenant`,
    /// cached as [`TokenSigner::token`]'s.
    pub fn token_for(&self, audience: &str, tenant: &str) -> Result<String, Error> {
        let now = now_secs();
        // Audiences are constants without line breaks: the key is unique.
        let key = format!("{audience}\n{tenant}");
        if let Some(token) = self.cache.get(&key, |signed| {
            now.saturating_sub(signed) < TOKEN_REUSE.as_secs()
        }) {
            return Ok(token);
        }
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: audience.to_owned(),
            sub: tenant.to_owned(),
            iat: now,
            exp: now + TOKEN_LIFETIME.as_secs(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.key)
            .map_err(Error::Sign)?;
        self.cache.insert(&key, token.clone(), now);
        Ok(token)
    }
}

/// Verifies service tokens against a set of public keys.
pub struct TokenVerifier {
    keys: Vec<DecodingKey>,
    validation: Validation,
    /// Token → identity, stamped with its expiry: a token seen before is
    /// not verified again until it expires (the signer reuses each token for
    /// a minute).
    cache: Cache<Identity>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    fn new(keys: Vec<DecodingKey>, issuers: &[&str]) -> TokenVerifier {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[OPERATIONS_AUDIENCE]);
        validation.set_issuer(issuers);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        validation.leeway = LEEWAY_SECS;
        TokenVerifier {
            keys,
            validation,
            cache: Cache::default(),
        }
    }

    /// A verifier accepting tokens from `issuers` signed by any of the
    /// Ed25519 public keys in `pems` (SPKI PEM).
    pub fn from_pems<'a>(
        pems: impl IntoIterator<Item = &'a [u8]>,
        issuers: &[&str],
    ) -> Result<TokenVerifier, jsonwebtoken::errors::Error> {
        let keys = pems
            .into_iter()
            .map(DecodingKey::from_ed_pem)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokenVerifier::new(keys, issuers))
    }

    /// A verifier with the public keys in the PEM files at `paths` (at
    /// least one).
    pub fn from_files(paths: &[PathBuf], issuers: &[&str]) -> Result<TokenVerifier, Error> {
        if paths.is_empty() {
            return Err(Error::NoKeys);
        }
        let mut keys = Vec::with_capacity(paths.len());
        for path in paths {
            let key = DecodingKey::from_ed_pem(&read(path)?).map_err(|source| Error::Key {
                path: path.clone(),
                what: "public key (SPKI)",
                source,
            })?;
            keys.push(key);
        }
        Ok(TokenVerifier::new(keys, issuers))
    }

    /// The same verifier for tokens of the API `audience` instead of the
    /// operations API's.
    pub fn for_audience(mut self, audience: &str) -> TokenVerifier {
        self.validation.set_audience(&[audience]);
        self
    }

    /// Who a call carrying `token` comes from, if a configured key signed
    /// it for this API and it has not expired.
    pub fn verify(&self, token: &str) -> Result<Identity, Error> {
        let now = now_secs();
        if let Some(identity) = self.cache.get(token, |exp| now <= exp + LEEWAY_SECS) {
            return Ok(identity);
        }
        let mut last = Error::NoKeys;
        for key in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation) {
                Ok(data) => {
                    let claims = data.claims;
                    let identity = Identity {
                        service: claims.iss,
                        tenant: claims.sub,
                    };
                    self.cache.insert(token, identity.clone(), claims.exp);
                    return Ok(identity);
                }
                Err(error) => last = Error::Invalid(error.to_string()),
            }
        }
        Err(last)
    }

    /// [`verify`](Self::verify) of an `authorization` value
    /// (`Bearer <token>`); `None` when the call carried none.
    pub fn verify_bearer(&self, authorization: Option<&str>) -> Result<Identity, Error> {
        let value = authorization.ok_or(Error::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| Error::Invalid("expected `Bearer <token>`".to_owned()))?;
        self.verify(token.trim())
    }
}

/// A fresh Ed25519 key pair: the private key as PKCS#8 PEM, the public key
/// as SPKI PEM.
pub fn generate_key_pair() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::fill(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    // Encoding a valid key into PEM cannot fail (it only fails on
    // allocation of a DER document, which aborts anyway); fall back to an
    // empty string that every loader refuses rather than panic.
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .unwrap_or_default();
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap_or_default();
    (private, public)
}

/// Where [`write_key_pair`] puts the key pair.
#[derive(Debug, Clone)]
pub struct KeyPairFiles {
    /// The private key: readable by its owner only.
    pub private: PathBuf,
    /// The public key.
    pub public: PathBuf,
}

/// The key pair in `dir` (`service-token.key`, `service-token.pub`): kept
/// when both exist (the private key's permissions are narrowed to the owner
/// if they were wider), generated otherwise.
pub fn write_key_pair(dir: &Path) -> Result<KeyPairFiles, Error> {
    let files = KeyPairFiles {
        private: dir.join("service-token.key"),
        public: dir.join("service-token.pub"),
    };
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Write { path, source }
    };
    if files.private.is_file() && files.public.is_file() {
        restrict_to_owner(&files.private).map_err(write_error(&files.private))?;
        return Ok(files);
    }
    std::fs::create_dir_all(dir).map_err(write_error(dir))?;
    let (private, public) = generate_key_pair();
    write_secret(&files.private, private.as_bytes()).map_err(write_error(&files.private))?;
    std::fs::write(&files.public, public).map_err(write_error(&files.public))?;
    Ok(files)
}

/// Writes `contents` to `path` readable and writable by its owner only
/// (0600 on Unix), replacing the file atomically: the secret is never
/// readable by others, not even while it is written.
pub fn write_secret(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    restrict_to_owner(file.path())?;
    file.write_all(contents)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// Narrows `path` to owner read/write (0600) on Unix.
pub fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TokenSigner, TokenVerifier, String) {
        let (private, public) = generate_key_pair();
        let signer = TokenSigner::from_pem(private.as_bytes(), "gateway").unwrap();
        let verifier = TokenVerifier::from_pems([public.as_bytes()], &["gateway"]).unwrap();
        (signer, verifier, public)
    }

    #[test]
    fn a_signed_token_names_its_service_and_tenant() {
        let (signer, verifier, _) = pair();
        let token = signer.token("acme").unwrap();
        assert_eq!(
            verifier.verify(&token).unwrap(),
            Identity {
                service: "gateway".to_owned(),
                tenant: "acme".to_owned()
            }
        );
        // Reused while young; another tenant gets another token.
        assert_eq!(signer.token("acme").unwrap(), token);
        assert_ne!(signer.token("other").unwrap(), token);
        let bearer = format!("Bearer {token}");
        assert_eq!(
            verifier.verify_bearer(Some(&bearer)).unwrap().tenant,
            "acme"
        );
    }

    #[test]
    fn a_token_for_one_api_is_refused_by_the_other() {
        let (signer, operations, public) = pair();
        let webhooks = TokenVerifier::from_pems([public.as_bytes()], &["gateway"])
            .unwrap()
            .for_audience(WEBHOOKS_AUDIENCE);
        let for_operations = signer.token("acme").unwrap();
        let for_webhooks = signer.token_for(WEBHOOKS_AUDIENCE, "acme").unwrap();
        assert_ne!(for_operations, for_webhooks, "one cached token per API");
        assert_eq!(webhooks.verify(&for_webhooks).unwrap().tenant, "acme");
        assert!(matches!(
            webhooks.verify(&for_operations),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            operations.verify(&for_webhooks),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn tokens_of_another_key_issuer_or_shape_are_refused() {
        let (signer, _, _) = pair();
        let (_, verifier, _) = pair();
        let token = signer.token("acme").unwrap();
        assert!(matches!(verifier.verify(&token), Err(Error::Invalid(_))));
        assert!(matches!(verifier.verify_bearer(None), Err(Error::Missing)));
        assert!(matches!(
            verifier.verify_bearer(Some("Basic abc")),
            Err(Error::Invalid(_))
        ));
        assert!(matches!(verifier.verify("a.b.c"), Err(Error::Invalid(_))));

        let (private, public) = generate_key_pair();
        let intruder = TokenSigner::from_pem(private.as_bytes(), "intruder").unwrap();
        let verifier = TokenVerifier::from_pems([public.as_bytes()], &["gateway"]).unwrap();
        assert!(verifier.verify(&intruder.token("acme").unwrap()).is_err());
    }

    #[test]
    fn a_tampered_or_expired_token_is_refused() {
        let (private, public) = generate_key_pair();
        let verifier = TokenVerifier::from_pems([public.as_bytes()], &["gateway"]).unwrap();
        let key = EncodingKey::from_ed_pem(private.as_bytes()).unwrap();
        let claims = |sub: &str, iat: u64, exp: u64| Claims {
            iss: "gateway".to_owned(),
            aud: OPERATIONS_AUDIENCE.to_owned(),
            sub: sub.to_owned(),
            iat,
            exp,
        };
        let now = now_secs();
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims("acme", now - 600, now - 300),
            &key,
        )
        .unwrap();
        assert!(verifier.verify(&expired).is_err());

        // The payload of a valid token swapped for another tenant's.
        let valid = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims("acme", now, now + 60),
            &key,
        )
        .unwrap();
        let other = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims("other", now, now + 60),
            &key,
        )
        .unwrap();
        let parts: Vec<&str> = valid.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        assert!(verifier.verify(&forged).is_err());
        assert_eq!(verifier.verify(&valid).unwrap().tenant, "acme");
    }

    #[test]
    fn rotated_keys_are_all_accepted() {
        let (old, _, old_public) = pair();
        let (new, _, new_public) = pair();
        let verifier =
            TokenVerifier::from_pems([old_public.as_bytes(), new_public.as_bytes()], &["gateway"])
                .unwrap();
        assert!(verifier.verify(&old.token("t").unwrap()).is_ok());
        assert!(verifier.verify(&new.token("t").unwrap()).is_ok());
    }

    /// A throw-away pair made as the README says, with
    /// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
    const OPENSSL_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIEB5qDSFu2ON8cDMrTwLmNvyOE4rwIgVCwBGg08+70Zd\n-----END PRIVATE KEY-----\n";
    const OPENSSL_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAgjOgChVPXCuzwJ2nogTIJQ1TV0z6neJbojxxJ+ZDDlM=\n-----END PUBLIC KEY-----\n";

    #[test]
    fn keys_made_with_openssl_sign_and_verify() {
        let signer = TokenSigner::from_pem(OPENSSL_PRIVATE.as_bytes(), "gateway").unwrap();
        let verifier = TokenVerifier::from_pems([OPENSSL_PUBLIC.as_bytes()], &["gateway"]).unwrap();
        assert_eq!(
            verifier.verify(&signer.token("t").unwrap()).unwrap().tenant,
            "t"
        );
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_written_for_the_owner_only_and_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let files = write_key_pair(dir.path()).unwrap();
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.private), 0o600);
        let signer = TokenSigner::from_file(&files.private, "gateway").unwrap();
        let verifier =
            TokenVerifier::from_files(std::slice::from_ref(&files.public), &["gateway"]).unwrap();
        assert!(verifier.verify(&signer.token("t").unwrap()).is_ok());

        // A second call keeps the pair, and narrows a widened private key.
        std::fs::set_permissions(&files.private, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = std::fs::read(&files.private).unwrap();
        let again = write_key_pair(dir.path()).unwrap();
        assert_eq!(std::fs::read(&again.private).unwrap(), before);
        assert_eq!(mode(&again.private), 0o600);
    }
}
