//! Web evidence: a few pages of the company's own site (home, about,
//! careers, news), fetched politely and within strict budgets.
//!
//! * **Only the public internet** is connected to: every connection, to a
//!   page, to robots.txt or for a redirect hop, goes through the address
//!   guard ([`crate::guard`]), which refuses loopback, private, link-local
//!   and other non-public addresses at connect time (a test-only allowance
//!   lets listed networks through). No proxy is used, so none can bypass it.
//! * **robots.txt** is read first and honoured for our user agent
//!   (`texting_robots`). Its redirects are followed, up to five (RFC 9309
//!   §2.3.1.2), on the same site only, as pages' are; more than five count
//!   as no robots.txt. A missing one (4xx) allows everything; one that cannot
//!   be read (5xx, timeout, network error, a redirect off the site) means
//!   nothing is fetched, as RFC 9309 asks: every page is then `failed`
//!   ("robots.txt could not be read: …"), not `disallowed`, which only a
//!   robots.txt that was read can say.
//! * **Errors** shown to tenants are fixed reasons ("connection failed",
//!   "refused: not a public address", "HTTP 503", …), never the client's
//!   error text, an address or a port: those are logged instead.
//! * **Budgets**: each page (and robots.txt) gets at most the page timeout,
//!   cut shorter by the step's deadline; its body is streamed and reading
//!   stops at the byte cap (the page is kept, marked `truncated`). A page
//!   not started when the deadline passes is `skipped` (and robots.txt is
//!   not read at all when the deadline has already passed).
//! * **Redirects** are followed by hand, at most the configured number, and
//!   only on the same site (scheme, host and port, `www.{domain}` and
//!   `{domain}` being one site); robots.txt is checked for every hop.
//! * **Sites**: `https://{domain}/`, unless a site override maps the domain
//!   to another base URL (tests and demos); plain `http` is only ever used
//!   through an override.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::{StatusCode, Url};
use serde::Serialize;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::config::ResearchConfig;
use crate::extract::{Extracted, extract};
use crate::guard::{AddressGuard, GuardedResolver, SystemResolver, refusal};

/// Pages fetched at once from one site: a few, to stay polite.
const CONCURRENT_PAGES: usize = 3;
/// Largest robots.txt read (Google reads 500 KiB; a real one is far smaller).
const ROBOTS_MAX_BYTES: usize = 256 * 1024;
/// Redirects followed for robots.txt (RFC 9309 §2.3.1.2: at least five).
const ROBOTS_MAX_REDIRECTS: usize = 5;
/// Paths tried when the home page does not link to them, by category.
const DEFAULT_PATHS: &[&str] = &["about", "careers", "news"];
/// More paths tried at `deep` depth.
const DEEP_PATHS: &[&str] = &["about-us", "company", "jobs", "press", "blog", "team"];
/// Words in a link's path that mark an about, careers or news page.
const INTERESTING: &[&str] = &[
    "about",
    "company",
    "team",
    "leadership",
    "who-we-are",
    "careers",
    "jobs",
    "join",
    "news",
    "press",
    "blog",
];

/// Fetches pages of company sites within the configured budgets.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    guard: AddressGuard,
    overrides: HashMap<String, Url>,
    page_timeout: Duration,
    max_bytes: usize,
    max_redirects: usize,
    user_agent: String,
}

/// Why a page was not read. Its text is what tenants see: a fixed reason,
/// never an address, a port or the HTTP client's error (those are logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The server answered with a non-success status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The page did not finish within its time budget.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A redirect pointed off the site.
    #[error("redirect off the site")]
    OffSite,
    /// A redirect without a usable `Location`.
    #[error("redirect without a valid Location")]
    BadRedirect,
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// robots.txt disallows the URL (a redirect target).
    #[error("disallowed by robots.txt")]
    Disallowed,
    /// Not an HTML page.
    #[error("not an HTML page")]
    NotHtml,
    /// The host is, or resolves only to, an address that is not on the
    /// public internet (see [`crate::guard`]).
    #[error("refused: not a public address")]
    NotPublic,
    /// No connection could be made (name not resolved, refused, reset).
    #[error("connection failed")]
    Connect,
    /// The connection broke while the response was read.
    #[error("the response could not be read")]
    Read,
    /// Not requested: robots.txt could not be read (so, by RFC 9309,
    /// nothing may be fetched).
    #[error("robots.txt could not be read: {0}")]
    RobotsUnread(Box<FetchError>),
}

