//! Answers from the report's structure: the question's intent
//! ([`crate::intent`]) looked up in what the steps gathered — the people
//! found with their titles, seniority and departments, the org shape, the
//! company profile, the look-alikes and a person's directory record with
//! their earlier positions — rather than by matching words against
//! sentences. Every sentence names the fact (the person and title, the
//! number, the city) and carries the source it rests on; nothing is said
//! that the record does not hold.

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::Person;

use crate::answer::Evidence;
use crate::intent::{Attribute, History, Intent, Parsed};
use crate::report::{Leadership, LookAlike, Profile, clean};

/// Most people named in one sentence; the rest are counted.
const MAX_NAMED: usize = 5;

/// What the research knows, as structure.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// The company's name.
    pub company: Option<&'a str>,
    /// The company profile.
    pub profile: Option<&'a Profile>,
    /// Leadership, buying committee and org shape.
    pub leadership: Option<&'a Leadership>,
    /// Everyone the leadership lookups found, cited as their source.
    pub people: &'a [Person],
    /// The people of the general lookup, which the org shape counts.
    pub counted: &'a [Person],
    /// Similar companies.
    pub look_alikes: Option<&'a [LookAlike]>,
    /// The person researched, with the source of their record.
    pub person: Option<(&'a Person, usize)>,
}

/// The answer to `parsed` from `known`: `None` when the question is not one
/// the structure answers (retrieval's turn), else the sentences, empty when
/// the structure lacks the fact.
pub fn answer(parsed: &Parsed, question: &str, known: &Known<'_>) -> Option<Vec<Evidence>> {
    let company = clean(known.company.unwrap_or("the company"));
    let people_source = known.leadership.map(|l| l.source);
    let say = |text: String, source: usize| vec![Evidence { source, text }];
    match parsed.intent {
        Intent::Other => None,
        Intent::Leader(department) => Some(match (department, people_source) {
            (_, None) => Vec::new(),
            (Some(d), Some(source)) => leaders(known.people, d, &company)
                .map(|s| say(s, source))
                .unwrap_or_default(),
            (None, Some(source)) => heads(known.people, &company)
                .map(|s| say(s, source))
                .unwrap_or_default(),
        }),
        Intent::Committee(department) => {
            let Some(l) = known.leadership else {
                return Some(Vec::new());
            };
            Some(
                committee(l, known.people, department, &company)
                    .map(|s| say(s, l.source))
                    .unwrap_or_default(),
            )
        }
        Intent::Count(department, seniority) => {
            let Some(l) = known.leadership else {
                return Some(Vec::new());
            };
            Some(
                count(l, known.counted, department, seniority, &company)
                    .map(|s| say(s, l.source))
                    .unwrap_or_default(),
            )
        }
        Intent::Attribute(Attribute::Headquarters) if parsed.about_person => {
            let (person, source) = target(question, known)?;
            let location = person.location.to_string();
            Some(if location.is_empty() {
                Vec::new()
            } else {
                say(
                    clean(&format!("{} is based in {location}.", person.full_name)),
                    source,
                )
            })
        }
        Intent::Attribute(attribute) => {
            let Some(p) = known.profile else {
                return Some(Vec::new());
            };
            Some(
                profile_fact(p, attribute)
                    .map(|s| say(s, p.source))
                    .unwrap_or_default(),
            )
        }
        Intent::Related => {
            let list = known.look_alikes.unwrap_or_default();
            let Some(first) = list.first() else {
                return Some(Vec::new());
            };
            let names: Vec<String> = list
                .iter()
                .map(|c| match &c.domain {
                    Some(d) => format!("{} ({d})", c.name),
                    None => c.name.clone(),
                })
                .collect();
            Some(say(
                clean(&format!(
                    "Companies similar to {company} in the directory (same industry, similar \
                     size): {}.",
                    names.join(", ")
                )),
                first.source,
            ))
        }
        Intent::History(history) => {
            let (person, source) = target(question, known)?;
            Some(
                history_facts(person, history, known, &company)
                    .into_iter()
                    .map(|text| Evidence { source, text })
                    .collect(),
            )
        }
        Intent::Role => {
            let (person, source) = target(question, known)?;
            let at = employer(person, known, &company);
            Some(say(
                clean(&format!(
                    "{} is {} ({}, {}) at {at}.",
                    person.full_name,
                    person.title,
                    rank_label(person.seniority),
                    department_label(person.department)
                )),
                source,
            ))
        }
    }
}

