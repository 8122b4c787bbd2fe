//! Text normalisation shared by indexing and querying.
//!
//! Every lookup key in the directory is produced by one of these functions, at
//! load time for the records and at query time for the question, so the two
//! sides can never drift apart: a name matches when both sides normalise to
//! the same string.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// Legal-form suffixes removed from the end of a company name (after case
/// folding and punctuation removal, so `S.A.` is `sa` and `Inc.` is `inc`).
/// Kept sorted for the binary search in [`is_legal_suffix`].
const LEGAL_SUFFIXES: &[&str] = &[
    "ab",
    "ag",
    "aps",
    "as",
    "asa",
    "bhd",
    "bv",
    "bvba",
    "co",
    "company",
    "corp",
    "corporation",
    "cv",
    "doo",
    "eurl",
    "gbr",
    "gmbh",
    "inc",
    "incorporated",
    "kft",
    "kg",
    "kgaa",
    "kk",
    "limited",
    "llc",
    "llp",
    "lp",
    "ltd",
    "ltda",
    "mbh",
    "nv",
    "ohg",
    "oy",
    "oyj",
    "plc",
    "pllc",
    "private",
    "pte",
    "pty",
    "pvt",
    "sa",
    "sab",
    "sae",
    "sal",
    "sarl",
    "sas",
    "sau",
    "se",
    "sl",
    "spa",
    "srl",
    "sro",
    "ug",
];

/// Legal forms written as separate letters once their dots are gone
/// (`S. A.` → `s a`), matched as a token sequence at the end of the name.
const SPACED_LEGAL_SUFFIXES: &[&[&str]] = &[
    &["s", "a"],
    &["a", "s"],
    &["b", "v"],
    &["n", "v"],
    &["l", "l", "c"],
    &["s", "r", "l"],
    &["s", "p", "a"],
    &["k", "k"],
    &["p", "l", "c"],
];

/// Words that only join a legal form to the name (`Acme & Co.`, `GmbH & Co.
/// KG`); dropped when they are left dangling at the end.
const DANGLING: &[&str] = &["and", "the"];

/// Folds `text` for comparison: Unicode compatibility decomposition (NFKD),
/// combining marks removed (`é` → `e`, `ﬁ` → `fi`), a few letters that have
/// no decomposition spelled out (`ß` → `ss`, `ø` → `o`), and lower case.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out);
    out
}

/// [`fold`] appending to `out`, so hot loops can reuse one buffer.
pub(crate) fn fold_into(text: &str, out: &mut String) {
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        if let Some(spelled) = spelled_out(c) {
            out.push_str(spelled);
            continue;
        }
        decompose_compatible(c, |d| {
            if !is_combining_mark(d) {
                out.extend(d.to_lowercase());
            }
        });
    }
}

/// Letters that NFKD leaves alone but that people type without the stroke or
/// ligature; without this `Søren` and `Soren` would never meet.
fn spelled_out(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' | 'ẞ' => "ss",
        'æ' | 'Æ' => "ae",
        'œ' | 'Œ' => "oe",
        'ø' | 'Ø' => "o",
        'đ' | 'Đ' | 'ð' | 'Ð' => "d",
        'ł' | 'Ł' => "l",
        'þ' | 'Þ' => "th",
        'ı' => "i",
        // Typographic apostrophes vanish like ASCII ones (see `words`).
        '\u{2019}' | '\u{2018}' | '\u{02bc}' => "'",
        _ => return None,
    })
}

