//! Check 9: the network model. Every overlay's namespace denies all
//! ingress and egress by default; every workload is selected by an allow
//! policy of its own; the connections the services need are allowed and
//! the others refused, as the rendered NetworkPolicies decide them (a small
//! evaluator of their semantics); and only the research worker leaves the
//! cluster, on TCP 80/443 to public addresses. Also: compose publishes only
//! the API and the dev UIs, on loopback.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::Report;
use super::compose::services_of;
use super::k8s::Overlay;

/// The namespaces of the peers outside the overlay's namespace that the
/// manifests name (deploy/k8s/base/network/kustomization.yaml).
const INGRESS_CONTROLLER_NAMESPACE: &str = "ingress-nginx";
const PROMETHEUS_NAMESPACE: &str = "monitoring";
const KEDA_NAMESPACE: &str = "keda";
/// The only workload allowed out of the cluster (company sites).
/// The pods that connect beyond the cluster (80/443, public addresses
/// only): the research worker (company sites) and the webhooks service
/// (tenants' receivers).
const INTERNET: &[&str] = &["research-worker", "webhooks"];

/// Ranges an egress to the internet must leave out (`except`): loopback,
/// private, link-local (cloud metadata), CGNAT, "this network", and for
/// IPv6 loopback, unique-local, link-local and the IPv4-mapped form.
const NOT_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
];

pub(super) fn check_network(overlays: &[Overlay], compose: &Value, report: &mut Report) {
    let mut problems = Vec::new();
    for overlay in overlays {
        problems.extend(
            network_problems(overlay)
                .into_iter()
                .map(|p| format!("{}: {p}", overlay.name)),
        );
    }
    problems.extend(compose_port_problems(compose));
    report.check(
        "network: default-deny NetworkPolicies, every workload allowed only what it needs, research the only egress beyond the cluster (80/443, public addresses); compose publishes only the API and dev UIs",
        problems,
    );
}

/// One end of a connection.
#[derive(Clone, Debug)]
struct Endpoint {
    /// The workload's name, or a description.
    name: String,
    /// A pod (of some namespace), or an address outside the cluster.
    pod: bool,
    namespace: String,
    namespace_labels: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    /// Named container ports: name -> (port, protocol).
    ports: BTreeMap<String, (u16, String)>,
    ip: IpAddr,
    /// Annotations of the pod template.
    annotations: BTreeMap<String, String>,
}

impl Endpoint {
    fn outside_pod(namespace: &str, labels: &[(&str, &str)]) -> Endpoint {
        Endpoint {
            name: format!("a pod of namespace {namespace}"),
            pod: true,
            namespace: namespace.to_owned(),
            namespace_labels: namespace_labels(namespace),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ports: BTreeMap::new(),
            // A pod address: inside the private ranges.
            ip: IpAddr::from([10, 244, 9, 9]),
            annotations: BTreeMap::new(),
        }
    }

    fn address(ip: &str) -> Endpoint {
        Endpoint {
            name: ip.to_owned(),
            pod: false,
            namespace: String::new(),
            namespace_labels: BTreeMap::new(),
            labels: BTreeMap::new(),
            ports: BTreeMap::new(),
            ip: ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            annotations: BTreeMap::new(),
        }
    }
}

fn namespace_labels(namespace: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(
        "kubernetes.io/metadata.name".to_owned(),
        namespace.to_owned(),
    )])
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// The pods of an overlay: one endpoint per workload, with its pod
/// template's labels and named ports.
fn workloads(overlay: &Overlay) -> Vec<(Endpoint, &Value)> {
    let namespace = overlay.namespace();
    let mut labels_of_namespace = namespace_labels(&namespace);
    if let Some(ns) = overlay.find("Namespace", &namespace) {
        labels_of_namespace.extend(string_map(&ns["metadata"]["labels"]));
    }
    let mut out = Vec::new();
    for (i, doc) in overlay
        .docs
        .iter()
        .filter(|d| {
            ["Deployment", "StatefulSet", "DaemonSet", "Job"]
                .contains(&d["kind"].as_str().unwrap_or_default())
        })
        .enumerate()
    {
        let template = &doc["spec"]["template"];
        let mut ports = BTreeMap::new();
        for c in template["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for p in c["ports"].as_array().into_iter().flatten() {
                if let (Some(name), Some(port)) = (p["name"].as_str(), p["containerPort"].as_u64())
                {
                    let protocol = p["protocol"].as_str().unwrap_or("TCP").to_owned();
                    ports.insert(
                        name.to_owned(),
                        (u16::try_from(port).unwrap_or(0), protocol),
                    );
                }
            }
        }
        let host = u8::try_from(i % 250).unwrap_or(0) + 1;
        out.push((
            Endpoint {
                name: doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                pod: true,
                namespace: namespace.clone(),
                namespace_labels: labels_of_namespace.clone(),
                labels: string_map(&template["metadata"]["labels"]),
                ports,
                ip: IpAddr::from([10, 244, 0, host]),
                annotations: string_map(&template["metadata"]["annotations"]),
            },
            doc,
        ));
    }
    out
}

