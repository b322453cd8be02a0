//! Scope grammar (RFC 6749 §3.3), in one place: what a scope token is,
//! whether a scope grants one, and how a requested scope narrows a grant.
//!
//! A scope is a space-separated list of case-sensitive scope tokens.
//!
//! ```
//! use tollgate::scope;
//!
//! assert!(scope::is_scope_token("orders:read"));
//! assert!(!scope::is_scope_token("a\"b"));
//! assert!(scope::contains("read write", "write"));
//! assert!(!scope::contains("read write", "Write"));
//! assert_eq!(scope::narrow("read write", Some("write")).as_deref(), Some("write"));
//! assert_eq!(scope::narrow("read", Some("read admin")), None);
//! ```

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// The tokens of a scope, in order (empty parts skipped).
pub fn tokens(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|s| !s.is_empty())
}

/// Whether `scope` grants `token`: an exact, case-sensitive match.
pub fn contains(scope: &str, token: &str) -> bool {
    tokens(scope).any(|s| s == token)
}

/// The scope of an access token: `requested` if every one of its tokens is
/// in `granted` (duplicates dropped), the whole grant when nothing is
/// requested (RFC 6749 §6). `None` when the request asks for more, or is
/// empty.
pub fn narrow(granted: &str, requested: Option<&str>) -> Option<String> {
    let Some(requested) = requested else {
        return Some(granted.to_owned());
    };
    let mut out: Vec<&str> = Vec::new();
    for s in tokens(requested) {
        if !contains(granted, s) {
            return None;
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_rules() {
        assert_eq!(narrow("a b c", None).as_deref(), Some("a b c"));
        assert_eq!(narrow("a b c", Some("c a")).as_deref(), Some("c a"));
        assert_eq!(narrow("a b c", Some("a a")).as_deref(), Some("a"));
        assert_eq!(narrow("a b c", Some("d")), None);
        assert_eq!(narrow("a b c", Some("")), None);
        assert_eq!(narrow("", Some("a")), None);
    }

    #[test]
    fn scope_token_grammar() {
        for ok in ["a", "orders:read", "!", "#[]~", "x\u{7e}"] {
            assert!(is_scope_token(ok), "{ok}");
        }
        for bad in ["", "a b", "\"", "\\", "é", "a\u{7f}"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn contains_is_exact() {
        assert!(contains("read  write", "write"));
        assert!(!contains("read", "rea"));
        assert!(!contains("read", ""));
        assert!(!contains("", "read"));
    }
}