/// The person a question is about: one of the people found whom it names,
/// else the person researched.
fn target<'a>(question: &str, known: &Known<'a>) -> Option<(&'a Person, usize)> {
    let question = question.to_lowercase();
    let named = known.leadership.and_then(|l| {
        known
            .people
            .iter()
            .find(|p| question.contains(&p.full_name.to_lowercase()))
            .map(|p| (p, l.source))
    });
    match (known.person, named) {
        // The person researched, when named, over a namesake at the company.
        (Some((p, s)), _) if question.contains(&p.full_name.to_lowercase()) => Some((p, s)),
        (_, Some(found)) => Some(found),
        (person, None) => person,
    }
}

/// Where `person` works: the company researched.
fn employer(person: &Person, known: &Known<'_>, company: &str) -> String {
    match known.company {
        Some(_) => company.to_owned(),
        None => clean(&person.current_company_text),
    }
}

/// Rank for leadership: owner first, manager last; below is no leader.
fn rank(s: Seniority) -> Option<u8> {
    match s {
        Seniority::Owner => Some(0),
        Seniority::CSuite => Some(1),
        Seniority::Vp => Some(2),
        Seniority::Director => Some(3),
        Seniority::Manager => Some(4),
        Seniority::Senior | Seniority::Entry => None,
    }
}

/// The people of the best rank among `people` (manager or above), in
/// the order found.
fn most_senior<'a>(people: impl Iterator<Item = &'a Person>) -> Vec<&'a Person> {
    let ranked: Vec<(u8, &Person)> = people
        .filter_map(|p| rank(p.seniority).map(|r| (r, p)))
        .collect();
    let Some(best) = ranked.iter().map(|(r, _)| *r).min() else {
        return Vec::new();
    };
    ranked
        .into_iter()
        .filter(|(r, _)| *r == best)
        .map(|(_, p)| p)
        .collect()
}

/// The most senior people of a department.
fn leader_group(people: &[Person], d: Department) -> Vec<&Person> {
    most_senior(people.iter().filter(|p| p.department == d))
}

/// Who is at the top of the company.
enum Top {
    Owners,
    Chiefs,
    /// Neither owners nor chief executives were found.
    MostSenior,
}

fn top_group(people: &[Person]) -> (Vec<&Person>, Top) {
    let owners: Vec<&Person> = people
        .iter()
        .filter(|p| p.seniority == Seniority::Owner)
        .collect();
    if !owners.is_empty() {
        return (owners, Top::Owners);
    }
    let chiefs: Vec<&Person> = people
        .iter()
        .filter(|p| p.seniority == Seniority::CSuite && p.department == Department::Executive)
        .collect();
    if !chiefs.is_empty() {
        return (chiefs, Top::Chiefs);
    }
    (most_senior(people.iter()), Top::MostSenior)
}

