//! The directory's records: companies and people as a data vendor describes
//! them. Field names are camelCase in JSON, like the public API.
//!
//! Records are what a provider *says*, not the truth: a person's
//! `currentCompanyText` is free text copied from the profile and may be
//! stale or abbreviated, and two companies may share a name or claim the same
//! LinkedIn handle. Resolving that is the workers' job, not this crate's.

use std::fmt;

use dossier_contracts::api::{Department, Seniority};
use serde::{Deserialize, Serialize};

/// A company as a provider describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    /// The provider's id for the company (opaque, unique per provider).
    pub id: String,
    /// The company's name as the provider spells it.
    pub name: String,
    /// Other names the company goes by (`ACME Corp.`, `Acme Corporation,
    /// Inc.`, an abbreviation).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The company's web domain (`acme.com`), when known.
    #[serde(default)]
    pub domain: Option<String>,
    /// The slug of the company's LinkedIn page (`acme-corp`), when known.
    #[serde(default)]
    pub linkedin_handle: Option<String>,
    /// Industry, free text (`Software`, `Plumbing`).
    #[serde(default)]
    pub industry: String,
    /// Head-count band (`1-10` when the source does not say).
    #[serde(default)]
    pub size_band: SizeBand,
    /// Where the company is based.
    #[serde(default)]
    pub headquarters: Location,
}

/// A company's head-count band, serialised as LinkedIn writes it (`51-200`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum SizeBand {
    /// 1 to 10 employees.
    #[default]
    #[serde(rename = "1-10")]
    Micro,
    /// 11 to 50 employees.
    #[serde(rename = "11-50")]
    Small,
    /// 51 to 200 employees.
    #[serde(rename = "51-200")]
    Medium,
    /// 201 to 500 employees.
    #[serde(rename = "201-500")]
    Large,
    /// 501 to 1,000 employees.
    #[serde(rename = "501-1000")]
    XLarge,
    /// 1,001 to 5,000 employees.
    #[serde(rename = "1001-5000")]
    Enterprise,
    /// More than 5,000 employees.
    #[serde(rename = "5001+")]
    Giant,
}

impl SizeBand {
    /// Every band, smallest first.
    pub const ALL: [SizeBand; 7] = [
        SizeBand::Micro,
        SizeBand::Small,
        SizeBand::Medium,
        SizeBand::Large,
        SizeBand::XLarge,
        SizeBand::Enterprise,
        SizeBand::Giant,
    ];

    /// The band's label as serialised (`51-200`).
    pub fn as_str(self) -> &'static str {
        match self {
            SizeBand::Micro => "1-10",
            SizeBand::Small => "11-50",
            SizeBand::Medium => "51-200",
            SizeBand::Large => "201-500",
            SizeBand::XLarge => "501-1000",
            SizeBand::Enterprise => "1001-5000",
            SizeBand::Giant => "5001+",
        }
    }

    /// Parses a label as serialised (`51-200`).
    pub fn parse(label: &str) -> Option<SizeBand> {
        SizeBand::ALL
            .into_iter()
            .find(|band| band.as_str() == label.trim())
    }
}

impl fmt::Display for SizeBand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A place: city, region (state, province; may be empty) and country.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// City (`San Francisco`).
    #[serde(default)]
    pub city: String,
    /// State, province or region (`California`); may be empty.
    #[serde(default)]
    pub region: String,
    /// Country (`United States`).
    #[serde(default)]
    pub country: String,
}

impl fmt::Display for Location {
    /// `City, Region, Country`, skipping empty parts.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for part in [&self.city, &self.region, &self.country] {
            if part.is_empty() {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            f.write_str(part)?;
            first = false;
        }
        Ok(())
    }
}

