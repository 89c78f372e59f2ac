//! `--host-rewrite-rule`: Python `re` patterns and `re.sub` templates, checked when the
//! configuration is read and applied to an app's explicit ingress hosts by fiaas-transform.

use crate::ConfigError;

/// One `--host-rewrite-rule`: rewrites an app's explicit ingress host with Python `re`
/// semantics.
#[derive(Clone, Debug)]
pub struct HostRewriteRule {
    regex: fancy_regex::Regex,
    /// The pattern as given, kept for equality.
    pattern: String,
    /// The replacement as given, kept for equality.
    template: String,
    /// The replacement in `$` syntax, for [`fancy_regex::Expander`].
    replacement: String,
}

impl PartialEq for HostRewriteRule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.template == other.template
    }
}

impl Eq for HostRewriteRule {}

impl HostRewriteRule {
    /// Parses `pattern=replacement` (exactly one `=`). The pattern is a Python `re` pattern
    /// (lookaround, backreferences, inline flags; see [`python_re`](crate::python_re) for what
    /// is translated and what is refused). The replacement uses Python syntax (`\1`, `\g<1>`,
    /// `\g<name>`; `$` is literal) and is checked against the pattern now, whereas upstream
    /// would only fail when a host first matches.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidValue {
            flag: "--host-rewrite-rule".to_string(),
            value: s.to_string(),
            reason,
        };
        let mut parts = s.split('=');
        let (Some(pattern), Some(template), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(
                "expected PATTERN=REPLACEMENT with exactly one '='".to_string(),
            ));
        };
        let bad_pattern = |reason: String| ConfigError::InvalidPattern {
            value: s.to_string(),
            reason,
        };
        let translated =
            crate::python_re::translate(pattern).map_err(|e| bad_pattern(e.to_string()))?;
        let regex = fancy_regex::Regex::new(&translated)
            .map_err(|e| bad_pattern(format!("invalid regular expression: {e}")))?;
        let replacement = python_template_to_regex(template, &regex)
            .map_err(|e| invalid(format!("invalid replacement: {e}")))?;
        Ok(HostRewriteRule {
            regex,
            pattern: pattern.to_string(),
            template: template.to_string(),
            replacement,
        })
    }

    /// `Some(rewritten host)` when the pattern matches at the start of `host` (Python
    /// `re.match`); the rewrite then replaces every match in `host` (Python `re.sub`). A
    /// pattern that backtracks past `fancy-regex`'s limit counts as not matching.
    pub fn apply(&self, host: &str) -> Option<String> {
        if self.regex.find(host).ok()??.start() != 0 {
            return None;
        }
        let expander = fancy_regex::Expander::default();
        let mut out = String::with_capacity(host.len());
        let mut copied = 0;
        let mut pos = 0;
        // Python lets an empty match follow a non-empty one at the same position, but not
        // another empty one; the regex crate's own iterator differs, so iterate by hand.
        let mut after_empty = false;
        while pos <= host.len() {
            let Ok(Some(caps)) = self.regex.captures_from_pos(host, pos) else {
                break;
            };
            let whole = caps.get(0).expect("group 0 always participates");
            if after_empty && whole.start() == whole.end() && whole.start() == pos {
                pos += host[pos..].chars().next().map_or(1, char::len_utf8);
                after_empty = false;
                continue;
            }
            out.push_str(&host[copied..whole.start()]);
            expander.append_expansion(&mut out, &self.replacement, &caps);
            copied = whole.end();
            pos = whole.end();
            after_empty = whole.start() == whole.end();
        }
        out.push_str(&host[copied..]);
        Some(out)
    }
}

/// Converts a Python `re.sub` replacement template into regex-crate expansion syntax,
/// rejecting what Python's `re._parser.parse_template` (3.12) rejects.
fn python_template_to_regex(template: &str, regex: &fancy_regex::Regex) -> Result<String, String> {
    let groups = regex.captures_len() - 1;
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    let is_octal = |c: &char| ('0'..='7').contains(c);
    let group_ref = |out: &mut String, index: usize| -> Result<(), String> {
        if index > groups {
            return Err(format!("invalid group reference {index}"));
        }
        out.push_str(&format!("${{{index}}}"));
        Ok(())
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_literal(&mut out, c);
            continue;
        }
        let Some(escaped) = chars.next() else {
            return Err("bad escape (end of pattern)".to_string());
        };
        match escaped {
            'g' => {
                if chars.next_if_eq(&'<').is_none() {
                    return Err("missing <".to_string());
                }
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('>') => break,
                        Some(c) => name.push(c),
                        None => return Err("missing >, unterminated name".to_string()),
                    }
                }
                if name.is_empty() {
                    return Err("missing group name".to_string());
                }
                let index = if is_python_identifier(&name) {
                    regex
                        .capture_names()
                        .position(|n| n == Some(name.as_str()))
                        .ok_or_else(|| format!("unknown group name '{name}'"))?
                } else if name.bytes().all(|b| b.is_ascii_digit()) {
                    name.parse()
                        .map_err(|_| format!("invalid group reference {name}"))?
                } else {
                    return Err(format!("bad character in group name '{name}'"));
                };
                group_ref(&mut out, index)?;
            }
            '0' => {
                let mut value = 0;
                for _ in 0..2 {
                    match chars.next_if(is_octal) {
                        Some(d) => value = value * 8 + d.to_digit(8).expect("octal digit"),
                        None => break,
                    }
                }
                push_literal(&mut out, char::from_u32(value & 0xff).expect("a byte"));
            }
            '1'..='9' => {
                let mut digits = escaped.to_string();
                if let Some(second) = chars.next_if(char::is_ascii_digit) {
                    digits.push(second);
                    // Three octal digits are an octal escape, not a group.
                    if is_octal(&escaped)
                        && is_octal(&second)
                        && let Some(third) = chars.next_if(is_octal)
                    {
                        digits.push(third);
                        let value = u32::from_str_radix(&digits, 8).expect("octal digits");
                        if value > 0o377 {
                            return Err(format!(
                                "octal escape value \\{digits} outside of range 0-0o377"
                            ));
                        }
                        push_literal(&mut out, char::from_u32(value).expect("a byte"));
                        continue;
                    }
                }
                group_ref(&mut out, digits.parse().expect("one or two digits"))?;
            }
            'a' => push_literal(&mut out, '\x07'),
            'b' => push_literal(&mut out, '\x08'),
            'f' => push_literal(&mut out, '\x0c'),
            'n' => push_literal(&mut out, '\n'),
            'r' => push_literal(&mut out, '\r'),
            't' => push_literal(&mut out, '\t'),
            'v' => push_literal(&mut out, '\x0b'),
            '\\' => push_literal(&mut out, '\\'),
            c if c.is_ascii_alphabetic() => return Err(format!("bad escape \\{c}")),
            // Python keeps an unknown non-letter escape as both characters.
            c => {
                push_literal(&mut out, '\\');
                push_literal(&mut out, c);
            }
        }
    }
    Ok(out)
}

