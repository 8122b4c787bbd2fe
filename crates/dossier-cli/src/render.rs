//! Terminal output: aligned tables, and Markdown as plain text.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use serde_json::Value;

/// Widest a table cell is printed (longer text is cut with `…`).
const MAX_CELL: usize = 48;

/// A JSON value as a cell: text as is, nothing for null, else its JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The headers of [`person_cells`].
pub const PERSON_HEADERS: [&str; 7] = [
    "NAME",
    "TITLE",
    "SENIORITY",
    "DEPARTMENT",
    "LOCATION",
    "EMAIL",
    "LINKEDIN",
];

/// A person of the API (search result, enriched record) as cells: name,
/// title, seniority, department, location (`city, region, country`),
/// email, LinkedIn URL.
pub fn person_cells(person: &Value) -> [String; 7] {
    let location: Vec<String> = ["city", "region", "country"]
        .iter()
        .map(|k| text(&person["location"][k]))
        .filter(|s| !s.is_empty())
        .collect();
    [
        text(&person["fullName"]),
        text(&person["title"]),
        text(&person["seniority"]),
        text(&person["department"]),
        location.join(", "),
        text(&person["email"]),
        text(&person["linkedinUrl"]),
    ]
}

/// `rows` under `headers`, each column as wide as its widest cell, two
/// spaces apart, without trailing spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let cut = |s: &str| -> String {
        let one_line = s.replace(['\n', '\r', '\t'], " ");
        if one_line.chars().count() > MAX_CELL {
            let mut short: String = one_line.chars().take(MAX_CELL - 1).collect();
            short.push('…');
            short
        } else {
            one_line
        }
    };
    let cells: Vec<Vec<String>> =
        std::iter::once(headers.iter().map(|h| (*h).to_owned()).collect())
            .chain(rows.iter().map(|r| r.iter().map(|c| cut(c)).collect()))
            .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let mut line = String::new();
        for (i, width) in widths.iter().enumerate() {
            let cell = row.get(i).map_or("", String::as_str);
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Markdown as plain terminal text: headings underlined, list items with
/// bullets, links followed by their address, emphasis dropped.
pub fn markdown(text: &str) -> String {
    let mut out = String::new();
    let mut heading: Option<(HeadingLevel, usize)> = None;
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Heading { level, .. }) => heading = Some((level, out.len())),
            Event::End(TagEnd::Heading(_)) => {
                if let Some((level, start)) = heading.take() {
                    let width = out[start..].chars().count();
                    let rule = if level == HeadingLevel::H1 { '=' } else { '-' };
                    out.push('\n');
                    out.extend(std::iter::repeat_n(rule, width));
                    out.push_str("\n\n");
                }
            }
            Event::Start(Tag::List(first)) => lists.push(first),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                out.push_str(&"  ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("• "),
                }
            }
            Event::End(TagEnd::Item) if !out.ends_with('\n') => out.push('\n'),
            Event::End(TagEnd::Paragraph) => {
                out.push_str(if lists.is_empty() { "\n\n" } else { "\n" });
            }
            Event::Start(Tag::Link { dest_url, .. }) => links.push(dest_url.into_string()),
            Event::End(TagEnd::Link) => {
                if let Some(url) = links.pop()
                    && !url.is_empty()
                {
                    out.push_str(&format!(" <{url}>"));
                }
            }
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("────────\n\n"),
            _ => {}
        }
    }
    out.trim_end().to_owned() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_cut_long_cells() {
        let text = table(
            &["NAME", "TITLE"],
            &[
                vec!["Léa".into(), "VP Sales".into()],
                vec!["Bo".into(), "x".repeat(60)],
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "NAME  TITLE");
        assert_eq!(lines[1], "Léa   VP Sales");
        assert!(lines[2].ends_with('…') && lines[2].chars().count() == 6 + MAX_CELL);
    }

    #[test]
    fn markdown_becomes_plain_text() {
        let text = markdown(
            "# Acme\n\nLed by **Jane** [1].\n\n## Sources\n\n1. [Site](https://acme.com)\n- one\n",
        );
        assert!(
            text.starts_with("Acme\n====\n\nLed by Jane [1].\n\nSources\n-------\n"),
            "{text}"
        );
        assert!(text.contains("1. Site <https://acme.com>\n"), "{text}");
        assert!(text.contains("• one\n"), "{text}");
    }
}