/// A label selector (matchLabels and matchExpressions) selects `labels`;
/// an empty one selects everything.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k).map(String::as_str) == v.as_str());
    let expressions_match = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let value = labels.get(e["key"].as_str().unwrap_or_default());
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e["operator"].as_str().unwrap_or_default() {
                "In" => value.is_some_and(|v| values.contains(&v.as_str())),
                "NotIn" => !value.is_some_and(|v| values.contains(&v.as_str())),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
    labels_match && expressions_match
}

fn is_empty_selector(selector: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .is_none_or(|m| m.is_empty())
        && selector["matchExpressions"]
            .as_array()
            .is_none_or(|m| m.is_empty())
}

/// The NetworkPolicies of an overlay.
fn policies(overlay: &Overlay) -> Vec<&Value> {
    overlay
        .docs
        .iter()
        .filter(|d| d["kind"] == "NetworkPolicy")
        .collect()
}

/// `Ingress` or `Egress` is among the policy's types (as the API server
/// defaults them: Ingress always, Egress when it has egress rules).
fn has_type(policy: &Value, kind: &str) -> bool {
    match policy["spec"]["policyTypes"].as_array() {
        Some(types) => types.iter().any(|t| t == kind),
        None => kind == "Ingress" || !policy["spec"]["egress"].is_null(),
    }
}

fn policy_name(policy: &Value) -> &str {
    policy["metadata"]["name"].as_str().unwrap_or_default()
}

/// A peer of a rule (`to` / `from` entry) of a policy in `namespace` matches `other`.
fn peer_matches(peer: &Value, namespace: &str, other: &Endpoint) -> bool {
    if let Some(block) = peer.get("ipBlock") {
        let Some(cidr) = block["cidr"].as_str().and_then(Net::parse) else {
            return false;
        };
        return cidr.contains(other.ip)
            && !block["except"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(Net::parse)
                .any(|e| e.contains(other.ip));
    }
    if !other.pod {
        return false;
    }
    let namespace_ok = match peer.get("namespaceSelector") {
        Some(selector) => selects(selector, &other.namespace_labels),
        None => other.namespace == namespace,
    };
    let pod_ok = peer
        .get("podSelector")
        .is_none_or(|selector| selects(selector, &other.labels));
    namespace_ok && pod_ok
}

/// The rule's ports admit `port`/`protocol` on `dst` (named ports are the
/// destination pod's).
fn ports_match(ports: &Value, dst: &Endpoint, port: u16, protocol: &str) -> bool {
    let Some(ports) = ports.as_array().filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|p| {
        if p["protocol"].as_str().unwrap_or("TCP") != protocol {
            return false;
        }
        match &p["port"] {
            Value::Null => true,
            Value::Number(n) => {
                let from = n.as_u64().unwrap_or(0);
                let to = p["endPort"].as_u64().unwrap_or(from);
                (from..=to).contains(&u64::from(port))
            }
            Value::String(name) => dst
                .ports
                .get(name)
                .is_some_and(|(n, proto)| *n == port && proto == protocol),
            _ => false,
        }
    })
}

/// Whether the policies let `src` open a connection to `dst` on
/// `port`/`protocol`: the egress side of `src` (when it is a pod of the
/// namespace) and the ingress side of `dst` (likewise) must both allow it.
fn allowed(
    policies: &[&Value],
    namespace: &str,
    src: &Endpoint,
    dst: &Endpoint,
    port: u16,
    protocol: &str,
) -> bool {
    let side = |kind: &str, own: &Endpoint, other: &Endpoint, rules: &str, peers: &str| {
        if !(own.pod && own.namespace == namespace) {
            return true;
        }
        let isolating: Vec<&&Value> = policies
            .iter()
            .filter(|p| selects(&p["spec"]["podSelector"], &own.labels) && has_type(p, kind))
            .collect();
        isolating.is_empty()
            || isolating.iter().any(|p| {
                p["spec"][rules]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|rule| {
                        let peer_ok = match rule[peers].as_array() {
                            None => true,
                            Some(list) if list.is_empty() => true,
                            Some(list) => {
                                list.iter().any(|peer| peer_matches(peer, namespace, other))
                            }
                        };
                        peer_ok && ports_match(&rule["ports"], dst, port, protocol)
                    })
            })
    };
    side("Egress", src, dst, "egress", "to") && side("Ingress", dst, src, "ingress", "from")
}

