//! Which input column feeds which field of the API's person record, found
//! by column name (`Email`, `work_email`, `LinkedIn`, `Company Domain`, …)
//! and overridden with `--map column=field`.

use serde::Serialize;

use crate::error::CliError;

/// A field of the person record (`POST /api/enrichment/batch`), or a part
/// the client joins into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `email`.
    Email,
    /// `linkedinUrl` (a bare profile handle is made a URL).
    LinkedinUrl,
    /// `fullName`.
    FullName,
    /// First name: joined with [`Field::LastName`] into `fullName` when no
    /// column holds the full name.
    FirstName,
    /// Last name (see [`Field::FirstName`]).
    LastName,
    /// `companyName`.
    CompanyName,
    /// `companyDomain`.
    CompanyDomain,
    /// `externalId`.
    ExternalId,
}

impl Field {
    /// The field a `--map` right-hand side names (API names and the
    /// aliases the automatic mapping knows), `None` for `-`/`ignore`.
    pub fn parse(name: &str) -> Result<Option<Field>, String> {
        let key = normalize(name);
        if matches!(key.as_str(), "" | "ignore" | "skip" | "none") || name.trim() == "-" {
            return Ok(None);
        }
        Field::by_name(&key)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "unknown field `{name}`: use one of email, linkedinUrl, fullName, firstName, lastName, companyName, companyDomain, externalId, or - to ignore the column"
                )
            })
    }

    /// The field a normalised column name stands for.
    fn by_name(key: &str) -> Option<Field> {
        Some(match key {
            "email" | "emailaddress" | "workemail" | "businessemail" | "mail" => Field::Email,
            "linkedin" | "linkedinurl" | "linkedinprofile" | "linkedinprofileurl"
            | "linkedinhandle" | "handle" | "profileurl" | "linkedinslug" => Field::LinkedinUrl,
            "name" | "fullname" | "contactname" | "personname" => Field::FullName,
            "firstname" | "givenname" | "first" => Field::FirstName,
            "lastname" | "surname" | "familyname" | "last" => Field::LastName,
            "company" | "companyname" | "organization" | "organisation" | "account"
            | "accountname" | "employer" => Field::CompanyName,
            "domain" | "companydomain" | "website" | "companywebsite" | "emaildomain" => {
                Field::CompanyDomain
            }
            "externalid" | "crmid" | "recordid" | "id" => Field::ExternalId,
            _ => return None,
        })
    }
}

/// Lower-case letters and digits only: `Work E-mail` → `workemail`.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The columns feeding the record, by column position.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// `(column index, field)`, each field at most once.
    pub columns: Vec<(usize, Field)>,
}

/// The person record sent for one row; empty cells are left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonRecord {
    /// Work or personal email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// LinkedIn profile URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_url: Option<String>,
    /// Full name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// Company name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// Company domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company_domain: Option<String>,
    /// The caller's id, echoed back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl Mapping {
    /// Maps `headers` by name, then applies `overrides` (`column=field`,
    /// the column named as in the header, case-insensitively). Fails when
    /// an override names no column or field, when two columns feed one
    /// field, or when no column identifies a person.
    pub fn resolve(headers: &[String], overrides: &[String]) -> Result<Mapping, CliError> {
        let mut fields: Vec<Option<Field>> = headers
            .iter()
            .map(|h| Field::by_name(&normalize(h)))
            .collect();
        for entry in overrides {
            let (column, field) = entry.split_once('=').ok_or_else(|| {
                CliError::Usage(format!("--map `{entry}`: expected column=field"))
            })?;
            let index = headers
                .iter()
                .position(|h| h == column.trim())
                .or_else(|| {
                    headers
                        .iter()
                        .position(|h| h.trim().eq_ignore_ascii_case(column.trim()))
                })
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "--map `{entry}`: no column `{column}` (columns: {})",
                        headers.join(", ")
                    ))
                })?;
            let field = Field::parse(field)
                .map_err(|e| CliError::Usage(format!("--map `{entry}`: {e}")))?;
            // An explicit mapping takes the field from any column that
            // had it by name.
            if let Some(field) = field {
                for other in fields.iter_mut() {
                    if *other == Some(field) {
                        *other = None;
                    }
                }
            }
            fields[index] = field;
        }
        let mut columns: Vec<(usize, Field)> = Vec::new();
        for (index, field) in fields.into_iter().enumerate() {
            let Some(field) = field else { continue };
            if let Some((other, _)) = columns.iter().find(|(_, f)| *f == field) {
                return Err(CliError::Usage(format!(
                    "columns `{}` and `{}` both map to {field:?}: choose one with --map `{}=-`",
                    headers[*other], headers[index], headers[index]
                )));
            }
            columns.push((index, field));
        }
        let has = |field: Field| columns.iter().any(|(_, f)| *f == field);
        let identifies = has(Field::Email)
            || has(Field::LinkedinUrl)
            || ((has(Field::FullName) || has(Field::FirstName) || has(Field::LastName))
                && (has(Field::CompanyName) || has(Field::CompanyDomain)));
        if !identifies {
            return Err(CliError::Usage(format!(
                "no column identifies a person: need email, linkedin, or name with company/domain (columns: {}); map one with --map column=field",
                headers.join(", ")
            )));
        }
        Ok(Mapping { columns })
    }

    /// The record of one row (`cell(i)` is column `i`'s value, `None` when
    /// absent): values trimmed, empty ones left out, first and last name
    /// joined when no full name is given, a bare LinkedIn handle made a
    /// profile URL.
    pub fn record<'a>(&self, cell: impl Fn(usize) -> Option<&'a str>) -> PersonRecord {
        let mut record = PersonRecord::default();
        let (mut first, mut last) = (None, None);
        for (index, field) in &self.columns {
            let Some(value) = cell(*index).map(str::trim).filter(|v| !v.is_empty()) else {
                continue;
            };
            let value = value.to_owned();
            match field {
                Field::Email => record.email = Some(value),
                Field::LinkedinUrl => record.linkedin_url = Some(linkedin_url(value)),
                Field::FullName => record.full_name = Some(value),
                Field::FirstName => first = Some(value),
                Field::LastName => last = Some(value),
                Field::CompanyName => record.company_name = Some(value),
                Field::CompanyDomain => record.company_domain = Some(value),
                Field::ExternalId => record.external_id = Some(value),
            }
        }
        if record.full_name.is_none() {
            let joined: Vec<String> = [first, last].into_iter().flatten().collect();
            if !joined.is_empty() {
                record.full_name = Some(joined.join(" "));
            }
        }
        record
    }
}

