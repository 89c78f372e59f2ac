//! Python `re` patterns (what `--host-rewrite-rule` takes upstream, compiled with `re.compile`
//! in fiaas_deploy_daemon/config.py) translated into `fancy-regex` syntax.
//!
//! `fancy-regex` brings what the `regex` crate lacks (lookaround, backreferences, atomic
//! groups, conditionals); the translation covers where the syntaxes read the same text
//! differently: `\Z`, `$`, `{,n}` and a `{` that is no repetition, `(?P=name)`, `(?#...)`,
//! the `(?a)` flag, and a `[` or `&&` inside a set (literal in Python, nested sets or
//! intersections to `regex`). A construct that cannot be translated is refused, named.

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Python's `re` itself refuses the pattern.
    #[error("invalid regular expression: {0}")]
    Invalid(String),
    /// Python accepts it, but fiaas cannot match it the same way.
    #[error("unsupported regular expression construct {0}")]
    Unsupported(String),
}

/// The characters `regex` gives a meaning to, escaped when Python reads them literally.
const META: &str = r"\.+*?()|[]{}^$#&-~";

/// Appends `c` so that `fancy-regex` matches it literally (also in verbose mode).
fn push_literal(out: &mut String, c: char) {
    if META.contains(c) {
        out.push('\\');
        out.push(c);
    } else if c.is_whitespace() || !c.is_ascii_graphic() && c.is_ascii() {
        out.push_str(&format!("\\x{{{:x}}}", u32::from(c)));
    } else {
        out.push(c);
    }
}

/// `\d`, `\w`, `\s` and their negations under Python's ASCII flag, as set items (without
/// brackets) and as a whole class.
fn ascii_class(letter: char) -> Option<(&'static str, bool)> {
    match letter {
        'd' => Some(("0-9", false)),
        'D' => Some(("0-9", true)),
        'w' => Some(("0-9A-Za-z_", false)),
        'W' => Some(("0-9A-Za-z_", true)),
        's' => Some((r" \t\n\r\x0b\x0c", false)),
        'S' => Some((r" \t\n\r\x0b\x0c", true)),
        _ => None,
    }
}

struct Translator<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    pattern: &'a str,
    out: String,
    ascii: bool,
    multiline: bool,
}

/// Translate a Python `re` pattern (a `str` pattern, flags inline) to `fancy-regex` syntax.
pub fn translate(pattern: &str) -> Result<String, PatternError> {
    let global_flags = leading_flags(pattern)?;
    let mut translator = Translator {
        chars: pattern.char_indices().peekable(),
        pattern,
        out: String::with_capacity(pattern.len() + 8),
        ascii: global_flags.contains('a'),
        // Any `m` flag keeps `$` as `regex` reads it; see `Translator::dollar`.
        multiline: pattern.contains("(?") && has_multiline_flag(pattern),
    };
    translator.run()?;
    Ok(translator.out)
}

/// The letters of the global flag groups at the start of the pattern (`(?ai)`), as Python
/// allows them only there.
fn leading_flags(pattern: &str) -> Result<String, PatternError> {
    let mut flags = String::new();
    let mut rest = pattern;
    while let Some(group) = rest.strip_prefix("(?") {
        let end = group
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(group.len());
        if !group[end..].starts_with(')') || end == 0 {
            break;
        }
        flags.push_str(&group[..end]);
        rest = &group[end + 1..];
    }
    if flags.contains('L') {
        return Err(PatternError::Invalid(
            "bad inline flag: cannot use 'L' flag with a str pattern".into(),
        ));
    }
    if flags.contains('a') && flags.contains('u') {
        return Err(PatternError::Invalid(
            "bad inline flag: flags 'a', 'u' and 'L' are incompatible".into(),
        ));
    }
    Ok(flags)
}

