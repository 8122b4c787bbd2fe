//! Fan-out over several providers: outcomes and merging.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{
    Company, DirectoryProvider, Location, OutcomeStatus, PeopleQuery, Person, ProviderError,
    ProviderSet, SizeBand,
};

use crate::helpers::fixture;

#[derive(Clone)]
enum Mode {
    Answer,
    Fail(ProviderError),
    /// Never answers: only a deadline ends the wait.
    Hang,
}

/// A provider that answers every question with the same records, fails, or
/// hangs.
struct Fake {
    name: &'static str,
    mode: Mode,
    companies: Vec<Company>,
    people: Vec<Person>,
}

impl Fake {
    fn new(name: &'static str, mode: Mode) -> Self {
        Fake {
            name,
            mode,
            companies: Vec::new(),
            people: Vec::new(),
        }
    }

    async fn answer<T: Clone>(&self, records: &[T]) -> Result<Vec<T>, ProviderError> {
        match &self.mode {
            Mode::Answer => Ok(records.to_vec()),
            Mode::Fail(e) => Err(e.clone()),
            Mode::Hang => std::future::pending().await,
        }
    }
}

#[async_trait]
impl DirectoryProvider for Fake {
    fn name(&self) -> &str {
        self.name
    }
    async fn companies_by_handle(&self, _: &str) -> Result<Vec<Company>, ProviderError> {
        self.answer(&self.companies).await
    }
    async fn companies_by_domain(&self, _: &str) -> Result<Vec<Company>, ProviderError> {
        self.answer(&self.companies).await
    }
    async fn companies_by_name(&self, _: &str) -> Result<Vec<Company>, ProviderError> {
        self.answer(&self.companies).await
    }
    async fn people_at_company_handle(
        &self,
        _: &str,
        _: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        self.answer(&self.people).await
    }
    async fn people_by_company_text(
        &self,
        _: &str,
        _: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        self.answer(&self.people).await
    }
    async fn person_by_email(&self, _: &str) -> Result<Vec<Person>, ProviderError> {
        self.answer(&self.people).await
    }
    async fn person_by_linkedin(&self, _: &str) -> Result<Vec<Person>, ProviderError> {
        self.answer(&self.people).await
    }
    async fn people_by_name(&self, _: &str, _: Option<&str>) -> Result<Vec<Person>, ProviderError> {
        self.answer(&self.people).await
    }
}

fn company(id: &str, name: &str, domain: Option<&str>, handle: Option<&str>) -> Company {
    Company {
        id: id.into(),
        name: name.into(),
        aliases: Vec::new(),
        domain: domain.map(Into::into),
        linkedin_handle: handle.map(Into::into),
        industry: String::new(),
        size_band: SizeBand::default(),
        headquarters: Location::default(),
    }
}

fn person(id: &str, email: Option<&str>, url: Option<&str>) -> Person {
    Person {
        id: id.into(),
        full_name: "Jane Doe".into(),
        title: String::new(),
        seniority: Seniority::Senior,
        department: Department::Engineering,
        location: Location::default(),
        email: email.map(Into::into),
        linkedin_url: url.map(Into::into),
        current_company_text: "Acme Corp".into(),
        current_company_linkedin_handle: None,
        headline: String::new(),
        skills: vec!["Rust".into()],
        past_positions: Vec::new(),
    }
}

fn local() -> Arc<dyn DirectoryProvider> {
    // The fixture lives in a static; a thin wrapper shares it.
    struct Shared;
    #[async_trait]
    impl DirectoryProvider for Shared {
        fn name(&self) -> &str {
            "local"
        }
        async fn companies_by_handle(&self, h: &str) -> Result<Vec<Company>, ProviderError> {
            fixture().companies_by_handle(h).await
        }
        async fn companies_by_domain(&self, d: &str) -> Result<Vec<Company>, ProviderError> {
            fixture().companies_by_domain(d).await
        }
        async fn companies_by_name(&self, n: &str) -> Result<Vec<Company>, ProviderError> {
            fixture().companies_by_name(n).await
        }
        async fn people_at_company_handle(
            &self,
            h: &str,
            q: &PeopleQuery,
        ) -> Result<Vec<Person>, ProviderError> {
            fixture().people_at_company_handle(h, q).await
        }
        async fn people_by_company_text(
            &self,
            n: &str,
            q: &PeopleQuery,
        ) -> Result<Vec<Person>, ProviderError> {
            fixture().people_by_company_text(n, q).await
        }
        async fn person_by_email(&self, e: &str) -> Result<Vec<Person>, ProviderError> {
            fixture().person_by_email(e).await
        }
        async fn person_by_linkedin(&self, p: &str) -> Result<Vec<Person>, ProviderError> {
            fixture().person_by_linkedin(p).await
        }
        async fn people_by_name(
            &self,
            n: &str,
            h: Option<&str>,
        ) -> Result<Vec<Person>, ProviderError> {
            fixture().people_by_name(n, h).await
        }
    }
    Arc::new(Shared)
}

