//! Check 10: service identity and TLS. In every overlay the gateway's
//! service-token private key is a file of a Secret mounted into the gateway
//! alone, and the operations service has the public keys. In the
//! production overlays every connection is TLS: each service's NATS client
//! has a CA (`DOSSIER_NATS_TLS_CA`, and a client certificate when NATS
//! verifies clients), nats-server has a `tls {}` block (and its routes one),
//! the operations service serves TLS, the gateway calls it over `https`
//! with a CA, every file named is mounted read-only, the certificates name
//! the hosts the clients dial, and gRPC reflection is off.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Report;
use super::durability::{block_of, strip_comments, value_at_top};
use super::k8s::Overlay;

pub(super) fn check_tls(overlays: &[Overlay], report: &mut Report) {
    let mut problems = Vec::new();
    for overlay in overlays {
        let mut found = service_token_problems(overlay);
        if overlay.name.starts_with("production") {
            found.extend(production_tls_problems(overlay));
        }
        problems.extend(found.into_iter().map(|p| format!("{}: {p}", overlay.name)));
    }
    report.check(
        "service identity and TLS: the service-token key in the gateway only; production: TLS on every NATS and gRPC connection, certificates for the hosts dialled, no gRPC reflection",
        problems,
    );
}

/// A container of a Dossier service (not NATS), with what it gets.
struct ServiceContainer<'a> {
    /// The service: the last segment of the image's repository.
    service: String,
    workload: &'a Value,
    container: &'a Value,
    env: BTreeMap<String, String>,
}

impl ServiceContainer<'_> {
    fn place(&self) -> String {
        format!(
            "{} {}",
            self.workload["kind"].as_str().unwrap_or_default(),
            self.workload["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
        )
    }
}

fn service_containers(overlay: &Overlay) -> Vec<ServiceContainer<'_>> {
    overlay
        .containers()
        .into_iter()
        .filter_map(|(workload, container)| {
            let image = container["image"].as_str().unwrap_or_default();
            let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
            let (_, service) = repo.rsplit_once('/')?;
            let (env, _) = overlay.env_of(container);
            Some(ServiceContainer {
                service: service.to_owned(),
                workload,
                container,
                env,
            })
        })
        .collect()
}

/// `var` is set to a file that a read-only volume provides; the Secret or
/// ConfigMap it comes from.
fn mounted(
    overlay: &Overlay,
    c: &ServiceContainer,
    var: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    let Some(path) = c.env.get(var) else {
        problems.push(format!("{}: {var} is not set", c.place()));
        return None;
    };
    match overlay.mounted_file(c.workload, c.container, path) {
        Ok(file) => Some(file.name),
        Err(why) => {
            problems.push(format!("{}: {var}: {why}", c.place()));
            None
        }
    }
}

