//! Standard Webhooks v1 signatures: `webhook-signature` is `v1,` and the
//! base64 HMAC-SHA256, under the endpoint's secret, of
//! `<webhook-id>.<webhook-timestamp>.<body>`; several space-separated
//! signatures while a rotated secret is still in its grace period.

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use secrecy::{ExposeSecret as _, SecretSlice, SecretString};
use sha2::Sha256;

/// The prefix of a secret as tenants see it.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a signing key (256 bits, HMAC-SHA256's block-size-friendly
/// length).
pub const SECRET_BYTES: usize = 32;

/// A fresh random signing key.
pub(crate) fn new_key() -> SecretSlice<u8> {
    let mut bytes = vec![0_u8; SECRET_BYTES];
    rand::fill(bytes.as_mut_slice());
    SecretSlice::from(bytes)
}

/// `whsec_<base64>`: the key as the tenant is shown it (once).
pub(crate) fn display(key: &SecretSlice<u8>) -> SecretString {
    SecretString::from(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(key.expose_secret())
    ))
}

/// The `webhook-signature` value: one `v1,<base64>` per key, space
/// separated, the current key's first.
pub(crate) fn signature_header(
    keys: &[&SecretSlice<u8>],
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    keys.iter()
        .map(|key| format!("v1,{}", sign(key, webhook_id, timestamp, body)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` under `key`.
fn sign(key: &SecretSlice<u8>, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
    // Any key length is valid for HMAC: this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.expose_secret()) else {
        return String::new();
    };
    mac.update(webhook_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_signs_as_published() {
        // The Standard Webhooks specification's test vector.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature_header(
                &[&SecretSlice::from(key)],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                body
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_key_signs_and_secrets_show_as_whsec() {
        let (a, b) = (new_key(), new_key());
        let header = signature_header(&[&a, &b], "msg_1", 1, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_ne!(parts[0], parts[1]);
        let shown = display(&a);
        assert!(shown.expose_secret().starts_with(SECRET_PREFIX));
        assert_eq!(shown.expose_secret().len(), SECRET_PREFIX.len() + 44);
    }
}