/// A bare profile handle (`jane-doe-42`) as the profile URL the API reads;
/// anything with a slash or a dot is left as given.
fn linkedin_url(value: String) -> String {
    if value.contains(['/', '.', ':', ' ']) {
        value
    } else {
        format!("https://www.linkedin.com/in/{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn columns_are_mapped_by_name_whatever_their_spelling() {
        let h = headers(&[
            "Work E-mail",
            "LinkedIn",
            "First Name",
            "Last Name",
            "Company",
            "Website",
            "CRM ID",
            "Notes",
        ]);
        let mapping = Mapping::resolve(&h, &[]).unwrap();
        let row = [
            "Jane@Acme.com ",
            "jane-doe",
            "Jane",
            "Doe",
            "Acme",
            "acme.com",
            "crm-1",
            "call back",
        ];
        let record = mapping.record(|i| row.get(i).copied());
        assert_eq!(
            record,
            PersonRecord {
                email: Some("Jane@Acme.com".into()),
                linkedin_url: Some("https://www.linkedin.com/in/jane-doe".into()),
                full_name: Some("Jane Doe".into()),
                company_name: Some("Acme".into()),
                company_domain: Some("acme.com".into()),
                external_id: Some("crm-1".into()),
            }
        );
        // Unknown columns (Notes) feed nothing; empty cells are left out.
        let sparse = ["", "", "", "", "", "", "", "x"];
        assert_eq!(
            mapping.record(|i| sparse.get(i).copied()),
            PersonRecord::default()
        );
    }

    #[test]
    fn overrides_move_ignore_and_reject() {
        let h = headers(&["email", "contact", "org", "Personal Email"]);
        // `contact` and `org` are unknown names until mapped.
        let mapping = Mapping::resolve(
            &h,
            &[
                "contact=fullName".into(),
                "org=company".into(),
                "email=-".into(),
                "personal email=email".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            mapping.columns,
            vec![
                (1, Field::FullName),
                (2, Field::CompanyName),
                (3, Field::Email)
            ]
        );
        let err = |overrides: &[&str], h: &[String]| {
            let overrides: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
            match Mapping::resolve(h, &overrides) {
                Err(CliError::Usage(message)) => message,
                other => panic!("{other:?}"),
            }
        };
        assert!(err(&["nope=email"], &h).contains("no column `nope`"));
        assert!(err(&["org=phone"], &h).contains("unknown field `phone`"));
        assert!(err(&["org"], &h).contains("expected column=field"));
        // Two columns for one field must be resolved by the user.
        let twice = headers(&["email", "work email"]);
        assert!(err(&[], &twice).contains("both map to Email"));
        // Nothing that identifies a person.
        let none = headers(&["name", "notes"]);
        assert!(err(&[], &none).contains("no column identifies a person"));
    }
}