fn has_multiline_flag(pattern: &str) -> bool {
    pattern.match_indices("(?").any(|(at, _)| {
        pattern[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .any(|c| c == 'm')
    })
}

impl Translator<'_> {
    fn next(&mut self) -> Option<char> {
        self.chars.next().map(|(_, c)| c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn position(&mut self) -> usize {
        self.chars.peek().map_or(self.pattern.len(), |&(at, _)| at)
    }

    fn run(&mut self) -> Result<(), PatternError> {
        while let Some(c) = self.next() {
            match c {
                '\\' => self.escape(false)?,
                '[' => self.set()?,
                '{' => self.brace(),
                '}' => self.out.push_str(r"\}"),
                '(' => self.group()?,
                '$' => self.dollar(),
                _ => self.out.push(c),
            }
        }
        Ok(())
    }

    /// Python's `$` also matches before a newline that ends the text (without `(?m)`).
    fn dollar(&mut self) {
        if self.multiline {
            self.out.push('$');
        } else {
            self.out.push_str(r"(?=\n?\z)");
        }
    }

    /// `{` starts a repetition only as `{m}`, `{m,}`, `{,n}`, `{m,n}` or `{,}`; else it is
    /// literal, as in Python's `re._parser`.
    fn brace(&mut self) {
        let start = self.position();
        let rest = &self.pattern[start..];
        let lo_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let after_lo = &rest[lo_len..];
        let (hi, after) = match after_lo.strip_prefix(',') {
            Some(more) => {
                let hi_len = more.bytes().take_while(u8::is_ascii_digit).count();
                (Some(&more[..hi_len]), &more[hi_len..])
            }
            None => (None, after_lo),
        };
        let is_repeat = after.starts_with('}') && !(lo_len == 0 && hi.is_none());
        if !is_repeat {
            self.out.push_str(r"\{");
            return;
        }
        let lo = if lo_len == 0 { "0" } else { &rest[..lo_len] };
        self.out.push('{');
        self.out.push_str(lo);
        if let Some(hi) = hi {
            self.out.push(',');
            self.out.push_str(hi);
        }
        self.out.push('}');
        let consumed = rest.len() - after.len() + 1;
        for _ in rest[..consumed].chars() {
            self.next();
        }
    }

    fn group(&mut self) -> Result<(), PatternError> {
        if self.peek() != Some('?') {
            self.out.push('(');
            return Ok(());
        }
        self.next();
        let rest = &self.pattern[self.position()..];
        if rest.starts_with('#') {
            // A comment, up to the first `)`.
            loop {
                match self.next() {
                    Some(')') => return Ok(()),
                    Some(_) => {}
                    None => {
                        return Err(PatternError::Invalid(
                            "missing ), unterminated comment".into(),
                        ));
                    }
                }
            }
        }
        if let Some(name) = rest.strip_prefix("P=") {
            let Some(end) = name.find(')') else {
                return Err(PatternError::Invalid("missing ), unterminated name".into()));
            };
            let name = &name[..end];
            self.out.push_str(&format!(r"\k<{name}>"));
            for _ in 0..(2 + name.chars().count() + 1) {
                self.next();
            }
            return Ok(());
        }
        let named_or_look = ["P<", ":", "=", "!", "<=", "<!", ">", "("];
        if named_or_look.iter().any(|p| rest.starts_with(p)) {
            self.out.push_str("(?");
            return Ok(());
        }
        // Flags: global `(?imsx)` or scoped `(?imsx-imsx:...)`.
        let letters: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic() || *c == '-')
            .collect();
        let terminator = rest[letters.len()..].chars().next();
        if letters.is_empty() || !matches!(terminator, Some(')' | ':')) {
            let shown: String = rest.chars().take(3).collect();
            return Err(PatternError::Unsupported(format!("(?{shown}")));
        }
        for c in letters.chars() {
            match c {
                'i' | 'm' | 's' | 'x' | '-' | 'u' => {}
                'a' if terminator == Some(')') => {}
                'a' => {
                    return Err(PatternError::Unsupported(format!(
                        "(?{letters}: (scoped ASCII flag)"
                    )));
                }
                'L' => {
                    return Err(PatternError::Invalid(
                        "bad inline flag: cannot use 'L' flag with a str pattern".into(),
                    ));
                }
                other => {
                    return Err(PatternError::Invalid(format!("unknown flag {other}")));
                }
            }
        }
        // Python allows global flags only at the start (they were read there already).
        if terminator == Some(')') && !is_only_flag_groups(&self.pattern[..self.position() - 2]) {
            return Err(PatternError::Invalid(
                "global flags not at the start of the expression".into(),
            ));
        }
        let kept: String = letters
            .chars()
            .filter(|c| !matches!(c, 'a' | 'u'))
            .collect();
        for _ in 0..=letters.len() {
            self.next();
        }
        match (terminator, kept.trim_end_matches('-').is_empty()) {
            (Some(')'), true) => {}
            (Some(')'), false) => self.out.push_str(&format!("(?{kept})")),
            _ => self.out.push_str(&format!("(?{kept}:")),
        }
        Ok(())
    }

    /// An escape after `\`, inside a set or not.
    fn escape(&mut self, in_set: bool) -> Result<(), PatternError> {
        let Some(c) = self.next() else {
            return Err(PatternError::Invalid("bad escape (end of pattern)".into()));
        };
        match c {
            'Z' if !in_set => self.out.push_str(r"\z"),
            'A' | 'B' | 'b' if !in_set => {
                if self.ascii && c != 'A' {
                    self.out.push_str(&format!(r"(?-u:\{c})"));
                } else {
                    self.out.push('\\');
                    self.out.push(c);
                }
            }
            'b' => self.out.push_str(r"\x08"),
            'd' | 'D' | 'w' | 'W' | 's' | 'S' => match (self.ascii, ascii_class(c), in_set) {
                (true, Some((items, false)), true) => self.out.push_str(items),
                (true, Some((items, negated)), false) => {
                    self.out.push_str(if negated { "[^" } else { "[" });
                    self.out.push_str(items);
                    self.out.push(']');
                }
                (true, _, true) => {
                    return Err(PatternError::Unsupported(format!(
                        r"\{c} in a set under the ASCII flag"
                    )));
                }
                _ => {
                    self.out.push('\\');
                    self.out.push(c);
                }
            },
            'a' => self.out.push_str(r"\x07"),
            'f' | 'n' | 'r' | 't' | 'v' => {
                self.out.push('\\');
                self.out.push(c);
            }
            'x' => self.hex(c, 2)?,
            'u' => self.hex(c, 4)?,
            'U' => self.hex(c, 8)?,
            '0' => {
                let mut value = 0;
                for _ in 0..2 {
                    match self.peek().filter(|d| ('0'..='7').contains(d)) {
                        Some(d) => {
                            value = value * 8 + d.to_digit(8).unwrap_or_default();
                            self.next();
                        }
                        None => break,
                    }
                }
                self.out.push_str(&format!("\\x{{{value:x}}}"));
            }
            '1'..='9' => {
                let mut digits = c.to_string();
                if let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    digits.push(d);
                    self.next();
                    let octal = |d: &char| ('0'..='7').contains(d);
                    if digits.chars().all(|d| octal(&d))
                        && let Some(third) = self.peek().filter(octal)
                    {
                        digits.push(third);
                        self.next();
                        let value = u32::from_str_radix(&digits, 8).unwrap_or(u32::MAX);
                        if value > 0o377 {
                            return Err(PatternError::Invalid(format!(
                                r"octal escape value \{digits} outside of range 0-0o377"
                            )));
                        }
                        self.out.push_str(&format!("\\x{{{value:x}}}"));
                        return Ok(());
                    }
                }
                if in_set {
                    return Err(PatternError::Invalid(format!(r"bad escape \{digits}")));
                }
                self.out.push('\\');
                self.out.push_str(&digits);
            }
            'N' => return Err(PatternError::Unsupported(r"\N{...}".into())),
            c if c.is_ascii_alphanumeric() => {
                return Err(PatternError::Invalid(format!(r"bad escape \{c}")));
            }
            c => push_literal(&mut self.out, c),
        }
        Ok(())
    }

    /// `\x`, `\u`, `\U`: exactly `digits` hex digits.
    fn hex(&mut self, letter: char, digits: usize) -> Result<(), PatternError> {
        let mut hex = String::new();
        for _ in 0..digits {
            match self.peek().filter(char::is_ascii_hexdigit) {
                Some(d) => {
                    hex.push(d);
                    self.next();
                }
                None => {
                    return Err(PatternError::Invalid(format!(
                        r"incomplete escape \{letter}{hex}"
                    )));
                }
            }
        }
        let value = u32::from_str_radix(&hex, 16).unwrap_or(u32::MAX);
        if char::from_u32(value).is_none() {
            return Err(PatternError::Invalid(format!(r"bad escape \{letter}{hex}")));
        }
        self.out.push_str(&format!("\\x{{{value:x}}}"));
        Ok(())
    }

    /// A set, after its `[`: every character literal but `]`, `\` and ranges' `-`.
    fn set(&mut self) -> Result<(), PatternError> {
        self.out.push('[');
        if self.peek() == Some('^') {
            self.next();
            self.out.push('^');
        }
        // A `]` first is a member.
        if self.peek() == Some(']') {
            self.next();
            self.out.push_str(r"\]");
        }
        loop {
            match self.next() {
                None => {
                    return Err(PatternError::Invalid("unterminated character set".into()));
                }
                Some(']') => {
                    self.out.push(']');
                    return Ok(());
                }
                Some('\\') => self.escape(true)?,
                Some('-') => self.out.push('-'),
                Some(c) => push_literal(&mut self.out, c),
            }
        }
    }
}