/// Everything wrong with one overlay's network model.
fn network_problems(overlay: &Overlay) -> Vec<String> {
    let mut problems = Vec::new();
    let namespace = overlay.namespace();
    let policies = policies(overlay);
    let pods = workloads(overlay);

    // A default deny, for ingress and for egress.
    for (kind, rules) in [("Ingress", "ingress"), ("Egress", "egress")] {
        let denies = policies.iter().any(|p| {
            is_empty_selector(&p["spec"]["podSelector"])
                && has_type(p, kind)
                && p["spec"][rules].as_array().is_none_or(|r| r.is_empty())
        });
        if !denies {
            problems.push(format!(
                "no default-deny NetworkPolicy for {kind} (podSelector {{}}, policyTypes [{kind}], no {rules} rules)"
            ));
        }
    }

    // Every workload has an allow policy of its own (not only a
    // namespace-wide one such as DNS).
    for (pod, _) in &pods {
        let own = policies.iter().any(|p| {
            !is_empty_selector(&p["spec"]["podSelector"])
                && selects(&p["spec"]["podSelector"], &pod.labels)
                && (p["spec"]["ingress"]
                    .as_array()
                    .is_some_and(|r| !r.is_empty())
                    || p["spec"]["egress"]
                        .as_array()
                        .is_some_and(|r| !r.is_empty()))
        });
        if !own {
            problems.push(format!(
                "{}: its pods are selected by no allow NetworkPolicy of their own",
                pod.name
            ));
        }
    }

    // Egress beyond the cluster: an ipBlock, or a rule with no `to`.
    problems.extend(egress_beyond_cluster(&policies, &pods));

    // The connections the manifests need, and some they must not have.
    let (needed, refused) = flows(overlay, &pods);
    for (src, dst, port, protocol, why) in needed {
        if !allowed(&policies, &namespace, &src, &dst, port, &protocol) {
            problems.push(format!(
                "{} -> {} {protocol} {port} ({why}) is not allowed",
                src.name, dst.name
            ));
        }
    }
    for (src, dst, port, protocol, why) in refused {
        if allowed(&policies, &namespace, &src, &dst, port, &protocol) {
            problems.push(format!(
                "{} -> {} {protocol} {port} is allowed, but {why}",
                src.name, dst.name
            ));
        }
    }
    problems
}

