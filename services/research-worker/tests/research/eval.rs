//! The evaluation of the answers: questions the way sellers ask them
//! (`eval_questions.json`, several phrasings per intent) over companies and
//! people of a generated directory, each with its expected fact derived here
//! from the directory records by code. Every research runs through the
//! gateway and the real research worker, on a local directory of the
//! generated records and no network (every subject's site is a closed
//! port).
//!
//! An answer is correct when it is "Not found in the sources." exactly when
//! the directory lacks the fact, and otherwise names the expected fact and
//! cites sources of the result. It makes a false claim when it answers
//! although the fact is absent, names a person who is not at the company,
//! or states a number the records do not hold. The test prints accuracy per
//! intent and asserts at least 90 % overall and per intent, and no false
//! claim at all.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{
    Company, DirectoryProvider, LocalDirectory, Person, ProviderSet, Record, normalize_company_name,
};
use dossier_stack::{Running, spawn_app};
use research_worker::App;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::*;

/// The generated directory: big enough for every kind of subject, small
/// enough to build in well under a second.
const SEED: u64 = 42;
const PEOPLE: usize = 20_000;
const COMPANIES: usize = 2_000;
/// Companies asked every company question (fewer people than a standard
/// research looks up, so the directory's answer is the whole company's).
const FULL_COMPANIES: usize = 3;
/// Most people at a fully evaluated company: below the standard depth's
/// people limit (50).
const MAX_STAFF: usize = 45;
/// Questions per research (the API's limit is 10).
const PER_RESEARCH: usize = 10;

#[derive(Deserialize)]
struct Templates {
    departments: Vec<DepartmentWords>,
    company: BTreeMap<String, Vec<String>>,
    person: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Clone)]
struct DepartmentWords {
    department: Department,
    say: String,
    staff: String,
    purchase: String,
}

/// What the answer must say.
#[derive(Debug, Clone)]
enum Expected {
    /// "Not found in the sources."
    NotFound,
    /// Names at least one of `any` and no person of the company outside
    /// `allowed`.
    People {
        any: BTreeSet<String>,
        allowed: BTreeSet<String>,
    },
    /// Contains every one of these strings.
    Contains(Vec<String>),
    /// States this number.
    Count(usize),
    /// Names at least one of these companies.
    AnyCompany(Vec<String>),
}

/// One question of the evaluation.
#[derive(Debug, Clone)]
struct Case {
    intent: String,
    subject: Value,
    /// Who the subject's facts are about: the company's people by name.
    people: Vec<Person>,
    /// Numbers the records hold for this subject.
    numbers: BTreeSet<u64>,
    question: String,
    expected: Expected,
}

fn rank(s: Seniority) -> Option<u8> {
    match s {
        Seniority::Owner => Some(0),
        Seniority::CSuite => Some(1),
        Seniority::Vp => Some(2),
        Seniority::Director => Some(3),
        Seniority::Manager => Some(4),
        _ => None,
    }
}

/// The most senior people (manager or above) of `people`.
fn most_senior<'a>(people: impl Iterator<Item = &'a Person>) -> BTreeSet<String> {
    let ranked: Vec<(u8, &Person)> = people
        .filter_map(|p| rank(p.seniority).map(|r| (r, p)))
        .collect();
    let Some(best) = ranked.iter().map(|(r, _)| *r).min() else {
        return BTreeSet::new();
    };
    ranked
        .into_iter()
        .filter(|(r, _)| *r == best)
        .map(|(_, p)| p.full_name.clone())
        .collect()
}

/// Who runs a company: its owners, else its chief executives, else its most
/// senior people.
fn heads(people: &[Person]) -> BTreeSet<String> {
    let owners = most_senior(people.iter().filter(|p| p.seniority == Seniority::Owner));
    if !owners.is_empty() {
        return owners;
    }
    let chiefs: BTreeSet<String> = people
        .iter()
        .filter(|p| p.seniority == Seniority::CSuite && p.department == Department::Executive)
        .map(|p| p.full_name.clone())
        .collect();
    if !chiefs.is_empty() {
        return chiefs;
    }
    most_senior(people.iter())
}

fn leaders(people: &[Person], d: Department) -> BTreeSet<String> {
    most_senior(people.iter().filter(|p| p.department == d))
}

fn numbers_of(company: &Company, people: &[Person]) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    out.insert(people.len() as u64);
    let mut by: BTreeMap<String, u64> = BTreeMap::new();
    for p in people {
        *by.entry(format!("d{:?}", p.department)).or_default() += 1;
        *by.entry(format!("s{:?}", p.seniority)).or_default() += 1;
    }
    out.extend(by.values().copied());
    for part in company
        .size_band
        .as_str()
        .split(|c: char| !c.is_ascii_digit())
    {
        if let Ok(n) = part.parse() {
            out.insert(n);
        }
    }
    out
}

