//! HTTP header grammar shared by the gate and the token endpoint: the
//! challenges' quoted strings, and cookies.

use http::{HeaderMap, header};

/// Printable ASCII without `"` or `\`: safe inside a quoted-string of an
/// HTTP challenge (a realm) without escaping.
pub(crate) fn is_quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, 0x20..=0x7E) && b != b'"' && b != b'\\')
}

/// The values of the cookie `name` in the request's `Cookie` headers
/// (RFC 6265 §5.4: `name=value` pairs joined by `;`, possibly over several
/// headers, as HTTP/2 sends them), as sent and in order. Each caller
/// applies its own rules to them (length, quoting, duplicates).
pub(crate) fn cookies<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h [u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b';'))
        .filter_map(move |pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_across_headers() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; at=x;b=2"));
        h.append(
            header::COOKIE,
            HeaderValue::from_static("at=; xat=3; AT=4 ;at=y"),
        );
        let found: Vec<&[u8]> = cookies(&h, "at").collect();
        assert_eq!(found, [&b"x"[..], b"", b"y"]);
        assert_eq!(cookies(&h, "a").collect::<Vec<_>>(), [&b"1"[..]]);
        assert_eq!(cookies(&h, "none").count(), 0);
    }
}
