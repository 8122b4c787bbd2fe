//! Check 4: each rendered nats-server configuration passes
//! `nats-server -t`; the NATS users' password variables of `auth.conf`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

use super::Report;
use super::k8s::Overlay;
use crate::nats;

/// `nats-server -t` on each overlay's rendered configuration, with the
/// variables its pods get.
pub(super) fn check_nats_configs(
    nats_bin: &Path,
    overlays: &[Overlay],
    work: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for overlay in overlays {
        let (statefulset, config_map) = match overlay.nats_config() {
            Ok(found) => found,
            Err(why) => {
                problems.push(format!("{}: {why}", overlay.name));
                continue;
            }
        };
        let spec = &statefulset["spec"]["template"]["spec"];
        let dir = work.join(format!("nats-{}", overlay.name));
        std::fs::create_dir_all(&dir)?;
        // The Secrets cert-manager makes (the production TLS certificate)
        // do not exist here: a throwaway certificate stands in, in a
        // directory of the run that the configuration is pointed at.
        let mut mounts = Vec::new();
        let container = &spec["containers"][0];
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let (Some(path), Some(volume)) = (mount["mountPath"].as_str(), mount["name"].as_str())
            else {
                continue;
            };
            let is_certificate = spec["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["name"] == volume)
                .filter_map(|v| v["secret"]["secretName"].as_str())
                .any(|secret| overlay.certificate_of(secret).is_some());
            if is_certificate {
                let stand_in = dir.join(format!("secret-{volume}"));
                throwaway_certificate(&stand_in)?;
                mounts.push((format!("{}/", path.trim_end_matches('/')), stand_in));
            }
        }
        for (file, content) in config_map["data"].as_object().into_iter().flatten() {
            let mut content = content.as_str().unwrap_or_default().to_owned();
            for (path, stand_in) in &mounts {
                content = content.replace(path.as_str(), &format!("{}/", stand_in.display()));
            }
            std::fs::write(dir.join(file), content)?;
        }
        let auth = config_map["data"]["auth.conf"].as_str().unwrap_or_default();
        let mut cmd = Command::new(nats_bin);
        cmd.args(["-t", "-c"])
            .arg(dir.join("nats.conf"))
            .current_dir(&dir);
        cmd.env("POD_NAME", "nats-0");
        for var in nats_password_vars(auth) {
            cmd.env(var, "check");
        }
        let out = cmd.output().context("running nats-server -t")?;
        if !out.status.success() {
            problems.push(format!(
                "{}: {}{}",
                overlay.name,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // The passwords auth.conf reads are the keys of the Secret it gets
        // (when the overlay generates it).
        if let Some(secret) = overlay.docs.iter().find(|d| {
            d["kind"] == "Secret"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("nats-users"))
        }) {
            let keys: BTreeSet<String> = secret["data"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect();
            let wanted: BTreeSet<String> = nats_password_vars(auth).into_iter().collect();
            if keys != wanted {
                problems.push(format!(
                    "{}: Secret nats-users has {keys:?}, auth.conf reads {wanted:?}",
                    overlay.name
                ));
            }
        }
    }
    report.check(
        format!(
            "nats-server configurations valid (nats-server {} -t)",
            nats::VERSION
        ),
        problems,
    );
    Ok(())
}

/// A self-signed certificate and its key as cert-manager writes them into
/// a Secret (`tls.crt`, `tls.key`, `ca.crt`), for `nats-server -t` only.
fn throwaway_certificate(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::run_checked(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args([
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=nats",
                "-addext",
                "subjectAltName=DNS:nats",
            ])
            .arg("-keyout")
            .arg(dir.join("tls.key"))
            .arg("-out")
            .arg(dir.join("tls.crt"))
            .stderr(std::process::Stdio::null()),
    )
    .context("making a throwaway certificate with openssl (for nats-server -t)")?;
    std::fs::copy(dir.join("tls.crt"), dir.join("ca.crt"))?;
    Ok(())
}

/// `$NATS_PASSWORD_*` references of auth.conf.
pub(super) fn nats_password_vars(auth: &str) -> Vec<String> {
    let mut vars = BTreeSet::new();
    for (i, _) in auth.match_indices("$NATS_PASSWORD_") {
        let name: String = auth[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        vars.insert(name);
    }
    vars.into_iter().collect()
}

/// A user of auth.conf and the variable its password comes from.
pub(super) struct NatsUser {
    pub(super) name: String,
    pub(super) password_var: String,
}

/// The users of auth.conf: each `user: <name>` with the
/// `password: $NATS_PASSWORD_<...>` that follows it in the same entry.
pub(super) fn nats_users(auth: &str) -> anyhow::Result<Vec<NatsUser>> {
    let mut users = Vec::new();
    let mut name: Option<String> = None;
    for line in auth.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if let Some(user) = value_of(line, "user:") {
            name = Some(user);
        } else if let Some(password) = value_of(line, "password:") {
            let var = password.trim_start_matches('$').to_owned();
            let user = name
                .take()
                .with_context(|| format!("auth.conf: password {var} before its user"))?;
            users.push(NatsUser {
                name: user,
                password_var: var,
            });
        }
    }
    Ok(users)
}

/// The value after `key` on a line: its first word, unquoted.
fn value_of(line: &str, key: &str) -> Option<String> {
    let rest = &line[line.find(key)? + key.len()..];
    let word = rest.split_whitespace().next()?;
    Some(
        word.trim_matches(|c| matches!(c, '"' | ',' | '}'))
            .to_owned(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn password_variables_of_auth_conf() {
        let vars =
            nats_password_vars("password: $NATS_PASSWORD_A\n password: $NATS_PASSWORD_B_C\n");
        assert_eq!(vars, ["NATS_PASSWORD_A", "NATS_PASSWORD_B_C"]);
    }

    #[test]
    fn users_of_auth_conf() {
        let users = nats_users(
            "users = [\n { user: gateway # the API\n password: $NATS_PASSWORD_GATEWAY }\n {\n user: \"b\"\n password: $NATS_PASSWORD_B\n }\n]",
        )
        .unwrap();
        let pairs: Vec<(&str, &str)> = users
            .iter()
            .map(|u| (u.name.as_str(), u.password_var.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("gateway", "NATS_PASSWORD_GATEWAY"),
                ("b", "NATS_PASSWORD_B")
            ]
        );
    }
}
