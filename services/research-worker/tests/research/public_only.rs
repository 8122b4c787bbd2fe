//! The web step connects only to the public internet: loopback, private,
//! link-local and every other non-public address is refused at connect time,
//! whether the site's host is an IP literal, `localhost` or a name that
//! resolves there, on every redirect hop and every robots.txt redirect. What
//! the tenant is shown is a fixed reason, never an address or a port.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use research_worker::web::{Fetcher, PageStatus, SiteEvidence};
use research_worker::{Config, ResearchConfig};
use tokio::time::Instant;

use crate::helpers::*;

/// Every page's error, and robotsError, when the site is refused.
const REFUSED: &str = "robots.txt could not be read: refused: not a public address";

/// The settings with no allowance for private networks (production's).
fn public_only() -> ResearchConfig {
    let mut config = <Config as clap::Parser>::parse_from(["research-worker"]).research;
    config.page_timeout = Duration::from_secs(2);
    config
}

/// `acme.com` served from `http://acme.test:{port}{path}`, with only the
/// loopback site's address (127.0.0.1) allowed.
fn acme_test(port: u16, path: &str) -> ResearchConfig {
    let mut config = public_only();
    config.site_overrides = vec![
        format!("acme.com=http://acme.test:{port}{path}")
            .parse()
            .unwrap(),
    ];
    config.allow_private_networks = vec!["127.0.0.1/32".parse().unwrap()];
    config
}

async fn gather(config: &ResearchConfig) -> SiteEvidence {
    gather_with(Fetcher::new(config).unwrap()).await
}

async fn gather_with(fetcher: Fetcher) -> SiteEvidence {
    fetcher
        .gather(
            "acme.com",
            4,
            false,
            Instant::now() + Duration::from_secs(30),
        )
        .await
}

