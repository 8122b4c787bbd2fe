//! What a question asks, the way sellers phrase it: a person by function
//! and rank ("who leads sales", "who runs the company", "the most senior
//! engineering leader", "who is the CFO"), the decision makers for a kind of
//! purchase, a count ("how many engineers"), an attribute of the company
//! (headquarters, industry, size, domain, LinkedIn page, other names),
//! related companies, or a person's history and role.
//!
//! Parsing is by keywords and phrases over the lower-cased words of the
//! question, after the subject's own names are taken out (a company called
//! "Velora Logistics" must not make every question about operations). It is
//! deterministic; a question it does not recognise is [`Intent::Other`] and
//! is answered by retrieval.

use dossier_contracts::api::{Department, Seniority};

/// What a question asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// The most senior person of a function; `None` is the company as a
    /// whole (who runs it, its chief executive or owners).
    Leader(Option<Department>),
    /// The buying committee, or the decision makers for a purchase of a
    /// function (`Some`: a CRM is sales, a payroll system HR).
    Committee(Option<Department>),
    /// How many people of a function or seniority were found.
    Count(Option<Department>, Option<Seniority>),
    /// A fact of the company's record.
    Attribute(Attribute),
    /// Similar companies, competitors.
    Related,
    /// A person's past.
    History(History),
    /// A person's current title and role.
    Role,
    /// Anything else: answered by retrieval.
    Other,
}

/// A fact of the company's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// Where it is based (for a person: where they are).
    Headquarters,
    /// Its industry.
    Industry,
    /// Its head-count band.
    Size,
    /// Its web domain.
    Domain,
    /// Its LinkedIn page.
    Linkedin,
    /// Other names it goes by.
    Aliases,
}

/// Which part of a person's past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum History {
    /// Current role, earlier positions, skills.
    Background,
    /// The companies they worked at before.
    PreviousEmployers,
    /// How long they have been in the current role.
    Tenure,
}

/// A parsed question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// What it asks.
    pub intent: Intent,
    /// Whether it is about a person rather than the company (it names the
    /// person researched, or says "he", "she", "their title"…).
    pub about_person: bool,
}

/// Words that stand for a department, in the order they are tried;
/// multi-word phrases are matched on word boundaries. The earliest match in
/// the question wins ("who leads sales at the logistics arm" is sales).
const DEPARTMENT_WORDS: &[(Department, &[&str])] = &[
    (
        Department::Support,
        &[
            "customer support",
            "customer success",
            "customer service",
            "customer experience",
            "support",
            "helpdesk",
            "help desk",
            "ticketing",
            "cco",
        ],
    ),
    (
        Department::Hr,
        &[
            "human resources",
            "hr",
            "people team",
            "people ops",
            "people operations",
            "head of people",
            "chief people officer",
            "talent",
            "recruiting",
            "recruiters",
            "recruiter",
            "recruitment",
            "hiring",
            "payroll",
            "chro",
        ],
    ),
    (
        Department::Operations,
        &[
            "supply chain",
            "logistics",
            "operations",
            "ops",
            "operational",
            "coo",
            "warehouse",
            "fleet",
        ],
    ),
    (
        Department::Sales,
        &[
            "sales",
            "selling",
            "salespeople",
            "salesperson",
            "sellers",
            "crm",
            "cro",
            "chief revenue officer",
            "business development",
            "account executives",
            "reps",
            "commercial",
        ],
    ),
    (
        Department::Marketing,
        &[
            "marketing",
            "marketers",
            "marketer",
            "brand",
            "demand generation",
            "demand gen",
            "growth",
            "advertising",
            "seo",
            "cmo",
        ],
    ),
    (
        Department::Finance,
        &[
            "finance",
            "financial",
            "accounting",
            "accountants",
            "accountant",
            "cfo",
            "treasury",
            "fp&a",
            "controller",
            "expense",
            "billing",
            "payments",
            "erp",
        ],
    ),
    (
        Department::Legal,
        &[
            "legal",
            "lawyers",
            "lawyer",
            "counsel",
            "attorneys",
            "compliance",
            "contract",
            "contracts",
            "clo",
        ],
    ),
    (
        Department::Product,
        &[
            "product",
            "product managers",
            "design",
            "designers",
            "ux",
            "cpo",
        ],
    ),
    (
        Department::Engineering,
        &[
            "engineering",
            "engineers",
            "engineer",
            "developers",
            "developer",
            "devops",
            "technology",
            "tech",
            "technical",
            "cto",
            "security",
            "cybersecurity",
            "infrastructure",
            "cloud",
            "r&d",
            "platform",
            "data",
        ],
    ),
    (
        Department::Executive,
        &[
            "ceo",
            "chief executive",
            "president",
            "founder",
            "founders",
            "founded",
            "owner",
            "owners",
            "owns",
            "company",
            "business",
            "organization",
            "organisation",
            "firm",
            "whole",
            "overall",
        ],
    ),
];

