//! HTTP header grammar shared by the gate's and the endpoint's challenges.

/// Printable ASCII without `"` or `\`: safe inside a quoted-string of an
/// HTTP challenge (a realm) without escaping.
pub(crate) fn is_quotable(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, 0x20..=0x7E) && b != b'"' && b != b'\\')
}
