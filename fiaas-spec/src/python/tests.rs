#[test]
fn plain_scalars_are_numbers_as_pyyaml_reads_them() {
    use Yaml11Number::{Float, Int};
    // Expectations printed by PyYAML's safe_load.
    let table: &[(&str, Option<Yaml11Number>)] = &[
        ("0o755", None),
        ("1:30", Some(Int(90))),
        (".inf", Some(Float(f64::INFINITY))),
        ("-.inf", Some(Float(-f64::INFINITY))),
        ("+.inf", Some(Float(f64::INFINITY))),
        (".Inf", Some(Float(f64::INFINITY))),
        (".NaN", Some(Float(f64::NAN))),
        (".nan", Some(Float(f64::NAN))),
        ("1e3", None),
        ("1_000", Some(Int(1000))),
        ("0x1f", Some(Int(31))),
        ("0b101", Some(Int(5))),
        ("190:20:30", Some(Int(685230))),
        ("1.5e3", None),
        ("1.5e+3", Some(Float(1500.0))),
        ("+1", Some(Int(1))),
        ("1_0.5", Some(Float(10.5))),
        (".5", Some(Float(0.5))),
        ("-1:30", Some(Int(-90))),
        ("00:30", None),
        ("1:30.5", Some(Float(90.5))),
        ("0755", Some(Int(493))),
        ("0b2", None),
        ("0x_1f", Some(Int(31))),
        ("1.0", Some(Float(1.0))),
        ("0o17", None),
        ("1e+3", None),
        ("1.e3", None),
        ("-0", Some(Int(0))),
        ("09", None),
        ("0.", Some(Float(0.0))),
        ("-1_0.5e+1", Some(Float(-105.0))),
        ("1:1:1.5", Some(Float(3661.5))),
        ("._5", None),
        ("1:60", None),
        ("1:7", Some(Int(67))),
        ("1:07", Some(Int(67))),
        ("0:30", None),
        ("0:30.5", Some(Float(30.5))),
        ("1.5E-3", Some(Float(0.0015))),
        ("-.5", None),
        ("+.5", None),
        ("1__0", Some(Int(10))),
        ("3", Some(Int(3))),
        ("-7", Some(Int(-7))),
        ("08", None),
        ("0_7", Some(Int(7))),
        ("inf", None),
        ("nan", None),
        ("1.2.3", None),
        ("-0x1F", Some(Int(-31))),
        ("12e", None),
        ("1:5.5:3", None),
        ("-.nan", None),
        ("1.5e+03", Some(Float(1500.0))),
        ("0b_1", Some(Int(1))),
    ];
    for (plain, expected) in table {
        let found = yaml11_number(plain);
        let same = match (found, expected) {
            (Some(Float(a)), Some(Float(b))) => a == *b || (a.is_nan() && b.is_nan()),
            _ => found == *expected,
        };
        assert!(same, "{plain}: {found:?}, PyYAML: {expected:?}");
    }
}
use super::*;
use serde_json::json;

#[test]
fn equality_mixes_bools_and_numbers_like_python() {
    assert!(eq(&json!(false), &json!(0)));
    assert!(eq(&json!(true), &json!(1.0)));
    assert!(eq(&json!(1.0), &json!(1)));
    assert!(!eq(&json!("1"), &json!(1)));
    assert!(!eq(&json!(null), &json!(false)));
    assert!(eq(&json!({"a": [1, true]}), &json!({"a": [1.0, 1]})));
    assert!(eq(&json!({"a": 1, "b": 2}), &json!({"b": 2, "a": 1})));
    // 2**53 + 1 == 2.0**53 is False in CPython.
    assert!(!eq(
        &json!(9_007_199_254_740_993_i64),
        &json!(9_007_199_254_740_992.0)
    ));
    assert!(eq(&json!(u64::MAX), &json!(u64::MAX)));
}

#[test]
fn truthiness_is_pythons() {
    for falsy in [
        json!(null),
        json!(false),
        json!(0),
        json!(0.0),
        json!(""),
        json!([]),
        json!({}),
    ] {
        assert!(!truthy(&falsy), "{falsy}");
    }
    for true_ in [
        json!("no"),
        json!("false"),
        json!("0"),
        json!(-1),
        json!([0]),
    ] {
        assert!(truthy(&true_), "{true_}");
    }
    assert!(!truthy_opt(None));
}

#[test]
fn type_names_are_pythons() {
    let names: Vec<&str> = [
        json!(null),
        json!(true),
        json!(1),
        json!(1.5),
        json!("s"),
        json!([]),
        json!({}),
    ]
    .iter()
    .map(type_name)
    .collect();
    assert_eq!(
        names,
        ["NoneType", "bool", "int", "float", "str", "list", "dict"]
    );
    assert_eq!(type_repr(&json!({})), "<class 'dict'>");
}

#[test]
fn str_and_repr_match_cpython() {
    // Expected texts printed by CPython 3.11's str() and repr().
    let cases = [
        (json!(true), "True", "True"),
        (json!(null), "None", "None"),
        (json!(7), "7", "7"),
        (json!(-7), "-7", "-7"),
        (json!(2.0), "2.0", "2.0"),
        (json!(2.5), "2.5", "2.5"),
        (json!(1e-5), "1e-05", "1e-05"),
        (json!("it's"), "it's", "\"it's\""),
        (json!("a\"b"), "a\"b", "'a\"b'"),
        (json!("\"'"), "\"'", "'\"\\''"),
        (json!("\\"), "\\", "'\\\\'"),
        (
            json!({"a": [1, "it's", null, 2e20]}),
            "{'a': [1, \"it's\", None, 2e+20]}",
            "{'a': [1, \"it's\", None, 2e+20]}",
        ),
    ];
    for (value, python_str, python_repr) in cases {
        assert_eq!(str(&value), python_str, "str({value})");
        assert_eq!(repr(&value), python_repr, "repr({value})");
    }
}