/// `Name (Title), Name (Title) and Name (Title)`, at most [`MAX_NAMED`]
/// named and the rest counted.
fn list(people: &[&Person]) -> String {
    let mut named: Vec<String> = people
        .iter()
        .take(MAX_NAMED)
        .map(|p| format!("{} ({})", p.full_name, p.title))
        .collect();
    let more = people.len().saturating_sub(MAX_NAMED);
    if more > 0 {
        named.push(format!("{more} more"));
    }
    match named.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

fn leaders(people: &[Person], d: Department, company: &str) -> Option<String> {
    let group = leader_group(people, d);
    let dl = department_label(d);
    let Some(first) = group.first() else {
        // People of the function but nobody leading it: say so, and who
        // they are.
        let staff: Vec<&Person> = people.iter().filter(|p| p.department == d).collect();
        if staff.is_empty() {
            return None;
        }
        let (noun, verb) = if staff.len() == 1 {
            ("person", "is")
        } else {
            ("people", "are")
        };
        return Some(clean(&format!(
            "No {dl} leader (manager or above) is found at {company}; the {dl} {noun} found \
             {verb} {}.",
            list(&staff)
        )));
    };
    Some(clean(&if group.len() == 1 {
        format!(
            "{}, {}, is the most senior {dl} person found at {company}.",
            first.full_name, first.title
        )
    } else {
        format!(
            "The most senior {dl} people found at {company} are {}: {}.",
            rank_plural(first.seniority),
            list(&group)
        )
    }))
}

fn heads(people: &[Person], company: &str) -> Option<String> {
    let (group, top) = top_group(people);
    let first = group.first()?;
    let one = group.len() == 1;
    Some(clean(&match top {
        Top::Owners if one => format!(
            "{} ({}) is the owner found at the top of {company}.",
            first.full_name, first.title
        ),
        Top::Owners => format!(
            "The owners found at the top of {company} are {}.",
            list(&group)
        ),
        Top::Chiefs if one => format!(
            "{} ({}) is the chief executive found at {company}.",
            first.full_name, first.title
        ),
        Top::Chiefs => format!(
            "The chief executives found at {company} are {}.",
            list(&group)
        ),
        Top::MostSenior if one => format!(
            "No owner or chief executive is found at {company}; the most senior person found \
             is {} ({}).",
            first.full_name, first.title
        ),
        Top::MostSenior => format!(
            "No owner or chief executive is found at {company}; the most senior people found \
             are {}: {}.",
            rank_plural(first.seniority),
            list(&group)
        ),
    }))
}

fn committee(
    l: &Leadership,
    people: &[Person],
    department: Option<Department>,
    company: &str,
) -> Option<String> {
    let Some(d) = department else {
        if l.buying_committee.is_empty() {
            return None;
        }
        let who: Vec<String> = l
            .buying_committee
            .iter()
            .map(|p| format!("{} ({})", p.name, p.title))
            .collect();
        return Some(clean(&format!(
            "The buying committee found at {company}, most senior first: {}.",
            who.join(", ")
        )));
    };
    let dl = department_label(d);
    let leads: Vec<&Person> = leader_group(people, d).into_iter().take(3).collect();
    let (top, _) = top_group(people);
    let top: Vec<&Person> = top
        .into_iter()
        .filter(|p| !leads.iter().any(|l| l.id == p.id))
        .take(2)
        .collect();
    let a = if dl.starts_with(['a', 'e', 'i', 'o', 'u', 'H']) {
        "an"
    } else {
        "a"
    };
    let are = |group: &[&Person]| if group.len() == 1 { "is" } else { "are" };
    Some(clean(&match (leads.is_empty(), top.is_empty()) {
        (true, true) => return None,
        (false, true) => format!(
            "For {a} {dl} purchase, the decision makers found at {company} {} {}.",
            are(&leads),
            list(&leads)
        ),
        (false, false) => format!(
            "For {a} {dl} purchase, the decision makers found at {company} {} {} in {dl}, with \
             {} at the top of the company.",
            are(&leads),
            list(&leads),
            list(&top)
        ),
        (true, false) => format!(
            "No {dl} leader is found at {company}; the most senior {} found {} {}.",
            if top.len() == 1 { "person" } else { "people" },
            are(&top),
            list(&top)
        ),
    }))
}

fn count(
    l: &Leadership,
    people: &[Person],
    department: Option<Department>,
    seniority: Option<Seniority>,
    company: &str,
) -> Option<String> {
    let n = people
        .iter()
        .filter(|p| department.is_none_or(|d| p.department == d))
        .filter(|p| seniority.is_none_or(|s| p.seniority == s))
        .count();
    if n == 0 {
        return None;
    }
    let what = match (department, seniority) {
        (Some(d), Some(s)) => format!("{} in {}", rank_plural(s), department_label(d)),
        (Some(d), None) => format!("in {}", department_label(d)),
        (None, Some(s)) => rank_plural(s).to_owned(),
        (None, None) => return None,
    };
    let verb = if n == 1 { "is" } else { "are" };
    Some(clean(&format!(
        "{n} of the {} people found at {company} {verb} {what}.",
        l.people_found
    )))
}

fn profile_fact(p: &Profile, attribute: Attribute) -> Option<String> {
    let name = &p.name;
    let text = match attribute {
        Attribute::Headquarters if !p.headquarters.is_empty() => {
            format!("{name} is headquartered in {}.", p.headquarters)
        }
        Attribute::Industry if !p.industry.is_empty() => {
            format!("{name} is in the {} industry.", p.industry)
        }
        Attribute::Size => format!("{name} has {} employees.", p.size_band),
        Attribute::Domain => format!("{name}'s web domain is {}.", p.domain.as_deref()?),
        Attribute::Linkedin => format!(
            "{name}'s LinkedIn page is linkedin.com/company/{}.",
            p.linkedin_handle.as_deref()?
        ),
        Attribute::Aliases if !p.aliases.is_empty() => {
            format!("{name} is also known as {}.", p.aliases.join(", "))
        }
        _ => return None,
    };
    Some(clean(&text))
}

fn years(start: Option<u16>, end: Option<u16>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!(", {s}–{e}"),
        (Some(s), None) => format!(", from {s}"),
        (None, Some(e)) => format!(", until {e}"),
        (None, None) => String::new(),
    }
}