/// Plural ranks, for counts ("how many VPs").
const SENIORITY_WORDS: &[(Seniority, &[&str])] = &[
    (Seniority::Owner, &["founders", "owners"]),
    (
        Seniority::CSuite,
        &[
            "executives",
            "c-level",
            "c-suite",
            "c suite",
            "c level",
            "chiefs",
            "cxos",
        ],
    ),
    (Seniority::Vp, &["vps", "vice presidents"]),
    (Seniority::Director, &["directors"]),
    (Seniority::Manager, &["managers"]),
];

/// The lower-cased words of `text` joined by single spaces, with a space at
/// each end so phrases match on word boundaries (`" hr "`). `&` is kept
/// (`r&d`, `fp&a`), hyphens become spaces except inside `c-level`/`c-suite`.
fn normalise(text: &str) -> String {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '&' || c == '-'))
        .flat_map(|w| {
            if w.starts_with("c-") {
                vec![w]
            } else {
                w.split('-').collect()
            }
        })
        .filter(|w| !w.is_empty())
        .collect();
    format!(" {} ", words.join(" "))
}

/// Whether `text` (normalised) holds `phrase` as whole words.
fn has(text: &str, phrase: &str) -> bool {
    text.contains(&format!(" {phrase} "))
}

fn has_any(text: &str, phrases: &[&str]) -> bool {
    phrases.iter().any(|p| has(text, p))
}

/// Where `phrase` first occurs in `text` as whole words.
fn position(text: &str, phrase: &str) -> Option<usize> {
    text.find(&format!(" {phrase} "))
}

/// The department the question names first, if any.
pub fn department(text: &str) -> Option<Department> {
    let text = normalise(text);
    department_in(&text)
}

fn department_in(text: &str) -> Option<Department> {
    DEPARTMENT_WORDS
        .iter()
        .flat_map(|(d, words)| words.iter().map(move |w| (*d, *w)))
        .filter_map(|(d, w)| position(text, w).map(|at| (at, std::cmp::Reverse(w.len()), d)))
        .min_by_key(|(at, len, _)| (*at, *len))
        .map(|(_, _, d)| d)
}

fn seniority_in(text: &str) -> Option<Seniority> {
    SENIORITY_WORDS
        .iter()
        .find(|(_, words)| has_any(text, words))
        .map(|(s, _)| *s)
}

/// `question` without the subject's `names` (normalised words): what is
/// left to retrieve by. The subject's name is in nearly every sentence
/// gathered, so it must not be what makes a sentence match.
pub fn without_names(question: &str, names: &[&str]) -> String {
    let mut text = normalise(question);
    for name in names {
        let name = normalise(name);
        if !name.trim().is_empty() {
            text = text.replace(&name, " ");
        }
    }
    text.trim().to_owned()
}

/// Parses `question`. `subject_names` are the names of the company and
/// person researched (and their aliases): taken out before parsing, a
/// person's name marks the question as about them.
pub fn parse(question: &str, subject_names: &[&str], person_names: &[&str]) -> Parsed {
    let mut text = normalise(question);
    let mut about_person = false;
    for name in person_names {
        let name = normalise(name);
        if name.trim().is_empty() {
            continue;
        }
        if text.contains(&name) {
            about_person = true;
            text = text.replace(&name, " ");
        }
    }
    for name in subject_names {
        let name = normalise(name);
        if !name.trim().is_empty() {
            text = text.replace(&name, " ");
        }
    }
    // Possessives left behind ("Acme's" → "s").
    let text = text.replace(" s ", " ");
    if has_any(
        &text,
        &[
            "he",
            "she",
            "his",
            "her",
            "him",
            "this person",
            "the person",
        ],
    ) {
        about_person = true;
    }
    Parsed {
        intent: intent(&text, about_person),
        about_person,
    }
}

