//! RFC 8707 resource indicators: which resources (audiences) a token may be
//! issued for. A request may name resources it was granted, never others —
//! the same narrowing rule as scope (RFC 6749 §6), for audiences.

/// The resources of a token: `requested` when every one of them is in
/// `granted` (duplicates dropped), all of `granted` when none is requested.
/// `None` when a requested resource was not granted.
pub(crate) fn narrow(granted: &[String], requested: &[&str]) -> Option<Vec<String>> {
    if requested.is_empty() {
        return Some(granted.to_vec());
    }
    let mut out: Vec<String> = Vec::with_capacity(requested.len());
    for r in requested {
        if !granted.iter().any(|g| g == r) {
            return None;
        }
        if !out.iter().any(|o| o == r) {
            out.push((*r).to_owned());
        }
    }
    Some(out)
}

/// Resources as stored: space-separated (absolute URIs have no spaces),
/// `None` for none.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub(crate) fn join(resources: &[String]) -> Option<String> {
    (!resources.is_empty()).then(|| resources.join(" "))
}

/// Resources as read back.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub(crate) fn split(stored: Option<&str>) -> Vec<String> {
    stored
        .unwrap_or_default()
        .split(' ')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn requested_resources_narrow_never_widen() {
        let granted = v(&["https://a.example", "https://b.example"]);
        assert_eq!(narrow(&granted, &[]), Some(granted.clone()));
        assert_eq!(
            narrow(&granted, &["https://b.example", "https://b.example"]),
            Some(v(&["https://b.example"]))
        );
        assert_eq!(narrow(&granted, &["https://c.example"]), None);
        assert_eq!(
            narrow(&granted, &["https://a.example", "https://c.example"]),
            None
        );
        // Nothing granted: nothing may be asked for.
        assert_eq!(narrow(&[], &["https://a.example"]), None);
        assert_eq!(narrow(&[], &[]), Some(Vec::new()));
    }

    #[test]
    fn stored_form_round_trips() {
        let r = v(&["https://a.example/x", "urn:example:b"]);
        assert_eq!(split(join(&r).as_deref()), r);
        assert_eq!(join(&[]), None);
        assert!(split(None).is_empty());
    }
}
