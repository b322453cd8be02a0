//! Strict unpadded base64url (RFC 4648 §5), as JWS compact serialization
//! uses it (RFC 7515 §2): no padding, no standard-alphabet characters, and
//! non-canonical trailing bits refused, so one value has one encoding.
//!
//! base64-simd rather than the `base64` crate: the gate decodes most of
//! every token on every request, and the vectorised decoder is several
//! times faster on it (BENCHMARKS.md). Decoding goes into a caller's stack
//! buffer, which need not be zeroed first. It is the crate's one base64
//! library: encoding goes through [`encode`] too.

use std::{borrow::Cow, mem::MaybeUninit};

use base64_simd::{AsOut, URL_SAFE_NO_PAD};

/// `bytes` as unpadded base64url: tokens, ids, tags and headers we write.
pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode_to_string(bytes)
}

/// `part` decoded into `buf`; `None` if it is not strict base64url or its
/// bytes do not fit.
pub(crate) fn decode_into<'a>(part: &str, buf: &'a mut [MaybeUninit<u8>]) -> Option<&'a [u8]> {
    let part = part.as_bytes();
    if URL_SAFE_NO_PAD.decoded_length(part).ok()? > buf.len() {
        return None;
    }
    URL_SAFE_NO_PAD
        .decode(part, buf.as_out())
        .ok()
        .map(|bytes| &*bytes)
}

/// `part` decoded into `buf` when it fits (the usual case: no
/// allocation), else onto the heap; `None` if it is not strict base64url.
pub(crate) fn decode<'a>(part: &str, buf: &'a mut [MaybeUninit<u8>]) -> Option<Cow<'a, [u8]>> {
    if URL_SAFE_NO_PAD.decoded_length(part.as_bytes()).ok()? <= buf.len() {
        decode_into(part, buf).map(Cow::Borrowed)
    } else {
        URL_SAFE_NO_PAD
            .decode_to_vec(part.as_bytes())
            .ok()
            .map(Cow::Owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_on_both_sides_of_the_stack_buffer() {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let mut buf = [MaybeUninit::uninit(); 64];
        for len in 0..=80 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let part = URL_SAFE_NO_PAD.encode(&bytes);
            let decoded = decode(&part, &mut buf).unwrap();
            assert_eq!(&*decoded, &bytes[..], "{len} bytes");
            assert_eq!(
                matches!(decoded, Cow::Borrowed(_)),
                len <= 64,
                "{len} bytes"
            );
            let fitted = decode_into(&part, &mut buf);
            assert_eq!(fitted.is_some(), len <= 64, "{len} bytes");
        }
    }

    #[test]
    fn only_strict_base64url_decodes() {
        let mut buf = [MaybeUninit::uninit(); 64];
        for bad in ["a", "ab=", "AA==", "a+", "a/", "a b", "a.b"] {
            assert!(decode(bad, &mut buf).is_none(), "{bad}");
            assert!(decode_into(bad, &mut buf).is_none(), "{bad}");
        }
        // Non-canonical: the 4 bits left over after one byte must be zero.
        assert_eq!(decode("AA", &mut buf).as_deref(), Some(&[0u8][..]));
        assert!(decode("AB", &mut buf).is_none());
        assert_eq!(decode("_-8", &mut buf).as_deref(), Some(&[0xff, 0xef][..]));
    }
}