/// One page read.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL finally read (after redirects).
    pub url: Url,
    /// When its body was read.
    pub fetched_at: OffsetDateTime,
    /// Body bytes read.
    pub bytes: usize,
    /// True when the body was cut at the byte cap.
    pub truncated: bool,
    /// Its text.
    pub content: Extracted,
}

/// What happened to one page the step wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PageStatus {
    /// Read (maybe truncated).
    Fetched,
    /// Not requested: robots.txt disallows it.
    Disallowed,
    /// Requested, but failed (status, timeout, redirect, type).
    Failed,
    /// Not requested: the step's time ran out first.
    Skipped,
}

/// The report on one page, as in the result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageReport {
    /// The URL wanted.
    pub url: String,
    /// What happened.
    pub status: PageStatus,
    /// Body bytes read.
    pub bytes: usize,
    /// True when the body was cut at the byte cap.
    pub truncated: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it was not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The source id of the page in the report (fetched pages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<usize>,
}

/// What the web step gathered from one site.
#[derive(Debug, Clone, Default)]
pub struct SiteEvidence {
    /// The site's base URL.
    pub base: Option<Url>,
    /// Every page wanted, in order, with what happened.
    pub reports: Vec<PageReport>,
    /// The pages read, parallel to the `Fetched` reports.
    pub pages: Vec<Page>,
    /// Why robots.txt could not be read, when it could not.
    pub robots_error: Option<String>,
}

/// The robots.txt rules of one site.
enum Robots {
    /// None (missing, or not parseable): everything is allowed.
    AllowAll,
    /// The rules read.
    Rules(Box<texting_robots::Robot>),
    /// It could not be read: nothing may be fetched.
    Unread(FetchError),
    /// Not asked for: the step's time had already run out.
    NotAsked,
}

impl Robots {
    /// Whether `url` may be fetched: `Err` says why not.
    fn check(&self, url: &Url) -> Result<(), FetchError> {
        match self {
            Robots::AllowAll => Ok(()),
            Robots::Rules(robot) if robot.allowed(url.as_str()) => Ok(()),
            Robots::Rules(_) => Err(FetchError::Disallowed),
            Robots::Unread(why) => Err(FetchError::RobotsUnread(Box::new(why.clone()))),
            // Only reached with no time left, when pages are skipped first.
            Robots::NotAsked => Err(FetchError::Timeout(Duration::ZERO)),
        }
    }
}

impl Fetcher {
    /// A fetcher with `config`'s budgets, overrides and private-network
    /// allowance, resolving names with the system's resolver.
    pub fn new(config: &ResearchConfig) -> Result<Fetcher, reqwest::Error> {
        Fetcher::with_resolver(config, Arc::new(SystemResolver))
    }

