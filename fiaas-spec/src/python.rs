//! The Python semantics upstream's behaviour leaks into what fiaas renders, in one place.
//!
//! The Python daemon reads fiaas.yml with PyYAML into Python objects and then tests, compares,
//! converts and prints them the Python way. Wherever that shows in its output (an annotation
//! holding `str(value).lower()`, a message quoting `repr(value)`, an exec probe split by
//! `shlex.split`), fiaas uses these functions on the JSON value the YAML was read into, so that
//! every crate agrees with CPython and with each other.
//!
//! The values are what PyYAML's `safe_load` would have produced: `null` is `None`, a JSON
//! number written with a fraction or exponent is a `float`, any other number an `int`.

use std::fmt::Write as _;

use serde_json::Value;

/// Python truthiness (`bool(value)`): `None`, `False`, zero, `""`, `[]` and `{}` are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Truthiness of an optional value: absent reads as `None`, which is false.
pub fn truthy_opt(value: Option<&Value>) -> bool {
    value.is_some_and(truthy)
}

/// A number as Python compares it: `bool` is an `int`, `int` and `float` compare exactly.
enum Numeric {
    Int(i128),
    Float(f64),
}

fn numeric(value: &Value) -> Option<Numeric> {
    match value {
        Value::Bool(b) => Some(Numeric::Int(i128::from(*b))),
        Value::Number(n) => n
            .as_i64()
            .map(|i| Numeric::Int(i128::from(i)))
            .or_else(|| n.as_u64().map(|u| Numeric::Int(i128::from(u))))
            .or_else(|| n.as_f64().map(Numeric::Float)),
        _ => None,
    }
}

fn int_equals_float(i: i128, f: f64) -> bool {
    // Exact, as CPython compares them: 2**53 + 1 != 2.0**53.
    f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38 && f as i128 == i
}

/// Python `a == b` on YAML values: `True == 1 == 1.0`, `"1" != 1`, lists and dicts compare
/// element by element (dicts regardless of key order).
pub fn eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| eq(v, w)))
        }
        _ => match (numeric(a), numeric(b)) {
            (Some(Numeric::Int(p)), Some(Numeric::Int(q))) => p == q,
            (Some(Numeric::Float(p)), Some(Numeric::Float(q))) => p == q,
            (Some(Numeric::Int(i)), Some(Numeric::Float(f)))
            | (Some(Numeric::Float(f)), Some(Numeric::Int(i))) => int_equals_float(i, f),
            _ => a == b,
        },
    }
}

/// `type(value).__name__`: `NoneType`, `bool`, `int`, `float`, `str`, `list` or `dict`.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// `repr(type(value))`, e.g. `<class 'dict'>`, as upstream's type-check messages quote it.
pub fn type_repr(value: &Value) -> String {
    format!("<class '{}'>", type_name(value))
}

/// Python `str(value)`: strings as they are, anything else as [`repr`].
pub fn str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => repr(other),
    }
}

/// Python `repr(value)`: `None`, `True`, `1.5`, `'text'`, `[1, 'a']`, `{'k': 'v'}`.
pub fn repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => out.push_str(&float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&str_repr(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&str_repr(key));
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

/// Python `repr(float)` (and `str(float)`): the shortest digits that read back to the same
/// float, positional for decimal exponents -4 to 15, else scientific with a sign and at least
/// two exponent digits; `inf`, `-inf`, `nan`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // Rust's `{:e}` also writes the shortest round-trip digits, so only the layout differs.
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("LowerExp always writes an exponent");
    let exponent: i32 = exponent
        .parse()
        .expect("LowerExp writes an integer exponent");
    if !(-4..16).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let positional = match usize::try_from(exponent) {
        Ok(exponent) => {
            let int_len = exponent + 1;
            if digits.len() > int_len {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            } else {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            }
        }
        Err(_) => {
            let zeros = usize::try_from(-exponent - 1).unwrap_or_default();
            format!("0.{}{digits}", "0".repeat(zeros))
        }
    };
    format!("{sign}{positional}")
}

/// Python `repr(str)`: single quotes unless the text has `'` and no `"`; backslash, the quote,
/// `\t`, `\n`, `\r` escaped; other non-printable characters as `\xhh`, `\uhhhh` or
/// `\Uhhhhhhhh`.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if is_printable(c) => out.push(c),
            c => {
                let code = u32::from(c);
                // Writing to a String cannot fail.
                let _ = match code {
                    0..=0xff => write!(out, "\\x{code:02x}"),
                    0x100..=0xffff => write!(out, "\\u{code:04x}"),
                    _ => write!(out, "\\U{code:08x}"),
                };
            }
        }
    }
    out.push(quote);
    out
}

/// The non-ASCII characters CPython 3.11 (Unicode 14) does not print as they are in `repr`
/// (categories Cc, Cf, Zs but the space, Zl, Zp and Co; read with `str.isprintable`).
/// Unassigned code points, which CPython escapes too, are written as they are here.
const NOT_PRINTABLE: &[(u32, u32)] = &[
    (0x80, 0xa0),
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xe000, 0xf8ff),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x13438),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

