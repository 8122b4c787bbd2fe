//! `cargo xtask keygen --tenant NAME`: a new random API key and its keys-file
//! entry. Only the SHA-256 of a key is ever stored.

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Tenant the key belongs to (`[A-Za-z0-9_-]`, 1-64 characters).
    #[arg(long)]
    tenant: String,
    /// Key id shown by `GET /api/me` (default: a random one).
    #[arg(long)]
    id: Option<String>,
}

/// A new key: `dk_` and 32 random bytes, base64url.
pub(crate) fn new_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "dk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The keys-file entry for `key`.
pub(crate) fn entry(tenant: &str, id: &str, key: &str) -> String {
    let sha256 = hex::encode(Sha256::digest(key.as_bytes()));
    format!("[[keys]]\ntenant = \"{tenant}\"\nid = \"{id}\"\nsha256 = \"{sha256}\"\n")
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        valid_name(&args.tenant),
        "--tenant must be 1-64 of [A-Za-z0-9_-]"
    );
    let id = args
        .id
        .unwrap_or_else(|| format!("key_{}", hex::encode(rand::random::<[u8; 6]>())));
    anyhow::ensure!(valid_name(&id), "--id must be 1-64 of [A-Za-z0-9_-]");
    let key = new_key();
    println!("# API key (shown once; store it safely): {key}");
    println!("# Append to the file named by DOSSIER_API_KEYS_FILE:");
    print!("{}", entry(&args.tenant, &id, &key));
    Ok(())
}