    /// [`Fetcher::new`], resolving names with `resolver` (tests point names
    /// at chosen addresses with it); the address guard checks what it
    /// returns.
    pub fn with_resolver(
        config: &ResearchConfig,
        resolver: Arc<dyn reqwest::dns::Resolve>,
    ) -> Result<Fetcher, reqwest::Error> {
        let guard = AddressGuard::new(&config.allow_private_networks);
        if !config.allow_private_networks.is_empty() {
            tracing::warn!(
                message = "The web step may connect to these non-public networks \
                           (for tests and local sites only).",
                networks = ?config.allow_private_networks,
            );
        }
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.page_timeout)
            // Redirects are followed by hand, to keep them on the site, check
            // robots.txt and the address guard at every hop.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect for us, past the guard.
            .no_proxy()
            .dns_resolver(GuardedResolver::new(resolver, guard.clone()))
            .build()?;
        Ok(Fetcher {
            client,
            guard,
            overrides: config
                .site_overrides
                .iter()
                .map(|o| (o.domain.clone(), o.base.clone()))
                .collect(),
            page_timeout: config.page_timeout,
            max_bytes: config.page_max_bytes,
            max_redirects: config.max_redirects,
            user_agent: config.user_agent.clone(),
        })
    }

    /// The base URL of `domain`'s site: its override, else `https://{domain}/`.
    pub fn site_base(&self, domain: &str) -> Option<Url> {
        let domain = dossier_contracts::api::normalize_domain(domain)?;
        match self.overrides.get(&domain) {
            Some(base) => Some(base.clone()),
            None => Url::parse(&format!("https://{domain}/")).ok(),
        }
    }

    /// Gathers up to `max_pages` pages of `domain`'s site before `deadline`:
    /// the home page, then the about, careers and news pages it links to
    /// (or their usual paths), then at `deep` depth other pages it links to.
    /// Never fails: every page's fate is in the reports.
    pub async fn gather(
        &self,
        domain: &str,
        max_pages: usize,
        deep: bool,
        deadline: Instant,
    ) -> SiteEvidence {
        let Some(base) = self.site_base(domain) else {
            return SiteEvidence::default();
        };
        let mut evidence = SiteEvidence {
            base: Some(base.clone()),
            ..SiteEvidence::default()
        };
        let robots = if Instant::now() >= deadline {
            // No time to read robots.txt, nor any page: every page is
            // reported skipped (`visit` checks the deadline first), not
            // disallowed by a robots.txt never asked for.
            Robots::NotAsked
        } else {
            match self.robots(&base, deadline).await {
                Ok(robots) => robots,
                Err(error) => {
                    let unread = FetchError::RobotsUnread(Box::new(error.clone()));
                    evidence.robots_error = Some(unread.to_string());
                    Robots::Unread(error)
                }
            }
        };

        let home = self.visit(&base, &base, &robots, deadline).await;
        let links = match &home {
            (_, Some(page)) => page.content.links.clone(),
            _ => Vec::new(),
        };
        push(&mut evidence, home);

        let wanted = candidates(&base, &links, max_pages.saturating_sub(1), deep);
        let visits = futures::stream::iter(wanted)
            .map(|url| {
                let (base, robots) = (&base, &robots);
                async move { self.visit(base, &url, robots, deadline).await }
            })
            .buffered(CONCURRENT_PAGES)
            .collect::<Vec<_>>()
            .await;
        for visit in visits {
            push(&mut evidence, visit);
        }
        evidence
    }

    /// Reads one URL, with robots.txt and the budgets.
    async fn visit(
        &self,
        base: &Url,
        url: &Url,
        robots: &Robots,
        deadline: Instant,
    ) -> (PageReport, Option<Page>) {
        let started = Instant::now();
        let mut report = PageReport {
            url: url.to_string(),
            status: PageStatus::Fetched,
            bytes: 0,
            truncated: false,
            duration_ms: 0,
            error: None,
            source: None,
        };
        let budget = self
            .page_timeout
            .min(deadline.saturating_duration_since(started));
        if budget.is_zero() {
            report.status = PageStatus::Skipped;
            report.error = Some("the step's time budget ran out".to_owned());
            return (report, None);
        }
        if let Err(why) = robots.check(url) {
            // `disallowed` only when rules that were read say so; a page not
            // requested because robots.txt could not be read is `failed`.
            report.status = match why {
                FetchError::Disallowed => PageStatus::Disallowed,
                _ => PageStatus::Failed,
            };
            report.error = Some(why.to_string());
            return (report, None);
        }
        let result = match tokio::time::timeout(budget, self.fetch(base, url, robots)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(budget)),
        };
        report.duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok((final_url, body, truncated)) => {
                report.bytes = body.len();
                report.truncated = truncated;
                let html = String::from_utf8_lossy(&body);
                let page = Page {
                    url: final_url,
                    fetched_at: OffsetDateTime::now_utc(),
                    bytes: body.len(),
                    truncated,
                    content: extract(&html),
                };
                (report, Some(page))
            }
            Err(error) => {
                tracing::debug!(message = "Page not read.", url = %url, error = %error);
                report.status = PageStatus::Failed;
                report.error = Some(error.to_string());
                (report, None)
            }
        }
    }

    /// GETs `url`, following same-site redirects, and reads at most the
    /// byte cap of an HTML body. Returns the final URL, the bytes and whether
    /// they were cut.
    async fn fetch(
        &self,
        base: &Url,
        url: &Url,
        robots: &Robots,
    ) -> Result<(Url, Vec<u8>, bool), FetchError> {
        let mut url = url.clone();
        for hop in 0..=self.max_redirects {
            let response = self.send(&url).await?;
            let status = response.status();
            if status.is_redirection() {
                if hop == self.max_redirects {
                    return Err(FetchError::TooManyRedirects(self.max_redirects));
                }
                let next = next_hop(base, &url, &response)?;
                robots.check(&next)?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            if let Some(kind) = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
            {
                let kind = kind.to_ascii_lowercase();
                if !(kind.starts_with("text/html") || kind.starts_with("application/xhtml")) {
                    tracing::debug!(message = "Not an HTML page.", url = %url, content_type = %kind);
                    return Err(FetchError::NotHtml);
                }
            }
            let (body, truncated) = read_capped(&url, response, self.max_bytes).await?;
            return Ok((url, body, truncated));
        }
        Err(FetchError::TooManyRedirects(self.max_redirects))
    }

    /// GETs `url` (one hop), through the address guard: an IP-literal host
    /// is checked here, a name by the guarded resolver when the client
    /// connects. The error is a fixed reason; the detail is logged.
    async fn send(&self, url: &Url) -> Result<reqwest::Response, FetchError> {
        if let Err(refused) = self.guard.check_host(url) {
            tracing::warn!(
                message = "Refused a request to a non-public address.",
                url = %url,
                address = %refused.address,
                class = %refused.class,
            );
            return Err(FetchError::NotPublic);
        }
        self.client
            .get(url.clone())
            .send()
            .await
            .map_err(|error| request_error(url, &error))
    }

    /// Reads the site's robots.txt.
    async fn robots(&self, base: &Url, deadline: Instant) -> Result<Robots, FetchError> {
        let url = base
            .join("/robots.txt")
            .map_err(|_| FetchError::BadRedirect)?;
        let budget = self
            .page_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if budget.is_zero() {
            return Err(FetchError::Timeout(budget));
        }
        let read = async {
            let mut url = url;
            let mut hops = 0;
            let response = loop {
                let response = self.send(&url).await?;
                if !response.status().is_redirection() {
                    break response;
                }
                if hops == ROBOTS_MAX_REDIRECTS {
                    // RFC 9309 §2.3.1.2: then robots.txt may be taken as
                    // unavailable, as a 4xx is.
                    return Ok(Robots::AllowAll);
                }
                hops += 1;
                // On the site only, as pages: a site's robots.txt cannot
                // send us to another host (or plain http), guarded or not.
                url = next_hop(base, &url, &response)?;
            };
            let status = response.status();
            if status.is_client_error() {
                return Ok(Robots::AllowAll);
            }
            if status != StatusCode::OK {
                return Err(FetchError::Status(status.as_u16()));
            }
            let (body, _) = read_capped(&url, response, ROBOTS_MAX_BYTES).await?;
            Ok(match texting_robots::Robot::new(&self.user_agent, &body) {
                Ok(robot) => Robots::Rules(Box::new(robot)),
                // A file that does not parse says nothing we can honour.
                Err(_) => Robots::AllowAll,
            })
        };
        match tokio::time::timeout(budget, read).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(budget)),
        }
    }
}