fn fill(template: &str, company: &str, person: &str, d: Option<&DepartmentWords>) -> String {
    let mut q = template
        .replace("{company}", company)
        .replace("{person}", person);
    if let Some(d) = d {
        q = q
            .replace("{dept}", &d.say)
            .replace("{staff}", &d.staff)
            .replace("{purchase}", &d.purchase);
    }
    q
}

/// Builds every case from the directory.
async fn cases(dir: &LocalDirectory, templates: &Templates) -> Vec<Case> {
    let companies = dir.companies();
    let people = dir.people();
    let mut handle_claims: BTreeMap<&str, usize> = BTreeMap::new();
    for c in companies {
        if let Some(h) = c.linkedin_handle.as_deref() {
            *handle_claims.entry(h).or_default() += 1;
        }
    }
    let mut staff: BTreeMap<&str, Vec<Person>> = BTreeMap::new();
    for p in people {
        if let Some(h) = p.current_company_linkedin_handle.as_deref() {
            staff.entry(h).or_default().push(p.clone());
        }
    }
    let unique_handle = |c: &Company| {
        c.linkedin_handle
            .as_deref()
            .is_some_and(|h| handle_claims[h] == 1)
    };
    // Who the research finds at a company: through its page, else by the
    // profile company text of its name and aliases.
    let staff_of = |c: &Company| -> Vec<Person> {
        match c.linkedin_handle.as_deref() {
            Some(h) => staff.get(h).cloned().unwrap_or_default(),
            None => {
                let keys: BTreeSet<String> = std::iter::once(&c.name)
                    .chain(&c.aliases)
                    .map(|n| normalize_company_name(n))
                    .collect();
                people
                    .iter()
                    .filter(|p| keys.contains(&normalize_company_name(&p.current_company_text)))
                    .cloned()
                    .collect()
            }
        }
    };
    let t = |group: &str, intent: &str| -> Vec<String> {
        let map = if group == "company" {
            &templates.company
        } else {
            &templates.person
        };
        map.get(intent)
            .unwrap_or_else(|| panic!("no {group}.{intent} templates"))
            .clone()
    };

    let mut out = Vec::new();
    // Fully evaluated companies.
    let full: Vec<&Company> = companies
        .iter()
        .filter(|c| c.domain.is_some() && unique_handle(c))
        .filter(|c| {
            let n = staff_of(c).len();
            let departments: BTreeSet<String> = staff_of(c)
                .iter()
                .map(|p| format!("{:?}", p.department))
                .collect();
            (12..=MAX_STAFF).contains(&n) && departments.len() < 10
        })
        .take(FULL_COMPANIES)
        .collect();
    assert_eq!(full.len(), FULL_COMPANIES);
    for (i, company) in full.iter().enumerate() {
        let staff = staff_of(company);
        let subject = json!({ "company": { "domain": company.domain } });
        let numbers = numbers_of(company, &staff);
        let name = company.name.as_str();
        let case = |intent: &str, question: String, expected: Expected| Case {
            intent: intent.to_owned(),
            subject: subject.clone(),
            people: staff.clone(),
            numbers: numbers.clone(),
            question,
            expected,
        };
        let present: Vec<&DepartmentWords> = templates
            .departments
            .iter()
            .filter(|d| staff.iter().any(|p| p.department == d.department))
            .collect();
        let absent: Vec<&DepartmentWords> = templates
            .departments
            .iter()
            .filter(|d| !staff.iter().any(|p| p.department == d.department))
            .collect();
        assert!(!absent.is_empty() && !present.is_empty());
        for (k, template) in t("company", "leader").iter().enumerate() {
            let d = present[(i + k) % present.len()];
            let mut any = leaders(&staff, d.department);
            if any.is_empty() {
                // Nobody leads it: the answer says so and names its people.
                any = staff
                    .iter()
                    .filter(|p| p.department == d.department)
                    .map(|p| p.full_name.clone())
                    .collect();
            }
            let expected = if any.is_empty() {
                Expected::NotFound
            } else {
                Expected::People {
                    allowed: any.clone(),
                    any,
                }
            };
            out.push(case("leader", fill(template, name, "", Some(d)), expected));
        }
        for (k, template) in t("company", "leader_absent").iter().enumerate() {
            let d = absent[(i + k) % absent.len()];
            out.push(case(
                "leader",
                fill(template, name, "", Some(d)),
                Expected::NotFound,
            ));
        }
        for template in t("company", "chief") {
            let any = heads(&staff);
            out.push(case(
                "chief",
                fill(&template, name, "", None),
                Expected::People {
                    allowed: any.clone(),
                    any,
                },
            ));
        }
        for (k, template) in t("company", "committee").iter().enumerate() {
            let d = present[(i + k) % present.len()];
            let committee: BTreeSet<String> = staff
                .iter()
                .filter(|p| rank(p.seniority).is_some_and(|r| r <= 3))
                .map(|p| p.full_name.clone())
                .collect();
            let expected = if template.contains("{purchase}") {
                let mut any = leaders(&staff, d.department);
                if any.is_empty() {
                    any = heads(&staff);
                }
                let mut allowed = any.clone();
                allowed.extend(heads(&staff));
                Expected::People { any, allowed }
            } else if committee.is_empty() {
                Expected::NotFound
            } else {
                Expected::People {
                    any: most_senior(staff.iter()),
                    allowed: committee,
                }
            };
            out.push(case(
                "committee",
                fill(template, name, "", Some(d)),
                expected,
            ));
        }
        for (k, template) in t("company", "count").iter().enumerate() {
            let d = present[(i + k) % present.len()];
            let n = staff
                .iter()
                .filter(|p| p.department == d.department)
                .count();
            out.push(case(
                "count",
                fill(template, name, "", Some(d)),
                Expected::Count(n),
            ));
        }
        for template in t("company", "count_absent") {
            let d = absent[i % absent.len()];
            out.push(case(
                "count",
                fill(&template, name, "", Some(d)),
                Expected::NotFound,
            ));
        }
        let attributes: [(&str, Vec<String>); 5] = [
            ("headquarters", vec![company.headquarters.city.clone()]),
            ("industry", vec![company.industry.clone()]),
            ("size", vec![company.size_band.as_str().to_owned()]),
            ("domain", vec![company.domain.clone().unwrap_or_default()]),
            (
                "linkedin",
                vec![company.linkedin_handle.clone().unwrap_or_default()],
            ),
        ];
        for (intent, facts) in attributes {
            for template in t("company", intent) {
                out.push(case(
                    "attribute",
                    fill(&template, name, "", None),
                    Expected::Contains(facts.clone()),
                ));
            }
        }
        let similar: Vec<String> = dir
            .similar_companies(company, 5)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        for template in t("company", "related") {
            let expected = if similar.is_empty() {
                Expected::NotFound
            } else {
                Expected::AnyCompany(similar.clone())
            };
            out.push(case("related", fill(&template, name, "", None), expected));
        }
        for template in t("company", "unknown") {
            out.push(case(
                "unknown",
                fill(&template, name, "", None),
                Expected::NotFound,
            ));
        }
    }

    // A company without a domain (researched by its page) and one without a
    // page (by its domain): what they lack is not found.
    let no_domain = companies
        .iter()
        .find(|c| c.domain.is_none() && unique_handle(c))
        .expect("a company without a domain");
    let no_handle = companies
        .iter()
        .find(|c| c.linkedin_handle.is_none() && c.domain.is_some())
        .expect("a company without a page");
    for (company, subject, missing) in [
        (
            no_domain,
            json!({ "company": { "linkedinHandle": no_domain.linkedin_handle } }),
            "domain",
        ),
        (
            no_handle,
            json!({ "company": { "domain": no_handle.domain } }),
            "linkedin",
        ),
    ] {
        let staff = staff_of(company);
        let numbers = numbers_of(company, &staff);
        let name = company.name.as_str();
        let mut push = |intent: &str, template: &str, expected: Expected| {
            out.push(Case {
                intent: intent.to_owned(),
                subject: subject.clone(),
                people: staff.clone(),
                numbers: numbers.clone(),
                question: fill(template, name, "", None),
                expected,
            })
        };
        for template in t("company", missing) {
            push("attribute", &template, Expected::NotFound);
        }
        for template in t("company", "headquarters") {
            push(
                "attribute",
                &template,
                Expected::Contains(vec![company.headquarters.city.clone()]),
            );
        }
        for template in t("company", "industry") {
            push(
                "attribute",
                &template,
                Expected::Contains(vec![company.industry.clone()]),
            );
        }
    }

    // People: two with earlier positions, one without; each at the
    // company their email and page name (not a stale profile).
    let by_domain: BTreeMap<&str, &Company> = companies
        .iter()
        .filter_map(|c| c.domain.as_deref().map(|d| (d, c)))
        .collect();
    let current = |p: &&Person| {
        let Some(domain) = p.email_domain() else {
            return false;
        };
        by_domain.get(domain.as_str()).is_some_and(|c| {
            unique_handle(c)
                && c.linkedin_handle == p.current_company_linkedin_handle
                && c.name == p.current_company_text
        })
    };
    let with_history = people
        .iter()
        .filter(current)
        .filter(|p| p.past_positions.len() >= 2)
        .take(2);
    let without_history = people
        .iter()
        .filter(current)
        .filter(|p| p.past_positions.is_empty())
        .take(1);
    for person in with_history.chain(without_history) {
        let subject = json!({ "person": { "email": person.email } });
        let mut numbers = BTreeSet::new();
        for p in &person.past_positions {
            numbers.extend(p.start_year.map(u64::from));
            numbers.extend(p.end_year.map(u64::from));
        }
        let companies: Vec<String> = person
            .past_positions
            .iter()
            .map(|p| p.company_text.clone())
            .collect();
        let expectations: [(&str, Expected); 4] = [
            (
                "background",
                if companies.is_empty() {
                    Expected::Contains(vec![person.title.clone()])
                } else {
                    Expected::Contains(companies.clone())
                },
            ),
            (
                "previous_employers",
                if companies.is_empty() {
                    Expected::NotFound
                } else {
                    Expected::Contains(companies.clone())
                },
            ),
            (
                "tenure",
                match person.past_positions.first().and_then(|p| p.end_year) {
                    Some(year) => Expected::Contains(vec![year.to_string()]),
                    None => Expected::NotFound,
                },
            ),
            ("role", Expected::Contains(vec![person.title.clone()])),
        ];
        for (intent, expected) in expectations {
            for template in t("person", intent) {
                out.push(Case {
                    intent: "history".to_owned(),
                    subject: subject.clone(),
                    people: vec![person.clone()],
                    numbers: numbers.clone(),
                    question: fill(&template, "", &person.full_name, None),
                    expected: expected.clone(),
                });
            }
        }
    }
    out
}