/// A person as a provider describes them, mostly copied from a public
/// profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// The provider's id for the person (opaque, unique per provider).
    pub id: String,
    /// Full name as on the profile.
    pub full_name: String,
    /// Current job title as on the profile.
    #[serde(default)]
    pub title: String,
    /// Seniority of the current title.
    pub seniority: Seniority,
    /// Department of the current title.
    pub department: Department,
    /// Where the person is.
    #[serde(default)]
    pub location: Location,
    /// Work email, when known.
    #[serde(default)]
    pub email: Option<String>,
    /// LinkedIn profile URL in whatever form the provider had it.
    #[serde(default)]
    pub linkedin_url: Option<String>,
    /// The current company as free text on the profile: may be stale (a
    /// previous employer), abbreviated (`IBM`) or a variant (`ACME Corp.`).
    #[serde(default)]
    pub current_company_text: String,
    /// The LinkedIn handle of the company page the profile's current
    /// position links to, when it links to one.
    #[serde(default)]
    pub current_company_linkedin_handle: Option<String>,
    /// One-line profile headline.
    #[serde(default)]
    pub headline: String,
    /// Skills listed on the profile.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Earlier positions, most recent first.
    #[serde(default)]
    pub past_positions: Vec<Position>,
}

/// An earlier position on a person's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// The company as free text on the profile.
    pub company_text: String,
    /// The LinkedIn handle of the company page the position links to.
    #[serde(default)]
    pub company_linkedin_handle: Option<String>,
    /// Job title.
    #[serde(default)]
    pub title: String,
    /// Year the position started.
    #[serde(default)]
    pub start_year: Option<u16>,
    /// Year the position ended.
    #[serde(default)]
    pub end_year: Option<u16>,
}

impl Person {
    /// The LinkedIn profile handle of [`Person::linkedin_url`], parsed from
    /// any common URL form.
    pub fn profile_handle(&self) -> Option<String> {
        self.linkedin_url
            .as_deref()
            .and_then(dossier_contracts::api::linkedin::profile_handle)
    }

    /// The domain of the person's email (`acme.com`), lower-cased.
    pub fn email_domain(&self) -> Option<String> {
        let (_, domain) = self.email.as_deref()?.rsplit_once('@')?;
        dossier_contracts::api::normalize_domain(domain)
    }
}

/// One line of a directory JSONL file: a company or a person, tagged by
/// `type` (`{"type":"company",…}` / `{"type":"person",…}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A company.
    Company(Company),
    /// A person.
    Person(Person),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_band_labels_round_trip() {
        for band in SizeBand::ALL {
            let json = serde_json::to_string(&band).unwrap();
            assert_eq!(json, format!("\"{}\"", band.as_str()));
            assert_eq!(serde_json::from_str::<SizeBand>(&json).unwrap(), band);
            assert_eq!(SizeBand::parse(band.as_str()), Some(band));
        }
        assert_eq!(SizeBand::parse("10-20"), None);
    }

    #[test]
    fn records_are_tagged_camel_case() {
        let line = r#"{"type":"person","id":"p1","fullName":"Jane Doe","title":"CTO",
            "seniority":"c_suite","department":"engineering",
            "location":{"city":"Berlin","country":"Germany"},
            "email":"jane@acme.com","linkedinUrl":"linkedin.com/in/jane-doe",
            "currentCompanyText":"ACME Corp.","currentCompanyLinkedinHandle":"acme",
            "pastPositions":[{"companyText":"Globex","title":"Engineer","startYear":2015}]}"#;
        let Record::Person(person) = serde_json::from_str(line).unwrap() else {
            panic!("not a person");
        };
        assert_eq!(person.seniority, Seniority::CSuite);
        assert_eq!(person.location.region, "");
        assert_eq!(person.profile_handle().as_deref(), Some("jane-doe"));
        assert_eq!(person.email_domain().as_deref(), Some("acme.com"));
        assert_eq!(person.past_positions[0].start_year, Some(2015));
        let back = serde_json::to_value(Record::Person(person)).unwrap();
        assert_eq!(back["type"], "person");
        assert_eq!(back["currentCompanyText"], "ACME Corp.");

        let company: Record = serde_json::from_str(
            r#"{"type":"company","id":"c1","name":"Acme","sizeBand":"5001+"}"#,
        )
        .unwrap();
        let Record::Company(company) = company else {
            panic!("not a company");
        };
        assert_eq!(company.size_band, SizeBand::Giant);
        assert!(company.aliases.is_empty());
    }

    #[test]
    fn location_display_skips_empty_parts() {
        let loc = Location {
            city: "Berlin".into(),
            region: String::new(),
            country: "Germany".into(),
        };
        assert_eq!(loc.to_string(), "Berlin, Germany");
        assert_eq!(Location::default().to_string(), "");
    }
}