/// A DNS server under the test's control (as a hostile one would be): it
/// answers names from a table, and records every name asked.
#[derive(Clone, Default)]
struct TableResolver {
    table: HashMap<String, Vec<IpAddr>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl TableResolver {
    fn new(entries: &[(&str, &[&str])]) -> TableResolver {
        let table = entries
            .iter()
            .map(|(name, ips)| {
                let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
                (name.to_string(), ips)
            })
            .collect();
        TableResolver {
            table,
            asked: Arc::default(),
        }
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }

    /// A fetcher with `config` resolving through this table.
    fn fetcher(&self, config: &ResearchConfig) -> Fetcher {
        Fetcher::with_resolver(config, Arc::new(self.clone())).unwrap()
    }
}

impl Resolve for TableResolver {
    fn resolve(&self, name: Name) -> Resolving {
        self.asked.lock().unwrap().push(name.as_str().to_owned());
        let ips = self.table.get(name.as_str()).cloned();
        Box::pin(async move {
            let ips = ips.ok_or("no such name")?;
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Nothing read, robots.txt refused, and every page `failed` with `error`.
fn assert_every_page_failed(evidence: &SiteEvidence, error: &str, what: &str) {
    assert_eq!(evidence.robots_error.as_deref(), Some(error), "{what}");
    assert!(evidence.pages.is_empty(), "{what}");
    assert_eq!(evidence.reports.len(), 4, "{what}: {:#?}", evidence.reports);
    for r in &evidence.reports {
        assert_eq!(r.status, PageStatus::Failed, "{what}: {r:?}");
        assert_eq!(r.error.as_deref(), Some(error), "{what}: {r:?}");
    }
}

#[tokio::test]
async fn loopback_private_and_link_local_hosts_are_refused_without_a_connection() {
    // Live sites on loopback: a connection reaching them would be recorded.
    let site = Site::start().await;
    let v6 = Site::start_on("[::1]:0", Options::default()).await;
    let (port, v6_port) = (site.addr.port(), v6.addr.port());
    let hosts = [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        // Other spellings of 127.0.0.1, and 0.0.0.0 (which Linux routes to
        // the local host).
        format!("2130706433:{port}"),
        format!("0x7f.1:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("[::1]:{v6_port}"),
        "10.0.0.1".to_owned(),
        "[::ffff:10.0.0.1]".to_owned(),
        "172.16.5.4".to_owned(),
        "192.168.1.1".to_owned(),
        "169.254.169.254".to_owned(),
        "100.64.0.1".to_owned(),
        "[fd00::1]".to_owned(),
        "[fe80::1]".to_owned(),
    ];
    for host in hosts {
        let mut config = public_only();
        config.site_overrides = vec![format!("acme.com=http://{host}/").parse().unwrap()];
        assert_every_page_failed(&gather(&config).await, REFUSED, &host);
    }
    assert!(site.requested().is_empty(), "{:?}", site.requested());
    assert!(v6.requested().is_empty(), "{:?}", v6.requested());
}

#[tokio::test]
async fn robots_txt_redirects_off_the_site_are_not_followed() {
    // Another server on loopback, reachable under the tests' allowance: only
    // the same-site rule keeps robots.txt's redirect from going there.
    let elsewhere = Site::start().await;
    let elsewhere_robots: &'static str = format!("{}robots.txt", elsewhere.url()).leak();
    // And the metadata address, by plain http.
    for location in [elsewhere_robots, "http://169.254.169.254/latest/meta-data/"] {
        let site = Site::start_with(Options {
            robots_location: Some(location),
            ..Options::default()
        })
        .await;
        let evidence = gather(&research_config(&site)).await;
        assert_every_page_failed(
            &evidence,
            "robots.txt could not be read: redirect off the site",
            location,
        );
        assert_eq!(site.requested(), ["/robots.txt"]);
    }
    assert!(
        elsewhere.requested().is_empty(),
        "{:?}",
        elsewhere.requested()
    );
}

#[tokio::test]
async fn unreadable_robots_txt_fails_every_page_with_a_reason_free_of_addresses() {
    // A port nobody listens on (allowed: it is the tests' loopback): robots
    // .txt cannot be read, so (RFC 9309) nothing is fetched, and the pages
    // are `failed` for that reason, not `disallowed` by rules never read.
    let closed = dossier_testkit::ClosedPort::new();
    let port = closed.port();
    let mut config = research_config(&Site::start().await);
    config.site_overrides = vec![format!("acme.com=http://127.0.0.1:{port}").parse().unwrap()];
    let evidence = gather(&config).await;
    assert_every_page_failed(
        &evidence,
        "robots.txt could not be read: connection failed",
        "closed port",
    );
    for text in evidence
        .reports
        .iter()
        .filter_map(|r| r.error.clone())
        .chain(evidence.robots_error.clone())
    {
        assert!(!text.contains("127.0.0.1"), "{text}");
        assert!(!text.contains(&port.to_string()), "{text}");
    }

    // robots.txt answering 503: the same, with the status.
    let site = Site::start_with(Options {
        robots_status: Some(503),
        ..Options::default()
    })
    .await;
    let evidence = gather(&research_config(&site)).await;
    assert_every_page_failed(
        &evidence,
        "robots.txt could not be read: HTTP 503",
        "robots.txt 503",
    );
    assert_eq!(site.requested(), ["/robots.txt"]);
}

#[tokio::test]
async fn names_resolving_to_non_public_addresses_are_refused_at_connect_time() {
    // Each name points at the live loopback site's port: had the connection
    // been made to a loopback form, the site would have recorded it.
    let site = Site::start().await;
    let port = site.addr.port();
    let names: &[(&str, &[&str])] = &[
        ("loopback.test", &["127.0.0.1"]),
        ("private.test", &["10.0.0.1"]),
        ("metadata.test", &["169.254.169.254"]),
        ("v6-loopback.test", &["::1"]),
        ("mapped-loopback.test", &["::ffff:127.0.0.1"]),
        ("mapped-private.test", &["::ffff:10.0.0.1"]),
        ("cgnat.test", &["100.64.0.1"]),
        ("ula.test", &["fd00::1"]),
        ("nat64-loopback.test", &["64:ff9b::7f00:1"]),
        ("all-refused.test", &["10.0.0.1", "127.0.0.1", "::1"]),
    ];
    let resolver = TableResolver::new(names);
    for (name, _) in names {
        let mut config = public_only();
        config.site_overrides = vec![format!("acme.com=http://{name}:{port}/").parse().unwrap()];
        let evidence = gather_with(resolver.fetcher(&config)).await;
        assert_every_page_failed(&evidence, REFUSED, name);
        assert!(resolver.asked().iter().any(|n| n == name), "{name}");
    }
    assert!(site.requested().is_empty(), "{:?}", site.requested());
}

#[tokio::test]
async fn the_allowance_admits_only_its_networks_and_a_name_keeps_only_allowed_addresses() {
    let site = Site::start().await;
    let port = site.addr.port();
    // The refused addresses come first: had they been kept, the client
    // would have tried them.
    let resolver = TableResolver::new(&[(
        "acme.test",
        &["169.254.169.254", "10.0.0.1", "::1", "127.0.0.1"],
    )]);
    let evidence = gather_with(resolver.fetcher(&acme_test(port, "/"))).await;
    assert!(
        evidence.robots_error.is_none(),
        "{:?}",
        evidence.robots_error
    );
    assert_eq!(evidence.pages.len(), 4, "{:#?}", evidence.reports);
    assert_eq!(site.requested()[0], "/robots.txt");
}

#[tokio::test]
async fn a_redirect_hop_to_a_name_resolving_to_a_refused_address_is_refused() {
    // The site (acme.test, allowed) redirects its home page to www.acme.test
    // (the same site by the redirect rule), which resolves to a refused
    // address: the hop's new connection is checked and refused.
    let site = Site::start().await;
    let port = site.addr.port();
    for refused in ["169.254.169.254", "10.0.0.1", "::1", "127.0.0.2"] {
        let resolver =
            TableResolver::new(&[("acme.test", &["127.0.0.1"]), ("www.acme.test", &[refused])]);
        let config = acme_test(port, &format!("{MOVED_TO_WWW}/"));
        let evidence = gather_with(resolver.fetcher(&config)).await;
        assert!(
            evidence.robots_error.is_none(),
            "{:?}",
            evidence.robots_error
        );
        let home = &evidence.reports[0];
        assert_eq!(home.status, PageStatus::Failed, "{refused}: {home:?}");
        assert_eq!(
            home.error.as_deref(),
            Some("refused: not a public address"),
            "{refused}: {home:?}"
        );
        assert!(
            resolver.asked().iter().any(|n| n == "www.acme.test"),
            "{refused}: the hop was resolved, and refused"
        );
    }
    assert!(!site.was_requested(ABOUT), "{:?}", site.requested());
}

#[tokio::test]
async fn a_robots_txt_redirect_to_a_name_resolving_to_a_refused_address_is_refused() {
    let site = Site::start_with(Options {
        robots_location: Some("http://{www}/policies/robots.txt"),
        ..Options::default()
    })
    .await;
    let port = site.addr.port();
    for refused in ["169.254.169.254", "10.0.0.1", "::1"] {
        let resolver =
            TableResolver::new(&[("acme.test", &["127.0.0.1"]), ("www.acme.test", &[refused])]);
        let evidence = gather_with(resolver.fetcher(&acme_test(port, "/"))).await;
        assert_every_page_failed(&evidence, REFUSED, refused);
        assert!(resolver.asked().iter().any(|n| n == "www.acme.test"));
    }
    assert!(
        site.requested().iter().all(|p| p == "/robots.txt"),
        "{:?}",
        site.requested()
    );
}
