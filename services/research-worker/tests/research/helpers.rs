//! A small company site on loopback (axum on port 0) that records every
//! request, and the worker's configuration for a test stack.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use dossier_stack::{Running, TestApp};
use ipnet::IpNet;
use research_worker::{App, Config, ResearchConfig, SiteOverride};
use serde_json::Value;

/// The paths the site serves, in the order the home page links them.
pub(crate) const ABOUT: &str = "/about";
pub(crate) const CAREERS: &str = "/careers";
pub(crate) const NEWS: &str = "/news";
/// Disallowed by robots.txt: must never be requested.
pub(crate) const PRIVATE: &str = "/about/private";
/// Never answers within any page budget of the tests.
pub(crate) const SLOW: &str = "/news/slow";
/// Far larger than the tests' byte cap.
pub(crate) const HUGE: &str = "/about/huge";
/// A broken link: 404.
pub(crate) const MISSING: &str = "/careers/missing";
/// Redirects to [`ABOUT`] (same site: followed).
pub(crate) const MOVED: &str = "/about/old";
/// Redirects off the site (refused).
pub(crate) const OFFSITE: &str = "/news/elsewhere";
/// Bytes of the huge page.
pub(crate) const HUGE_BYTES: usize = 4 * 1024 * 1024;
/// Where robots.txt lives when [`Options::robots_redirect`] is set: two
/// redirects away.
pub(crate) const ROBOTS_MOVED: &str = "/policies/robots.txt";
/// An about page whose path has square brackets ([`Options::bracket_link`]).
pub(crate) const BRACKETED: &str = "/about[99]";
/// Redirects to [`ABOUT`] on `www.` of the host the request named (same
/// site: followed, to wherever `www.` resolves).
pub(crate) const MOVED_TO_WWW: &str = "/about/www";

/// Variations of the test site.
#[derive(Clone, Copy, Default)]
pub(crate) struct Options {
    /// robots.txt answers with redirects to [`ROBOTS_MOVED`].
    pub(crate) robots_redirect: bool,
    /// The home page links [`BRACKETED`] first.
    pub(crate) bracket_link: bool,
    /// robots.txt redirects to this URL (`{www}` stands for `www.` and the
    /// host the request named).
    pub(crate) robots_location: Option<&'static str>,
    /// robots.txt answers with this status and no body.
    pub(crate) robots_status: Option<u16>,
}

#[derive(Clone)]
struct SiteState {
    requests: Arc<Mutex<Vec<String>>>,
    options: Options,
}

/// The test site: its address and every path requested, in order.
#[derive(Clone)]
pub(crate) struct Site {
    pub(crate) addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Site {
    /// Serves the site on a free loopback port until the test ends.
    pub(crate) async fn start() -> Site {
        Site::start_with(Options::default()).await
    }

    /// Serves the site with `options`.
    pub(crate) async fn start_with(options: Options) -> Site {
        Site::start_on("127.0.0.1:0", options).await
    }

    /// Serves the site with `options` on `addr` (`[::1]:0` for IPv6).
    pub(crate) async fn start_on(addr: &str, options: Options) -> Site {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = SiteState {
            requests: requests.clone(),
            options,
        };
        let app = Router::new().fallback(serve).with_state(state);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Site { addr, requests }
    }

    /// The base URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// A site override pointing `acme.com` here.
    pub(crate) fn acme_override(&self) -> SiteOverride {
        format!("acme.com={}", self.url()).parse().unwrap()
    }

    /// Every path requested so far.
    pub(crate) fn requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Whether `path` was requested.
    pub(crate) fn was_requested(&self, path: &str) -> bool {
        self.requested().iter().any(|p| p == path)
    }
}

fn html(title: &str, body: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!(
            "<!doctype html><html><head><title>{title}</title>\
             <script>var tracking = 'not text';</script></head><body>\
             <nav><a href=\"/\">Home</a></nav><main>{body}</main>\
             <footer><p>Copyright Acme Corp. All rights reserved.</p></footer></body></html>"
        ),
    )
        .into_response()
}