fn is_printable(c: char) -> bool {
    let code = u32::from(c);
    if code < 0x80 {
        return (0x20..0x7f).contains(&code);
    }
    NOT_PRINTABLE
        .binary_search_by(|&(low, high)| {
            if high < code {
                std::cmp::Ordering::Less
            } else if low > code {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

/// The first code point of every run of ten decimal digits (Unicode category Nd) CPython 3.11
/// accepts in `int()`, from `unicodedata.decimal`.
const DIGIT_ZEROS: &[u32] = &[
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

fn decimal_digit(c: char) -> Option<u32> {
    let code = u32::from(c);
    let zero = match DIGIT_ZEROS.binary_search(&code) {
        Ok(i) => DIGIT_ZEROS[i],
        Err(0) => return None,
        Err(i) => DIGIT_ZEROS[i - 1],
    };
    (code - zero < 10).then_some(code - zero)
}

/// Python `int(text)` in base 10: surrounding whitespace, one sign, decimal digits (any
/// script's) with single underscores between them. `None` where Python raises `ValueError`,
/// and for values beyond `i64`.
pub fn int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.chars().next()? {
        '-' => (true, &text[1..]),
        '+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') {
        return None;
    }
    let mut magnitude: i128 = 0;
    let mut after_underscore = false;
    for c in digits.chars() {
        if c == '_' {
            if after_underscore {
                return None;
            }
            after_underscore = true;
            continue;
        }
        after_underscore = false;
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(i128::from(decimal_digit(c)?))?;
    }
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// A number PyYAML reads from a plain scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Yaml11Number {
    /// `int`.
    Int(i128),
    /// `float`, possibly `inf` or `nan`.
    Float(f64),
}

/// The number PyYAML's `safe_load` reads from a plain (unquoted) scalar, or `None` where it reads
/// text: YAML 1.1's implicit `int` and `float` resolvers and constructors (yaml/resolver.py,
/// yaml/constructor.py), so `1:30` is 90, `010` is 8, `0o10` and `1e3` are text, `1_000` is
/// 1000, `.inf` is infinite. Ints beyond `i128` are read as text.
pub fn yaml11_number(plain: &str) -> Option<Yaml11Number> {
    let (negative, unsigned) = match plain.as_bytes().first()? {
        b'-' => (true, &plain[1..]),
        b'+' => (false, &plain[1..]),
        _ => (false, plain),
    };
    let sign: i8 = if negative { -1 } else { 1 };
    let is = |set: fn(u8) -> bool, text: &str| !text.is_empty() && text.bytes().all(set);
    let digit_or_underscore = |b: u8| b.is_ascii_digit() || b == b'_';
    let int_in = |digits: &str, radix: u32| -> Option<i128> {
        let digits: String = digits.chars().filter(|&c| c != '_').collect();
        i128::from_str_radix(&digits, radix).ok()
    };
    // Sexagesimal: a first part, then `:` and one or two base-60 digits, each; a float has a
    // fraction after the last.
    fn sexagesimal(text: &str, float: bool) -> Option<Vec<&str>> {
        let is = |set: fn(u8) -> bool, text: &str| !text.is_empty() && text.bytes().all(set);
        let digit_or_underscore = |b: u8| b.is_ascii_digit() || b == b'_';
        let parts: Vec<&str> = text.split(':').collect();
        let (first, rest) = parts.split_first()?;
        let first_ok = is(digit_or_underscore, first)
            && if float {
                first.as_bytes()[0].is_ascii_digit()
            } else {
                (b'1'..=b'9').contains(&first.as_bytes()[0])
            };
        let last = rest.len().checked_sub(1)?;
        let rest_ok = rest.iter().enumerate().all(|(i, part)| {
            let (whole, fraction) = match part.split_once('.') {
                Some((w, f)) if float && i == last => (w, f),
                _ if float && i == last => return false,
                _ => (*part, ""),
            };
            (1..=2).contains(&whole.len())
                && whole.bytes().all(|b| b.is_ascii_digit())
                && (whole.len() == 1 || whole.as_bytes()[0] <= b'5')
                && fraction.bytes().all(digit_or_underscore)
        });
        (first_ok && rest_ok).then_some(parts)
    }
    // int
    if let Some(binary) = unsigned.strip_prefix("0b") {
        return is(|b| matches!(b, b'0' | b'1' | b'_'), binary)
            .then(|| int_in(binary, 2))
            .flatten()
            .map(|n| Yaml11Number::Int(i128::from(sign) * n));
    }
    if let Some(hex) = unsigned.strip_prefix("0x") {
        return is(|b| b.is_ascii_hexdigit() || b == b'_', hex)
            .then(|| int_in(hex, 16))
            .flatten()
            .map(|n| Yaml11Number::Int(i128::from(sign) * n));
    }
    if unsigned == "0" {
        return Some(Yaml11Number::Int(0));
    }
    if unsigned.len() > 1
        && unsigned.starts_with('0')
        && is(|b| (b'0'..=b'7').contains(&b) || b == b'_', &unsigned[1..])
    {
        return int_in(&unsigned[1..], 8).map(|n| Yaml11Number::Int(i128::from(sign) * n));
    }
    if is(digit_or_underscore, unsigned) && (b'1'..=b'9').contains(&unsigned.as_bytes()[0]) {
        return int_in(unsigned, 10).map(|n| Yaml11Number::Int(i128::from(sign) * n));
    }
    if unsigned.contains(':') && !unsigned.contains('.') {
        // As yaml/constructor.py: the parts' values, least significant first.
        let mut value: i128 = 0;
        let mut base: i128 = 1;
        for part in sexagesimal(unsigned, false)?.iter().rev() {
            value = value.checked_add(int_in(part, 10)?.checked_mul(base)?)?;
            base = base.checked_mul(60)?;
        }
        return Some(Yaml11Number::Int(i128::from(sign) * value));
    }
    // float
    match unsigned {
        ".inf" | ".Inf" | ".INF" => {
            return Some(Yaml11Number::Float(f64::from(sign) * f64::INFINITY));
        }
        ".nan" | ".NaN" | ".NAN" if !negative && !plain.starts_with('+') => {
            return Some(Yaml11Number::Float(f64::NAN));
        }
        _ => {}
    }
    if unsigned.contains(':') {
        let mut value = 0.0;
        let mut base = 1.0;
        for part in sexagesimal(unsigned, true)?.iter().rev() {
            let part: String = part.chars().filter(|&c| c != '_').collect();
            value += part.parse::<f64>().ok()? * base;
            base *= 60.0;
        }
        return Some(Yaml11Number::Float(f64::from(sign) * value));
    }
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        e.len() > 1
            && matches!(e.as_bytes()[0], b'+' | b'-')
            && e[1..].bytes().all(|b| b.is_ascii_digit())
    });
    let (whole, fraction) = mantissa.split_once('.')?;
    let mantissa_ok = if whole.is_empty() {
        // `.5`, but not `.` or `._5`, and no sign.
        plain.as_bytes()[0] == b'.'
            && fraction.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && fraction.bytes().all(digit_or_underscore)
    } else {
        whole.as_bytes()[0].is_ascii_digit()
            && whole.bytes().all(digit_or_underscore)
            && fraction.bytes().all(digit_or_underscore)
    };
    if !mantissa_ok || !exponent_ok {
        return None;
    }
    let digits: String = plain.chars().filter(|&c| c != '_').collect();
    // Python's float() takes `1.` and `.5`; Rust's parse does too.
    digits.parse::<f64>().ok().map(Yaml11Number::Float)
}

/// Why [`shlex_split`] could not split a command; the messages are CPython's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShlexError {
    /// A quote is opened and never closed.
    #[error("No closing quotation")]
    NoClosingQuotation,
    /// The text ends in a backslash that has nothing to escape.
    #[error("No escaped character")]
    NoEscapedCharacter,
}

/// Where [`shlex_split`] is in the text, as CPython's `shlex.read_token` states.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Between words.
    Between,
    /// In a word, outside quotes.
    Word,
    /// Inside `'…'` or `"…"`.
    Quoted(char),
}