/// Egress rules that leave the cluster: only the research worker may have
/// one, only on TCP 80/443, and only to public addresses.
fn egress_beyond_cluster(policies: &[&Value], pods: &[(Endpoint, &Value)]) -> Vec<String> {
    let mut problems = Vec::new();
    for policy in policies {
        let selected: Vec<&str> = pods
            .iter()
            .filter(|(p, _)| selects(&policy["spec"]["podSelector"], &p.labels))
            .map(|(p, _)| p.name.as_str())
            .collect();
        for (i, rule) in policy["spec"]["egress"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let place = format!("NetworkPolicy {} egress[{i}]", policy_name(policy));
            let peers = rule["to"].as_array().filter(|t| !t.is_empty());
            let blocks: Vec<&Value> = peers
                .into_iter()
                .flatten()
                .filter_map(|p| p.get("ipBlock"))
                .collect();
            if peers.is_some() && blocks.is_empty() {
                continue;
            }
            if peers.is_none() {
                problems.push(format!("{place}: egress to any address (no `to`)"));
            }
            let others: Vec<&&str> = selected.iter().filter(|n| !INTERNET.contains(n)).collect();
            if !others.is_empty() || is_empty_selector(&policy["spec"]["podSelector"]) {
                problems.push(format!(
                    "{place}: egress beyond the cluster for {} (only {} may leave it)",
                    if others.is_empty() {
                        "every pod".to_owned()
                    } else {
                        others
                            .iter()
                            .map(|s| (**s).to_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    INTERNET.join(" and ")
                ));
            }
            let ports = rule["ports"].as_array().filter(|p| !p.is_empty());
            let web_only = ports.is_some_and(|ports| {
                ports.iter().all(|p| {
                    p["protocol"].as_str().unwrap_or("TCP") == "TCP"
                        && p["endPort"].is_null()
                        && (p["port"] == 80 || p["port"] == 443)
                })
            });
            if !web_only {
                problems.push(format!(
                    "{place}: egress beyond the cluster must be TCP 80/443 only, it allows {}",
                    ports.map_or_else(
                        || "every port".to_owned(),
                        |p| Value::from(p.clone()).to_string()
                    )
                ));
            }
            for block in blocks {
                let cidr_text = block["cidr"].as_str().unwrap_or_default();
                let Some(cidr) = Net::parse(cidr_text) else {
                    problems.push(format!("{place}: ipBlock cidr {cidr_text:?} is not a CIDR"));
                    continue;
                };
                let except: Vec<Net> = block["except"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .filter_map(Net::parse)
                    .collect();
                for range in NOT_PUBLIC.iter().filter_map(|r| Net::parse(r)) {
                    if cidr.overlaps(&range) && !except.iter().any(|e| e.covers(&range)) {
                        problems.push(format!(
                            "{place}: ipBlock {cidr_text} reaches {} (not public): add it to `except`",
                            range.text
                        ));
                    }
                }
            }
        }
    }
    problems
}

type Flow = (Endpoint, Endpoint, u16, String, String);

/// The connections the overlay's workloads need (first list) and some that
/// must be refused (second list).
fn flows(overlay: &Overlay, pods: &[(Endpoint, &Value)]) -> (Vec<Flow>, Vec<Flow>) {
    let mut needed: Vec<Flow> = Vec::new();
    let mut refused: Vec<Flow> = Vec::new();
    let flow = |src: &Endpoint, dst: &Endpoint, port: u16, protocol: &str, why: String| {
        (src.clone(), dst.clone(), port, protocol.to_owned(), why)
    };
    let named = |name: &str| pods.iter().find(|(p, _)| p.name == name).map(|(p, _)| p);
    let is_nats = |p: &Endpoint| {
        p.labels
            .get("app.kubernetes.io/name")
            .is_some_and(|n| n == "nats")
    };
    let dns = Endpoint::outside_pod("kube-system", &[("k8s-app", "kube-dns")]);
    let elsewhere = Endpoint::outside_pod("elsewhere", &[("app", "anything")]);
    let prometheus = Endpoint::outside_pod(
        PROMETHEUS_NAMESPACE,
        &[("app.kubernetes.io/name", "prometheus")],
    );

    for (pod, workload) in pods {
        needed.push(flow(pod, &dns, 53, "UDP", "cluster DNS".into()));
        needed.push(flow(pod, &dns, 53, "TCP", "cluster DNS".into()));
        // What its containers connect to: NATS and the operations and
        // webhooks services, through the Services their URLs name.
        for container in workload["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let (env, _) = overlay.env_of(container);
            for var in [
                "DOSSIER_NATS_URL",
                "DOSSIER_OPERATIONS_URL",
                "DOSSIER_WEBHOOKS_URL",
            ] {
                for url in env.get(var).into_iter().flat_map(|v| v.split(',')) {
                    for (dst, port) in service_backends(overlay, pods, url.trim()) {
                        needed.push(flow(pod, dst, port, "TCP", format!("{var} {url}")));
                    }
                }
            }
        }
        // Prometheus scrapes what the annotations say.
        if pod
            .annotations
            .get("prometheus.io/scrape")
            .is_some_and(|v| v == "true")
            && let Some(port) = pod
                .annotations
                .get("prometheus.io/port")
                .and_then(|p| p.parse().ok())
        {
            needed.push(flow(
                &prometheus,
                pod,
                port,
                "TCP",
                "prometheus.io/scrape".into(),
            ));
        }
        // Nothing of another namespace reaches any port, but as allowed above.
        for (port, protocol) in pod.ports.values() {
            refused.push(flow(
                &elsewhere,
                pod,
                *port,
                protocol,
                "no other namespace needs it".into(),
            ));
        }
        // No pod reaches the internal or link-local ranges beyond the cluster.
        for (ip, port) in [
            ("169.254.169.254", 80),
            ("10.0.0.1", 443),
            ("127.0.0.1", 80),
            ("100.64.0.1", 443),
            ("172.16.0.1", 443),
            ("192.168.1.1", 80),
            ("::ffff:a00:1", 443),
            ("fd00::1", 443),
            ("fe80::1", 80),
            ("93.184.215.14", 22),
        ] {
            refused.push(flow(
                pod,
                &Endpoint::address(ip),
                port,
                "TCP",
                "it is not a public web address".into(),
            ));
        }
        let public = Endpoint::address("93.184.215.14");
        if INTERNET.contains(&pod.name.as_str()) {
            needed.push(flow(pod, &public, 443, "TCP", "the public web".into()));
            needed.push(flow(pod, &public, 80, "TCP", "the public web".into()));
        } else {
            refused.push(flow(
                pod,
                &public,
                443,
                "TCP",
                format!("only {} leave the cluster", INTERNET.join(" and ")),
            ));
        }
    }
    // NATS: routes between the nodes, KEDA reads the monitoring port; no
    // one else reaches either.
    let nats_pods: Vec<&Endpoint> = pods.iter().map(|(p, _)| p).filter(|p| is_nats(p)).collect();
    for nats in &nats_pods {
        let route = nats.ports.get("cluster").map_or(6222, |(p, _)| *p);
        let monitor = nats.ports.get("monitor").map_or(8222, |(p, _)| *p);
        for other in &nats_pods {
            needed.push(flow(
                other,
                nats,
                route,
                "TCP",
                "NATS cluster routes".into(),
            ));
        }
        for (pod, _) in pods.iter().filter(|(p, _)| !is_nats(p)) {
            refused.push(flow(
                pod,
                nats,
                route,
                "TCP",
                "only NATS nodes route".into(),
            ));
            refused.push(flow(
                pod,
                nats,
                monitor,
                "TCP",
                "no service reads NATS monitoring".into(),
            ));
        }
        if overlay.docs.iter().any(|d| d["kind"] == "ScaledObject") {
            let keda = Endpoint::outside_pod(KEDA_NAMESPACE, &[("app", "keda-operator")]);
            needed.push(flow(
                &keda,
                nats,
                monitor,
                "TCP",
                "KEDA's nats-jetstream scaler".into(),
            ));
        }
    }
    // The Ingress controller reaches the Ingress's backends.
    let controller = Endpoint::outside_pod(
        INGRESS_CONTROLLER_NAMESPACE,
        &[("app.kubernetes.io/name", "ingress-nginx")],
    );
    for ingress in overlay.docs.iter().filter(|d| d["kind"] == "Ingress") {
        for backend in ingress_backends(ingress) {
            for (dst, port) in service_backends(overlay, pods, &backend) {
                needed.push(flow(&controller, dst, port, "TCP", "the Ingress".into()));
            }
        }
    }
    // Only the gateway calls the operations and webhooks services.
    for (service, default) in [("operations", 50051), ("webhooks", 50052)] {
        let Some(target) = named(service) else {
            continue;
        };
        let grpc = target.ports.get("grpc").map_or(default, |(p, _)| *p);
        for (pod, _) in pods
            .iter()
            .filter(|(p, _)| p.name != "gateway" && p.name != service)
        {
            refused.push(flow(
                pod,
                target,
                grpc,
                "TCP",
                format!("only the gateway calls the {service} service"),
            ));
        }
    }
    (needed, refused)
}

/// `service:port` of each backend of an Ingress.
fn ingress_backends(ingress: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for rule in ingress["spec"]["rules"].as_array().into_iter().flatten() {
        for path in rule["http"]["paths"].as_array().into_iter().flatten() {
            let service = &path["backend"]["service"];
            let port = service["port"]["number"]
                .as_u64()
                .map(|n| n.to_string())
                .or_else(|| service["port"]["name"].as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push(format!(
                "{}:{port}",
                service["name"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

/// The pods (and their ports) behind `host:port` of a URL, through the
/// Service `host` of the overlay (its selector and target port). The port
/// may be a Service port's name.
fn service_backends<'a>(
    overlay: &Overlay,
    pods: &'a [(Endpoint, &Value)],
    url: &str,
) -> Vec<(&'a Endpoint, u16)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
    let name = host.split('.').next().unwrap_or_default();
    let Some(service) = overlay.find("Service", name) else {
        return Vec::new();
    };
    let Some(service_port) = service["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["port"].as_u64().is_some_and(|n| n.to_string() == port) || p["name"] == port)
    else {
        return Vec::new();
    };
    let target = &service_port["targetPort"];
    pods.iter()
        .filter(|(p, _)| selects(&json_selector(&service["spec"]["selector"]), &p.labels))
        .filter_map(|(p, _)| {
            let port = match target {
                Value::String(name) => p.ports.get(name).map(|(n, _)| *n),
                Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                _ => service_port["port"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok()),
            }?;
            Some((p, port))
        })
        .collect()
}

/// A Service's selector (a plain map) as a label selector.
fn json_selector(selector: &Value) -> Value {
    serde_json::json!({ "matchLabels": selector })
}

/// An IPv4 or IPv6 CIDR.
#[derive(Debug)]
struct Net {
    text: String,
    v6: bool,
    /// The address as 128 bits (IPv4 in the low 32).
    bits: u128,
    prefix: u32,
}

impl Net {
    fn parse(text: &str) -> Option<Net> {
        let (addr, prefix) = text.split_once('/')?;
        let prefix: u32 = prefix.parse().ok()?;
        let (v6, bits) = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(a) => (false, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, u128::from(a)),
        };
        (prefix <= if v6 { 128 } else { 32 }).then(|| Net {
            text: text.to_owned(),
            v6,
            bits,
            prefix,
        })
    }

    fn width(&self) -> u32 {
        if self.v6 { 128 } else { 32 }
    }

    /// The first `prefix` bits of `bits`.
    fn masked(&self, bits: u128, prefix: u32) -> u128 {
        let host = self.width() - prefix;
        if host >= 128 { 0 } else { bits >> host }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let (v6, bits) = match ip {
            IpAddr::V4(a) => (false, u128::from(u32::from(a))),
            IpAddr::V6(a) => (true, u128::from(a)),
        };
        v6 == self.v6 && self.masked(bits, self.prefix) == self.masked(self.bits, self.prefix)
    }

    /// `other` lies wholly inside this network.
    fn covers(&self, other: &Net) -> bool {
        self.v6 == other.v6
            && self.prefix <= other.prefix
            && self.masked(other.bits, self.prefix) == self.masked(self.bits, self.prefix)
    }

    fn overlaps(&self, other: &Net) -> bool {
        self.covers(other) || other.covers(self)
    }
}

/// Compose publishes only the API and the dev UIs, on loopback: NATS (no
/// users in compose), the operations service's gRPC port and the admin
/// ports stay inside the stack's network.
fn compose_port_problems(compose: &Value) -> Vec<String> {
    const PUBLISHED: &[(&str, u64)] = &[("gateway", 8080), ("jaeger", 16686), ("prometheus", 9090)];
    let mut problems = Vec::new();
    for (name, service) in services_of(compose) {
        for port in service["ports"].as_array().into_iter().flatten() {
            let target = port["target"].as_u64().unwrap_or_default();
            if !PUBLISHED.contains(&(name, target)) {
                problems.push(format!(
                    "docker-compose.yml {name}: publishes port {target}, which is internal (published: {PUBLISHED:?})"
                ));
            }
            let host_ip = port["host_ip"].as_str().unwrap_or_default();
            if !["127.0.0.1", "::1"].contains(&host_ip) {
                problems.push(format!(
                    "docker-compose.yml {name}: port {target} is published on {:?}, not on loopback",
                    if host_ip.is_empty() { "every interface" } else { host_ip }
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::k8s::{assert_names, overlay_from_yaml};
    use super::*;

    /// A small namespace in the shape of the shipped overlays: NATS, the
    /// gateway, the operations service, a search and a research worker,
    /// and the policies of deploy/k8s/base/network.
    fn good() -> String {
        let mut yaml = String::from(WORKLOADS);
        for file in [
            "default-deny.yaml",
            "dns.yaml",
            "nats.yaml",
            "gateway.yaml",
            "operations.yaml",
            "workers.yaml",
            "research-internet.yaml",
        ] {
            yaml.push_str("\n---\n");
            yaml.push_str(
                &std::fs::read_to_string(crate::root().join("deploy/k8s/base/network").join(file))
                    .unwrap(),
            );
        }
        yaml
    }

    const WORKLOADS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: dossier}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: broker, namespace: dossier}
data: {DOSSIER_NATS_URL: "nats://nats:4222"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: gateway, namespace: dossier}
data: {DOSSIER_NATS_URL: "nats://nats:4222", DOSSIER_OPERATIONS_URL: "https://operations:50051"}
---
kind: Service
metadata: {name: nats, namespace: dossier}
spec:
  selector: {app.kubernetes.io/name: nats}
  ports: [{name: client, port: 4222, targetPort: client}]
---
kind: Service
metadata: {name: operations, namespace: dossier}
spec:
  selector: {app.kubernetes.io/name: operations}
  ports: [{name: grpc, port: 50051, targetPort: grpc}]
---
kind: Service
metadata: {name: gateway, namespace: dossier}
spec:
  selector: {app.kubernetes.io/name: gateway}
  ports: [{name: http, port: 8080, targetPort: http}]
---
kind: Ingress
metadata: {name: gateway, namespace: dossier}
spec:
  rules:
    - http:
        paths: [{path: /api, backend: {service: {name: gateway, port: {name: http}}}}]
---
kind: ScaledObject
metadata: {name: search-worker, namespace: dossier}
---
kind: StatefulSet
metadata: {name: nats, namespace: dossier}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/name: nats}
    spec:
      containers:
        - name: nats
          image: nats:2.15.1-alpine
          ports: [{name: client, containerPort: 4222}, {name: cluster, containerPort: 6222}, {name: monitor, containerPort: 8222}]
---
kind: Deployment
metadata: {name: gateway, namespace: dossier}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/name: gateway, dossier.dev/nats-client: "true"}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "8080"}
    spec:
      containers:
        - name: gateway
          image: dossier/gateway:0.1.0
          envFrom: [{configMapRef: {name: gateway}}]
          ports: [{name: http, containerPort: 8080}]
---
kind: Deployment
metadata: {name: operations, namespace: dossier}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/name: operations, dossier.dev/nats-client: "true"}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9090"}
    spec:
      containers:
        - name: operations
          image: dossier/operations:0.1.0
          envFrom: [{configMapRef: {name: broker}}]
          ports: [{name: grpc, containerPort: 50051}, {name: admin, containerPort: 9090}]
---
kind: Deployment
metadata: {name: search-worker, namespace: dossier}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/name: search-worker, app.kubernetes.io/component: worker, dossier.dev/nats-client: "true"}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9090"}
    spec:
      containers:
        - name: worker
          image: dossier/search-worker:0.1.0
          envFrom: [{configMapRef: {name: broker}}]
          ports: [{name: admin, containerPort: 9090}]
---
kind: Deployment
metadata: {name: research-worker, namespace: dossier}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/name: research-worker, app.kubernetes.io/component: worker, dossier.dev/nats-client: "true"}
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9090"}
    spec:
      containers:
        - name: worker
          image: dossier/research-worker:0.1.0
          envFrom: [{configMapRef: {name: broker}}]
          ports: [{name: admin, containerPort: 9090}]
"#;

    fn problems_of(yaml: &str) -> Vec<String> {
        network_problems(&overlay_from_yaml("production", yaml))
    }

    #[test]
    fn the_shipped_policies_pass() {
        assert_eq!(problems_of(&good()), Vec::<String>::new());
    }

    #[test]
    fn only_the_nats_policy_as_before_fails_on_every_count() {
        // The manifests before issue 14: NATS's ingress policy only.
        let yaml = format!(
            "{WORKLOADS}\n---\n{}",
            r#"
kind: NetworkPolicy
metadata: {name: nats}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: nats}}
  policyTypes: [Ingress]
  ingress:
    - ports: [{port: 4222}]
      from: [{podSelector: {matchLabels: {dossier.dev/nats-client: "true"}}}]
"#
        );
        let problems = problems_of(&yaml);
        assert_names(&problems, "no default-deny NetworkPolicy for Ingress");
        assert_names(&problems, "no default-deny NetworkPolicy for Egress");
        assert_names(
            &problems,
            "gateway: its pods are selected by no allow NetworkPolicy",
        );
        assert_names(
            &problems,
            "search-worker -> operations TCP 50051 is allowed, but only the gateway",
        );
        assert_names(
            &problems,
            "search-worker -> 169.254.169.254 TCP 80 is allowed",
        );
        assert_names(
            &problems,
            "search-worker -> 93.184.215.14 TCP 443 is allowed, but only research-worker",
        );
    }

    #[test]
    fn a_missing_default_deny_or_allow_is_named() {
        let without = |name: &str| {
            good()
                .split("\n---\n")
                .filter(|doc| !doc.contains(&format!("metadata:\n  name: {name}\n")))
                .collect::<Vec<_>>()
                .join("\n---\n")
        };
        assert_names(
            &problems_of(&without("default-deny")),
            "no default-deny NetworkPolicy for Egress",
        );
        let no_dns = problems_of(&without("dns"));
        assert_names(
            &no_dns,
            "gateway -> a pod of namespace kube-system UDP 53 (cluster DNS) is not allowed",
        );
        let no_gateway = problems_of(&without("gateway"));
        assert_names(
            &no_gateway,
            "gateway -> operations TCP 50051 (DOSSIER_OPERATIONS_URL https://operations:50051) is not allowed",
        );
        assert_names(
            &no_gateway,
            "a pod of namespace ingress-nginx -> gateway TCP 8080 (the Ingress) is not allowed",
        );
        let no_clients = problems_of(&without("nats-clients"));
        assert_names(
            &no_clients,
            "search-worker -> nats TCP 4222 (DOSSIER_NATS_URL nats://nats:4222) is not allowed",
        );
        assert_names(
            &problems_of(&without("nats")),
            "nats: its pods are selected by no allow",
        );
    }

    #[test]
    fn internet_egress_is_research_only_web_only_public_only() {
        let yaml = good();
        // Research without the link-local and private exceptions.
        let open = yaml
            .replace("              - 169.254.0.0/16\n", "")
            .replace("              - 10.0.0.0/8\n", "");
        let problems = problems_of(&open);
        assert_names(
            &problems,
            "ipBlock 0.0.0.0/0 reaches 169.254.0.0/16 (not public)",
        );
        assert_names(
            &problems,
            "research-worker -> 169.254.169.254 TCP 80 is allowed",
        );
        assert_names(&problems, "research-worker -> 10.0.0.1 TCP 443 is allowed");
        // Any port, not only 80/443.
        let any_port = yaml.replace(
            "    - ports:\n        - protocol: TCP\n          port: 80\n        - protocol: TCP\n          port: 443\n      to:\n        - ipBlock:",
            "    - to:\n        - ipBlock:",
        );
        assert_names(
            &problems_of(&any_port),
            "must be TCP 80/443 only, it allows every port",
        );
        // The same rule for every worker.
        let workers = yaml.replace(
            "podSelector:\n    matchLabels:\n      app.kubernetes.io/name: research-worker",
            "podSelector:\n    matchLabels:\n      app.kubernetes.io/component: worker",
        );
        let problems = problems_of(&workers);
        assert_names(
            &problems,
            "egress beyond the cluster for search-worker (only research-worker and webhooks may leave it)",
        );
        // Egress with no `to` at all.
        let anywhere = format!(
            "{yaml}\n---\nkind: NetworkPolicy\nmetadata: {{name: open}}\nspec:\n  podSelector: {{matchLabels: {{app.kubernetes.io/name: gateway}}}}\n  policyTypes: [Egress]\n  egress: [{{ports: [{{port: 443}}]}}]\n"
        );
        let problems = problems_of(&anywhere);
        assert_names(
            &problems,
            "NetworkPolicy open egress[0]: egress to any address (no `to`)",
        );
        assert_names(&problems, "gateway -> 93.184.215.14 TCP 443 is allowed");
    }

    #[test]
    fn nats_ports_are_for_nats_and_keda_only() {
        let yaml = good().replace(
            "        - namespaceSelector:\n            matchLabels:\n              kubernetes.io/metadata.name: keda\n",
            "        - podSelector: {}\n",
        );
        let problems = problems_of(&yaml);
        assert_names(
            &problems,
            "a pod of namespace keda -> nats TCP 8222 (KEDA's nats-jetstream scaler) is not allowed",
        );
        // Both ends must be open for a connection: the clients' egress too.
        assert!(
            !problems.iter().any(|p| p.contains("gateway -> nats")),
            "{problems:#?}"
        );
        let clients_anywhere = yaml.replace(
            "  egress:\n    - ports:\n        - protocol: TCP\n          port: 4222\n",
            "  egress:\n    - ports: []\n",
        );
        let problems = problems_of(&clients_anywhere);
        assert_names(
            &problems,
            "gateway -> nats TCP 8222 is allowed, but no service reads NATS monitoring",
        );
        // The route port stays closed at NATS's end.
        assert!(
            !problems.iter().any(|p| p.contains("6222")),
            "{problems:#?}"
        );
    }

    #[test]
    fn selectors_cidrs_and_ports() {
        let labels: BTreeMap<String, String> = [("a".to_owned(), "1".to_owned())].into();
        assert!(selects(&serde_json::json!({}), &labels));
        assert!(selects(
            &serde_json::json!({"matchLabels": {"a": "1"}}),
            &labels
        ));
        assert!(!selects(
            &serde_json::json!({"matchLabels": {"a": "2"}}),
            &labels
        ));
        assert!(selects(
            &serde_json::json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1"]}]}),
            &labels
        ));
        assert!(!selects(
            &serde_json::json!({"matchExpressions": [{"key": "b", "operator": "Exists"}]}),
            &labels
        ));
        let all = Net::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!(!all.contains("::1".parse().unwrap()));
        assert!(
            Net::parse("10.0.0.0/8")
                .unwrap()
                .covers(&Net::parse("10.1.0.0/16").unwrap())
        );
        assert!(
            !Net::parse("10.1.0.0/16")
                .unwrap()
                .covers(&Net::parse("10.0.0.0/8").unwrap())
        );
        assert!(
            Net::parse("::/0")
                .unwrap()
                .overlaps(&Net::parse("fe80::/10").unwrap())
        );
        assert!(
            Net::parse("::ffff:0:0/96")
                .unwrap()
                .contains("::ffff:a00:1".parse().unwrap())
        );
        assert!(Net::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn compose_publishes_only_the_api_and_the_uis_on_loopback() {
        let compose = serde_json::json!({"services": {
            "gateway": {"ports": [{"target": 8080, "host_ip": "127.0.0.1"}]},
            "operations": {"ports": [{"target": 50051, "host_ip": "127.0.0.1"}]},
            "nats": {"ports": [{"target": 4222, "host_ip": "127.0.0.1"}]},
            "jaeger": {"ports": [{"target": 16686}]},
        }});
        let problems = compose_port_problems(&compose);
        assert_names(
            &problems,
            "operations: publishes port 50051, which is internal",
        );
        assert_names(&problems, "nats: publishes port 4222, which is internal");
        assert_names(
            &problems,
            "jaeger: port 16686 is published on \"every interface\"",
        );
        assert!(
            !problems
                .iter()
                .any(|p| p.starts_with("docker-compose.yml gateway")),
            "{problems:?}"
        );
    }
}