/// Where a redirect `response` to `url` leads: `Err` when it has no usable
/// `Location` or leads off `base`'s site.
fn next_hop(base: &Url, url: &Url, response: &reqwest::Response) -> Result<Url, FetchError> {
    let next = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| url.join(l).ok())
        .ok_or(FetchError::BadRedirect)?;
    if !same_site(base, &next) {
        tracing::debug!(message = "Redirect off the site refused.", from = %url, to = %next);
        return Err(FetchError::OffSite);
    }
    Ok(next)
}

/// The fixed reason for a failed request; the client's error (which names
/// the URL, the address, the OS error) is logged, not shown.
fn request_error(url: &Url, error: &reqwest::Error) -> FetchError {
    if let Some(refused) = refusal(error) {
        tracing::warn!(
            message = "Refused a connection to a non-public address.",
            url = %url,
            address = %refused.address,
            class = %refused.class,
        );
        return FetchError::NotPublic;
    }
    tracing::debug!(message = "Request failed.", url = %url, error = %ErrorChain(error));
    if error.is_body() || error.is_decode() {
        FetchError::Read
    } else {
        FetchError::Connect
    }
}

/// An error with its causes, for logs (`reqwest`'s own text stops at the
/// first).
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut next = Some(self.0);
        let mut first = true;
        while let Some(error) = next {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{error}")?;
            first = false;
            next = error.source();
        }
        Ok(())
    }
}