/// Whether `text` is nothing but flag groups such as `(?a)(?i)`.
fn is_only_flag_groups(text: &str) -> bool {
    let mut rest = text;
    while let Some(group) = rest.strip_prefix("(?") {
        let end = group
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(group.len());
        if end == 0 || !group[end..].starts_with(')') {
            return false;
        }
        rest = &group[end + 1..];
    }
    rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Python's `re.compile(pattern).match(subject)` matched, printed by CPython 3.11.
    #[test]
    fn patterns_match_as_python_re_matches() {
        let table: &[(&str, &str, Option<&str>)] = &[
            (
                r#"(?=app)[a-z]+\.old"#,
                r#"app.old.example.com"#,
                Some(r#"app.old"#),
            ),
            (r#"(?!web)([a-z]+)\.old"#, r#"app.old"#, Some(r#"app.old"#)),
            (r#"(?!web)([a-z]+)\.old"#, r#"web.old"#, None),
            (r#"([a-z])\1+"#, r#"aab.x"#, Some(r#"aa"#)),
            (r#"(?P<x>[a-z])(?P=x)"#, r#"aab"#, Some(r#"aa"#)),
            (r#"app\.old\Z"#, r#"app.old"#, Some(r#"app.old"#)),
            (r#"app\.old\Z"#, "app.old\n", None),
            (r#"app\.old$"#, "app.old\n", Some(r#"app.old"#)),
            (r#"a{,2}"#, r#"aaab"#, Some(r#"aa"#)),
            (r#"a{,}b"#, r#"aaab"#, Some(r#"aaab"#)),
            (r#"(?a)\w+"#, r#"héllo.x"#, Some(r#"h"#)),
            (r#"\w+"#, r#"héllo.x"#, Some(r#"héllo"#)),
            (r#"a{"#, r#"a{b"#, Some(r#"a{"#)),
            (r#"a{x}"#, r#"a{x}"#, Some(r#"a{x}"#)),
            (r#"a{}"#, r#"a{}"#, Some(r#"a{}"#)),
            (r#"[[:alpha:]]+"#, r#"[:al]]x"#, None),
            (r#"[[:alpha:]]"#, r#"a]"#, Some(r#"a]"#)),
            (r#"[a&&b]+"#, r#"a&&b"#, Some(r#"a&&b"#)),
            (r#"(?i)APP"#, r#"app.x"#, Some(r#"app"#)),
            (r#"(?#comment)app"#, r#"app"#, Some(r#"app"#)),
            (r#"(?<=a)b"#, r#"ab"#, None),
            (r#"(?x) a  b # c"#, r#"ab"#, Some(r#"ab"#)),
            (r#"\x41"#, r#"A"#, Some(r#"A"#)),
            (r#"[\b]"#, "\x08", Some("\x08")),
            (r#"a\<"#, r#"a<"#, Some(r#"a<"#)),
            (r#"(?>a+)b"#, r#"aab"#, Some(r#"aab"#)),
            (r#"(a)?(?(1)b|c)"#, r#"ab"#, Some(r#"ab"#)),
            (r#"\0101"#, "\x081", Some("\x081")),
        ];
        for (pattern, subject, expected) in table {
            let translated = translate(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let regex = fancy_regex::Regex::new(&translated)
                .unwrap_or_else(|e| panic!("{pattern} as {translated}: {e}"));
            let found = regex
                .find(subject)
                .expect("no backtracking limit reached")
                .filter(|m| m.start() == 0)
                .map(|m| m.as_str());
            assert_eq!(found, *expected, "{pattern} as {translated} on {subject:?}");
        }
    }

    #[test]
    fn what_python_refuses_or_fiaas_cannot_match_alike_is_refused_by_name() {
        for (pattern, error) in [
            (
                r"(?a:\w)",
                PatternError::Unsupported(r"(?a: (scoped ASCII flag)".into()),
            ),
            (
                r"\N{DIGIT ONE}",
                PatternError::Unsupported(r"\N{...}".into()),
            ),
            (
                r"(?a)[\W]",
                PatternError::Unsupported(r"\W in a set under the ASCII flag".into()),
            ),
            (r"(?|a)", PatternError::Unsupported("(?|a)".into())),
            (r"\q", PatternError::Invalid(r"bad escape \q".into())),
            (
                "(?L)a",
                PatternError::Invalid(
                    "bad inline flag: cannot use 'L' flag with a str pattern".into(),
                ),
            ),
            (
                "a(?i)b",
                PatternError::Invalid("global flags not at the start of the expression".into()),
            ),
            (
                "[a",
                PatternError::Invalid("unterminated character set".into()),
            ),
        ] {
            assert_eq!(translate(pattern), Err(error), "{pattern}");
        }
    }
}
