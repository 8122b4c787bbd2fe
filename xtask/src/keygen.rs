//! `cargo xtask keygen --tenant NAME`: a new random API key and its keys-file
//! entry. Only the SHA-256 of a key is ever stored; the key format, hash and
//! entry are `dossier-keys`'s, which the gateway authenticates with.

use dossier_keys::{generate_key, hash_key, is_valid_name, keys_file_entry};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Tenant the key belongs to (`[A-Za-z0-9_-]`, 1-64 characters).
    #[arg(long)]
    tenant: String,
    /// Key id shown by `GET /api/me` (default: a random one).
    #[arg(long)]
    id: Option<String>,
}

/// A new key and its keys-file entry.
pub(crate) fn new_entry(tenant: &str, id: &str) -> (String, String) {
    let (key, sha256) = generate_key();
    (key, keys_file_entry(tenant, id, &sha256))
}

/// The keys-file entry for an existing key.
pub(crate) fn entry_for(tenant: &str, id: &str, key: &str) -> String {
    keys_file_entry(tenant, id, &hash_key(key))
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_valid_name(&args.tenant),
        "--tenant must be 1-64 of [A-Za-z0-9_-]"
    );
    let id = args
        .id
        .unwrap_or_else(|| format!("key_{}", random_suffix()));
    anyhow::ensure!(is_valid_name(&id), "--id must be 1-64 of [A-Za-z0-9_-]");
    let (key, entry) = new_entry(&args.tenant, &id);
    println!("# API key (shown once; store it safely): {key}");
    println!("# Append to the file named by DOSSIER_API_KEYS_FILE:");
    print!("{entry}");
    Ok(())
}

/// 12 random hex digits (from a fresh key's hash: no extra dependency).
fn random_suffix() -> String {
    generate_key().1[..12].to_owned()
}