/// Appends `c` so that [`fancy_regex::Expander`] reproduces it literally.
fn push_literal(out: &mut String, c: char) {
    if c == '$' {
        out.push('$');
    }
    out.push(c);
}

/// Python's `str.isidentifier`, close enough for regex group names.
fn is_python_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> HostRewriteRule {
        HostRewriteRule::parse(s).unwrap()
    }

    #[test]
    fn host_rewrite_rules_use_python_replacement_syntax() {
        let numbered = rule(r"(.*)\.internal\.example\.com=\1.example.net");
        assert_eq!(
            numbered.apply("app.internal.example.com").as_deref(),
            Some("app.example.net")
        );
        let named =
            rule(r"(?P<app>[a-z]+)\.(?P<env>dev|pro)\.local=\g<app>-\g<env>.\g<1>.example.com");
        assert_eq!(
            named.apply("shop.dev.local").as_deref(),
            Some("shop-dev.shop.example.com")
        );
        let whole = rule(r"[a-z]+\.old=\g<0>.new$1\\");
        assert_eq!(whole.apply("app.old").as_deref(), Some(r"app.old.new$1\"));
    }

    #[test]
    fn host_rewrite_rules_need_a_match_at_the_start() {
        let rule = rule(r"internal\.=public.");
        assert_eq!(rule.apply("app.internal.example.com"), None);
        assert_eq!(
            rule.apply("internal.internal.com").as_deref(),
            Some("public.public.com")
        );
    }

    #[test]
    fn host_rewrite_rules_replace_like_python_re_sub() {
        // Python also replaces the empty match at the end after a non-empty one.
        assert_eq!(
            rule(r"(.*)=\1.x").apply("host").as_deref(),
            Some("host.x.x")
        );
        assert_eq!(rule("x*=-").apply("xabxd").as_deref(), Some("--a-b--d-"));
        assert_eq!(rule(r"a=\n\t\0\101").apply("a").as_deref(), Some("\n\t\0A"));
        assert_eq!(rule(r"a(b)?=[\1]").apply("ac").as_deref(), Some("[]c"));
    }

    #[test]
    fn bad_host_rewrite_rules_name_the_flag() {
        for (text, reason) in [
            ("nothing", "exactly one '='"),
            ("a=b=c", "exactly one '='"),
            (r"(a)=\2", "invalid group reference 2"),
            (r"(a)=\g<nope>", "unknown group name 'nope'"),
            (r"(a)=\g<1", "missing >"),
            (r"(a)=\g1", "missing <"),
            (r"a=\q", r"bad escape \q"),
            ("a=\\", "bad escape (end of pattern)"),
        ] {
            let err = HostRewriteRule::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("--host-rewrite-rule: invalid value '{text}'")),
                "{message}"
            );
            assert!(message.contains(reason), "{text}: {message}");
            assert_eq!(err.exit_code(), 2);
        }
        // Upstream's re.compile raises past argparse: a traceback, exit status 1.
        for (text, reason) in [
            ("(a=b", "invalid regular expression"),
            (
                "a(?i)b=x",
                "global flags not at the start of the expression",
            ),
            (
                r"(?a:\w)=x",
                "unsupported regular expression construct (?a:",
            ),
        ] {
            let err = HostRewriteRule::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("--host-rewrite-rule: invalid value '{text}'")),
                "{message}"
            );
            assert!(message.contains(reason), "{text}: {message}");
            assert_eq!(err.exit_code(), 1);
        }
        assert_eq!(rule(r"(a)=\g<1>"), rule(r"(a)=\g<1>"));
        assert_ne!(rule(r"(a)=\g<1>"), rule(r"(a)=\1"));
    }
}