#[test]
fn string_repr_escapes_what_cpython_does() {
    // repr('a\x85b\xa0c\u00adé\u2028\ue000\U0001F600\x7f') in CPython 3.11.
    assert_eq!(
        str_repr("a\u{85}b\u{a0}c\u{ad}é\u{2028}\u{e000}\u{1f600}\u{7f}"),
        r"'a\x85b\xa0c\xadé\u2028\ue000😀\x7f'"
    );
    assert_eq!(str_repr("a\\b\n\t\r\u{1}"), r"'a\\b\n\t\r\x01'");
    assert_eq!(str_repr("\u{e0001}"), r"'\U000e0001'");
}

#[test]
fn float_repr_matches_cpython() {
    let cases = [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (1.5, "1.5"),
        (0.1, "0.1"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (1e22, "1e+22"),
        (123_456_789.123_456_79, "123456789.12345679"),
        (123_456_789_012_345_678.0, "1.2345678901234568e+17"),
        (-12.25, "-12.25"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ];
    for (value, python) in cases {
        assert_eq!(float_repr(value), python, "{value}");
    }
}

#[test]
fn int_parses_what_cpython_int_does() {
    // Checked against CPython 3.11's int(text).
    let cases: [(&str, Option<i64>); 20] = [
        ("0", Some(0)),
        ("08080", Some(8080)),
        (" -7 ", Some(-7)),
        ("+4", Some(4)),
        ("-0", Some(0)),
        ("1_000", Some(1000)),
        ("0_1", Some(1)),
        ("\t\n\u{b}\u{c}\r 8 ", Some(8)),
        (" \u{3000} 7\u{2003}", Some(7)),
        ("\u{85}5", Some(5)),
        ("٣", Some(3)),
        ("１２", Some(12)),
        ("1__0", None),
        ("_1", None),
        ("1_", None),
        ("+_1", None),
        ("\u{1c}5", None),
        ("1.5", None),
        ("0x10", None),
        ("", None),
    ];
    for (text, python) in cases {
        assert_eq!(int(text), python, "int({text:?})");
    }
    assert_eq!(int("http"), None);
    assert_eq!(int("99999999999999999999"), None);
    assert_eq!(int("-9223372036854775808"), Some(i64::MIN));
}

#[test]
fn shlex_split_matches_cpython() {
    // Every expected argv below was printed by CPython 3.11's shlex.split(command), the
    // call upstream makes (posix=True, comments=False).
    let cases: &[(&str, &[&str])] = &[
        ("", &[]),
        ("   ", &[]),
        ("/bin/ready --fast", &["/bin/ready", "--fast"]),
        (
            "sh -c 'curl -f localhost:8080/health'",
            &["sh", "-c", "curl -f localhost:8080/health"],
        ),
        ("a\tb\r\nc", &["a", "b", "c"]),
        ("a\u{b}b\u{c}c", &["a\u{b}b\u{c}c"]),
        (
            "echo # not a comment",
            &["echo", "#", "not", "a", "comment"],
        ),
        ("echo a#b", &["echo", "a#b"]),
        ("a '' b", &["a", "", "b"]),
        ("''", &[""]),
        ("\"\"", &[""]),
        ("a''b", &["ab"]),
        ("'a'\"b\"c", &["abc"]),
        (r"a\ b", &["a b"]),
        (r"\'quoted\'", &["'quoted'"]),
        (r"a\\b", &[r"a\b"]),
        (r"\x", &["x"]),
        ("a\\\nb", &["a\nb"]),
        (r"'a\b'", &[r"a\b"]),
        (r"'it'\''s'", &["it's"]),
        (r#""a\"b""#, &[r#"a"b"#]),
        (r#""a\\b""#, &[r"a\b"]),
        (r#""a\b""#, &[r"a\b"]),
        (r#""a\$b""#, &[r"a\$b"]),
        ("\"a\\\nb\"", &["a\\\nb"]),
        ("\"it's\"", &["it's"]),
        ("'say \"hi\"'", &["say \"hi\""]),
        ("$HOME ~ *.txt", &["$HOME", "~", "*.txt"]),
        ("a;b|c&&d", &["a;b|c&&d"]),
        ("  lead and trail  ", &["lead", "and", "trail"]),
        (r"trailing\ ", &["trailing "]),
        ("ünï cödé", &["ünï", "cödé"]),
        ("a\u{a0}b", &["a\u{a0}b"]),
    ];
    for (command, argv) in cases {
        assert_eq!(
            shlex_split(command).as_deref(),
            Ok(argv
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .as_slice()),
            "shlex.split({command:?})"
        );
    }
    // CPython raises ValueError with these messages.
    for (command, error) in [
        ("sh -c 'echo", ShlexError::NoClosingQuotation),
        ("\"unclosed", ShlexError::NoClosingQuotation),
        (r#""a\""#, ShlexError::NoClosingQuotation),
        (r"trailing\", ShlexError::NoEscapedCharacter),
        ("\"a\\", ShlexError::NoEscapedCharacter),
    ] {
        assert_eq!(shlex_split(command), Err(error), "{command:?}");
    }
    assert_eq!(
        ShlexError::NoClosingQuotation.to_string(),
        "No closing quotation"
    );
}