/// The verdict on one answer.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Correct,
    Wrong(String),
    FalseClaim(String),
}

/// Pure digit runs of `text` without its `[n]` citations.
fn numbers_in(text: &str) -> Vec<u64> {
    let mut stripped = text.to_owned();
    for n in citations(text) {
        stripped = stripped.replace(&format!("[{n}]"), " ");
    }
    stripped
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Whether `name` is in `text` as a whole name.
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn judge(case: &Case, answer: &Value, result: &Value, everyone: &HashSet<String>) -> Verdict {
    let text = answer["answer"].as_str().unwrap_or_default();
    let found = answer["found"].as_bool().unwrap_or(false);
    if matches!(case.expected, Expected::NotFound) {
        return if !found && text == "Not found in the sources." {
            Verdict::Correct
        } else {
            Verdict::FalseClaim(format!("answered what the sources lack: {text}"))
        };
    }
    if !found {
        return Verdict::Wrong(format!("not found: {text}"));
    }
    // False claims: a person not at the company, a number not in the records.
    let at_company: BTreeSet<&str> = case.people.iter().map(|p| p.full_name.as_str()).collect();
    let named: Vec<&String> = everyone.iter().filter(|n| names(text, n)).collect();
    for name in &named {
        if !at_company.contains(name.as_str()) {
            return Verdict::FalseClaim(format!("names {name}, who is not there: {text}"));
        }
    }
    let named_here: usize = named.len();
    for n in numbers_in(text) {
        let small = n as usize <= named_here.max(case.people.len());
        if !case.numbers.contains(&n) && !small {
            return Verdict::FalseClaim(format!("states {n}, not in the records: {text}"));
        }
    }
    // Citations.
    let ids = source_ids(result);
    let cited = citations(text);
    if cited.is_empty() || cited.iter().any(|n| !ids.contains(n)) {
        return Verdict::Wrong(format!("citations {cited:?} of {ids:?}: {text}"));
    }
    match &case.expected {
        Expected::NotFound => Verdict::Correct,
        Expected::People { any, allowed } => {
            if !any.iter().any(|n| names(text, n)) {
                return Verdict::Wrong(format!("names none of {any:?}: {text}"));
            }
            if let Some(other) = named.iter().find(|n| !allowed.contains(n.as_str())) {
                return Verdict::Wrong(format!("names {other}, not one of {allowed:?}: {text}"));
            }
            Verdict::Correct
        }
        Expected::Contains(facts) => match facts.iter().find(|f| !text.contains(f.as_str())) {
            Some(missing) => Verdict::Wrong(format!("lacks {missing:?}: {text}")),
            None => Verdict::Correct,
        },
        Expected::Count(n) => {
            if numbers_in(text).contains(&(*n as u64)) {
                Verdict::Correct
            } else {
                Verdict::Wrong(format!("lacks the count {n}: {text}"))
            }
        }
        Expected::AnyCompany(list) => {
            if list.iter().any(|c| text.contains(c.as_str())) {
                Verdict::Correct
            } else {
                Verdict::Wrong(format!("names none of {list:?}: {text}"))
            }
        }
    }
}

#[tokio::test]
async fn seller_questions_are_answered_from_the_directory() {
    let templates: Templates = serde_json::from_str(include_str!("eval_questions.json")).unwrap();
    let records: Vec<Record> = dossier_directory_gen::generate(SEED, PEOPLE, COMPANIES).collect();
    let dir = LocalDirectory::from_records("generated", records);
    let cases = cases(&dir, &templates).await;
    assert!(cases.len() >= 60, "{} questions", cases.len());
    let everyone: HashSet<String> = dir.people().iter().map(|p| p.full_name.clone()).collect();

    let app = spawn_app().await;
    let mut config = config(&app, None);
    // No network: every subject's site is a port nobody listens on.
    let closed = dossier_testkit::ClosedPort::new();
    let mut domains: BTreeSet<String> = dir
        .companies()
        .iter()
        .filter_map(|c| c.domain.clone())
        .filter(|d| {
            cases
                .iter()
                .any(|c| c.subject.to_string().contains(d.as_str()))
        })
        .collect();
    for case in &cases {
        for p in &case.people {
            if let Some(d) = p.email_domain() {
                domains.insert(d);
            }
        }
    }
    config.research.site_overrides = domains
        .iter()
        .map(|d| {
            format!("{d}=http://127.0.0.1:{}", closed.port())
                .parse()
                .unwrap()
        })
        .collect();
    let providers = ProviderSet::new(vec![Arc::new(dir) as Arc<dyn DirectoryProvider>]);
    let worker = App::build_with_providers(config, providers).await.unwrap();
    let _worker = Running::spawn(|token| worker.run(token));

    // One research per subject and ten questions, all at once.
    let mut batches: Vec<(Value, Vec<&Case>)> = Vec::new();
    for case in &cases {
        match batches
            .iter_mut()
            .find(|(s, qs)| *s == case.subject && qs.len() < PER_RESEARCH)
        {
            Some((_, qs)) => qs.push(case),
            None => batches.push((case.subject.clone(), vec![case])),
        }
    }
    let results =
        futures::future::join_all(batches.iter().map(|(subject, qs)| {
            let questions: Vec<String> = qs.iter().map(|c| c.question.clone()).collect();
            let app = &app;
            async move {
                research_result(app, &json!({ "subject": subject, "questions": questions })).await
            }
        }))
        .await;

    let mut per_intent: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut false_claims = Vec::new();
    let mut wrong = Vec::new();
    for ((_, qs), result) in batches.iter().zip(&results) {
        let answers = result["sections"]["answers"].as_array().unwrap();
        assert_eq!(answers.len(), qs.len());
        for (case, answer) in qs.iter().zip(answers) {
            assert_eq!(answer["question"], case.question.as_str());
            let entry = per_intent.entry(case.intent.as_str()).or_default();
            entry.1 += 1;
            match judge(case, answer, result, &everyone) {
                Verdict::Correct => entry.0 += 1,
                Verdict::Wrong(why) => wrong.push(format!("{:?}: {why}", case.question)),
                Verdict::FalseClaim(why) => {
                    false_claims.push(format!("{:?}: {why}", case.question))
                }
            }
        }
    }
    let total: usize = per_intent.values().map(|(_, n)| n).sum();
    let correct: usize = per_intent.values().map(|(c, _)| c).sum();
    println!("research answers, {total} questions (seed {SEED}, {PEOPLE} people):");
    for (intent, (c, n)) in &per_intent {
        println!(
            "  {intent:<10} {c:>3}/{n:<3} {:>5.1} %",
            100.0 * *c as f64 / *n as f64
        );
    }
    println!(
        "  {:<10} {correct:>3}/{total:<3} {:>5.1} %",
        "overall",
        100.0 * correct as f64 / total as f64
    );
    println!("  false claims: {}", false_claims.len());
    for w in wrong.iter().chain(&false_claims) {
        println!("  ✗ {w}");
    }
    assert!(false_claims.is_empty(), "false claims: {false_claims:#?}");
    assert!(correct * 10 >= total * 9, "overall {correct}/{total}");
    for (intent, (c, n)) in &per_intent {
        assert!(c * 10 >= n * 9, "{intent}: {c}/{n}");
    }
}