/// Python `shlex.split(command)` (POSIX mode, no comments), as upstream splits exec health
/// checks (fiaas_deploy_daemon/deployer/kubernetes/deployment/deployer.py).
///
/// Words are separated by runs of space, tab, CR and LF only. `#` is an ordinary character.
/// Outside quotes a backslash takes the next character literally, a newline included. Inside
/// single quotes nothing is special. Inside double quotes a backslash escapes only `"` and `\`;
/// before any other character it is kept. Quotes join with the text around them, and `''`
/// makes an empty word.
pub fn shlex_split(command: &str) -> Result<Vec<String>, ShlexError> {
    const WHITESPACE: [char; 4] = [' ', '\t', '\r', '\n'];
    let mut words = Vec::new();
    let mut word = String::new();
    // A word that held quotes counts even when it is empty.
    let mut quoted = false;
    let mut state = Lex::Between;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match state {
            Lex::Between | Lex::Word => {
                if WHITESPACE.contains(&c) {
                    if state == Lex::Word {
                        words.push(std::mem::take(&mut word));
                        quoted = false;
                        state = Lex::Between;
                    }
                    continue;
                }
                state = Lex::Word;
                match c {
                    '\\' => word.push(chars.next().ok_or(ShlexError::NoEscapedCharacter)?),
                    '\'' | '"' => {
                        quoted = true;
                        state = Lex::Quoted(c);
                    }
                    c => word.push(c),
                }
            }
            Lex::Quoted(quote) => match c {
                c if c == quote => state = Lex::Word,
                '\\' if quote == '"' => {
                    let escaped = chars.next().ok_or(ShlexError::NoEscapedCharacter)?;
                    if escaped != '"' && escaped != '\\' {
                        word.push('\\');
                    }
                    word.push(escaped);
                }
                c => word.push(c),
            },
        }
    }
    match state {
        Lex::Quoted(_) => return Err(ShlexError::NoClosingQuotation),
        Lex::Word if !word.is_empty() || quoted => words.push(word),
        _ => {}
    }
    Ok(words)
}

#[cfg(test)]
mod tests;
