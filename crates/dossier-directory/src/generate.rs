//! A deterministic generator of realistic directories, for benchmarks and
//! load tests.
//!
//! The same `(seed, people, companies)` always gives byte-identical output:
//! the RNG is xoshiro256++ (a documented, portable algorithm), records are
//! produced in a fixed order, and hash sets are only ever asked "is this
//! taken?", never iterated.
//!
//! What makes it realistic, i.e. what the workers must cope with:
//! * company names with legal-form and case variants (`Velora`, `VELORA
//!   Corp.`, `Velora Corporation, Inc.`) as aliases and in profile text, and
//!   initialisms of multi-word names (`Northwind Health Systems` → `NHS`);
//! * about 15% of companies without a known LinkedIn handle, about 5%
//!   without a domain;
//! * look-alikes (about 4%): a second company sharing an earlier company's
//!   name in another industry and on another domain, which either has its own
//!   handle (`velora-plumbing`), no handle, or claims the same handle;
//! * people whose profile company text is a variant (≈15%), an abbreviation
//!   (≈5%) or stale (≈10%, the previous employer: text and company page are
//!   the old company's, only the email domain tells the truth);
//! * titles consistent with seniority and department, emails on the company
//!   domain in several patterns, LinkedIn profile URLs in mixed forms,
//!   common names shared by several people.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use dossier_contracts::api::{Department, Seniority};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::model::{Company, Location, Person, Position, Record, SizeBand};
use crate::normalize::{fold, normalize_company_name};

/// People in a default generated directory.
pub const DEFAULT_PEOPLE: usize = 200_000;
/// Companies in a default generated directory.
pub const DEFAULT_COMPANIES: usize = 20_000;
/// The file [`write_jsonl`] writes inside its folder.
pub const JSONL_FILE_NAME: &str = "directory.jsonl";

/// Generates a directory: `companies` company records first, then `people`
/// person records, lazily (companies are planned up front; people are made
/// one at a time as the iterator is advanced).
///
/// People need somewhere to work: when `people > 0`, at least one company is
/// generated.
pub fn generate(seed: u64, people: usize, companies: usize) -> impl Iterator<Item = Record> {
    let companies = if people > 0 {
        companies.max(1)
    } else {
        companies
    };
    let mut generator = Generator::new(seed, companies, people);
    let company_records: Vec<Record> = generator
        .plans
        .iter()
        .map(|p| Record::Company(p.company.clone()))
        .collect();
    company_records
        .into_iter()
        .chain((0..people).map(move |i| Record::Person(generator.person(i))))
}