#[tokio::test]
async fn outcomes_tell_ok_failed_and_timed_out_apart() {
    let mut vendor = Fake::new("vendor", Mode::Answer);
    let mut acme = company("v-9", "ACME", Some("acme.com"), None);
    acme.aliases = vec!["Acme Cloud".into()];
    acme.industry = "SaaS".into();
    vendor.companies = vec![acme];
    let set = ProviderSet::new(vec![
        local(),
        Arc::new(vendor),
        Arc::new(Fake::new(
            "down",
            Mode::Fail(ProviderError::Unavailable {
                attempts: 3,
                reason: "status 503".into(),
            }),
        )),
        Arc::new(Fake::new("slow", Mode::Hang)),
        Arc::new(Fake::new(
            "own-timeout",
            Mode::Fail(ProviderError::Timeout(Duration::from_secs(1))),
        )),
    ])
    .with_deadline(Duration::from_millis(200));
    assert_eq!(set.len(), 5);

    let out = set.companies_by_domain("acme.com").await;
    let statuses: Vec<(&str, &OutcomeStatus)> = out
        .outcomes
        .iter()
        .map(|o| (o.provider.as_str(), &o.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("local", &OutcomeStatus::Ok { rows: 1 }),
            ("vendor", &OutcomeStatus::Ok { rows: 1 }),
            (
                "down",
                &OutcomeStatus::Failed(ProviderError::Unavailable {
                    attempts: 3,
                    reason: "status 503".into()
                })
            ),
            ("slow", &OutcomeStatus::TimedOut),
            ("own-timeout", &OutcomeStatus::TimedOut),
        ]
    );
    assert!(out.any_failed());
    assert!(!out.all_answered());
    assert_eq!(
        out.failures()
            .map(|o| o.provider.as_str())
            .collect::<Vec<_>>(),
        ["down", "slow", "own-timeout"]
    );
    // The vendor's record merged into the local one by domain: the local
    // record wins, the vendor's other name is kept as an alias, and gaps are
    // not overwritten.
    assert_eq!(out.items.len(), 1);
    let merged = &out.items[0];
    assert_eq!(merged.providers, ["local", "vendor"]);
    assert_eq!(merged.value.id, "c-acme");
    assert_eq!(merged.value.industry, "Software");
    assert_eq!(
        merged.value.aliases,
        ["ACME", "Acme Corporation, Inc.", "Acme Inc.", "Acme Cloud"]
    );
}

#[tokio::test]
async fn every_provider_answering_nothing_is_a_clean_empty() {
    let set = ProviderSet::new(vec![local(), Arc::new(Fake::new("vendor", Mode::Answer))]);
    let out = set
        .people_by_company_text("Vandelay Industries", &PeopleQuery::default())
        .await;
    assert!(out.items.is_empty());
    assert!(out.all_answered());
    assert!(!out.any_failed());

    let empty = ProviderSet::default();
    assert!(empty.is_empty());
    assert!(empty.person_by_email("a@b.c").await.all_answered());
}