fn service_token_problems(overlay: &Overlay) -> Vec<String> {
    let mut problems = Vec::new();
    let containers = service_containers(overlay);
    let mut key_secret = None;
    for c in &containers {
        match c.service.as_str() {
            "gateway" => {
                key_secret = mounted(overlay, c, "DOSSIER_SERVICE_TOKEN_KEY", &mut problems)
            }
            // Both gRPC services check the gateway's tokens.
            "operations" | "webhooks" => {
                let Some(paths) = c.env.get("DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS") else {
                    problems.push(format!(
                        "{}: DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS is not set",
                        c.place()
                    ));
                    continue;
                };
                for path in paths.split(',') {
                    if let Err(why) = overlay.mounted_file(c.workload, c.container, path.trim()) {
                        problems.push(format!(
                            "{}: DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS: {why}",
                            c.place()
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    // The private key's Secret reaches no other pod.
    if let Some(secret) = key_secret {
        for doc in &overlay.docs {
            let spec = &doc["spec"]["template"]["spec"];
            let mounts_it = spec["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|v| v["secret"]["secretName"] == secret.as_str())
                || spec["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|c| c["envFrom"].as_array().into_iter().flatten())
                    .any(|e| e["secretRef"]["name"] == secret.as_str());
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            if mounts_it && name != "gateway" {
                problems.push(format!(
                    "{} {name}: gets the Secret {secret} (the gateway's service-token private key)",
                    doc["kind"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    problems
}

fn production_tls_problems(overlay: &Overlay) -> Vec<String> {
    let mut problems = Vec::new();
    let containers = service_containers(overlay);

    // nats-server: TLS for clients (and routes), files mounted.
    let nats = nats_tls(overlay, &mut problems);

    for c in &containers {
        // NATS over TLS for every service.
        let ca = mounted(overlay, c, "DOSSIER_NATS_TLS_CA", &mut problems);
        let has_cert = c.env.contains_key("DOSSIER_NATS_TLS_CERT");
        if has_cert || nats.as_ref().is_some_and(|n| n.verifies_clients) {
            mounted(overlay, c, "DOSSIER_NATS_TLS_CERT", &mut problems);
            mounted(overlay, c, "DOSSIER_NATS_TLS_KEY", &mut problems);
        }
        if let (Some(nats), Some(_)) = (&nats, ca) {
            for url in c
                .env
                .get("DOSSIER_NATS_URL")
                .into_iter()
                .flat_map(|u| u.split(','))
            {
                let host = host_of(url);
                if !nats.names.iter().any(|n| name_matches(n, &host)) {
                    problems.push(format!(
                        "{}: DOSSIER_NATS_URL {url}: NATS's certificate does not name {host} (it names {:?})",
                        c.place(),
                        nats.names
                    ));
                }
            }
        }
        // gRPC reflection stays off.
        if let Some(value) = c.env.get("DOSSIER_OPERATIONS_REFLECTION")
            && ["true", "1", "yes", "on"].contains(&value.to_ascii_lowercase().as_str())
        {
            problems.push(format!(
                "{}: DOSSIER_OPERATIONS_REFLECTION={value}: gRPC reflection on in production",
                c.place()
            ));
        }
    }

    // The operations service serves TLS; the gateway dials https with a CA.
    let mut operations_names = None;
    let mut operations_verifies = false;
    for c in containers.iter().filter(|c| c.service == "operations") {
        if let Some(secret) = mounted(overlay, c, "DOSSIER_OPERATIONS_TLS_CERT", &mut problems) {
            operations_names = Some(certificate_names(overlay, &secret));
        }
        mounted(overlay, c, "DOSSIER_OPERATIONS_TLS_KEY", &mut problems);
        if c.env.contains_key("DOSSIER_OPERATIONS_TLS_CLIENT_CA") {
            operations_verifies = true;
            mounted(
                overlay,
                c,
                "DOSSIER_OPERATIONS_TLS_CLIENT_CA",
                &mut problems,
            );
        }
    }
    for c in containers.iter().filter(|c| c.service == "gateway") {
        let url = c
            .env
            .get("DOSSIER_OPERATIONS_URL")
            .cloned()
            .unwrap_or_default();
        if !url.starts_with("https://") {
            problems.push(format!(
                "{}: DOSSIER_OPERATIONS_URL {url:?} is not https",
                c.place()
            ));
        }
        mounted(overlay, c, "DOSSIER_OPERATIONS_TLS_CA", &mut problems);
        if operations_verifies {
            mounted(
                overlay,
                c,
                "DOSSIER_OPERATIONS_TLS_CLIENT_CERT",
                &mut problems,
            );
            mounted(
                overlay,
                c,
                "DOSSIER_OPERATIONS_TLS_CLIENT_KEY",
                &mut problems,
            );
        }
        if let Some(Some(names)) = &operations_names {
            let host = host_of(&url);
            if !names.iter().any(|n| name_matches(n, &host)) {
                problems.push(format!(
                    "{}: DOSSIER_OPERATIONS_URL {url}: the operations service's certificate does not name {host} (it names {names:?})",
                    c.place()
                ));
            }
        }
    }
    problems
}

/// What nats-server's rendered configuration says about TLS.
struct NatsTls {
    /// The client port requires client certificates (`verify: true`).
    verifies_clients: bool,
    /// The names of its certificate (when a Certificate of the overlay
    /// makes its Secret), for the hosts clients dial.
    names: Vec<String>,
}

fn nats_tls(overlay: &Overlay, problems: &mut Vec<String>) -> Option<NatsTls> {
    let (statefulset, config_map) = match overlay.nats_config() {
        Ok(found) => found,
        Err(why) => {
            problems.push(why);
            return None;
        }
    };
    let container = statefulset["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|c| c.first())?;
    let text = strip_comments(&with_includes(&config_map["data"], "nats.conf"));
    let clients = tls_block(
        overlay,
        statefulset,
        container,
        block_of(&text, "tls"),
        "clients",
        problems,
    );
    let names = clients
        .as_ref()
        .and_then(|b| b.names.clone())
        .unwrap_or_default();
    // Routes: the cluster block, when there is one with routes.
    if let Some(cluster) = block_of(&text, "cluster")
        && cluster.contains("routes")
    {
        tls_block(
            overlay,
            statefulset,
            container,
            block_of(cluster, "tls"),
            "cluster routes",
            problems,
        );
        if !names.is_empty() {
            for route in cluster
                .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
                .filter(|w| w.contains("://"))
            {
                let host = host_of(route);
                if !names.iter().any(|n| name_matches(n, &host)) {
                    problems.push(format!(
                        "{NATS_CONF}: route {route}: NATS's certificate does not name {host} (it names {names:?})"
                    ));
                }
            }
        }
    }
    Some(NatsTls {
        verifies_clients: clients.is_some_and(|b| b.verify),
        names,
    })
}

const NATS_CONF: &str = "nats.conf (with its includes)";

/// A `tls { ... }` block of nats-server's configuration.
struct TlsBlock {
    /// `verify: true`: the peer must present a certificate.
    verify: bool,
    /// The names of the certificate (`cert_file`), when a Certificate of
    /// the overlay writes its Secret.
    names: Option<Vec<String>>,
}

/// Checks a tls block of nats-server (`what` it is for): its certificate,
/// key and CA are files of read-only volumes of the StatefulSet.
fn tls_block(
    overlay: &Overlay,
    statefulset: &Value,
    container: &Value,
    block: Option<&str>,
    what: &str,
    problems: &mut Vec<String>,
) -> Option<TlsBlock> {
    let Some(block) = block else {
        problems.push(format!("{NATS_CONF}: no `tls {{ ... }}` block for {what}"));
        return None;
    };
    let mut names = None;
    for key in ["cert_file", "key_file", "ca_file"] {
        let Some(path) = value_at_top(block, key) else {
            problems.push(format!(
                "{NATS_CONF}: the tls block for {what} has no {key}"
            ));
            continue;
        };
        let path = path.trim_matches(|c| c == '"' || c == '\'');
        match overlay.mounted_file(statefulset, container, path) {
            Ok(file) if key == "cert_file" && file.kind == "Secret" => {
                names = certificate_names(overlay, &file.name);
            }
            Ok(_) => {}
            Err(why) => problems.push(format!("{NATS_CONF}: {what} {key}: {why}")),
        }
    }
    Some(TlsBlock {
        verify: value_at_top(block, "verify").is_some_and(|v| v == "true"),
        names,
    })
}

/// A configuration file of a ConfigMap with its `include "x"` lines
/// replaced by the ConfigMap's file `x`.
fn with_includes(data: &Value, file: &str) -> String {
    let mut out = String::new();
    for line in data[file].as_str().unwrap_or_default().lines() {
        let included = line
            .trim()
            .strip_prefix("include ")
            .map(|f| f.trim().trim_matches(|c| c == '"' || c == '\'' || c == ';'));
        match included.and_then(|f| data[f].as_str()) {
            Some(content) => out.push_str(content),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The DNS names (and common name) of the Certificate that writes the
/// Secret `secret`; `None` when no Certificate of the overlay does.
fn certificate_names(overlay: &Overlay, secret: &str) -> Option<Vec<String>> {
    let cert = overlay.certificate_of(secret)?;
    let mut names: Vec<String> = cert["spec"]["dnsNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    names.extend(cert["spec"]["commonName"].as_str().map(str::to_owned));
    Some(names)
}

/// The host of `scheme://[user@]host:port/...`.
fn host_of(url: &str) -> String {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_owned()
}

/// A certificate name matches a host (`*.x` matches one label in front of `x`).
fn name_matches(name: &str, host: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => name == host,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::k8s::{assert_names, overlay_from_yaml};
    use super::*;

    /// A production namespace in the shape of the shipped overlay: NATS with
    /// TLS for clients and routes, the gateway and the operations service
    /// with mutual TLS, a worker, cert-manager Certificates.
    const GOOD: &str = r#"
kind: ConfigMap
metadata: {name: nats-config-abc}
data:
  nats.conf: |
    listen: 0.0.0.0:4222
    include "tls.conf"
    include "cluster.conf"
  tls.conf: |
    tls {
      cert_file: "/etc/nats-tls/tls.crt"
      key_file: "/etc/nats-tls/tls.key"
      ca_file: "/etc/nats-tls/ca.crt"
      verify: true
    }
  cluster.conf: |
    cluster {
      routes: [
        nats://nats-0.nats-headless:6222
        nats://nats-1.nats-headless:6222
      ]
      tls {
        cert_file: "/etc/nats-tls/tls.crt"
        key_file: "/etc/nats-tls/tls.key"
        ca_file: "/etc/nats-tls/ca.crt"
        verify: true
      }
    }
---
kind: ConfigMap
metadata: {name: broker-abc}
data:
  DOSSIER_NATS_URL: nats://nats:4222
  DOSSIER_NATS_TLS_CA: /etc/dossier/tls/ca.crt
  DOSSIER_NATS_TLS_CERT: /etc/dossier/tls/tls.crt
  DOSSIER_NATS_TLS_KEY: /etc/dossier/tls/tls.key
---
kind: ConfigMap
metadata: {name: operations-abc}
data:
  DOSSIER_OPERATIONS_TLS_CERT: /etc/dossier/tls/tls.crt
  DOSSIER_OPERATIONS_TLS_KEY: /etc/dossier/tls/tls.key
  DOSSIER_OPERATIONS_TLS_CLIENT_CA: /etc/dossier/tls/ca.crt
  DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS: /etc/dossier/service-token-public-keys/service-token.pub
---
kind: ConfigMap
metadata: {name: gateway-abc}
data:
  DOSSIER_OPERATIONS_URL: https://operations:50051
  DOSSIER_OPERATIONS_TLS_CA: /etc/dossier/tls/ca.crt
  DOSSIER_OPERATIONS_TLS_CLIENT_CERT: /etc/dossier/tls/tls.crt
  DOSSIER_OPERATIONS_TLS_CLIENT_KEY: /etc/dossier/tls/tls.key
  DOSSIER_SERVICE_TOKEN_KEY: /etc/dossier/service-token/service-token.key
---
kind: Certificate
metadata: {name: nats}
spec: {secretName: nats-tls, dnsNames: [nats, "*.nats-headless"]}
---
kind: Certificate
metadata: {name: operations}
spec: {secretName: operations-tls, dnsNames: [operations]}
---
kind: Certificate
metadata: {name: gateway}
spec: {secretName: gateway-tls, commonName: gateway}
---
kind: Certificate
metadata: {name: search-worker}
spec: {secretName: search-worker-tls, commonName: search-worker}
---
kind: StatefulSet
metadata: {name: nats}
spec:
  template:
    spec:
      containers:
        - name: nats
          image: nats:2.15.1-alpine
          volumeMounts:
            - {name: tls, mountPath: /etc/nats-tls, readOnly: true}
            - {name: config, mountPath: /etc/nats, readOnly: true}
      volumes:
        - {name: tls, secret: {secretName: nats-tls}}
        - {name: config, configMap: {name: nats-config-abc}}
---
kind: Deployment
metadata: {name: gateway}
spec:
  template:
    spec:
      containers:
        - name: gateway
          image: dossier/gateway:0.1.0
          envFrom: [{configMapRef: {name: broker-abc}}, {configMapRef: {name: gateway-abc}}]
          volumeMounts:
            - {name: tls, mountPath: /etc/dossier/tls, readOnly: true}
            - {name: service-token-key, mountPath: /etc/dossier/service-token, readOnly: true}
      volumes:
        - {name: tls, secret: {secretName: gateway-tls}}
        - {name: service-token-key, secret: {secretName: service-token-key}}
---
kind: Deployment
metadata: {name: operations}
spec:
  template:
    spec:
      containers:
        - name: operations
          image: dossier/operations:0.1.0
          envFrom: [{configMapRef: {name: broker-abc}}, {configMapRef: {name: operations-abc}}]
          volumeMounts:
            - {name: tls, mountPath: /etc/dossier/tls, readOnly: true}
            - {name: keys, mountPath: /etc/dossier/service-token-public-keys, readOnly: true}
      volumes:
        - {name: tls, secret: {secretName: operations-tls}}
        - {name: keys, configMap: {name: service-token-public-keys}}
---
kind: Deployment
metadata: {name: search-worker}
spec:
  template:
    spec:
      containers:
        - name: worker
          image: registry.example.com/dossier/search-worker:0.1.0
          envFrom: [{configMapRef: {name: broker-abc}}]
          volumeMounts:
            - {name: tls, mountPath: /etc/dossier/tls, readOnly: true}
      volumes:
        - {name: tls, secret: {secretName: search-worker-tls}}
"#;

    fn problems_of(yaml: &str) -> Vec<String> {
        let overlay = overlay_from_yaml("production", yaml);
        let mut problems = service_token_problems(&overlay);
        problems.extend(production_tls_problems(&overlay));
        problems
    }

    #[test]
    fn a_production_overlay_with_tls_everywhere_passes() {
        assert_eq!(problems_of(GOOD), Vec::<String>::new());
    }

    #[test]
    fn plain_nats_and_grpc_as_before_are_named() {
        // The production overlay before issue 14: no TLS anywhere.
        let plain = GOOD
            .replace("    include \"tls.conf\"\n", "")
            .replace("  DOSSIER_NATS_TLS_CA: /etc/dossier/tls/ca.crt\n", "")
            .replace(
                "  DOSSIER_OPERATIONS_TLS_CERT: /etc/dossier/tls/tls.crt\n",
                "",
            )
            .replace("https://operations:50051", "http://operations:50051")
            .replace("  DOSSIER_OPERATIONS_TLS_CA: /etc/dossier/tls/ca.crt\n", "");
        let problems = problems_of(&plain);
        assert_names(
            &problems,
            "nats.conf (with its includes): no `tls { ... }` block for clients",
        );
        assert_names(
            &problems,
            "Deployment search-worker: DOSSIER_NATS_TLS_CA is not set",
        );
        assert_names(
            &problems,
            "Deployment gateway: DOSSIER_NATS_TLS_CA is not set",
        );
        assert_names(
            &problems,
            "Deployment operations: DOSSIER_OPERATIONS_TLS_CERT is not set",
        );
        assert_names(
            &problems,
            "Deployment gateway: DOSSIER_OPERATIONS_URL \"http://operations:50051\" is not https",
        );
        assert_names(
            &problems,
            "Deployment gateway: DOSSIER_OPERATIONS_TLS_CA is not set",
        );
    }

    #[test]
    fn routes_without_tls_and_unmounted_files_are_named() {
        let no_route_tls = GOOD.replacen(
            "      tls {\n        cert_file: \"/etc/nats-tls/tls.crt\"\n        key_file: \"/etc/nats-tls/tls.key\"\n        ca_file: \"/etc/nats-tls/ca.crt\"\n        verify: true\n      }\n",
            "",
            1,
        );
        assert_names(
            &problems_of(&no_route_tls),
            "no `tls { ... }` block for cluster routes",
        );
        // The worker's certificate not mounted; a writable mount.
        let unmounted = GOOD.replace(
            "          volumeMounts:\n            - {name: tls, mountPath: /etc/dossier/tls, readOnly: true}\n      volumes:\n        - {name: tls, secret: {secretName: search-worker-tls}}\n",
            "",
        );
        assert_names(
            &problems_of(&unmounted),
            "Deployment search-worker: DOSSIER_NATS_TLS_CA: /etc/dossier/tls/ca.crt is on no mounted volume",
        );
        let writable = GOOD.replace(
            "- {name: tls, mountPath: /etc/nats-tls, readOnly: true}",
            "- {name: tls, mountPath: /etc/nats-tls}",
        );
        assert_names(
            &problems_of(&writable),
            "volume tls is not mounted read-only",
        );
        // A key the Certificate's Secret does not have.
        let wrong_key = GOOD.replace(
            "DOSSIER_NATS_TLS_CA: /etc/dossier/tls/ca.crt",
            "DOSSIER_NATS_TLS_CA: /etc/dossier/tls/ca.pem",
        );
        assert_names(
            &problems_of(&wrong_key),
            "Secret search-worker-tls has no key ca.pem",
        );
        // NATS verifies clients: a client without its certificate.
        let no_client_cert =
            GOOD.replace("  DOSSIER_NATS_TLS_CERT: /etc/dossier/tls/tls.crt\n", "");
        assert_names(
            &problems_of(&no_client_cert),
            "Deployment search-worker: DOSSIER_NATS_TLS_CERT is not set",
        );
    }

    #[test]
    fn certificates_must_name_the_hosts_dialled() {
        let wrong = GOOD
            .replace(
                "dnsNames: [operations]",
                "dnsNames: [operations.dossier.svc]",
            )
            .replace("dnsNames: [nats, \"*.nats-headless\"]", "dnsNames: [nats]");
        let problems = problems_of(&wrong);
        assert_names(
            &problems,
            "the operations service's certificate does not name operations",
        );
        assert_names(
            &problems,
            "route nats://nats-0.nats-headless:6222: NATS's certificate does not name nats-0.nats-headless",
        );
    }

    #[test]
    fn reflection_and_a_shared_private_key_are_named() {
        let reflection = GOOD.replace(
            "  DOSSIER_OPERATIONS_TLS_CERT:",
            "  DOSSIER_OPERATIONS_REFLECTION: \"true\"\n  DOSSIER_OPERATIONS_TLS_CERT:",
        );
        assert_names(
            &problems_of(&reflection),
            "DOSSIER_OPERATIONS_REFLECTION=true: gRPC reflection on in production",
        );
        let shared = GOOD.replace(
            "        - {name: tls, secret: {secretName: search-worker-tls}}\n",
            "        - {name: tls, secret: {secretName: search-worker-tls}}\n        - {name: stolen, secret: {secretName: service-token-key}}\n",
        );
        assert_names(
            &problems_of(&shared),
            "Deployment search-worker: gets the Secret service-token-key",
        );
        let no_key = GOOD.replace(
            "  DOSSIER_SERVICE_TOKEN_KEY: /etc/dossier/service-token/service-token.key\n",
            "",
        );
        assert_names(
            &problems_of(&no_key),
            "Deployment gateway: DOSSIER_SERVICE_TOKEN_KEY is not set",
        );
    }

    #[test]
    fn hosts_and_names() {
        assert_eq!(host_of("nats://user:pw@nats:4222"), "nats");
        assert_eq!(host_of("https://operations:50051/x"), "operations");
        assert!(name_matches("*.nats-headless", "nats-0.nats-headless"));
        assert!(!name_matches("*.nats-headless", "nats-headless"));
        assert!(!name_matches("*.nats-headless", "a.b.nats-headless"));
        assert!(name_matches("nats", "nats"));
    }
}