/// Writes [`generate`]'s records as JSONL (see [`crate::LocalDirectory`]'s
/// loader for the format) to `out`.
pub fn write_records(
    out: &mut impl Write,
    seed: u64,
    people: usize,
    companies: usize,
) -> io::Result<()> {
    for record in generate(seed, people, companies) {
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes a generated directory to `dir/directory.jsonl` (creating `dir`)
/// and returns the file's path; [`crate::load_directory`] on `dir` loads it.
pub fn write_jsonl(dir: &Path, seed: u64, people: usize, companies: usize) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(JSONL_FILE_NAME);
    let mut out = BufWriter::new(File::create(&path)?);
    write_records(&mut out, seed, people, companies)?;
    out.flush()?;
    Ok(path)
}

/// A company and what people's profiles may call it.
#[derive(Debug)]
struct Plan {
    company: Company,
    /// The name without legal form, as spelled (`Velora Health`).
    base: String,
    /// Names that normalise like the company's name (legal and case
    /// variants), for profile text.
    variants: Vec<String>,
    /// An initialism or short form that does not normalise like the name.
    abbreviation: Option<String>,
    /// Likely people per 10 in the directory: a heavy-tailed share.
    weight: f64,
}

struct Generator {
    rng: Xoshiro256PlusPlus,
    plans: Vec<Plan>,
    /// Running sum of weights, for picking an employer in O(log n).
    cumulative: Vec<f64>,
    emails: HashSet<String>,
    profiles: HashSet<String>,
    people_hint: f64,
}

fn below(rng: &mut Xoshiro256PlusPlus, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    rng.random_range(0..n as u64) as usize
}

fn pick<'a, T>(rng: &mut Xoshiro256PlusPlus, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

fn chance(rng: &mut Xoshiro256PlusPlus, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// Picks from `(item, weight)` pairs.
fn weighted<T: Copy>(rng: &mut Xoshiro256PlusPlus, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for &(item, w) in items {
        if roll < w {
            return item;
        }
        roll -= w;
    }
    items[items.len() - 1].0
}

/// Lower-case ASCII slug: `Velora Health` → `velora-health`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in fold(text).chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') && c != '\'' && c != '.' {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Lower-case ASCII letters and digits only: for domains and emails.
fn compact(text: &str) -> String {
    fold(text)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

impl Generator {
    fn new(seed: u64, companies: usize, people: usize) -> Self {
        let mut g = Generator {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            plans: Vec::with_capacity(companies),
            cumulative: Vec::with_capacity(companies),
            emails: HashSet::new(),
            profiles: HashSet::new(),
            people_hint: 0.0,
        };
        let mut handles = HashSet::new();
        let mut domains = HashSet::new();
        let mut names = HashSet::new();
        for i in 0..companies {
            let plan = if i > 20 && chance(&mut g.rng, 0.04) {
                let twin = below(&mut g.rng, i);
                g.look_alike(i, twin, &mut handles, &mut domains)
            } else {
                g.company(i, &mut handles, &mut domains, &mut names)
            };
            g.plans.push(plan);
        }
        let mut total = 0.0;
        for p in &g.plans {
            total += p.weight;
            g.cumulative.push(total);
        }
        g.people_hint = total;
        // The directory knows a fraction of each company's staff; assume a
        // quarter when turning expected directory people into a head count.
        for p in &mut g.plans {
            let employees = 4.0 * people as f64 * p.weight / total.max(1.0);
            p.company.size_band = match employees {
                e if e <= 10.0 => SizeBand::Micro,
                e if e <= 50.0 => SizeBand::Small,
                e if e <= 200.0 => SizeBand::Medium,
                e if e <= 500.0 => SizeBand::Large,
                e if e <= 1000.0 => SizeBand::XLarge,
                e if e <= 5000.0 => SizeBand::Enterprise,
                _ => SizeBand::Giant,
            };
        }
        g
    }

    fn brand(&mut self, country: &str) -> String {
        let rng = &mut self.rng;
        if matches!(
            country,
            "Germany" | "France" | "Sweden" | "Denmark" | "Switzerland" | "Spain"
        ) && chance(rng, 0.2)
        {
            return pick(rng, EUROPEAN_BRANDS).to_string();
        }
        if chance(rng, 0.3) {
            format!(
                "{}{}",
                pick(rng, COMPOUND_FIRST),
                pick(rng, COMPOUND_SECOND)
            )
        } else {
            format!(
                "{}{}",
                pick(rng, SYLLABLE_FIRST),
                pick(rng, SYLLABLE_SECOND)
            )
        }
    }

    /// The name without legal form: `Velora`, `Velora Analytics`, or a
    /// three-word name that has an initialism.
    fn base_name(&mut self, industry: &Industry, country: &str) -> String {
        let brand = self.brand(country);
        let rng = &mut self.rng;
        let roll = rng.random::<f64>();
        if roll < 0.4 {
            brand
        } else if roll < 0.85 {
            format!("{brand} {}", pick(rng, industry.words))
        } else {
            let first = pick(rng, industry.words);
            let second = pick(rng, GROUP_WORDS);
            format!("{brand} {first} {second}")
        }
    }

    fn company(
        &mut self,
        i: usize,
        handles: &mut HashSet<String>,
        domains: &mut HashSet<String>,
        names: &mut HashSet<String>,
    ) -> Plan {
        let industry = pick(&mut self.rng, INDUSTRIES);
        let hq = *pick(&mut self.rng, CITIES);
        // Distinct names, so that same-name companies are the deliberate
        // look-alikes; a few tries, then accept a natural collision.
        let mut base = self.base_name(industry, hq.2);
        for _ in 0..5 {
            if names.insert(normalize_company_name(&base)) {
                break;
            }
            base = self.base_name(industry, hq.2);
        }
        let has_handle = chance(&mut self.rng, 0.85);
        let handle = has_handle.then(|| unique(slug(&base), handles, industry.slug));
        self.finish(i, base, industry, hq, handle, domains)
    }

    /// A company sharing `twin`'s name in another industry and place.
    fn look_alike(
        &mut self,
        i: usize,
        twin: usize,
        handles: &mut HashSet<String>,
        domains: &mut HashSet<String>,
    ) -> Plan {
        let twin_industry = self.plans[twin].company.industry.clone();
        let mut industry = pick(&mut self.rng, INDUSTRIES);
        if industry.name == twin_industry {
            industry = &INDUSTRIES[(INDUSTRIES
                .iter()
                .position(|x| x.name == industry.name)
                .unwrap_or(0)
                + 1)
                % INDUSTRIES.len()];
        }
        let hq = *pick(&mut self.rng, CITIES);
        let base = self.plans[twin].base.clone();
        let twin_handle = self.plans[twin].company.linkedin_handle.clone();
        let handle = match self.rng.random_range(0..10u32) {
            // Its own page, named after the name plus the trade.
            0..5 => Some(unique(
                format!("{}-{}", slug(&base), industry.slug),
                handles,
                industry.slug,
            )),
            // No known page: a name search finds two companies, one with a
            // page.
            5..8 => None,
            // Claims the twin's page (vendor data error): two companies
            // compete for one handle.
            _ => twin_handle,
        };
        self.finish(i, base, industry, hq, handle, domains)
    }

    fn finish(
        &mut self,
        i: usize,
        base: String,
        industry: &'static Industry,
        hq: City,
        handle: Option<String>,
        domains: &mut HashSet<String>,
    ) -> Plan {
        let rng = &mut self.rng;
        let legal = legal_forms(hq.2);
        let name = match rng.random_range(0..10u32) {
            0..5 => base.clone(),
            5..8 => format!("{base} {}", pick(rng, legal)),
            _ => format!("{base}, {}", pick(rng, legal)),
        };
        let domain = chance(rng, 0.95).then(|| {
            let stem = if chance(rng, 0.6) {
                compact(&base)
            } else {
                slug(&base)
            };
            let tld = country_tld(hq.2, rng);
            let mut domain = format!("{stem}.{tld}");
            let mut n = 2;
            while !domains.insert(domain.clone()) {
                domain = format!(
                    "{stem}{}{}.{tld}",
                    industry.slug.replace('-', ""),
                    if n > 2 { n.to_string() } else { String::new() }
                );
                n += 1;
            }
            domain
        });
        // Initials of the words (`&` is not a word): `Velora Plumbing &
        // Heating` → `VPH`.
        let initials: String = base
            .split_whitespace()
            .filter_map(|w| w.chars().next())
            .filter(|c| c.is_alphabetic())
            .flat_map(char::to_uppercase)
            .collect();
        let abbreviation = (initials.chars().count() >= 2).then_some(initials);
        let mut variants = vec![
            base.to_uppercase(),
            format!("{base} {}", pick(rng, legal)),
            format!("{base} {}.", pick(rng, &["Corp", "Inc", "Co"])),
            format!("{base} Corporation, Inc."),
        ];
        if !base.is_ascii() {
            variants.push(ascii_spelling(&base));
        }
        variants.retain(|v| *v != name);
        let mut aliases = Vec::new();
        for v in &variants {
            if aliases.len() < 2 && chance(rng, 0.4) {
                aliases.push(v.clone());
            }
        }
        if let Some(abbr) = abbreviation.as_ref().filter(|_| chance(rng, 0.5)) {
            aliases.push(abbr.clone());
        }
        // Heavy-tailed head count (Pareto, shape 1.1), capped so no company
        // holds more than a few percent of the directory.
        let u: f64 = rng.random::<f64>();
        let weight = (1.0 - u).powf(-1.0 / 1.1).min(400.0);
        let company = Company {
            id: format!("c{i:06}"),
            name,
            aliases,
            domain,
            linkedin_handle: handle,
            industry: industry.name.to_owned(),
            size_band: SizeBand::Micro,
            headquarters: Location {
                city: hq.0.to_owned(),
                region: hq.1.to_owned(),
                country: hq.2.to_owned(),
            },
        };
        Plan {
            company,
            base,
            variants,
            abbreviation,
            weight,
        }
    }

    fn employer(&mut self) -> usize {
        let roll = self.rng.random::<f64>() * self.people_hint;
        self.cumulative
            .partition_point(|&c| c <= roll)
            .min(self.plans.len() - 1)
    }

    fn person(&mut self, i: usize) -> Person {
        let employer = self.employer();
        let plan_weight = self.plans[employer].weight;
        let rng = &mut self.rng;
        // Few chiefs and owners in big companies: their weight shrinks with
        // the company's share.
        let top = (6.0 / plan_weight).clamp(0.2, 6.0) as u32;
        let seniority = weighted(
            rng,
            &[
                (Seniority::Entry, 28),
                (Seniority::Senior, 32),
                (Seniority::Manager, 18),
                (Seniority::Director, 10),
                (Seniority::Vp, 6),
                (Seniority::CSuite, top.max(1)),
                (Seniority::Owner, top.max(1)),
            ],
        );
        let department = match seniority {
            Seniority::Owner => Department::Executive,
            _ => weighted(rng, DEPARTMENT_WEIGHTS),
        };
        let title = pick(rng, titles(department, seniority)).to_string();
        let first = *pick(rng, FIRST_NAMES);
        let last = *pick(rng, LAST_NAMES);
        let full_name = format!("{first} {last}");

        let company = &self.plans[employer].company;
        let location = if chance(rng, 0.7) {
            company.headquarters.clone()
        } else {
            let c = pick(rng, CITIES);
            Location {
                city: c.0.to_owned(),
                region: c.1.to_owned(),
                country: c.2.to_owned(),
            }
        };
        let email = company
            .domain
            .clone()
            .filter(|_| chance(rng, 0.75))
            .map(|domain| {
                let (f, l) = (compact(first), compact(last));
                let local = match rng.random_range(0..10u32) {
                    0..6 => format!("{f}.{l}"),
                    6..8 => format!("{}{l}", f.chars().next().unwrap_or('x')),
                    8 => format!("{f}_{l}"),
                    _ => f.clone(),
                };
                let mut email = format!("{local}@{domain}");
                let mut n = 2;
                while !self.emails.insert(email.clone()) {
                    email = format!("{local}{n}@{domain}");
                    n += 1;
                }
                email
            });
        let linkedin_url = chance(rng, 0.85).then(|| {
            let base = slug(&full_name);
            let mut handle = if chance(rng, 0.6) {
                format!("{base}-{:x}", rng.random_range(0x10_0000..0xfff_ffffu32))
            } else {
                base.clone()
            };
            let mut n = 2;
            while !self.profiles.insert(handle.clone()) {
                handle = format!("{base}-{n}");
                n += 1;
            }
            let country = location.country.as_str();
            profile_url(rng, &handle, country)
        });

        // What the profile says the current company is.
        let roll = rng.random_range(0..100u32);
        let (shown, text) = match roll {
            0..10 => {
                // Stale: the previous employer, page and all.
                let mut other = below(rng, self.plans.len());
                if other == employer {
                    other = (other + 1) % self.plans.len();
                }
                let text = self.plans[other].company.name.clone();
                (other, text)
            }
            10..15 => {
                let plan = &self.plans[employer];
                let text = plan
                    .abbreviation
                    .clone()
                    .unwrap_or_else(|| plan.company.name.to_uppercase());
                (employer, text)
            }
            15..30 => {
                let plan = &self.plans[employer];
                let text = if plan.variants.is_empty() {
                    plan.company.name.clone()
                } else {
                    pick(rng, &plan.variants).clone()
                };
                (employer, text)
            }
            _ => (employer, self.plans[employer].company.name.clone()),
        };
        let current_company_linkedin_handle = self.plans[shown]
            .company
            .linkedin_handle
            .clone()
            .filter(|_| chance(rng, 0.85));

        let mut past_positions = Vec::new();
        let mut year = 2024 - rng.random_range(0..4u16);
        if shown != employer {
            // The stale employer is the most recent position the profile
            // knows; it shows as current, so its start is the latest year.
            year -= rng.random_range(1..4u16);
        }
        for _ in 0..rng.random_range(0..4u32) {
            let company = below(rng, self.plans.len());
            let plan = &self.plans[company];
            let start = year.saturating_sub(rng.random_range(1..6u16));
            past_positions.push(Position {
                company_text: plan.company.name.clone(),
                company_linkedin_handle: plan
                    .company
                    .linkedin_handle
                    .clone()
                    .filter(|_| chance(rng, 0.7)),
                title: pick(rng, titles(department, junior(seniority))).to_string(),
                start_year: Some(start),
                end_year: Some(year),
            });
            year = start;
        }
        let skills: Vec<String> = {
            let pool = skills(department);
            let n = 2 + below(rng, 4);
            let mut chosen: Vec<String> = Vec::with_capacity(n);
            for _ in 0..n {
                let s = pick(rng, pool).to_string();
                if !chosen.contains(&s) {
                    chosen.push(s);
                }
            }
            chosen
        };
        let headline = match rng.random_range(0..10u32) {
            0..6 => format!("{title} at {text}"),
            6..8 => format!("{title} | {}", skills.join(", ")),
            _ => String::new(),
        };
        Person {
            id: format!("p{i:07}"),
            full_name,
            title,
            seniority,
            department,
            location,
            email,
            linkedin_url,
            current_company_text: text,
            current_company_linkedin_handle,
            headline,
            skills,
            past_positions,
        }
    }
}

/// `base` or `base-industry` or `base-2`, … whichever is free.
fn unique(base: String, taken: &mut HashSet<String>, industry: &str) -> String {
    if taken.insert(base.clone()) {
        return base;
    }
    let with_industry = format!("{base}-{industry}");
    if taken.insert(with_industry.clone()) {
        return with_industry;
    }
    let mut n = 2;
    loop {
        let candidate = format!("{base}-{n}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

/// `text` with every non-ASCII letter spelled in ASCII, case kept:
/// `Müller` → `Muller`, `Ærø` → `AEro`.
fn ascii_spelling(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let folded = fold(&c.to_string());
        if c.is_uppercase() {
            out.push_str(&folded.to_uppercase());
        } else {
            out.push_str(&folded);
        }
    }
    out
}

fn junior(s: Seniority) -> Seniority {
    match s {
        Seniority::Owner | Seniority::CSuite => Seniority::Vp,
        Seniority::Vp => Seniority::Director,
        Seniority::Director => Seniority::Manager,
        Seniority::Manager => Seniority::Senior,
        Seniority::Senior | Seniority::Entry => Seniority::Entry,
    }
}

fn profile_url(rng: &mut Xoshiro256PlusPlus, handle: &str, country: &str) -> String {
    match rng.random_range(0..20u32) {
        0..8 => format!("https://www.linkedin.com/in/{handle}/"),
        8..12 => format!("https://www.linkedin.com/in/{handle}"),
        12..15 => format!("linkedin.com/in/{handle}"),
        15 => format!("http://linkedin.com/in/{handle}"),
        16 => format!("www.linkedin.com/in/{handle}/?originalSubdomain=us"),
        _ => {
            let sub = match country {
                "United Kingdom" => "uk",
                "Germany" => "de",
                "France" => "fr",
                "India" => "in",
                "Brazil" => "br",
                "Canada" => "ca",
                "Australia" => "au",
                "Spain" => "es",
                _ => "www",
            };
            format!("https://{sub}.linkedin.com/in/{handle}")
        }
    }
}

fn country_tld(country: &str, rng: &mut Xoshiro256PlusPlus) -> &'static str {
    if chance(rng, 0.6) {
        return "com";
    }
    match country {
        "United Kingdom" => "co.uk",
        "Germany" => "de",
        "France" => "fr",
        "Netherlands" => "nl",
        "Sweden" => "se",
        "Switzerland" => "ch",
        "Spain" => "es",
        "Australia" => "com.au",
        "Brazil" => "com.br",
        _ => {
            const OTHER_TLDS: &[&str] = &["io", "co", "ai", "net"];
            OTHER_TLDS[below(rng, OTHER_TLDS.len())]
        }
    }
}

fn legal_forms(country: &str) -> &'static [&'static str] {
    match country {
        "United States" | "Canada" => &["Inc.", "Inc", "Corp.", "LLC", "Corporation"],
        "United Kingdom" | "Ireland" | "Israel" => &["Ltd", "Ltd.", "Limited", "PLC"],
        "Germany" => &["GmbH", "AG", "GmbH & Co. KG"],
        "Switzerland" => &["AG", "SA", "GmbH"],
        "France" => &["SAS", "S.A.", "SA"],
        "Netherlands" => &["B.V.", "BV", "N.V."],
        "Sweden" => &["AB"],
        "Finland" => &["Oy", "Oyj"],
        "Denmark" => &["A/S", "ApS"],
        "Spain" => &["S.L.", "S.A."],
        "Italy" => &["S.r.l.", "S.p.A."],
        "Poland" => &["S.A."],
        "Brazil" => &["Ltda.", "S.A."],
        "Mexico" => &["S.A."],
        "India" => &["Pvt. Ltd.", "Private Limited", "Ltd"],
        "Singapore" => &["Pte. Ltd.", "Pte Ltd"],
        "Australia" => &["Pty Ltd", "Pty. Ltd."],
        "Japan" => &["K.K.", "KK"],
        "South Africa" => &["(Pty) Ltd"],
        _ => &["Inc.", "Ltd"],
    }
}

/// City, region, country.
type City = (&'static str, &'static str, &'static str);

const CITIES: &[City] = &[
    ("San Francisco", "California", "United States"),
    ("New York", "New York", "United States"),
    ("Austin", "Texas", "United States"),
    ("Seattle", "Washington", "United States"),
    ("Boston", "Massachusetts", "United States"),
    ("Chicago", "Illinois", "United States"),
    ("Denver", "Colorado", "United States"),
    ("Atlanta", "Georgia", "United States"),
    ("Los Angeles", "California", "United States"),
    ("Miami", "Florida", "United States"),
    ("Toronto", "Ontario", "Canada"),
    ("Vancouver", "British Columbia", "Canada"),
    ("London", "England", "United Kingdom"),
    ("Manchester", "England", "United Kingdom"),
    ("Edinburgh", "Scotland", "United Kingdom"),
    ("Dublin", "Leinster", "Ireland"),
    ("Berlin", "Berlin", "Germany"),
    ("München", "Bavaria", "Germany"),
    ("Hamburg", "Hamburg", "Germany"),
    ("Paris", "Île-de-France", "France"),
    ("Lyon", "Auvergne-Rhône-Alpes", "France"),
    ("Amsterdam", "North Holland", "Netherlands"),
    ("Stockholm", "Stockholm", "Sweden"),
    ("Helsinki", "Uusimaa", "Finland"),
    ("Copenhagen", "Capital Region", "Denmark"),
    ("Zürich", "Zurich", "Switzerland"),
    ("Madrid", "Community of Madrid", "Spain"),
    ("Barcelona", "Catalonia", "Spain"),
    ("Milan", "Lombardy", "Italy"),
    ("Warsaw", "Masovia", "Poland"),
    ("Kraków", "Lesser Poland", "Poland"),
    ("São Paulo", "São Paulo", "Brazil"),
    ("Mexico City", "Mexico City", "Mexico"),
    ("Bengaluru", "Karnataka", "India"),
    ("Singapore", "", "Singapore"),
    ("Sydney", "New South Wales", "Australia"),
    ("Melbourne", "Victoria", "Australia"),
    ("Tokyo", "Tokyo", "Japan"),
    ("Tel Aviv", "Tel Aviv District", "Israel"),
    ("Cape Town", "Western Cape", "South Africa"),
];

struct Industry {
    name: &'static str,
    slug: &'static str,
    words: &'static [&'static str],
}

const INDUSTRIES: &[Industry] = &[
    Industry {
        name: "Software",
        slug: "software",
        words: &["Software", "Labs", "Systems", "Cloud", "Technologies"],
    },
    Industry {
        name: "Analytics",
        slug: "analytics",
        words: &["Analytics", "Data", "Insights", "Intelligence"],
    },
    Industry {
        name: "Financial Services",
        slug: "finance",
        words: &["Capital", "Financial", "Partners", "Payments", "Bank"],
    },
    Industry {
        name: "Healthcare",
        slug: "health",
        words: &["Health", "Medical", "Care", "Clinics", "Therapeutics"],
    },
    Industry {
        name: "Plumbing",
        slug: "plumbing",
        words: &["Plumbing", "Plumbing & Heating", "Pipe Works"],
    },
    Industry {
        name: "Construction",
        slug: "construction",
        words: &["Construction", "Builders", "Contracting", "Engineering"],
    },
    Industry {
        name: "Logistics",
        slug: "logistics",
        words: &["Logistics", "Freight", "Shipping", "Transport"],
    },
    Industry {
        name: "Retail",
        slug: "retail",
        words: &["Retail", "Stores", "Outfitters", "Market"],
    },
    Industry {
        name: "Manufacturing",
        slug: "manufacturing",
        words: &["Manufacturing", "Industries", "Works", "Robotics"],
    },
    Industry {
        name: "Energy",
        slug: "energy",
        words: &["Energy", "Power", "Solar", "Renewables"],
    },
    Industry {
        name: "Media",
        slug: "media",
        words: &["Media", "Studios", "Publishing", "Entertainment"],
    },
    Industry {
        name: "Consulting",
        slug: "consulting",
        words: &["Consulting", "Advisors", "Partners", "Group"],
    },
    Industry {
        name: "Food & Beverage",
        slug: "foods",
        words: &["Foods", "Kitchen", "Brewing", "Coffee"],
    },
    Industry {
        name: "Real Estate",
        slug: "realty",
        words: &["Realty", "Properties", "Real Estate", "Homes"],
    },
    Industry {
        name: "Education",
        slug: "education",
        words: &["Learning", "Academy", "Education"],
    },
    Industry {
        name: "Security",
        slug: "security",
        words: &["Security", "Cyber", "Defense"],
    },
];

const GROUP_WORDS: &[&str] = &[
    "Group",
    "Systems",
    "Holdings",
    "Solutions",
    "International",
    "Services",
];

const SYLLABLE_FIRST: &[&str] = &[
    "Ac", "Bel", "Cor", "Dyn", "El", "Fal", "Gal", "Hel", "Ion", "Jun", "Kor", "Lum", "Mer", "Nov",
    "Or", "Pax", "Quan", "Rho", "Sol", "Tor", "Ul", "Ver", "Wex", "Xan", "Yor", "Zen", "Ast",
    "Bri", "Cal", "Del", "Ev", "Fin", "Gra", "Hal", "Ind", "Kin", "Lat", "Mon", "Nex", "Opt",
    "Pri", "Qua", "Riv", "Sen", "Tal", "Uni", "Vel", "Win", "Zeph", "Ar", "Cyn", "Em", "Fer",
    "Glo", "Hy", "Ix", "Jov", "Kal", "Lyr", "Myr",
];

const SYLLABLE_SECOND: &[&str] = &[
    "me", "ex", "ia", "on", "ar", "is", "um", "ora", "ent", "ix", "eon", "ana", "ity", "io", "ly",
    "ware", "wise", "ra", "os", "ium", "ova", "ant", "ica", "exa", "ara", "ion", "ino",
];

const COMPOUND_FIRST: &[&str] = &[
    "North", "Blue", "Red", "Silver", "Green", "Bright", "Iron", "Stone", "Clear", "Sun", "Oak",
    "River", "Summit", "Pine", "Eagle", "Harbor", "Pacific", "Atlantic", "Golden", "Swift",
];

const COMPOUND_SECOND: &[&str] = &[
    "wind", "field", "bridge", "gate", "point", "stone", "wave", "peak", "light", "brook", "crest",
    "ridge", "line", "path", "works", "forge",
];

const EUROPEAN_BRANDS: &[&str] = &[
    "Lumière",
    "Müller",
    "Østerberg",
    "Brûlé",
    "Señal",
    "Größe",
    "Ærø",
    "Crème",
    "Fjällräv",
    "Société Générique",
    "Zürcher",
    "Ångström",
];

const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Margaret",
    "Donald",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Kimberly",
    "Andrew",
    "Emily",
    "Joshua",
    "Donna",
    "Kevin",
    "Michelle",
    "Brian",
    "Carol",
    "George",
    "Amanda",
    "Timothy",
    "Melissa",
    "Ronald",
    "Deborah",
    "Jason",
    "Stephanie",
    "Priya",
    "Arjun",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Olga",
    "Dmitri",
    "Fatima",
    "Omar",
    "Aisha",
    "Mohammed",
    "Sofia",
    "Lucas",
    "Mateo",
    "Valentina",
    "Camila",
    "Diego",
    "Chloé",
    "Léa",
    "Zoë",
    "José",
    "Jörg",
    "Björn",
    "Søren",
    "Åsa",
    "Anaïs",
    "François",
    "Renée",
    "Łukasz",
    "Małgorzata",
    "Ngozi",
    "Chinedu",
    "Kwame",
    "Amara",
    "Ingrid",
    "Lars",
    "Astrid",
    "Nikos",
    "Eleni",
    "Tomás",
    "Inés",
    "Raj",
    "Ananya",
    "Sanjay",
    "Kenji",
    "Hana",
    "Min-jun",
    "Ji-woo",
    "Ethan",
    "Olivia",
    "Noah",
    "Emma",
    "Liam",
    "Ava",
    "Mia",
    "Leo",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Sharma",
    "Gupta",
    "Singh",
    "Kumar",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yamamoto",
    "Tanaka",
    "Suzuki",
    "Kim",
    "Park",
    "Choi",
    "Ivanov",
    "Petrov",
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schäfer",
    "Dubois",
    "Lefèvre",
    "Moreau",
    "Laurent",
    "Girard",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Pereira",
    "Costa",
    "Jensen",
    "Nielsen",
    "Hansen",
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Virtanen",
    "Korhonen",
    "O'Brien",
    "O'Connor",
    "Murphy",
    "Kelly",
    "Byrne",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Haddad",
    "Khan",
    "Cohen",
    "Levi",
    "Papadopoulos",
    "Núñez",
    "Peña",
    "Fernández",
    "Gómez",
    "Díaz",
    "Van Dijk",
    "De Vries",
    "Bakker",
    "Jansen",
    "Østergaard",
    "Sørensen",
    "Håkansson",
    "Çelik",
    "Yılmaz",
];

const DEPARTMENT_WEIGHTS: &[(Department, u32)] = &[
    (Department::Engineering, 22),
    (Department::Sales, 18),
    (Department::Marketing, 10),
    (Department::Finance, 7),
    (Department::Operations, 12),
    (Department::Hr, 6),
    (Department::Legal, 3),
    (Department::Product, 7),
    (Department::Support, 10),
    (Department::Executive, 5),
];

/// Job titles consistent with a department and seniority.
fn titles(d: Department, s: Seniority) -> &'static [&'static str] {
    use Department as D;
    use Seniority as S;
    match (s, d) {
        (S::Owner, _) => &[
            "Founder",
            "Co-Founder",
            "Owner",
            "Founder & CEO",
            "Managing Partner",
            "Founder and Managing Director",
        ],
        (S::CSuite, D::Engineering) => &["CTO", "Chief Technology Officer"],
        (S::CSuite, D::Sales) => &["CRO", "Chief Revenue Officer", "Chief Sales Officer"],
        (S::CSuite, D::Marketing) => &["CMO", "Chief Marketing Officer"],
        (S::CSuite, D::Finance) => &["CFO", "Chief Financial Officer"],
        (S::CSuite, D::Operations) => &["COO", "Chief Operating Officer"],
        (S::CSuite, D::Hr) => &[
            "CHRO",
            "Chief People Officer",
            "Chief Human Resources Officer",
        ],
        (S::CSuite, D::Legal) => &["General Counsel", "Chief Legal Officer"],
        (S::CSuite, D::Product) => &["CPO", "Chief Product Officer"],
        (S::CSuite, D::Support) => &["Chief Customer Officer"],
        (S::CSuite, D::Executive) => &["CEO", "Chief Executive Officer", "President"],
        (S::Vp, D::Engineering) => &[
            "VP Engineering",
            "VP of Engineering",
            "Vice President of Engineering",
            "SVP Engineering",
        ],
        (S::Vp, D::Sales) => &[
            "VP Sales",
            "VP of Sales",
            "Vice President, Sales",
            "SVP Global Sales",
        ],
        (S::Vp, D::Marketing) => &[
            "VP Marketing",
            "VP of Marketing",
            "Vice President of Marketing",
        ],
        (S::Vp, D::Finance) => &[
            "VP Finance",
            "Vice President of Finance",
            "VP, Finance & Accounting",
        ],
        (S::Vp, D::Operations) => &[
            "VP Operations",
            "VP of Operations",
            "Vice President, Operations",
        ],
        (S::Vp, D::Hr) => &[
            "VP People",
            "VP of Human Resources",
            "Vice President, Talent",
        ],
        (S::Vp, D::Legal) => &["VP Legal", "Deputy General Counsel"],
        (S::Vp, D::Product) => &[
            "VP Product",
            "VP of Product",
            "Vice President of Product Management",
        ],
        (S::Vp, D::Support) => &[
            "VP Customer Success",
            "VP of Support",
            "Vice President, Customer Experience",
        ],
        (S::Vp, D::Executive) => &["VP Strategy", "Vice President, Corporate Development"],
        (S::Director, D::Engineering) => &[
            "Director of Engineering",
            "Engineering Director",
            "Head of Engineering",
            "Senior Director, Platform Engineering",
        ],
        (S::Director, D::Sales) => &[
            "Director of Sales",
            "Sales Director",
            "Head of Sales",
            "Regional Sales Director",
        ],
        (S::Director, D::Marketing) => &[
            "Director of Marketing",
            "Head of Marketing",
            "Director, Demand Generation",
        ],
        (S::Director, D::Finance) => &["Finance Director", "Director of Finance", "Head of FP&A"],
        (S::Director, D::Operations) => &[
            "Director of Operations",
            "Head of Operations",
            "Supply Chain Director",
        ],
        (S::Director, D::Hr) => &[
            "HR Director",
            "Head of People",
            "Director of Talent Acquisition",
        ],
        (S::Director, D::Legal) => &["Legal Director", "Head of Legal"],
        (S::Director, D::Product) => &[
            "Director of Product",
            "Head of Product",
            "Director, Product Management",
        ],
        (S::Director, D::Support) => &["Director of Customer Support", "Head of Customer Success"],
        (S::Director, D::Executive) => &["Director of Strategy", "Chief of Staff"],
        (S::Manager, D::Engineering) => &[
            "Engineering Manager",
            "Software Engineering Manager",
            "QA Manager",
        ],
        (S::Manager, D::Sales) => &["Sales Manager", "Regional Sales Manager", "Account Manager"],
        (S::Manager, D::Marketing) => &[
            "Marketing Manager",
            "Product Marketing Manager",
            "Demand Generation Manager",
        ],
        (S::Manager, D::Finance) => &["Finance Manager", "Accounting Manager", "Controller"],
        (S::Manager, D::Operations) => &[
            "Operations Manager",
            "Supply Chain Manager",
            "Logistics Manager",
        ],
        (S::Manager, D::Hr) => &[
            "HR Manager",
            "Talent Acquisition Manager",
            "People Operations Manager",
        ],
        (S::Manager, D::Legal) => &["Legal Manager", "Contracts Manager"],
        (S::Manager, D::Product) => &["Group Product Manager", "Product Manager", "Design Manager"],
        (S::Manager, D::Support) => &["Support Manager", "Customer Success Manager"],
        (S::Manager, D::Executive) => &["Office Manager", "Business Operations Manager"],
        (S::Senior, D::Engineering) => &[
            "Senior Software Engineer",
            "Sr. Software Engineer",
            "Staff Engineer",
            "Principal Engineer",
            "Senior Data Scientist",
            "Tech Lead",
        ],
        (S::Senior, D::Sales) => &[
            "Senior Account Executive",
            "Enterprise Account Executive",
            "Sr. Account Executive",
            "Solutions Consultant",
        ],
        (S::Senior, D::Marketing) => &[
            "Senior Marketing Specialist",
            "Senior Content Strategist",
            "Growth Marketing Lead",
        ],
        (S::Senior, D::Finance) => &["Senior Financial Analyst", "Senior Accountant", "FP&A Lead"],
        (S::Senior, D::Operations) => &["Senior Operations Analyst", "Senior Program Manager"],
        (S::Senior, D::Hr) => &[
            "Senior Recruiter",
            "HR Business Partner",
            "Senior Talent Partner",
        ],
        (S::Senior, D::Legal) => &["Senior Counsel", "Senior Corporate Counsel"],
        (S::Senior, D::Product) => &[
            "Senior Product Manager",
            "Senior UX Designer",
            "Product Owner",
        ],
        (S::Senior, D::Support) => &[
            "Senior Support Engineer",
            "Senior Customer Success Specialist",
        ],
        (S::Senior, D::Executive) => &["Senior Strategy Associate", "Senior Executive Assistant"],
        (S::Entry, D::Engineering) => &[
            "Software Engineer",
            "Associate Software Engineer",
            "QA Engineer",
            "Junior Developer",
            "Data Analyst",
        ],
        (S::Entry, D::Sales) => &[
            "Sales Development Representative",
            "SDR",
            "Business Development Representative",
            "Account Executive",
            "Inside Sales Representative",
        ],
        (S::Entry, D::Marketing) => &[
            "Marketing Coordinator",
            "Content Marketing Specialist",
            "Marketing Associate",
            "Social Media Specialist",
        ],
        (S::Entry, D::Finance) => &[
            "Financial Analyst",
            "Accountant",
            "Staff Accountant",
            "Accounts Payable Specialist",
        ],
        (S::Entry, D::Operations) => &[
            "Operations Analyst",
            "Operations Coordinator",
            "Logistics Coordinator",
        ],
        (S::Entry, D::Hr) => &[
            "Recruiter",
            "HR Coordinator",
            "Talent Acquisition Specialist",
        ],
        (S::Entry, D::Legal) => &["Paralegal", "Legal Assistant", "Associate Counsel"],
        (S::Entry, D::Product) => &[
            "Associate Product Manager",
            "Product Analyst",
            "UX Designer",
        ],
        (S::Entry, D::Support) => &[
            "Customer Support Specialist",
            "Support Engineer",
            "Customer Success Associate",
        ],
        (S::Entry, D::Executive) => &["Executive Assistant", "Strategy Analyst"],
    }
}

fn skills(d: Department) -> &'static [&'static str] {
    match d {
        Department::Engineering => &[
            "Rust",
            "Go",
            "Python",
            "Kubernetes",
            "AWS",
            "PostgreSQL",
            "Distributed Systems",
            "Machine Learning",
            "TypeScript",
            "React",
        ],
        Department::Sales => &[
            "Salesforce",
            "Negotiation",
            "Enterprise Sales",
            "SaaS",
            "Prospecting",
            "Account Management",
            "MEDDIC",
        ],
        Department::Marketing => &[
            "SEO",
            "Content Marketing",
            "HubSpot",
            "Demand Generation",
            "Brand Strategy",
            "Google Analytics",
        ],
        Department::Finance => &[
            "Financial Modeling",
            "FP&A",
            "Excel",
            "GAAP",
            "Budgeting",
            "NetSuite",
        ],
        Department::Operations => &[
            "Supply Chain",
            "Lean",
            "Six Sigma",
            "Process Improvement",
            "Logistics",
            "Project Management",
        ],
        Department::Hr => &[
            "Recruiting",
            "Talent Acquisition",
            "Workday",
            "Employee Relations",
            "Compensation",
        ],
        Department::Legal => &[
            "Contracts",
            "Compliance",
            "GDPR",
            "Corporate Law",
            "Intellectual Property",
        ],
        Department::Product => &[
            "Product Strategy",
            "Roadmapping",
            "User Research",
            "Figma",
            "Agile",
            "A/B Testing",
        ],
        Department::Support => &[
            "Zendesk",
            "Customer Success",
            "Onboarding",
            "Technical Support",
            "Customer Experience",
        ],
        Department::Executive => &[
            "Leadership",
            "Strategy",
            "Fundraising",
            "M&A",
            "Board Relations",
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(seed: u64, people: usize, companies: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_records(&mut out, seed, people, companies).unwrap();
        out
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = bytes(7, 3_000, 300);
        assert_eq!(a, bytes(7, 3_000, 300));
        assert_ne!(a, bytes(8, 3_000, 300));
        assert!(!a.is_empty());
    }

    #[test]
    fn counts_and_order() {
        let records: Vec<Record> = generate(1, 500, 50).collect();
        assert_eq!(records.len(), 550);
        assert!(
            records[..50]
                .iter()
                .all(|r| matches!(r, Record::Company(_)))
        );
        assert!(records[50..].iter().all(|r| matches!(r, Record::Person(_))));
    }

    #[test]
    fn realistic_enough() {
        let records: Vec<Record> = generate(42, 20_000, 2_000).collect();
        let companies: Vec<&Company> = records
            .iter()
            .filter_map(|r| match r {
                Record::Company(c) => Some(c),
                Record::Person(_) => None,
            })
            .collect();
        let people: Vec<&Person> = records
            .iter()
            .filter_map(|r| match r {
                Record::Person(p) => Some(p),
                Record::Company(_) => None,
            })
            .collect();

        // Every legal/case variant normalises like the name (initialisms
        // excepted: they are meant to be other keys).
        for c in &companies {
            let key = normalize_company_name(&c.name);
            assert!(!key.is_empty(), "{c:?}");
            for alias in &c.aliases {
                let initialism =
                    alias.chars().count() >= 2 && alias.chars().all(char::is_uppercase);
                if !initialism {
                    assert_eq!(
                        normalize_company_name(alias),
                        key,
                        "{alias:?} of {:?}",
                        c.name
                    );
                }
            }
        }
        let without_handle = companies
            .iter()
            .filter(|c| c.linkedin_handle.is_none())
            .count();
        let without_domain = companies.iter().filter(|c| c.domain.is_none()).count();
        assert!(
            without_handle > 100 && without_handle < 600,
            "{without_handle}"
        );
        assert!(
            without_domain > 30 && without_domain < 250,
            "{without_domain}"
        );

        // Look-alikes: some names are shared, and some handles are claimed
        // twice.
        let mut by_name = std::collections::HashMap::<String, usize>::new();
        let mut by_handle = std::collections::HashMap::<&str, usize>::new();
        for c in &companies {
            *by_name.entry(normalize_company_name(&c.name)).or_default() += 1;
            if let Some(h) = c.linkedin_handle.as_deref() {
                *by_handle.entry(h).or_default() += 1;
            }
        }
        assert!(by_name.values().filter(|&&n| n > 1).count() > 20);
        assert!(by_handle.values().any(|&n| n > 1));
        // Domains are unique.
        let domains: HashSet<&str> = companies
            .iter()
            .filter_map(|c| c.domain.as_deref())
            .collect();
        assert_eq!(
            domains.len(),
            companies.iter().filter(|c| c.domain.is_some()).count()
        );

        // Every profile URL parses, handles and emails are unique.
        let mut handles = HashSet::new();
        let mut emails = HashSet::new();
        for p in &people {
            if p.linkedin_url.is_some() {
                let h = p.profile_handle();
                assert!(h.is_some(), "{:?}", p.linkedin_url);
                assert!(handles.insert(h), "duplicate profile {:?}", p.linkedin_url);
            }
            if let Some(e) = &p.email {
                assert!(emails.insert(e.clone()), "duplicate email {e}");
                let domain = p.email_domain().unwrap();
                assert!(
                    companies
                        .iter()
                        .any(|c| c.domain.as_deref() == Some(domain.as_str()))
                );
            }
            assert!(titles(p.department, p.seniority).contains(&p.title.as_str()));
        }
        // Mixed URL forms.
        let forms: HashSet<&str> = people
            .iter()
            .filter_map(|p| p.linkedin_url.as_deref())
            .map(|u| u.split("/in/").next().unwrap_or(""))
            .collect();
        assert!(forms.len() >= 5, "{forms:?}");
        // Shared names exist.
        let mut names = std::collections::HashMap::<&str, usize>::new();
        for p in &people {
            *names.entry(p.full_name.as_str()).or_default() += 1;
        }
        assert!(names.values().any(|&n| n >= 3));
        // Profile text is not always the company's name.
        let canonical: HashSet<&str> = companies.iter().map(|c| c.name.as_str()).collect();
        let off = people
            .iter()
            .filter(|p| !canonical.contains(p.current_company_text.as_str()))
            .count();
        assert!(off > 1_000, "{off}");
    }

    #[test]
    fn helpers() {
        assert_eq!(slug("Velora Health & Care"), "velora-health-care");
        assert_eq!(slug("Lumière"), "lumiere");
        assert_eq!(compact("O'Brien"), "obrien");
        assert_eq!(ascii_spelling("Müller Söhne"), "Muller Sohne");
        assert_eq!(ascii_spelling("Ærø"), "AEro");
        let mut taken = HashSet::new();
        assert_eq!(unique("acme".into(), &mut taken, "software"), "acme");
        assert_eq!(
            unique("acme".into(), &mut taken, "software"),
            "acme-software"
        );
        assert_eq!(unique("acme".into(), &mut taken, "software"), "acme-2");
    }
}
