//! The vocabularies names are drawn from (company brands, people's first
//! and last names) and the spelling helpers that turn names into handles,
//! domains and emails.

use std::collections::HashSet;

use dossier_directory::fold;

/// Lower-case ASCII slug: `Velora Health` → `velora-health`.
pub(crate) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in fold(text).chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') && c != '\'' && c != '.' {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Lower-case ASCII letters and digits only: for domains and emails.
pub(crate) fn compact(text: &str) -> String {
    fold(text)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

/// `base` or `base-industry` or `base-2`, … whichever is free.
pub(crate) fn unique(base: String, taken: &mut HashSet<String>, industry: &str) -> String {
    if taken.insert(base.clone()) {
        return base;
    }
    let with_industry = format!("{base}-{industry}");
    if taken.insert(with_industry.clone()) {
        return with_industry;
    }
    let mut n = 2;
    loop {
        let candidate = format!("{base}-{n}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

/// `text` with every non-ASCII letter spelled in ASCII, case kept:
/// `Müller` → `Muller`, `Ærø` → `AEro`.
pub(crate) fn ascii_spelling(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let folded = fold(&c.to_string());
        if c.is_uppercase() {
            out.push_str(&folded.to_uppercase());
        } else {
            out.push_str(&folded);
        }
    }
    out
}

pub(crate) const GROUP_WORDS: &[&str] = &[
    "Group",
    "Systems",
    "Holdings",
    "Solutions",
    "International",
    "Services",
];

pub(crate) const SYLLABLE_FIRST: &[&str] = &[
    "Ac", "Bel", "Cor", "Dyn", "El", "Fal", "Gal", "Hel", "Ion", "Jun", "Kor", "Lum", "Mer", "Nov",
    "Or", "Pax", "Quan", "Rho", "Sol", "Tor", "Ul", "Ver", "Wex", "Xan", "Yor", "Zen", "Ast",
    "Bri", "Cal", "Del", "Ev", "Fin", "Gra", "Hal", "Ind", "Kin", "Lat", "Mon", "Nex", "Opt",
    "Pri", "Qua", "Riv", "Sen", "Tal", "Uni", "Vel", "Win", "Zeph", "Ar", "Cyn", "Em", "Fer",
    "Glo", "Hy", "Ix", "Jov", "Kal", "Lyr", "Myr",
];

pub(crate) const SYLLABLE_SECOND: &[&str] = &[
    "me", "ex", "ia", "on", "ar", "is", "um", "ora", "ent", "ix", "eon", "ana", "ity", "io", "ly",
    "ware", "wise", "ra", "os", "ium", "ova", "ant", "ica", "exa", "ara", "ion", "ino",
];

pub(crate) const COMPOUND_FIRST: &[&str] = &[
    "North", "Blue", "Red", "Silver", "Green", "Bright", "Iron", "Stone", "Clear", "Sun", "Oak",
    "River", "Summit", "Pine", "Eagle", "Harbor", "Pacific", "Atlantic", "Golden", "Swift",
];

pub(crate) const COMPOUND_SECOND: &[&str] = &[
    "wind", "field", "bridge", "gate", "point", "stone", "wave", "peak", "light", "brook", "crest",
    "ridge", "line", "path", "works", "forge",
];

pub(crate) const EUROPEAN_BRANDS: &[&str] = &[
    "Lumière",
    "Müller",
    "Østerberg",
    "Brûlé",
    "Señal",
    "Größe",
    "Ærø",
    "Crème",
    "Fjällräv",
    "Société Générique",
    "Zürcher",
    "Ångström",
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "William",
    "Elizabeth",
    "David",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
    "Matthew",
    "Lisa",
    "Anthony",
    "Betty",
    "Mark",
    "Margaret",
    "Donald",
    "Sandra",
    "Steven",
    "Ashley",
    "Paul",
    "Kimberly",
    "Andrew",
    "Emily",
    "Joshua",
    "Donna",
    "Kevin",
    "Michelle",
    "Brian",
    "Carol",
    "George",
    "Amanda",
    "Timothy",
    "Melissa",
    "Ronald",
    "Deborah",
    "Jason",
    "Stephanie",
    "Priya",
    "Arjun",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Olga",
    "Dmitri",
    "Fatima",
    "Omar",
    "Aisha",
    "Mohammed",
    "Sofia",
    "Lucas",
    "Mateo",
    "Valentina",
    "Camila",
    "Diego",
    "Chloé",
    "Léa",
    "Zoë",
    "José",
    "Jörg",
    "Björn",
    "Søren",
    "Åsa",
    "Anaïs",
    "François",
    "Renée",
    "Łukasz",
    "Małgorzata",
    "Ngozi",
    "Chinedu",
    "Kwame",
    "Amara",
    "Ingrid",
    "Lars",
    "Astrid",
    "Nikos",
    "Eleni",
    "Tomás",
    "Inés",
    "Raj",
    "Ananya",
    "Sanjay",
    "Kenji",
    "Hana",
    "Min-jun",
    "Ji-woo",
    "Ethan",
    "Olivia",
    "Noah",
    "Emma",
    "Liam",
    "Ava",
    "Mia",
    "Leo",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Patel",
    "Sharma",
    "Gupta",
    "Singh",
    "Kumar",
    "Wang",
    "Li",
    "Zhang",
    "Liu",
    "Chen",
    "Yamamoto",
    "Tanaka",
    "Suzuki",
    "Kim",
    "Park",
    "Choi",
    "Ivanov",
    "Petrov",
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schäfer",
    "Dubois",
    "Lefèvre",
    "Moreau",
    "Laurent",
    "Girard",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Pereira",
    "Costa",
    "Jensen",
    "Nielsen",
    "Hansen",
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Virtanen",
    "Korhonen",
    "O'Brien",
    "O'Connor",
    "Murphy",
    "Kelly",
    "Byrne",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Haddad",
    "Khan",
    "Cohen",
    "Levi",
    "Papadopoulos",
    "Núñez",
    "Peña",
    "Fernández",
    "Gómez",
    "Díaz",
    "Van Dijk",
    "De Vries",
    "Bakker",
    "Jansen",
    "Østergaard",
    "Sørensen",
    "Håkansson",
    "Çelik",
    "Yılmaz",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(slug("Velora Health & Care"), "velora-health-care");
        assert_eq!(slug("Lumière"), "lumiere");
        assert_eq!(compact("O'Brien"), "obrien");
        assert_eq!(ascii_spelling("Müller Söhne"), "Muller Sohne");
        assert_eq!(ascii_spelling("Ærø"), "AEro");
        let mut taken = HashSet::new();
        assert_eq!(unique("acme".into(), &mut taken, "software"), "acme");
        assert_eq!(
            unique("acme".into(), &mut taken, "software"),
            "acme-software"
        );
        assert_eq!(unique("acme".into(), &mut taken, "software"), "acme-2");
    }
}