async fn serve(State(state): State<SiteState>, headers: HeaderMap, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    state.requests.lock().unwrap().push(path.clone());
    let options = state.options;
    // `www.` and the host the request named, for same-site redirects there.
    let www = format!(
        "www.{}",
        headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
    );
    match path.as_str() {
        "/robots.txt" if options.robots_location.is_some() => {
            let location = options.robots_location.unwrap().replace("{www}", &www);
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        "/robots.txt" if options.robots_status.is_some() => {
            StatusCode::from_u16(options.robots_status.unwrap())
                .unwrap()
                .into_response()
        }
        "/robots.txt" if options.robots_redirect => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, "/policies/old-robots.txt")],
        )
            .into_response(),
        "/policies/old-robots.txt" if options.robots_redirect => {
            (StatusCode::FOUND, [(header::LOCATION, ROBOTS_MOVED)]).into_response()
        }
        "/robots.txt" | ROBOTS_MOVED => (
            [(header::CONTENT_TYPE, "text/plain")],
            format!("User-agent: *\nDisallow: {PRIVATE}\n"),
        )
            .into_response(),
        "/" => html(
            "Acme Corp | Rockets for everyone",
            &format!(
                "<h1>Acme Corp</h1><p>Acme Corp designs reusable rocket engines for \
                 commercial launch providers.</p>{}\
                 <a href=\"{ABOUT}\">About</a> <a href=\"{CAREERS}\">Careers</a> \
                 <a href=\"{NEWS}\">News</a> <a href=\"{PRIVATE}\">Board minutes</a> \
                 <a href=\"{SLOW}\">Latest</a> <a href=\"{HUGE}\">History</a> \
                 <a href=\"{MISSING}\">Old job</a> <a href=\"{MOVED}\">Old about</a> \
                 <a href=\"{OFFSITE}\">Partner news</a>",
                if options.bracket_link {
                    format!("<a href=\"{BRACKETED}\">Footnoted about</a> ")
                } else {
                    String::new()
                }
            ),
        ),
        // Anything under it, so that a site override can make it the home page.
        p if p.starts_with(MOVED_TO_WWW) => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, format!("http://{www}{ABOUT}"))],
        )
            .into_response(),
        BRACKETED if options.bracket_link => html(
            "About Acme [99]",
            "<h1>About [99]</h1><p>Acme Corp was founded in 1999 by engineers [99] who \
             left a launch company.</p>",
        ),
        ABOUT => html(
            "About Acme",
            "<h1>About us</h1><p>Acme Corp builds rocket engines in San Francisco. \
             Founded in 1999, Acme employs more than two thousand people.</p>",
        ),
        CAREERS => html(
            "Careers at Acme",
            "<h1>Careers</h1><p>Acme is hiring Rust engineers for its platform team. \
             Open roles are listed in engineering and sales.</p>",
        ),
        NEWS => html(
            "Acme News",
            "<h1>News</h1><p>Acme raised a Series C round led by Initech Ventures in 2025. \
             The round funds a new engine test site in Nevada.</p>",
        ),
        PRIVATE => html(
            "Private",
            "<p>The board discussed secret acquisition plans.</p>",
        ),
        // The slow page and anything under it (a site override can make it
        // the home page).
        p if p.starts_with(SLOW) => {
            // Longer than any budget a test gives a page: the fetch must be
            // cut off (or cancelled), never waited out.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            html("Slow", "<p>Too late.</p>")
        }
        HUGE => {
            let mut body = String::from("<html><body><p>");
            while body.len() < HUGE_BYTES {
                body.push_str("Acme history repeats itself. ");
            }
            body.push_str("</p></body></html>");
            ([(header::CONTENT_TYPE, "text/html")], Body::from(body)).into_response()
        }
        MOVED => (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, ABOUT)]).into_response(),
        OFFSITE => (
            StatusCode::FOUND,
            [(header::LOCATION, "https://partner.example/news")],
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// The research settings of the web tests: `acme.com` served by `site`,
/// short budgets.
pub(crate) fn research_config(site: &Site) -> ResearchConfig {
    let mut config = <Config as clap::Parser>::parse_from(["research-worker"]).research;
    config.page_timeout = Duration::from_millis(500);
    config.page_max_bytes = 64 * 1024;
    config.site_overrides = vec![site.acme_override()];
    config.allow_private_networks = loopback();
    config
}

/// The test-only allowance the loopback test sites need: 127.0.0.0/8.
pub(crate) fn loopback() -> Vec<IpNet> {
    vec!["127.0.0.0/8".parse().unwrap()]
}

/// The worker's configuration in `app`'s stack, with `acme.com` served by
/// `site` (when given) and short budgets.
pub(crate) fn config(app: &TestApp, site: Option<&Site>) -> Config {
    let mut config = <Config as clap::Parser>::parse_from(["research-worker"]);
    config.service.broker = app.broker_config();
    config.research.page_timeout = Duration::from_secs(2);
    config.research.page_max_bytes = 64 * 1024;
    config.research.site_overrides = site.map(|s| vec![s.acme_override()]).unwrap_or_default();
    config.research.allow_private_networks = loopback();
    config
}

/// Starts a research worker with `config`.
pub(crate) async fn start_worker(config: Config) -> Running {
    let worker = App::build(config).await.unwrap();
    Running::spawn(|token| worker.run(token))
}

/// Runs the research `body` through the gateway to its end and returns its
/// result: succeeded, or partial_success (a web step with no network).
pub(crate) async fn research_result(app: &TestApp, body: &Value) -> Value {
    let accepted = app.post_research(body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let op = app
        .wait_for_terminal(&accepted.id(), dossier_stack::KEY_A)
        .await;
    assert!(
        ["succeeded", "partial_success"].contains(&op["status"].as_str().unwrap_or_default()),
        "{op}"
    );
    op["result"].clone()
}

/// Every `[n]` in `text`.
pub(crate) fn citations(text: &str) -> Vec<usize> {
    research_worker::answer::citations(text)
}

/// The ids of the result's sources.
pub(crate) fn source_ids(result: &Value) -> Vec<usize> {
    result["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap() as usize)
        .collect()
}
