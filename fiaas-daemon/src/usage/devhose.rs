//! The DevHose wire format, as upstream's `usage_reporting/transformer.py` and
//! `dev_hose_auth.py` write it: the event payload, Python's JSON rendering, and the HMAC
//! signature headers. Pure functions, so tests pin the bytes without a server.

use std::fmt::Write as _;

use data_encoding::BASE64;
use hmac::Mac;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::{UsageEvent, UsageSettings};

/// `urllib.parse.quote` leaves these unescaped in the signed path (besides `[A-Za-z0-9_.~-]`).
pub(super) const PATH_SAFE: &[u8] = b".-~_@:!$&'()*+,;=/?";

/// base64 of `{"type": "<tenant>"}` exactly as Python's `json.dumps` renders it.
pub(super) fn auth_context(tenant: &str) -> String {
    BASE64.encode(python_json(&json!({ "type": tenant })).as_bytes())
}

/// The DevHose deployment event, keys in upstream's order.
pub(super) fn payload(
    settings: &UsageSettings,
    event: &UsageEvent,
    timestamp: &str,
    started_at: &str,
) -> Value {
    json!({
        "id": event.deployment_id,
        "application": event.app,
        "environment": environment_class(&settings.environment),
        "repository": event.repository,
        "started_at": started_at,
        "timestamp": timestamp,
        "target": {
            "infrastructure": settings.cluster_name,
            // DevHose wants both; upstream fills them with the same value.
            "provider": settings.cluster_name,
            "team": settings.operator,
            "instance": event.namespace,
        },
        "status": event.status.devhose_name(),
        "source_type": "fiaas",
        "facility": "sdrn:schibsted:service:fiaas",
        "details": { "environment": settings.environment },
        "trigger": { "type": "fiaas" },
        "team": settings.team,
    })
}

/// Upstream compares the first three characters of `--environment`.
pub(super) fn environment_class(environment: &str) -> &'static str {
    ["dev", "pre", "pro"]
        .into_iter()
        .find(|prefix| environment.starts_with(prefix))
        .unwrap_or("other")
}

/// UTC, whole seconds, `Z` suffix (upstream: `utcnow().replace(microsecond=0).isoformat() + "Z"`).
pub(super) fn payload_timestamp(now: Timestamp) -> String {
    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Python's `email.utils.formatdate(t)`: RFC 2822 in UTC with a `-0000` zone.
pub(super) fn http_date(now: Timestamp) -> String {
    now.strftime("%a, %d %b %Y %H:%M:%S -0000").to_string()
}

/// JSON as Python's `json.dumps` writes it by default (`", "` and `": "` separators, non-ASCII
/// escaped), which is what upstream sends and signs; receivers may compare bytes.
pub(super) fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_python_json(&mut out, value);
    out
}

fn write_python_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_python_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_str(out, key);
                out.push_str(": ");
                write_python_json(out, item);
            }
            out.push('}');
        }
    }
}

/// `ensure_ascii`: everything outside printable ASCII as lower-case `\uXXXX` (UTF-16 units).
fn write_python_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// `urllib.parse.quote(bytes, safe)`: `[A-Za-z0-9_.~-]` and `safe` kept, the rest `%XX`.
pub(super) fn quote(bytes: &[u8], safe: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `urllib.parse.quote_plus(bytes)`: nothing extra kept, space as `+`.
pub(super) fn quote_plus(bytes: &[u8]) -> String {
    quote(bytes, b" ").replace(' ', "+")
}

/// The DevHose string to sign; `epoch_seconds` is whole seconds, signed as milliseconds.
pub(super) fn string_to_sign(
    signed_path: &str,
    nonce: &str,
    epoch_seconds: i64,
    auth_context: &str,
    body: &[u8],
) -> String {
    format!(
        "{}\n{}\n{}\n{}\n{}\n",
        quote(signed_path.as_bytes(), PATH_SAFE),
        quote_plus(nonce.as_bytes()),
        epoch_seconds.saturating_mul(1000),
        quote_plus(auth_context.as_bytes()),
        quote_plus(body),
    )
}

/// The DevHose headers of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AuthHeaders {
    pub(super) content_signature: String,
    pub(super) auth_context: String,
    pub(super) nonce: String,
    pub(super) date: String,
}

pub(super) fn auth_headers(
    settings: &UsageSettings,
    body: &[u8],
    now: Timestamp,
    nonce: &str,
) -> AuthHeaders {
    let to_sign = string_to_sign(
        &settings.signed_path,
        nonce,
        now.as_second(),
        &settings.auth_context,
        body,
    );
    let mut mac = settings.mac.clone();
    mac.update(to_sign.as_bytes());
    AuthHeaders {
        content_signature: BASE64.encode(&mac.finalize().into_bytes()),
        auth_context: settings.auth_context.clone(),
        nonce: nonce.to_owned(),
        date: http_date(now),
    }
}
