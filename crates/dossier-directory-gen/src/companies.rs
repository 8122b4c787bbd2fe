//! Planning the companies: names and their variants, look-alikes, domains,
//! LinkedIn handles, headquarters and head counts.

use std::collections::HashSet;

use dossier_directory::{Company, Location, SizeBand, normalize_company_name};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

use crate::Generator;
use crate::names::{
    COMPOUND_FIRST, COMPOUND_SECOND, EUROPEAN_BRANDS, GROUP_WORDS, SYLLABLE_FIRST, SYLLABLE_SECOND,
    ascii_spelling, compact, slug, unique,
};
use crate::random::{below, chance, pick};

/// A company and what people's profiles may call it.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) company: Company,
    /// The name without legal form, as spelled (`Velora Health`).
    pub(crate) base: String,
    /// Names that normalise like the company's name (legal and case
    /// variants), for profile text.
    pub(crate) variants: Vec<String>,
    /// An initialism or short form that does not normalise like the name.
    pub(crate) abbreviation: Option<String>,
    /// Likely people per 10 in the directory: a heavy-tailed share.
    pub(crate) weight: f64,
}

impl Generator {
    pub(crate) fn new(seed: u64, companies: usize, people: usize) -> Self {
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
pub(crate) type City = (&'static str, &'static str, &'static str);

pub(crate) const CITIES: &[City] = &[
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
