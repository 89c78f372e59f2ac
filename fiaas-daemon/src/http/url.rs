//! The bits of URL handling that `requests` does for the extension hook and usage reporting:
//! splitting an absolute URL, credentials in it, and `--proxy`.

use hyper::Uri;
use hyper::header::HeaderValue;

use super::SetupError;

/// The parts of an absolute URL.
pub(crate) struct UrlParts<'a> {
    /// Lower case.
    pub(crate) scheme: String,
    pub(crate) userinfo: Option<&'a str>,
    pub(crate) host_port: &'a str,
    /// Without query and fragment; may be empty.
    pub(crate) path: &'a str,
}

/// Splits `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
pub(crate) fn split_url(url: &str) -> Result<UrlParts<'_>, &'static str> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
        .ok_or("not an absolute URL")?;
    let (authority, rest) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    if host_port.is_empty() {
        return Err("no host in the URL");
    }
    Ok(UrlParts {
        scheme: scheme.to_ascii_lowercase(),
        userinfo,
        host_port,
        path,
    })
}

/// `requests`' `get_auth_from_url`: a user and a password, percent-decoded; a user alone gives
/// no credentials.
pub(crate) fn basic_auth(userinfo: &str) -> Option<HeaderValue> {
    let (user, password) = userinfo.split_once(':')?;
    let mut credentials = percent_decode(user);
    credentials.push(b':');
    credentials.extend(percent_decode(password));
    let mut value = HeaderValue::try_from(format!(
        "Basic {}",
        data_encoding::BASE64.encode(&credentials)
    ))
    .ok()?;
    value.set_sensitive(true);
    Some(value)
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some(hex) if bytes[i] == b'%' => std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    decoded
}

/// An http proxy from `--proxy`, used as upstream's `requests` session uses it (its
/// `proxies` map both `http` and `https` to it): plain http requests are forwarded through it,
/// https ones are tunnelled with `CONNECT`. Proxy environment variables are not consulted.
#[derive(Clone, Debug)]
pub struct Proxy {
    /// Where to connect: `http://host:port/`.
    pub(crate) uri: Uri,
    /// From credentials in the proxy URL.
    pub(crate) authorization: Option<HeaderValue>,
}

impl Proxy {
    /// The proxy `--proxy` names; `None` when it is unset or empty (`requests` ignores an empty
    /// proxy). Only `http://` proxies are supported; a proxy without a scheme is an http one.
    pub fn from_config(proxy: Option<&str>) -> Result<Option<Proxy>, SetupError> {
        proxy
            .filter(|p| !p.is_empty())
            .map(Proxy::parse)
            .transpose()
    }

    fn parse(proxy: &str) -> Result<Proxy, SetupError> {
        let invalid = |reason: &str| SetupError::InvalidProxy(reason.to_owned());
        let with_scheme;
        let proxy = if proxy.contains("://") {
            proxy
        } else {
            with_scheme = format!("http://{proxy}");
            &with_scheme
        };
        let parts = split_url(proxy).map_err(invalid)?;
        if parts.scheme != "http" {
            return Err(invalid("only http:// proxies are supported"));
        }
        let uri = format!("http://{}/", parts.host_port)
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        Ok(Proxy {
            uri,
            authorization: parts.userinfo.and_then(basic_auth),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies() {
        let proxy = Proxy::parse("proxy:3128").unwrap();
        assert_eq!(proxy.uri, "http://proxy:3128/");
        assert!(proxy.authorization.is_none());
        let proxy = Proxy::parse("http://u:p@proxy:3128/ignored").unwrap();
        assert_eq!(proxy.uri, "http://proxy:3128/");
        assert_eq!(proxy.authorization.unwrap(), "Basic dTpw");
        for bad in ["https://proxy:3128", "socks5://proxy:1080", "http://"] {
            assert!(
                matches!(Proxy::parse(bad), Err(SetupError::InvalidProxy(_))),
                "{bad}"
            );
        }
        assert!(Proxy::from_config(None).unwrap().is_none());
        assert!(Proxy::from_config(Some("")).unwrap().is_none());
    }

    #[test]
    fn credentials_become_basic_auth() {
        assert_eq!(
            basic_auth("us%40er:p%3Ass").unwrap(),
            format!("Basic {}", data_encoding::BASE64.encode(b"us@er:p:ss"))
        );
        // `requests` needs a password too.
        assert_eq!(basic_auth("user"), None);
    }
}
