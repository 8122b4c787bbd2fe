//! The web step against the loopback site: pages read, robots.txt honoured,
//! the slow page cut off by its budget, the huge page capped, the broken link
//! recorded, redirects kept on the site.

use std::time::Duration;

use research_worker::web::{Fetcher, PageReport, PageStatus};
use tokio::time::Instant;

use crate::helpers::*;

fn report<'a>(reports: &'a [PageReport], site: &Site, path: &str) -> &'a PageReport {
    let url = format!("{}{}", site.url(), path.trim_start_matches('/'));
    reports
        .iter()
        .find(|r| r.url == url)
        .unwrap_or_else(|| panic!("no report for {url}: {reports:#?}"))
}

#[tokio::test]
async fn a_deep_crawl_honours_robots_budgets_caps_and_redirects() {
    let site = Site::start().await;
    let fetcher = Fetcher::new(&research_config(&site)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let evidence = fetcher.gather("ACME.com", 12, true, deadline).await;
    let reports = &evidence.reports;

    assert_eq!(evidence.base.as_ref().unwrap().as_str(), site.url());
    assert!(evidence.robots_error.is_none());
    assert_eq!(site.requested()[0], "/robots.txt", "robots.txt comes first");

    // Pages read, with their text.
    for path in ["/", ABOUT, CAREERS, NEWS] {
        let r = report(reports, &site, path);
        assert_eq!(r.status, PageStatus::Fetched, "{r:?}");
        assert!(!r.truncated && r.bytes > 0);
    }
    let careers = evidence
        .pages
        .iter()
        .find(|p| p.url.path() == CAREERS)
        .unwrap();
    assert_eq!(careers.content.title, "Careers at Acme");
    assert!(
        careers
            .content
            .paragraphs
            .iter()
            .any(|p| p.contains("hiring Rust engineers"))
    );
    assert!(
        careers
            .content
            .paragraphs
            .iter()
            .all(|p| !p.contains("tracking")),
        "scripts are not text"
    );

    // robots.txt forbids the private page: reported, never requested.
    let private = report(reports, &site, PRIVATE);
    assert_eq!(private.status, PageStatus::Disallowed);
    assert!(!site.was_requested(PRIVATE), "{:?}", site.requested());

    // The slow page is cut off by the page budget, not waited out.
    let slow = report(reports, &site, SLOW);
    assert_eq!(slow.status, PageStatus::Failed);
    assert!(
        slow.error.as_deref().unwrap().contains("timed out"),
        "{slow:?}"
    );

    // The huge page is read up to the cap and kept, marked truncated.
    let huge = report(reports, &site, HUGE);
    assert_eq!(huge.status, PageStatus::Fetched);
    assert!(huge.truncated);
    assert_eq!(huge.bytes, 64 * 1024);
    assert!(huge.bytes < HUGE_BYTES);

    // The broken link is recorded with its status.
    let missing = report(reports, &site, MISSING);
    assert_eq!(missing.status, PageStatus::Failed);
    assert_eq!(missing.error.as_deref(), Some("HTTP 404"));

    // A same-site redirect is followed; one off the site is refused.
    let moved = report(reports, &site, MOVED);
    assert_eq!(moved.status, PageStatus::Fetched, "{moved:?}");
    assert!(
        evidence
            .pages
            .iter()
            .filter(|p| p.url.path() == ABOUT)
            .count()
            >= 2,
        "the redirect landed on the about page"
    );
    let offsite = report(reports, &site, OFFSITE);
    assert_eq!(offsite.status, PageStatus::Failed);
    assert!(offsite.error.as_deref().unwrap().contains("off the site"));

    // Every fetched page is a page the site really served.
    for page in &evidence.pages {
        assert!(site.was_requested(page.url.path()), "{}", page.url);
    }
}

#[tokio::test]
async fn a_standard_crawl_reads_the_home_about_careers_and_news_pages() {
    let site = Site::start().await;
    let fetcher = Fetcher::new(&research_config(&site)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let evidence = fetcher.gather("acme.com", 4, false, deadline).await;
    let paths: Vec<&str> = evidence.pages.iter().map(|p| p.url.path()).collect();
    assert_eq!(paths, ["/", ABOUT, CAREERS, NEWS]);
    assert!(!site.was_requested(SLOW) && !site.was_requested(HUGE));
}

#[tokio::test]
async fn a_deadline_already_past_skips_every_page_and_reads_nothing() {
    let site = Site::start().await;
    let fetcher = Fetcher::new(&research_config(&site)).unwrap();
    // A deadline already past: nothing is requested, not even robots.txt,
    // and every page is skipped (not "disallowed" by an unread robots.txt).
    let evidence = fetcher.gather("acme.com", 4, false, Instant::now()).await;
    assert!(evidence.pages.is_empty());
    assert!(site.requested().is_empty(), "{:?}", site.requested());
    assert!(
        evidence.robots_error.is_none(),
        "{:?}",
        evidence.robots_error
    );
    assert_eq!(evidence.reports.len(), 4, "{:#?}", evidence.reports);
    for r in &evidence.reports {
        assert_eq!(r.status, PageStatus::Skipped, "{r:?}");
        assert!(r.error.as_deref().unwrap().contains("time budget"), "{r:?}");
    }
}

#[tokio::test]
async fn the_step_deadline_skips_pages_not_yet_started() {
    let site = Site::start().await;
    let mut config = research_config(&site);
    // The home page is the slow page: it holds the step until its deadline,
    // far below the page timeout; the pages after it were never started.
    config.page_timeout = Duration::from_secs(30);
    config.site_overrides = vec![
        format!("acme.com={}{}/", site.url(), SLOW.trim_start_matches('/'))
            .parse()
            .unwrap(),
    ];
    let fetcher = Fetcher::new(&config).unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(700);
    let evidence = fetcher.gather("acme.com", 4, false, deadline).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut at the deadline"
    );

    assert!(
        evidence.robots_error.is_none(),
        "{:?}",
        evidence.robots_error
    );
    assert!(evidence.pages.is_empty());
    let reports = &evidence.reports;
    assert_eq!(reports.len(), 4, "{reports:#?}");
    assert_eq!(reports[0].status, PageStatus::Failed, "{:?}", reports[0]);
    assert!(reports[0].error.as_deref().unwrap().contains("timed out"));
    for r in &reports[1..] {
        assert_eq!(r.status, PageStatus::Skipped, "{r:?}");
        assert!(r.error.as_deref().unwrap().contains("time budget"), "{r:?}");
    }
    // Only robots.txt and the home page were requested.
    let slow_home = format!("{SLOW}/");
    assert_eq!(site.requested(), ["/robots.txt", slow_home.as_str()]);
}

#[tokio::test]
async fn robots_txt_behind_redirects_is_honoured() {
    let site = Site::start_with(Options {
        robots_redirect: true,
        ..Options::default()
    })
    .await;
    let fetcher = Fetcher::new(&research_config(&site)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let evidence = fetcher.gather("acme.com", 12, true, deadline).await;

    assert!(
        evidence.robots_error.is_none(),
        "{:?}",
        evidence.robots_error
    );
    let requested = site.requested();
    assert_eq!(
        &requested[..3],
        ["/robots.txt", "/policies/old-robots.txt", ROBOTS_MOVED],
        "robots.txt's two redirects are followed first"
    );
    // The rules found behind the redirects apply: the private page is
    // disallowed and never requested; the others are read.
    let private = report(&evidence.reports, &site, PRIVATE);
    assert_eq!(private.status, PageStatus::Disallowed);
    assert!(!site.was_requested(PRIVATE), "{requested:?}");
    for path in ["/", ABOUT, CAREERS, NEWS] {
        assert_eq!(
            report(&evidence.reports, &site, path).status,
            PageStatus::Fetched
        );
    }
}