#[tokio::test]
async fn look_alikes_claiming_one_handle_stay_apart() {
    let mut vendor = Fake::new("vendor", Mode::Answer);
    vendor.companies = vec![
        // Same handle and domain as the local Globex Corporation: merges.
        company("v-1", "Globex Corp", Some("globex.com"), Some("globex")),
        // Same handle, another domain: a different company.
        company(
            "v-2",
            "Globex Logistics",
            Some("globex-logistics.com"),
            Some("globex"),
        ),
        // Only a handle, which two local companies share: ambiguous, so it
        // stays apart rather than merge into either.
        company("v-3", "Globex", None, Some("globex")),
    ];
    let set = ProviderSet::new(vec![local(), Arc::new(vendor)]);
    let out = set.companies_by_handle("globex").await;
    let summary: Vec<(&str, Vec<&str>)> = out
        .items
        .iter()
        .map(|s| {
            (
                s.value.id.as_str(),
                s.providers.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("c-globex", vec!["local", "vendor"]),
            ("c-globex-de", vec!["local"]),
            ("v-2", vec!["vendor"]),
            ("v-3", vec!["vendor"]),
        ]
    );
}

#[tokio::test]
async fn records_of_one_provider_never_merge() {
    let mut vendor = Fake::new("vendor", Mode::Answer);
    vendor.people = vec![
        person("a", Some("jane@acme.com"), None),
        person("b", Some("JANE@acme.com"), None),
    ];
    let set = ProviderSet::new(vec![Arc::new(vendor)]);
    let out = set.person_by_email("jane@acme.com").await;
    assert_eq!(out.into_values().len(), 2);
}

#[tokio::test]
async fn people_merge_by_email_or_profile_unless_profiles_differ() {
    let mut first = Fake::new("first", Mode::Answer);
    first.people = vec![
        person("f1", Some("jane@acme.com"), None),
        person("f2", None, Some("https://www.linkedin.com/in/john-roe")),
        person("f3", Some("sam@acme.com"), Some("linkedin.com/in/sam-1")),
    ];
    let mut second = Fake::new("second", Mode::Answer);
    let mut jane = person(
        "s1",
        Some("Jane@Acme.com"),
        Some("linkedin.com/in/jane-doe"),
    );
    jane.title = "CTO".into();
    jane.skills = vec!["Rust".into(), "Go".into()];
    second.people = vec![
        jane,
        // Same profile in another URL form.
        person(
            "s2",
            Some("john@acme.com"),
            Some("http://uk.linkedin.com/in/John-Roe/"),
        ),
        // Same email, different profile: two people sharing an inbox.
        person("s3", Some("sam@acme.com"), Some("linkedin.com/in/sam-2")),
    ];
    let set = ProviderSet::new(vec![Arc::new(first), Arc::new(second)]);
    let out = set
        .people_by_company_text("Acme", &PeopleQuery::with_limit(10))
        .await;
    let summary: Vec<(&str, Vec<&str>)> = out
        .items
        .iter()
        .map(|s| {
            (
                s.value.id.as_str(),
                s.providers.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("f1", vec!["first", "second"]),
            ("f2", vec!["first", "second"]),
            ("f3", vec!["first"]),
            ("s3", vec!["second"]),
        ]
    );
    let jane = &out.items[0].value;
    assert_eq!(jane.title, "CTO", "gap filled");
    assert_eq!(
        jane.linkedin_url.as_deref(),
        Some("linkedin.com/in/jane-doe")
    );
    assert_eq!(jane.skills, ["Rust", "Go"]);
    assert_eq!(out.items[1].value.email.as_deref(), Some("john@acme.com"));

    let limited = set
        .people_by_company_text("Acme", &PeopleQuery::with_limit(3))
        .await;
    assert_eq!(limited.items.len(), 3);
}

#[tokio::test]
async fn hanging_providers_do_not_hide_the_others() {
    let set = ProviderSet::new(vec![
        Arc::new(Fake::new("slow-1", Mode::Hang)),
        local(),
        Arc::new(Fake::new("slow-2", Mode::Hang)),
    ])
    .with_deadline(Duration::from_millis(100));
    let out = set
        .people_at_company_handle("acme-corp", &PeopleQuery::with_limit(3))
        .await;
    assert_eq!(out.items.len(), 3);
    assert_eq!(out.items[0].providers, ["local"]);
    assert_eq!(
        out.outcomes.iter().map(|o| o.is_ok()).collect::<Vec<_>>(),
        [false, true, false]
    );
}
