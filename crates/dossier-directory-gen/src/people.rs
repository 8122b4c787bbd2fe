//! Making one person: employer, seniority, department and a title that
//! fits them, contact details in mixed forms, what the profile says the
//! current company is (sometimes a variant, an abbreviation or stale), past
//! positions and skills.

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{Location, Person, Position};
use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

use crate::Generator;
use crate::companies::CITIES;
use crate::names::{FIRST_NAMES, LAST_NAMES, compact, slug};
use crate::random::{below, chance, pick, weighted};

impl Generator {
    fn employer(&mut self) -> usize {
        let roll = self.rng.random::<f64>() * self.people_hint;
        self.cumulative
            .partition_point(|&c| c <= roll)
            .min(self.plans.len() - 1)
    }

    pub(crate) fn person(&mut self, i: usize) -> Person {
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
pub(crate) fn titles(d: Department, s: Seniority) -> &'static [&'static str] {
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