/// Splits folded text into words: letters and digits are kept, apostrophes
/// and dots are deleted (so `Macy's` is `macys` and `S.A.` is `sa`), `&` and
/// `+` become `and`, anything else separates words.
fn words(folded: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in folded.chars() {
        if c.is_alphanumeric() {
            current.push(c);
        } else if c == '\'' || c == '.' {
            // Deleted, not a separator: abbreviations and possessives stay one word.
        } else {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            if c == '&' || c == '+' {
                words.push("and".to_owned());
            }
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn is_legal_suffix(word: &str) -> bool {
    LEGAL_SUFFIXES.binary_search(&word).is_ok()
}

/// Normalises a company name to the key used to compare names: folded (see
/// [`fold`]), punctuation removed, `&` spelled `and`, a leading `the`
/// dropped, and legal-form suffixes (`Inc`, `Corp`, `GmbH`, `S.A.`, …)
/// stripped repeatedly from the end, so `Acme`, `ACME Corp.` and
/// `Acme Corporation, Inc.` all give `acme`. A name that is nothing but a
/// legal form keeps its last word rather than becoming empty. The function is
/// idempotent.
pub fn normalize_company_name(name: &str) -> String {
    let folded = fold(name);
    // `Acme Corp (US)` and `Acme [formerly Apex]` name Acme; a name that is
    // all brackets keeps its contents rather than vanishing.
    let unbracketed = without_brackets(&folded);
    let mut words = words(&unbracketed);
    if words.is_empty() {
        words = self::words(&folded);
    }
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    loop {
        let before = words.len();
        if words.len() > 1 {
            let last = words[words.len() - 1].as_str();
            if is_legal_suffix(last) || DANGLING.contains(&last) {
                words.pop();
            }
        }
        for spaced in SPACED_LEGAL_SUFFIXES {
            if words.len() > spaced.len() && words.ends_with_str(spaced) {
                words.truncate(words.len() - spaced.len());
            }
        }
        if words.len() == before {
            break;
        }
    }
    words.join(" ")
}

/// `text` without the parts inside `()` or `[]`.
fn without_brackets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Normalises a person's name for lookups: folded, punctuation removed,
/// whitespace collapsed (`José  O'Neil` → `jose oneil`).
pub fn normalize_person_name(name: &str) -> String {
    words(&fold(name)).join(" ")
}

/// Normalises an email address for lookups: trimmed and lower-cased (the
/// local part is case-insensitive at every provider the directory sees).
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The profile handle of a LinkedIn profile URL in any common form, or of a
/// bare handle (`jane-doe`), lower-cased. `profile_handle` alone only reads
/// URLs, but callers often hold just the handle.
pub(crate) fn profile_key(input: &str) -> Option<String> {
    dossier_contracts::api::linkedin::profile_handle(input).or_else(|| {
        let bare = input.trim().trim_end_matches('/');
        (!bare.is_empty() && !bare.contains(['/', ':', '.', ' '])).then(|| bare.to_lowercase())
    })
}

/// Search tokens of free text (titles, locations, keywords): folded words,
/// with common title abbreviations expanded (`VP` → `vice president`,
/// `Sr.` → `senior`, `CTO` → `chief technology officer`) and a light
/// suffix-stripping stem (`engineering`, `engineers` → `engineer`), applied
/// to both the records and the query so `Engineering Manager` matches the
/// title filter `engineer`.
pub fn search_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_search_token(text, &mut String::new(), |t| out.push(t.to_owned()));
    out
}

/// [`search_tokens`] without allocating per token: calls `f` with each token
/// in order, using `buf` as scratch space. The directory's loader calls this
/// for every profile, so it avoids a `String` per word.
pub(crate) fn for_each_search_token(text: &str, buf: &mut String, mut f: impl FnMut(&str)) {
    buf.clear();
    fold_into(text, buf);
    let mut word = String::new();
    let mut emit = |word: &mut String| {
        if word.is_empty() {
            return;
        }
        match expansion(word) {
            Some(expanded) => expanded.iter().for_each(|w| f(stem(w))),
            None => f(stem(word)),
        }
        word.clear();
    };
    for c in buf.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else if c != '\'' && c != '.' {
            // Same word rules as company names (see `words`); `&` is noise in
            // titles, so it is not spelled out here.
            emit(&mut word);
        }
    }
    emit(&mut word);
}

/// Abbreviations seen in job titles, expanded to the words they stand for.
fn expansion(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "vp" => &["vice", "president"],
        "svp" => &["senior", "vice", "president"],
        "evp" => &["executive", "vice", "president"],
        "avp" => &["assistant", "vice", "president"],
        "sr" => &["senior"],
        "jr" => &["junior"],
        "mgr" => &["manager"],
        "dir" => &["director"],
        "eng" | "engr" => &["engineer"],
        "swe" => &["software", "engineer"],
        "sde" => &["software", "development", "engineer"],
        "ceo" => &["chief", "executive", "officer"],
        "cto" => &["chief", "technology", "officer"],
        "cfo" => &["chief", "financial", "officer"],
        "coo" => &["chief", "operating", "officer"],
        "cmo" => &["chief", "marketing", "officer"],
        "cro" => &["chief", "revenue", "officer"],
        "cio" => &["chief", "information", "officer"],
        "ciso" => &["chief", "information", "security", "officer"],
        "cpo" => &["chief", "product", "officer"],
        "chro" => &["chief", "human", "resource", "officer"],
        "hr" => &["human", "resource"],
        "gc" => &["general", "counsel"],
        "pm" => &["product", "manager"],
        "sdr" => &["sales", "development", "representative"],
        "bdr" => &["business", "development", "representative"],
        "ae" => &["account", "executive"],
        "us" | "usa" => &["united", "state"],
        "uk" => &["united", "kingdom"],
        _ => return None,
    })
}

