//! Candidate people: collapsing a vendor's duplicate rows into one person,
//! and scoring how a candidate is linked to the company a record names.

use dossier_contracts::api::linkedin::company_handle;
use dossier_directory::{Person, normalize_company_name, normalize_email};

/// The ways a person can be linked to the company a record names.
#[derive(Debug, Default)]
pub(super) struct Links {
    pub(super) names: Vec<String>,
    pub(super) domains: Vec<String>,
    pub(super) handles: Vec<String>,
}

impl Links {
    /// How strongly `p` is at the company now (see the [`matching`](super)
    /// rules).
    pub(super) fn score(&self, p: &Person) -> f64 {
        let handle = p
            .current_company_linkedin_handle
            .as_deref()
            .and_then(company_handle);
        if handle.is_some_and(|h| self.handles.contains(&h))
            || p.email_domain().is_some_and(|d| self.domains.contains(&d))
        {
            return 0.95;
        }
        if self
            .names
            .contains(&normalize_company_name(&p.current_company_text))
        {
            return 0.9;
        }
        let past = p.past_positions.iter().any(|pos| {
            self.names
                .contains(&normalize_company_name(&pos.company_text))
                || pos
                    .company_linkedin_handle
                    .as_deref()
                    .and_then(company_handle)
                    .is_some_and(|h| self.handles.contains(&h))
        });
        if past { 0.75 } else { 0.7 }
    }
}

/// Collapses directory records that are the same person (sharing a
/// normalised email or a profile handle, as vendor duplicates do) into the
/// most complete of them, keeping first-seen order.
pub fn same_people(people: Vec<Person>) -> Vec<Person> {
    let mut groups: Vec<(Vec<String>, Person)> = Vec::new();
    for person in people {
        let keys = identity_keys(&person);
        match groups
            .iter_mut()
            .find(|(known, _)| keys.iter().any(|k| known.contains(k)))
        {
            Some((known, kept)) => {
                for k in keys {
                    if !known.contains(&k) {
                        known.push(k);
                    }
                }
                if completeness(&person) > completeness(kept) {
                    *kept = person;
                }
            }
            None => groups.push((keys, person)),
        }
    }
    groups.into_iter().map(|(_, p)| p).collect()
}

fn identity_keys(p: &Person) -> Vec<String> {
    let email = p
        .email
        .as_deref()
        .map(normalize_email)
        .filter(|e| !e.is_empty())
        .map(|e| format!("email:{e}"));
    let handle = p.profile_handle().map(|h| format!("profile:{h}"));
    email.into_iter().chain(handle).collect()
}

/// How much a record says (a duplicate without a profile says less).
fn completeness(p: &Person) -> usize {
    usize::from(p.linkedin_url.is_some())
        + usize::from(p.email.is_some())
        + usize::from(p.current_company_linkedin_handle.is_some())
        + usize::from(!p.title.is_empty())
        + usize::from(!p.headline.is_empty())
        + p.skills.len().min(1)
        + p.past_positions.len().min(1)
}
