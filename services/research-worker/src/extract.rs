//! Readable text from HTML, with a real HTML parser (`scraper`, on
//! html5ever): the title, the text of the page as paragraphs (scripts,
//! styles, navigation and other non-content elements dropped), and the
//! links, for finding the about, careers and news pages.

use scraper::{Html, Node, Selector};

/// What a page says, as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The `<title>`, or the first `<h1>`, trimmed; empty when neither.
    pub title: String,
    /// Blocks of text in document order, whitespace collapsed, empty ones
    /// dropped.
    pub paragraphs: Vec<String>,
    /// `href`s of `<a>` elements, as written (resolve against the page URL).
    pub links: Vec<String>,
}

/// Elements whose content is never readable text.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "svg", "canvas", "iframe", "head", "nav", "form",
    "button", "select", "textarea",
];

/// Elements that end a block of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "table",
    "tr",
    "td",
    "th",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "br",
    "hr",
    "address",
    "body",
];

/// A unit of work of the iterative walk below: visit a node, or close a
/// block (generic over the node type, so the tree crate need not be named).
enum Work<N> {
    Visit(N),
    EndBlock,
    EndSkip,
}

/// Extracts the title, paragraphs and links of an HTML document. Never
/// fails: html5ever recovers from any markup, as browsers do.
pub fn extract(html: &str) -> Extracted {
    let document = Html::parse_document(html);
    let title = first_text(&document, "title")
        .or_else(|| first_text(&document, "h1"))
        .unwrap_or_default();

    let mut paragraphs = Vec::new();
    let mut current = String::new();
    let mut skip_depth = 0usize;
    // An explicit stack rather than recursion: a hostile page may nest
    // elements deeply enough to overflow the task's stack.
    let mut stack = vec![Work::Visit(document.tree.root())];
    while let Some(work) = stack.pop() {
        let node = match work {
            Work::Visit(node) => node,
            Work::EndBlock => {
                flush(&mut current, &mut paragraphs);
                continue;
            }
            Work::EndSkip => {
                skip_depth = skip_depth.saturating_sub(1);
                continue;
            }
        };
        match node.value() {
            Node::Text(text) if skip_depth == 0 => {
                current.push_str(text);
                continue;
            }
            Node::Element(element) => {
                let name = element.name();
                if SKIPPED.contains(&name) {
                    skip_depth += 1;
                    stack.push(Work::EndSkip);
                } else if BLOCKS.contains(&name) {
                    flush(&mut current, &mut paragraphs);
                    stack.push(Work::EndBlock);
                }
            }
            Node::Document | Node::Fragment => {}
            _ => continue,
        }
        // Children in reverse, so they pop in document order.
        let children: Vec<_> = node.children().collect();
        stack.extend(children.into_iter().rev().map(Work::Visit));
    }
    flush(&mut current, &mut paragraphs);

    let links = Selector::parse("a[href]")
        .map(|selector| {
            document
                .select(&selector)
                .filter_map(|a| a.value().attr("href"))
                .map(|href| href.trim().to_owned())
                .filter(|href| !href.is_empty())
                .collect()
        })
        .unwrap_or_default();

    Extracted {
        title,
        paragraphs,
        links,
    }
}

fn first_text(document: &Html, selector: &str) -> Option<String> {
    let selector = Selector::parse(selector).ok()?;
    let element = document.select(&selector).next()?;
    let text = collapse(&element.text().collect::<String>());
    (!text.is_empty()).then_some(text)
}

fn flush(current: &mut String, paragraphs: &mut Vec<String>) {
    let text = collapse(current);
    current.clear();
    if !text.is_empty() {
        paragraphs.push(text);
    }
}

/// Collapses runs of whitespace to one space and trims.
pub fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a paragraph into sentences: at `.`, `!` or `?` followed by a space
/// and an upper-case letter or digit, so `Inc. builds` and `3.5` stay whole.
/// Sentences shorter than three words are dropped (menus, labels).
pub fn sentences(paragraph: &str) -> Vec<String> {
    let chars: Vec<char> = paragraph.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..chars.len() {
        let ends = matches!(chars[i], '.' | '!' | '?')
            && chars.get(i + 1).is_some_and(|c| c.is_whitespace())
            && chars
                .get(i + 2)
                .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
            && !abbreviation(&chars[start..i]);
        if ends {
            out.push(chars[start..=i].iter().collect::<String>());
            start = i + 1;
        }
    }
    out.push(chars[start..].iter().collect::<String>());
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| s.split_whitespace().count() >= 3)
        .collect()
}

/// Whether the text before a period ends in a common abbreviation.
fn abbreviation(before: &[char]) -> bool {
    let word: String = before
        .iter()
        .rev()
        .take_while(|c| !c.is_whitespace())
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    matches!(
        word.to_lowercase().as_str(),
        "inc" | "corp" | "ltd" | "co" | "mr" | "ms" | "mrs" | "dr" | "st" | "vs" | "e.g" | "i.e"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_title_paragraphs_and_links_without_scripts_or_navigation() {
        let html = r#"<!doctype html><html><head><title> Acme  Corp </title>
            <style>body { color: red }</style><script>var secret = "no";</script></head>
            <body><nav><a href="/about">About</a> <a href="/careers">Careers</a></nav>
            <main><h1>Welcome</h1><p>Acme builds <b>rockets</b>
            for   everyone.</p><ul><li>One</li><li>Two</li></ul>
            <div>Unclosed <p>nested</div><noscript>enable js</noscript>
            <a href=" /news ">News</a> <a href="">empty</a></main></body></html>"#;
        let page = extract(html);
        assert_eq!(page.title, "Acme Corp");
        assert_eq!(
            page.paragraphs,
            [
                "Welcome",
                "Acme builds rockets for everyone.",
                "One",
                "Two",
                "Unclosed",
                "nested",
                "News empty"
            ]
        );
        assert_eq!(page.links, ["/about", "/careers", "/news"]);
        let all = page.paragraphs.join(" ");
        assert!(!all.contains("secret") && !all.contains("color") && !all.contains("enable js"));
    }

    #[test]
    fn title_falls_back_to_the_first_heading_and_broken_markup_still_parses() {
        let page = extract("<h1>Careers at <i>Acme</i></h1><p>We hire <b>engineers");
        assert_eq!(page.title, "Careers at Acme");
        assert_eq!(page.paragraphs, ["Careers at Acme", "We hire engineers"]);
        assert_eq!(extract("").title, "");
    }

    #[test]
    fn sentences_split_at_boundaries_not_abbreviations_or_numbers() {
        let s = sentences(
            "Acme Corp. builds rockets in San Francisco. Revenue grew 3.5 percent last year! \
             Menu. Are we hiring? Yes we are hiring engineers.",
        );
        assert_eq!(
            s,
            [
                "Acme Corp. builds rockets in San Francisco.",
                "Revenue grew 3.5 percent last year!",
                "Are we hiring?",
                "Yes we are hiring engineers."
            ]
        );
    }
}