fn history_facts(
    person: &Person,
    history: History,
    known: &Known<'_>,
    company: &str,
) -> Vec<String> {
    let name = &person.full_name;
    let mut out = Vec::new();
    match history {
        History::Background => {
            let mut s = format!(
                "{name} is {} at {}",
                person.title,
                employer(person, known, company)
            );
            let location = person.location.to_string();
            if !location.is_empty() {
                s.push_str(&format!(", based in {location}"));
            }
            s.push('.');
            out.push(s);
            if !person.past_positions.is_empty() {
                let earlier: Vec<String> = person
                    .past_positions
                    .iter()
                    .map(|p| {
                        format!(
                            "{} at {}{}",
                            p.title,
                            p.company_text,
                            years(p.start_year, p.end_year)
                        )
                    })
                    .collect();
                out.push(format!("Earlier positions: {}.", earlier.join("; ")));
            } else {
                out.push("The directory record lists no earlier positions.".to_owned());
            }
            if !person.skills.is_empty() {
                out.push(format!("Skills listed: {}.", person.skills.join(", ")));
            }
        }
        History::PreviousEmployers if !person.past_positions.is_empty() => {
            let earlier: Vec<String> = person
                .past_positions
                .iter()
                .map(|p| {
                    format!(
                        "{} ({}{})",
                        p.company_text,
                        p.title,
                        years(p.start_year, p.end_year)
                    )
                })
                .collect();
            out.push(format!(
                "{name}'s earlier employers: {}.",
                earlier.join(", ")
            ));
        }
        History::Tenure => {
            if let Some(p) = person.past_positions.first()
                && let Some(end) = p.end_year
            {
                out.push(format!(
                    "The directory record does not date {name}'s current role; the one before, \
                     {} at {}, ended in {end}.",
                    p.title, p.company_text
                ));
            }
        }
        History::PreviousEmployers => {}
    }
    out.iter().map(|s| clean(s)).collect()
}

/// A department as sellers say it.
pub fn department_label(d: Department) -> &'static str {
    match d {
        Department::Engineering => "engineering",
        Department::Sales => "sales",
        Department::Marketing => "marketing",
        Department::Finance => "finance",
        Department::Operations => "operations",
        Department::Hr => "HR",
        Department::Legal => "legal",
        Department::Product => "product",
        Department::Support => "customer support",
        Department::Executive => "executive",
    }
}

fn rank_label(s: Seniority) -> &'static str {
    match s {
        Seniority::Owner => "owner",
        Seniority::CSuite => "C-suite",
        Seniority::Vp => "VP",
        Seniority::Director => "director",
        Seniority::Manager => "manager",
        Seniority::Senior => "senior",
        Seniority::Entry => "entry level",
    }
}