/// Reads at most `cap` bytes of the body, chunk by chunk; the connection is
/// dropped at the cap rather than read to its end.
async fn read_capped(
    url: &Url,
    mut response: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), FetchError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| request_error(url, &error))?
    {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

fn push(evidence: &mut SiteEvidence, (report, page): (PageReport, Option<Page>)) {
    evidence.reports.push(report);
    if let Some(page) = page {
        evidence.pages.push(page);
    }
}

/// Same scheme, host and port; `www.{domain}` and `{domain}` are the same
/// host (the usual `acme.com → www.acme.com` redirect, either way).
fn same_site(base: &Url, url: &Url) -> bool {
    let host = |u: &Url| {
        u.host_str()
            .map(|h| h.strip_prefix("www.").unwrap_or(h).to_ascii_lowercase())
    };
    base.scheme() == url.scheme()
        && host(base) == host(url)
        && base.port_or_known_default() == url.port_or_known_default()
}

/// The pages to read after the home page, at most `limit`: linked about,
/// careers and news pages first, then their usual paths, then (deep) other
/// linked pages of the site. No duplicates, never the home page again.
fn candidates(base: &Url, links: &[String], limit: usize, deep: bool) -> Vec<Url> {
    let mut seen = BTreeSet::from([base.to_string()]);
    let linked: Vec<Url> = links
        .iter()
        .filter_map(|href| base.join(href).ok())
        .filter(|url| same_site(base, url) && url.path().starts_with(base.path()))
        .map(|mut url| {
            url.set_fragment(None);
            url
        })
        .collect();
    let interesting = |url: &Url| {
        let path = url.path().to_ascii_lowercase();
        INTERESTING.iter().any(|word| path.contains(word))
    };
    let defaults = DEFAULT_PATHS
        .iter()
        .chain(if deep { DEEP_PATHS } else { &[] })
        .filter_map(|path| base.join(path).ok());
    let others = linked.iter().filter(|u| !interesting(u)).cloned();
    linked
        .iter()
        .filter(|u| interesting(u))
        .cloned()
        .chain(defaults)
        .chain(others.filter(|_| deep))
        .filter(|url| seen.insert(url.to_string()))
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_prefer_linked_pages_then_usual_paths_and_stay_on_site() {
        let base = Url::parse("http://127.0.0.1:9/").unwrap();
        let links: Vec<String> = [
            "/team#top",
            "https://elsewhere.example/about",
            "/pricing",
            "careers/",
            "/",
            "mailto:hi@acme.com",
        ]
        .map(String::from)
        .to_vec();
        let standard: Vec<String> = candidates(&base, &links, 10, false)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            standard,
            [
                "http://127.0.0.1:9/team",
                "http://127.0.0.1:9/careers/",
                "http://127.0.0.1:9/about",
                "http://127.0.0.1:9/careers",
                "http://127.0.0.1:9/news",
            ]
        );
        let deep = candidates(&base, &links, 100, true);
        assert!(deep.iter().any(|u| u.path() == "/pricing"));
        assert!(deep.iter().all(|u| u.host_str() == Some("127.0.0.1")));
        assert_eq!(candidates(&base, &links, 2, true).len(), 2);
    }

    #[test]
    fn same_site_means_scheme_host_and_port() {
        let base = Url::parse("https://acme.com/").unwrap();
        assert!(same_site(
            &base,
            &Url::parse("https://acme.com:443/x").unwrap()
        ));
        assert!(!same_site(&base, &Url::parse("http://acme.com/x").unwrap()));
        assert!(!same_site(
            &base,
            &Url::parse("https://shop.acme.com/").unwrap()
        ));
        assert!(!same_site(
            &base,
            &Url::parse("https://www.acme.com:8443/").unwrap()
        ));
        assert!(!same_site(
            &base,
            &Url::parse("https://wwwacme.com/").unwrap()
        ));
        assert!(!same_site(
            &base,
            &Url::parse("https://acme.com.evil.example/").unwrap()
        ));
    }

    #[test]
    fn www_and_the_bare_domain_are_one_site_either_way() {
        let bare = Url::parse("https://acme.com/").unwrap();
        let www = Url::parse("https://www.acme.com/about").unwrap();
        assert!(same_site(&bare, &www));
        assert!(same_site(&www, &bare));
        assert!(same_site(
            &bare,
            &Url::parse("https://WWW.Acme.com/").unwrap()
        ));
        assert!(!same_site(
            &bare,
            &Url::parse("http://www.acme.com/").unwrap()
        ));
    }
}
