//! A reader for the plain block YAML nearly every fiaas.yml is written in, about ten times
//! faster than the full YAML parser, which was two fifths of the cost of a deploy.
//!
//! It reads a strict subset: block mappings and sequences, single-line plain and quoted
//! scalars, `{}` and `[]`, comments and a leading `---`, in printable ASCII. On anything else,
//! or anything it is unsure of (a repeated key, a float, a tab, an anchor, ...), it gives up and
//! the full parser reads the text, so the errors are the full parser's too. What it reads, it
//! reads exactly as the full parser does with fiaas' options (tested against it below).

use serde_json::{Map, Value};

/// Larger documents go to the full parser, whose node and event budgets they could reach.
const MAX_BYTES: usize = 64 * 1024;
/// Deeper documents go to the full parser, which enforces its depth limit.
const MAX_DEPTH: usize = 32;
/// Longer keys go to the full parser, which limits how far it looks for a key's `:`.
const MAX_KEY_BYTES: usize = 128;
/// Longer runs of comments go to the full parser, which refuses to look ahead across more than
/// 32 in places.
const MAX_COMMENTS: usize = 16;

/// A line with content: its indentation, and its text without the indentation, trailing
/// comment and trailing spaces.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// The document of `text`, or `None` when the full parser must read it.
pub(crate) fn parse(text: &str) -> Option<Value> {
    // Without an early exit, the check vectorises.
    let printable = text.bytes().fold(true, |printable, b| {
        printable & (b == b'\n' || (b' '..=b'~').contains(&b))
    });
    if text.len() > MAX_BYTES || !printable {
        return None;
    }
    let mut lines = Vec::new();
    let mut document_start_allowed = true;
    let mut comments = 0;
    for raw in text.split('\n') {
        let content = raw.trim_start_matches(' ');
        if content.is_empty() {
            continue;
        }
        if content.starts_with('#') {
            comments += 1;
            if comments > MAX_COMMENTS {
                return None;
            }
            continue;
        }
        comments = 0;
        if raw == "---" && document_start_allowed {
            document_start_allowed = false;
            continue;
        }
        if content.starts_with("---") || content.starts_with("...") || content.starts_with('%') {
            return None;
        }
        document_start_allowed = false;
        let indent = raw.len() - content.len();
        let content = match find_pair(content, b' ', b'#') {
            // A `#` in quotes is not a comment; such lines are left to the full parser.
            Some(_) if content.contains(['"', '\'']) => return None,
            Some(comment) => {
                comments = 1;
                &content[..comment]
            }
            None => content,
        };
        lines.push(Line {
            indent,
            text: content.trim_end_matches(' '),
        });
    }
    let mut reader = Reader { lines, next: 0 };
    let document = reader.node(0)?;
    (reader.next == reader.lines.len()).then_some(document)
}

struct Reader<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    /// The block collection starting at the next line, at that line's indentation.
    fn node(&mut self, depth: usize) -> Option<Value> {
        let line = self.peek()?;
        if depth > MAX_DEPTH {
            None
        } else if is_item(line.text) {
            self.sequence(line.indent, depth)
        } else {
            self.mapping(line.indent, depth)
        }
    }

    fn mapping(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut map = Map::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || is_item(line.text) {
                return None;
            }
            let (key, rest) = entry(line.text)?;
            self.next += 1;
            let value = if !rest.is_empty() {
                scalar(rest)?
            } else {
                match self.peek() {
                    Some(next) if next.indent > indent => self.node(depth + 1)?,
                    // A sequence may sit at its key's indentation.
                    Some(next) if next.indent == indent && is_item(next.text) => {
                        self.sequence(indent, depth + 1)?
                    }
                    _ => Value::Null,
                }
            };
            if map.insert(key.to_owned(), value).is_some() {
                return None;
            }
        }
        Some(Value::Object(map))
    }

    fn sequence(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent || (line.indent == indent && !is_item(line.text)) {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let rest = line.text[1..].trim_start_matches(' ');
            if rest.is_empty() {
                self.next += 1;
                items.push(match self.peek() {
                    Some(next) if next.indent > indent => self.node(depth + 1)?,
                    _ => Value::Null,
                });
            } else if is_item(rest) {
                return None;
            } else if entry(rest).is_some() {
                // A mapping starting on the item's line: read that line as if it began where
                // the mapping does.
                let column = indent + line.text.len() - rest.len();
                self.lines[self.next] = Line {
                    indent: column,
                    text: rest,
                };
                items.push(self.mapping(column, depth + 1)?);
            } else {
                self.next += 1;
                items.push(scalar(rest)?);
            }
        }
        Some(Value::Array(items))
    }
}