fn rank_plural(s: Seniority) -> &'static str {
    match s {
        Seniority::Owner => "owners",
        Seniority::CSuite => "C-suite executives",
        Seniority::Vp => "VPs",
        Seniority::Director => "directors",
        Seniority::Manager => "managers",
        Seniority::Senior => "senior staff",
        Seniority::Entry => "entry-level staff",
    }
}

#[cfg(test)]
mod tests {
    use dossier_directory::{Location, Position};

    use super::*;
    use crate::intent::parse;
    use crate::report::OrgShape;

    fn person(id: &str, name: &str, title: &str, s: Seniority, d: Department) -> Person {
        Person {
            id: id.to_owned(),
            full_name: name.to_owned(),
            title: title.to_owned(),
            seniority: s,
            department: d,
            location: Location::default(),
            email: None,
            linkedin_url: None,
            current_company_text: "Acme".to_owned(),
            current_company_linkedin_handle: None,
            headline: String::new(),
            skills: Vec::new(),
            past_positions: Vec::new(),
        }
    }

    fn ask(question: &str, people: &[Person], subject: Option<(&Person, usize)>) -> String {
        let leadership = Leadership {
            people_found: people.len(),
            buying_committee: Vec::new(),
            org_shape: OrgShape::default(),
            source: 2,
        };
        let known = Known {
            company: Some("Acme"),
            leadership: Some(&leadership),
            people,
            counted: people,
            person: subject,
            ..Known::default()
        };
        let parsed = parse(question, &["Acme"], &[]);
        let sentences = answer(&parsed, question, &known).unwrap_or_default();
        crate::answer::from_evidence(
            question,
            &sentences,
            crate::answer::AnswerMethod::Structured,
        )
        .answer
    }

    #[test]
    fn people_counts_and_history_come_from_the_records() {
        use Department as D;
        use Seniority as S;
        let people = [
            person("1", "Ann Lee", "SDR", S::Entry, D::Sales),
            person("2", "Bo Kim", "Sales Manager", S::Manager, D::Sales),
            person("3", "Cy Ode", "VP Sales", S::Vp, D::Sales),
            person("4", "Di Fox", "Software Engineer", S::Entry, D::Engineering),
            person("5", "Ed Roe", "CEO", S::CSuite, D::Executive),
        ];
        assert_eq!(
            ask("Who leads sales?", &people, None),
            "Cy Ode, VP Sales, is the most senior sales person found at Acme. [2]"
        );
        assert_eq!(
            ask("Who runs the company?", &people, None),
            "Ed Roe (CEO) is the chief executive found at Acme. [2]"
        );
        // People of engineering, nobody leading it.
        assert_eq!(
            ask("Who heads engineering?", &people, None),
            "No engineering leader (manager or above) is found at Acme; the engineering person \
             found is Di Fox (Software Engineer). [2]"
        );
        // No legal department at all.
        assert_eq!(
            ask("Who leads legal?", &people, None),
            "Not found in the sources."
        );
        assert_eq!(
            ask("How many salespeople does Acme have?", &people, None),
            "3 of the 5 people found at Acme are in sales. [2]"
        );
        assert_eq!(
            ask("How many lawyers?", &people, None),
            "Not found in the sources."
        );
        let mut jane = person("9", "Jane Doe", "CTO", S::CSuite, D::Engineering);
        jane.past_positions.push(Position {
            company_text: "Globex".to_owned(),
            company_linkedin_handle: None,
            title: "Engineer".to_owned(),
            start_year: Some(2015),
            end_year: Some(2019),
        });
        assert_eq!(
            ask("Where did they work before?", &people, Some((&jane, 1))),
            "Jane Doe's earlier employers: Globex (Engineer, 2015–2019). [1]"
        );
        assert!(
            ask(
                "How long have they been in the role?",
                &people,
                Some((&jane, 1))
            )
            .contains("ended in 2019. [1]")
        );
        jane.past_positions.clear();
        assert_eq!(
            ask("Where did they work before?", &people, Some((&jane, 1))),
            "Not found in the sources."
        );
    }
}