/// A deliberately small stemmer: plural `s` and `ing` only. Anything cleverer
/// would need a dictionary, and both sides go through the same function, so
/// an odd stem (`marketing` → `market`) still matches itself.
fn stem(word: &str) -> &str {
    let word = match word.strip_suffix('s') {
        Some(rest) if rest.len() >= 3 && !rest.ends_with('s') && !rest.ends_with('u') => rest,
        _ => word,
    };
    match word.strip_suffix("ing") {
        Some(rest) if rest.len() >= 4 => rest,
        _ => word,
    }
}

/// `ends_with` for a `Vec<String>` against `&[&str]`.
trait EndsWithStr {
    fn ends_with_str(&self, tail: &[&str]) -> bool;
}

impl EndsWithStr for Vec<String> {
    fn ends_with_str(&self, tail: &[&str]) -> bool {
        self.len() >= tail.len()
            && self[self.len() - tail.len()..]
                .iter()
                .zip(tail)
                .all(|(a, b)| a == b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_suffixes_are_sorted_for_binary_search() {
        assert!(LEGAL_SUFFIXES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn company_names() {
        let cases = [
            ("Acme", "acme"),
            ("ACME Corp.", "acme"),
            ("Acme Corporation, Inc.", "acme"),
            ("Acme Inc", "acme"),
            ("Acme, Inc.", "acme"),
            ("acme  corp", "acme"),
            ("  Acme Company ", "acme"),
            ("Acme Co.", "acme"),
            ("Acme & Co.", "acme"),
            ("Acme and Company", "acme"),
            ("Acme LLC", "acme"),
            ("Acme L.L.C.", "acme"),
            ("Acme Ltd", "acme"),
            ("Acme Limited", "acme"),
            ("Acme Pty Ltd", "acme"),
            ("Acme Pty. Ltd.", "acme"),
            ("Acme GmbH", "acme"),
            ("Acme GmbH & Co. KG", "acme"),
            ("Acme AG", "acme"),
            ("Acme S.A.", "acme"),
            ("Acme S. A.", "acme"),
            ("Acme SA", "acme"),
            ("Acme SAS", "acme"),
            ("Acme S.r.l.", "acme"),
            ("Acme SRL", "acme"),
            ("Acme S.p.A.", "acme"),
            ("Acme B.V.", "acme"),
            ("Acme BV", "acme"),
            ("Acme N.V.", "acme"),
            ("Acme PLC", "acme"),
            ("Acme plc", "acme"),
            ("Acme Oy", "acme"),
            ("Acme Oyj", "acme"),
            ("Acme AB", "acme"),
            ("Acme KK", "acme"),
            ("Acme K.K.", "acme"),
            ("Acme Pvt. Ltd.", "acme"),
            ("Acme Private Limited", "acme"),
            ("Acme Pte. Ltd.", "acme"),
            ("Acme Ltda.", "acme"),
            ("Acme SE", "acme"),
            ("The Acme Company", "acme"),
            ("Acme Corporation Limited", "acme"),
            ("Acme-Corp", "acme"),
            ("Acme Corp (US)", "acme"),
            ("Acme [formerly Apex] Inc", "acme"),
            ("(Acme)", "acme"),
            ("Acme Cloud, Inc.", "acme cloud"),
            ("Acme Plumbing & Heating LLC", "acme plumbing and heating"),
            ("Johnson & Johnson", "johnson and johnson"),
            ("Johnson and Johnson", "johnson and johnson"),
            ("AT&T Inc.", "at and t"),
            ("Macy's, Inc.", "macys"),
            ("Macy\u{2019}s", "macys"),
            ("McDonald's Corporation", "mcdonalds"),
            ("Nestlé S.A.", "nestle"),
            ("NESTLÉ", "nestle"),
            ("Société Générale SA", "societe generale"),
            ("Müller GmbH", "muller"),
            ("Straße AG", "strasse"),
            ("Søren Ørsted A/S", "soren orsted"),
            ("Łódź Software Sp", "lodz software sp"),
            ("ＡＣＭＥ Ｃｏｒｐ", "acme"),
            ("ﬁnance Co", "finance"),
            ("Booking.com", "bookingcom"),
            ("3M Company", "3m"),
            ("Company", "company"),
            ("Inc.", "inc"),
            ("The Company", "company"),
            ("Corp Inc", "corp"),
            ("Co-op Group", "co op group"),
            ("", ""),
            ("   ", ""),
            ("!!!", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_company_name(input), want, "{input:?}");
        }
    }

    #[test]
    fn company_normalisation_is_idempotent() {
        for name in [
            "Acme Corporation, Inc.",
            "Acme GmbH & Co. KG",
            "The Company",
            "Nestlé S.A.",
            "AT&T Inc.",
        ] {
            let once = normalize_company_name(name);
            assert_eq!(normalize_company_name(&once), once, "{name:?}");
        }
    }

    #[test]
    fn person_names() {
        let cases = [
            ("Jane Doe", "jane doe"),
            ("  JANE   DOE ", "jane doe"),
            ("José O'Neil", "jose oneil"),
            ("Zoë Müller-Lüdenscheidt", "zoe muller ludenscheidt"),
            ("Dr. Jane Doe", "dr jane doe"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_person_name(input), want, "{input:?}");
        }
    }

    #[test]
    fn title_tokens() {
        let cases: &[(&str, &[&str])] = &[
            ("VP Engineering", &["vice", "president", "engineer"]),
            ("Sr. Software Engineer", &["senior", "software", "engineer"]),
            ("CTO", &["chief", "technology", "officer"]),
            ("Head of Sales", &["head", "of", "sale"]),
            ("Engineers", &["engineer"]),
            ("Marketing", &["market"]),
            ("Business", &["business"]),
            ("Status", &["status"]),
            ("King", &["king"]),
            (
                "HR Business Partner",
                &["human", "resource", "business", "partner"],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(search_tokens(input), *want, "{input:?}");
        }
    }

    #[test]
    fn profile_keys() {
        assert_eq!(profile_key("Jane-Doe/").as_deref(), Some("jane-doe"));
        assert_eq!(
            profile_key("https://www.linkedin.com/in/jane-doe/").as_deref(),
            Some("jane-doe")
        );
        assert_eq!(profile_key("jane.doe"), None);
        assert_eq!(profile_key("https://www.linkedin.com/company/acme"), None);
        assert_eq!(profile_key(" "), None);
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email(" Jane.Doe@Acme.COM "), "jane.doe@acme.com");
    }
}