/// Where `text` first has byte `a` followed by byte `b` (cheaper than a substring search for
/// such short texts).
fn find_pair(text: &str, a: u8, b: u8) -> Option<usize> {
    text.as_bytes().windows(2).position(|pair| pair == [a, b])
}

fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

/// `key: rest` with a plain key that is a string whatever the schema, or `None`.
fn entry(text: &str) -> Option<(&str, &str)> {
    let end = text
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/')))?;
    let (key, rest) = text.split_at(end);
    let rest = rest.strip_prefix(':')?;
    let plain_key = key.len() <= MAX_KEY_BYTES
        && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && word(key).is_none();
    (plain_key && (rest.is_empty() || rest.starts_with(' ')))
        .then(|| (key, rest.trim_start_matches(' ')))
}

/// The null and boolean spellings of the YAML 1.2 core schema (fiaas reads YAML 1.1 booleans
/// itself, where it expects one).
fn word(text: &str) -> Option<Value> {
    match text {
        "null" | "Null" | "NULL" => Some(Value::Null),
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

fn scalar(text: &str) -> Option<Value> {
    match text {
        "{}" => return Some(Value::Object(Map::new())),
        "[]" => return Some(Value::Array(Vec::new())),
        "~" => return Some(Value::Null),
        _ => {}
    }
    for quote in ['"', '\''] {
        if let Some(quoted) = text.strip_prefix(quote) {
            // Without escapes or doubled quotes, the text between the quotes is the string.
            let inner = quoted.strip_suffix(quote)?;
            return (!inner.contains([quote, '\\'])).then(|| Value::String(inner.to_owned()));
        }
    }
    if find_pair(text, b':', b' ').is_some() || text.ends_with(':') {
        return None;
    }
    if text.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '_') {
        // No number is spelled so (Rust's `inf` and `nan` are strings in YAML).
        return Some(word(text).unwrap_or_else(|| Value::String(text.to_owned())));
    }
    // Decimal integers, and quantities such as `500m` or `512Mi` (digits then letters), which
    // are strings. A leading zero is octal to fiaas; 18 digits fit any integer type.
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (digits, unit) = unsigned.split_at(
        unsigned
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(unsigned.len()),
    );
    if text == "0" {
        return Some(Value::from(0u64));
    }
    if !digits.starts_with(|c| ('1'..='9').contains(&c)) || digits.len() > 18 {
        return None;
    }
    if unit.is_empty() {
        return Some(match text.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => Value::from(text.parse::<i64>().ok()?),
        });
    }
    // The letters must not make an exponent; a sign makes it no quantity.
    let quantity = unsigned == text
        && unit.bytes().all(|b| b.is_ascii_alphabetic())
        && !unit.starts_with(['e', 'E']);
    quantity.then(|| Value::String(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the full parser reads.
    fn full(text: &str) -> Option<Value> {
        crate::yaml::parse_full(text).ok()
    }

    /// The block reader either gives up or reads what the full parser reads.
    fn agrees(text: &str) -> bool {
        let Some(fast) = parse(text) else {
            return false;
        };
        let expected = full(text);
        assert_eq!(
            Some(fast.to_string()),
            expected.as_ref().map(Value::to_string),
            "block reader and full parser differ on:\n{text}"
        );
        assert_eq!(Some(fast), expected);
        true
    }

    #[test]
    fn every_example_fixture_is_read_here() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/specs/v3/data/examples");
        for entry in std::fs::read_dir(&dir).expect("the fixtures are readable") {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a readable fixture");
            assert!(
                agrees(&text),
                "{} is left to the full parser",
                path.display()
            );
        }
    }

    #[test]
    fn every_fixture_reads_as_the_full_parser_reads_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("the fixtures are readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if let Ok(text) = std::fs::read_to_string(&path) {
                    agrees(&text);
                }
            }
        }
    }

    #[test]
    fn comments_read_as_the_full_parser_reads_them() {
        let comments = |n: usize, indent: &str| format!("{indent}# c\n").repeat(n);
        // Up to MAX_COMMENTS in a row, a trailing one included.
        for n in [1, MAX_COMMENTS - 1, 40] {
            for text in [
                format!("{}---\n{}a: 1\n", comments(n, ""), comments(n, "")),
                format!("a:\n{}- 1\n{}- 2\n", comments(n, "    "), comments(n, "")),
                format!(
                    "a: # c\n{}  b: 1 # c\n{}",
                    comments(n, "  "),
                    comments(n, "")
                ),
                format!("a:\n{}b: 1\n", comments(n, " ")),
            ] {
                let read = agrees(&text);
                assert_eq!(read, n < MAX_COMMENTS, "{text}");
            }
        }
        // The full parser refuses this one.
        assert!(full(&format!("a:\n{}- 1\n", comments(40, "  "))).is_none());
    }

    #[test]
    fn scalars_read_as_the_full_parser_reads_them() {
        let read = [
            "a",
            "ab c",
            "/x/y",
            "_x",
            "a:b",
            "arn:aws:iam::1:role/r",
            "a#b",
            "x-y.z",
            "a, b",
            "a[1]",
            "a]",
            "a}",
            "a {b}",
            "a 'b'",
            "a \"b\"",
            "a|b",
            "a>b",
            "a!",
            "a&b",
            "a*",
            "y",
            "n",
            "yes",
            "No",
            "on",
            "OFF",
            "nan",
            "NaN",
            "inf",
            "Infinity",
            "true",
            "True",
            "TRUE",
            "false",
            "False",
            "FALSE",
            "null",
            "Null",
            "NULL",
            "~",
            "0",
            "1",
            "-1",
            "123456789012345678",
            "-123456789012345678",
            "500m",
            "512Mi",
            "2Gi",
            "1M",
            "7d",
            "\"\"",
            "''",
            "\"a b\"",
            "'a b'",
            "\"1\"",
            "'true'",
            "\"it's\"",
            "'say \"hi\"'",
            "{}",
            "[]",
            "tRUE",
            "nULL",
            "Yes please",
            "trUe",
        ];
        for value in read {
            assert!(agrees(&format!("k: {value}\n")), "k: {value}");
            assert!(agrees(&format!("- {value}\n")), "- {value}");
        }
        let left = [
            "1.5",
            "1e3",
            "1E3",
            "1e",
            "010",
            "00",
            "-0",
            "+1",
            "0x1F",
            "0o7",
            "0b1",
            "1_000",
            ".inf",
            "-.inf",
            ".nan",
            "1234567890123456789",
            "- a",
            "&a b",
            "*a",
            "!t a",
            "|",
            ">",
            "@a",
            "`a",
            "%a",
            "?a",
            ",a",
            "[a]",
            "{a: b}",
            "'a''b'",
            "\"a\\nb\"",
            "a: b",
            "a:",
            "\"a",
            "'a",
            "-a",
            "-5m",
            "5.0m",
            "0m",
            "12:30",
            "2001-12-14",
        ];
        for value in left {
            let text = format!("k: {value}\n");
            assert!(
                parse(&text).is_none(),
                "{text} should be left to the full parser"
            );
        }
    }

    #[test]
    fn structures_read_as_the_full_parser_reads_them() {
        let read = [
            "a: 1\nb:\n  c: 2\n  d:\n  - x\n  - y\ne: []\n",
            "---\n# c\na:\n- b: 1\n  c:\n    d: 2\n-   e: 3\n    f: 4\n-\n  g: 5\n-\n- h\n",
            "  a: 1\n  b: 2\n",
            "a:\n  - - x\n",
            "a: # c\n  b: c # d\n\n\n# e\n  f: g\n",
            "a:\n    - x\n    -\n        - y\n",
            "a:\n  b:\n    c:\n      d: []\n",
            "a: 1\n  # indented comment\nb: 2\n",
            "- a: 1\n- b\n",
            "a: x\nb: y",
            "a:\n-\nb: 1\n",
        ];
        for text in read {
            let agreed = agrees(text);
            if text != "a:\n  - - x\n" && text != "- a: 1\n- b\n" {
                assert!(agreed, "{text} should be read here");
            }
        }
        let left = [
            "a: 1\na: 2\n",
            "a: 1\n  b: 2\n",
            "a:\n    b: 1\n  c: 2\n",
            "a:\n  - x\n  b: 1\n",
            "a: b\n  c\n",
            "a:\n  b\n",
            "--- a: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: 1\n...\n",
            "%YAML 1.2\n---\na: 1\n",
            "a:\tb\n",
            "a: b\r\n",
            "a: \"x #y\"\n",
            "å: 1\n",
            "1: a\n",
            "true: a\n",
            "? a\n: b\n",
            "<<: {a: 1}\n",
            "a b: 1\n",
            "\"a\": 1\n",
            "- a\nb: 1\n",
            "a\n",
            "",
            "# only a comment\n",
        ];
        for text in left {
            assert!(
                parse(text).is_none(),
                "{text:?} should be left to the full parser"
            );
        }
        let deep = (0..40).fold(String::from("x: 1\n"), |inner, level| {
            let indented: String = inner.lines().map(|l| format!("  {l}\n")).collect();
            format!("k{level}:\n{indented}")
        });
        assert!(parse(&deep).is_none());
        assert!(parse(&format!("{}: 1\n", "k".repeat(MAX_KEY_BYTES + 1))).is_none());
    }

    /// Random documents from a small grammar of block YAML, most of them inside the subset and
    /// some deliberately not, each either left alone or read as the full parser reads it.
    #[test]
    fn random_documents_read_as_the_full_parser_reads_them() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        const KEYS: &[&str] = &[
            "a", "port", "x-y", "a.b/c", "_k", "on", "Y", "null", "1", "k k", "k ", "a#b", "-a",
        ];
        const SCALARS: &[&str] = &[
            "v",
            "8080",
            "-3",
            "0",
            "500m",
            "true",
            "no",
            "~",
            "null",
            "''",
            "\"q\"",
            "{}",
            "[]",
            "a:b",
            "1.5",
            "a b",
            "x # c",
            "010",
            "'it''s'",
            "- z",
            "&a",
            "a: b",
            "a#b",
            "5Gi",
            "1e3",
            "\"a'b\" # c",
            "x:",
            "/p/q",
            "-",
            "--",
            "a,b",
            "[a]",
            "Infinity",
            "v  ",
        ];
        fn block(next: &mut impl FnMut(usize) -> usize, indent: usize, depth: usize) -> String {
            let pad = " ".repeat(indent);
            let mut out = String::new();
            let sequence = next(3) == 0;
            for _ in 0..1 + next(3) {
                let head = if sequence {
                    format!("{pad}-{}", " ".repeat(1 + next(2)))
                } else {
                    format!("{pad}{}:", KEYS[next(KEYS.len())])
                };
                match next(if depth > 3 { 2 } else { 5 }) {
                    0 | 1 => out.push_str(&format!(
                        "{head}{}{}\n",
                        if sequence { "" } else { " " },
                        SCALARS[next(SCALARS.len())]
                    )),
                    2 if sequence => {
                        // A mapping on the item's line.
                        let inner = block(next, head.len(), depth + 1);
                        out.push_str(&head);
                        out.push_str(inner.trim_start_matches(' '));
                    }
                    2 => {
                        out.push_str(&format!("{head}\n"));
                        out.push_str(&block(next, indent, depth + 1));
                    }
                    _ => {
                        out.push_str(&format!("{}{}\n", head.trim_end(), ["", " # c"][next(2)]));
                        if next(8) == 0 {
                            out.push_str(&format!("{pad}  # note\n\n"));
                        }
                        let deeper = indent + 1 + next(3);
                        out.push_str(&block(next, deeper, depth + 1));
                    }
                }
            }
            out
        }
        let mut read = 0;
        for _ in 0..20_000 {
            let text = block(&mut next, 0, 0);
            read += usize::from(agrees(&text));
        }
        assert!(read > 1000, "only {read} random documents read");
    }
}
