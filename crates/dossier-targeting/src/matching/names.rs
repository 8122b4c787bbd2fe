//! The spellings of a person's name worth a lookup, and what a match
//! through a variant, or against a contradicting name, costs.

use dossier_directory::{Person, normalize_person_name};

/// Factor applied when the record's `fullName` contradicts the match.
const NAME_CONFLICT_FACTOR: f64 = 0.8;
/// Factor applied to a match through a name variant.
const NAME_VARIANT_FACTOR: f64 = 0.95;

/// 1, or [`NAME_CONFLICT_FACTOR`] when the record names someone else.
pub(super) fn name_factor(record_name: Option<&str>, person: &Person) -> f64 {
    match record_name {
        Some(name)
            if !name_variants_normalized(name)
                .contains(&normalize_person_name(&person.full_name)) =>
        {
            NAME_CONFLICT_FACTOR
        }
        _ => 1.0,
    }
}

/// Honorifics and suffixes dropped from a name variant.
const NAME_NOISE: &[&str] = &[
    "dr", "mr", "mrs", "ms", "miss", "prof", "sir", "jr", "sr", "ii", "iii", "iv", "phd", "md",
    "mba",
];

/// The spellings of a full name worth a lookup, with the factor a match
/// through each costs: the name as given; without honorifics and suffixes
/// (`Dr. Jane Doe, PhD`); and with German transliterations folded back
/// (`Joerg Mueller` → `Jorg Muller`, as the directory folds `Jörg Müller`).
pub fn name_variants(name: &str) -> Vec<(String, f64)> {
    let normalized = normalize_person_name(name);
    let mut out = vec![(name.trim().to_owned(), 1.0)];
    for variant in name_variants_normalized(&normalized).into_iter().skip(1) {
        out.push((variant, NAME_VARIANT_FACTOR));
    }
    out
}

/// The normalised spellings of a normalised name, the name itself first.
fn name_variants_normalized(normalized: &str) -> Vec<String> {
    let mut out = vec![normalized.to_owned()];
    let words: Vec<&str> = normalized
        .split(' ')
        .filter(|w| !NAME_NOISE.contains(w))
        .collect();
    let plain = words.join(" ");
    if words.len() >= 2 && plain != normalized {
        out.push(plain.clone());
    }
    let folded = plain
        .split(' ')
        .map(fold_transliteration)
        .collect::<Vec<_>>()
        .join(" ");
    if folded.split(' ').count() >= 2 && !out.contains(&folded) {
        out.push(folded);
    }
    out
}

/// `ae`, `oe`, `ue` inside a word back to the vowel (`joerg` → `jorg`); at
/// the end of a word they are no transliteration (`doe`, `rae`).
fn fold_transliteration(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        if matches!(c, 'a' | 'o' | 'u') && chars.get(i + 1) == Some(&'e') && i + 2 < chars.len() {
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_variants_drop_noise_and_fold_transliterations() {
        let names: Vec<String> = name_variants("Dr. Joerg Mueller, PhD")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            ["Dr. Joerg Mueller, PhD", "joerg mueller", "jorg muller"]
        );
        assert_eq!(name_variants("Jane Doe").len(), 1, "no `jane do`");
        assert_eq!(fold_transliteration("mueller"), "muller");
        // A single remaining word is no name to look up.
        assert_eq!(name_variants("Dr. Who").len(), 1);
    }
}