fn intent(text: &str, about_person: bool) -> Intent {
    let who = has_any(
        text,
        &[
            "who",
            "whom",
            "whose",
            "name of",
            "names of",
            "which person",
            "which people",
            "contact",
            "talk to",
        ],
    );
    // A person's past.
    if has_any(
        text,
        &["how long", "tenure", "since when", "when did", "time in"],
    ) {
        return Intent::History(History::Tenure);
    }
    if has_any(
        text,
        &[
            "previous",
            "previously",
            "prior",
            "past",
            "before",
            "earlier",
            "formerly",
            "used to",
            "former",
        ],
    ) {
        return Intent::History(History::PreviousEmployers);
    }
    if has_any(
        text,
        &[
            "background",
            "career",
            "experience",
            "history",
            "tell me about",
            "work history",
            "resume",
            "cv",
        ],
    ) {
        return Intent::History(History::Background);
    }
    // Related companies.
    if has_any(
        text,
        &[
            "competitor",
            "competitors",
            "compete",
            "competes",
            "competing",
            "competition",
            "similar",
            "look alike",
            "look alikes",
            "lookalike",
            "lookalikes",
            "alike",
            "peers",
            "alternatives",
            "companies like",
            "rivals",
        ],
    ) {
        return Intent::Related;
    }
    // Counts, and size.
    let counting = has_any(
        text,
        &[
            "how many",
            "number of",
            "headcount",
            "head count",
            "how big",
            "how large",
            "size of",
            "team size",
            "count of",
        ],
    );
    if counting {
        let department = department_in(text).filter(|d| *d != Department::Executive);
        // A rank inside a function's phrase ("account executives",
        // "product managers") is not a count of that rank.
        let mut rest = text.to_owned();
        for phrase in DEPARTMENT_WORDS
            .iter()
            .flat_map(|(_, words)| words.iter())
            .filter(|w| w.contains(' '))
        {
            rest = rest.replace(&format!(" {phrase} "), " ");
        }
        let seniority = seniority_in(&rest);
        if department.is_some() || seniority.is_some() {
            return Intent::Count(department, seniority);
        }
        return Intent::Attribute(Attribute::Size);
    }
    // The buying committee; "the top decision maker" is who runs it.
    let top = has_any(
        text,
        &[
            "top decision maker",
            "final decision maker",
            "ultimate decision maker",
            "final say",
        ],
    );
    if !top
        && has_any(
            text,
            &[
                "buying committee",
                "committee",
                "decision maker",
                "decision makers",
                "decide",
                "decides",
                "sign off",
                "signs off",
                "signoff",
                "approve",
                "approves",
                "approval",
                "budget holder",
                "budget holders",
                "buyer",
                "buyers",
                "buys",
                "buy",
                "buying",
                "purchase",
                "purchasing",
                "stakeholders",
            ],
        )
    {
        let department = department_in(text).filter(|d| *d != Department::Executive);
        return Intent::Committee(department);
    }
    // A person by function and rank.
    let leading = top
        || has_any(
            text,
            &[
                "lead",
                "leads",
                "leader",
                "leaders",
                "leading",
                "leadership",
                "head",
                "heads",
                "heading",
                "run",
                "runs",
                "running",
                "in charge",
                "responsible",
                "manage",
                "manages",
                "top",
                "senior",
                "most senior",
                "boss",
                "chief",
                "vp",
                "vice president",
                "director",
                "executive",
                "ceo",
                "cto",
                "cfo",
                "coo",
                "cmo",
                "cro",
                "cpo",
                "chro",
                "clo",
                "cco",
                "president",
                "founder",
                "founded",
                "owner",
                "owns",
            ],
        );
    if who && leading && !about_person {
        let department = department_in(text).filter(|d| *d != Department::Executive);
        return Intent::Leader(department);
    }
    // Facts of the record.
    if has_any(text, &["linkedin"]) {
        return Intent::Attribute(Attribute::Linkedin);
    }
    if has_any(
        text,
        &[
            "website",
            "web site",
            "domain",
            "url",
            "site",
            "web address",
            "homepage",
        ],
    ) {
        return Intent::Attribute(Attribute::Domain);
    }
    if has_any(
        text,
        &[
            "also known",
            "aka",
            "aliases",
            "alias",
            "other names",
            "other name",
        ],
    ) {
        return Intent::Attribute(Attribute::Aliases);
    }
    if has_any(
        text,
        &[
            "headquarters",
            "headquartered",
            "hq",
            "based",
            "located",
            "location",
            "where",
            "city",
            "country",
        ],
    ) {
        return Intent::Attribute(Attribute::Headquarters);
    }
    let role_words = has_any(text, &["title", "role", "position", "job"]);
    if role_words || (about_person && has_any(text, &["what does", "who is", "do"])) {
        return Intent::Role;
    }
    if has_any(
        text,
        &[
            "industry",
            "sector",
            "vertical",
            "what does",
            "what do",
            "line of business",
            "market",
        ],
    ) {
        return Intent::Attribute(Attribute::Industry);
    }
    if has_any(text, &["employees", "size", "staff", "people work"]) {
        return Intent::Attribute(Attribute::Size);
    }
    Intent::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn company(q: &str) -> Intent {
        parse(q, &["Harborlight Consulting", "Velora Logistics"], &[]).intent
    }

    fn person(q: &str) -> Parsed {
        parse(q, &["Acme Corp"], &["Jane Doe", "Jane", "Doe"])
    }

    #[test]
    fn people_by_function_and_rank() {
        use Department as D;
        for (q, d) in [
            ("Who leads sales?", Some(D::Sales)),
            ("Who heads sales at Harborlight Consulting?", Some(D::Sales)),
            ("Who is in charge of finance?", Some(D::Finance)),
            ("Who runs engineering?", Some(D::Engineering)),
            (
                "Who is the most senior engineering leader?",
                Some(D::Engineering),
            ),
            ("Who's the top marketing person there?", Some(D::Marketing)),
            ("Who is the VP of Sales?", Some(D::Sales)),
            ("Who is the CFO?", Some(D::Finance)),
            ("Who is the CTO?", Some(D::Engineering)),
            ("Who is the head of HR?", Some(D::Hr)),
            (
                "Who runs customer support at Velora Logistics?",
                Some(D::Support),
            ),
            ("Who runs the company?", None),
            ("Who is the CEO of Velora Logistics?", None),
            ("Who founded Harborlight Consulting?", None),
            ("Who is the top decision maker at Velora Logistics?", None),
            ("Who is in charge at Velora Logistics?", None),
        ] {
            assert_eq!(company(q), Intent::Leader(d), "{q}");
        }
    }

    #[test]
    fn committees_counts_and_related() {
        use Department as D;
        assert_eq!(
            company("Who is on the buying committee?"),
            Intent::Committee(None)
        );
        assert_eq!(
            company("Who are the decision makers for a CRM?"),
            Intent::Committee(Some(D::Sales))
        );
        assert_eq!(
            company("Who would sign off on buying contract management software?"),
            Intent::Committee(Some(D::Legal))
        );
        assert_eq!(
            company("Who would approve a payroll system purchase?"),
            Intent::Committee(Some(D::Hr))
        );
        assert_eq!(
            company("How many engineers does Velora Logistics have?"),
            Intent::Count(Some(D::Engineering), None)
        );
        assert_eq!(
            company("How big is the customer support team?"),
            Intent::Count(Some(D::Support), None)
        );
        assert_eq!(
            company("How many account executives does it have?"),
            Intent::Count(Some(D::Sales), None)
        );
        assert_eq!(
            company("How many VPs are there?"),
            Intent::Count(None, Some(Seniority::Vp))
        );
        assert_eq!(
            company("How many employees does Velora Logistics have?"),
            Intent::Attribute(Attribute::Size)
        );
        assert_eq!(
            company("How big is the company?"),
            Intent::Attribute(Attribute::Size)
        );
        assert_eq!(
            company("Who are Velora Logistics's competitors?"),
            Intent::Related
        );
        assert_eq!(
            company("What are some look-alike companies?"),
            Intent::Related
        );
    }

    #[test]
    fn attributes() {
        use Attribute as A;
        for (q, a) in [
            ("Where is Velora Logistics headquartered?", A::Headquarters),
            ("Where are they based?", A::Headquarters),
            ("Which city is their HQ in?", A::Headquarters),
            ("What industry is Velora Logistics in?", A::Industry),
            ("What sector do they operate in?", A::Industry),
            ("What does Velora Logistics do?", A::Industry),
            ("What is Velora Logistics's website?", A::Domain),
            ("What is their domain?", A::Domain),
            ("What is Velora Logistics's LinkedIn page?", A::Linkedin),
            ("What other names does it go by?", A::Aliases),
        ] {
            assert_eq!(company(q), Intent::Attribute(a), "{q}");
        }
        assert_eq!(
            company("What was Velora Logistics's revenue last year?"),
            Intent::Other
        );
    }

    #[test]
    fn a_persons_history_and_role() {
        for (q, h) in [
            ("What is their background?", History::Background),
            ("Tell me about Jane Doe's career.", History::Background),
            ("Where did they work before?", History::PreviousEmployers),
            (
                "What are Jane Doe's previous employers?",
                History::PreviousEmployers,
            ),
            ("How long have they been in the role?", History::Tenure),
        ] {
            assert_eq!(person(q).intent, Intent::History(h), "{q}");
        }
        let p = person("What is Jane Doe's title?");
        assert_eq!(p.intent, Intent::Role);
        assert!(p.about_person);
        assert_eq!(person("What does Jane do?").intent, Intent::Role);
        let p = person("Where is she based?");
        assert_eq!(p.intent, Intent::Attribute(Attribute::Headquarters));
        assert!(p.about_person);
    }
}
