//! LinkedIn profile and company-page references in every common form:
//! full URLs with or without scheme, `www.` or country subdomains
//! (`uk.linkedin.com`), trailing slashes, query strings and fragments,
//! URL-encoded slugs, and bare slugs.

/// Extracts the profile slug from a LinkedIn profile URL
/// (`https://www.linkedin.com/in/jane-doe-42/` → `jane-doe-42`). Legacy
/// `/pub/name/a/b/c` URLs are accepted too. Returns lower-case, decoded.
pub fn profile_handle(input: &str) -> Option<String> {
    let path = linkedin_path(input)?;
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    match parts.next()? {
        "in" => slug(parts.next()?),
        "pub" => {
            // /pub/jane-doe/12/345/678 → jane-doe-12345678 is not stable across
            // LinkedIn's migrations; the name part plus the id parts is what
            // the legacy URL identifies.
            let name = parts.next()?;
            let id: String = parts.collect::<Vec<_>>().join("");
            slug(&if id.is_empty() {
                name.to_owned()
            } else {
                format!("{name}-{id}")
            })
        }
        _ => None,
    }
}

/// Extracts the company handle from a LinkedIn company page URL
/// (`https://www.linkedin.com/company/acme-corp/about/` → `acme-corp`) or
/// accepts a bare handle (`acme-corp`). Returns lower-case, decoded.
pub fn company_handle(input: &str) -> Option<String> {
    let trimmed = input.trim();
    if let Some(path) = linkedin_path(trimmed) {
        let mut parts = path.split('/').filter(|p| !p.is_empty());
        return match parts.next()? {
            "company" | "school" | "showcase" => slug(parts.next()?),
            _ => None,
        };
    }
    // A bare handle: no scheme, no slashes (a trailing one is tolerated).
    let bare = trimmed.trim_end_matches('/');
    if bare.contains(['/', ':', '.', ' ']) {
        return None;
    }
    slug(bare)
}

/// The path of a linkedin.com URL (lower-cased, without query or fragment),
/// or `None` when `input` is not one.
fn linkedin_path(input: &str) -> Option<String> {
    let s = input.trim().to_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let (host, path) = s.split_once('/')?;
    let host = host.split(':').next()?;
    let is_linkedin = host == "linkedin.com"
        || host
            .strip_suffix(".linkedin.com")
            .is_some_and(|sub| !sub.is_empty() && !sub.contains('.'));
    if !is_linkedin {
        return None;
    }
    Some(path.split(['?', '#']).next()?.to_owned())
}

/// A decoded, validated slug: letters (any script), digits, `-` and `_`.
fn slug(raw: &str) -> Option<String> {
    let decoded = percent_decode(raw)?;
    let valid = !decoded.is_empty()
        && decoded.chars().count() <= 100
        && decoded
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    valid.then(|| decoded.to_lowercase())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_forms() {
        let cases = [
            (
                "https://www.linkedin.com/in/jane-doe-42/",
                Some("jane-doe-42"),
            ),
            ("http://linkedin.com/in/Jane-Doe", Some("jane-doe")),
            ("linkedin.com/in/jane_doe?trk=abc#x", Some("jane_doe")),
            ("www.linkedin.com/in/jane/details/experience/", Some("jane")),
            ("https://uk.linkedin.com/in/jane", Some("jane")),
            (
                "https://www.linkedin.com/in/j%C3%B6rg-m%C3%BCller",
                Some("jörg-müller"),
            ),
            (
                "https://www.linkedin.com/pub/jane-doe/1a/2b/3c",
                Some("jane-doe-1a2b3c"),
            ),
            ("https://www.linkedin.com:443/in/jane", Some("jane")),
            ("https://www.linkedin.com/company/acme", None),
            ("https://example.com/in/jane", None),
            ("https://evil.com.linkedin.com.attacker.io/in/jane", None),
            ("jane-doe", None),
            ("https://www.linkedin.com/in/", None),
            ("https://www.linkedin.com/in/a%ZZ", None),
        ];
        for (input, want) in cases {
            assert_eq!(profile_handle(input).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn company_forms() {
        let cases = [
            ("acme-corp", Some("acme-corp")),
            ("Acme_Corp/", Some("acme_corp")),
            (
                "https://www.linkedin.com/company/acme-corp/",
                Some("acme-corp"),
            ),
            (
                "linkedin.com/company/acme-corp/about/?viewAsMember=true",
                Some("acme-corp"),
            ),
            ("https://de.linkedin.com/company/acme", Some("acme")),
            ("https://www.linkedin.com/school/stanford", Some("stanford")),
            (
                "https://www.linkedin.com/showcase/acme-cloud",
                Some("acme-cloud"),
            ),
            ("https://www.linkedin.com/in/jane", None),
            ("acme.com", None),
            ("acme corp", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(company_handle(input).as_deref(), want, "{input}");
        }
    }
}
