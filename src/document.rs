//! A public JSON document served over GET and HEAD: the JWKS and the
//! RFC 8414 / RFC 9728 metadata. Cacheable (`Cache-Control: public,
//! max-age`), with a strong `ETag` and `304 Not Modified`; any other method
//! is `405` with `Allow`. The body type is `String`, so the gate needs no
//! body crate to serve one.

use std::time::Duration;

use aws_lc_rs::digest;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};

/// A JSON body with its validators, ready to answer with.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    body: String,
    etag: HeaderValue,
    cache_control: HeaderValue,
}

impl Document {
    pub(crate) fn new(body: String, max_age: Duration) -> Self {
        let hash = digest::digest(&digest::SHA256, body.as_bytes());
        let etag = format!("\"{}\"", crate::b64url::encode(&hash.as_ref()[..18]));
        Self {
            body,
            // base64url and quotes: always a valid header value.
            etag: HeaderValue::try_from(etag).unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            cache_control: cache_control(max_age),
        }
    }

    /// The document serialized from `value`.
    pub(crate) fn json<T: serde::Serialize>(value: &T, max_age: Duration) -> Self {
        Self::new(serde_json::to_string(value).unwrap_or_default(), max_age)
    }

    /// The answer to a request with this method and these headers. Reads
    /// nothing else of the request (not `Host`).
    pub(crate) fn answer(&self, method: &Method, headers: &HeaderMap) -> Response<String> {
        if method != Method::GET && method != Method::HEAD {
            let mut res = Response::new(String::new());
            *res.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            res.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return res;
        }
        let etag = self.etag.as_bytes();
        let not_modified = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(|tag| tag.trim_ascii())
            .map(|tag| tag.strip_prefix(b"W/").unwrap_or(tag))
            .any(|tag| tag == etag || tag == b"*");
        let (status, body) = if not_modified {
            (StatusCode::NOT_MODIFIED, String::new())
        } else if method == Method::HEAD {
            (StatusCode::OK, String::new())
        } else {
            (StatusCode::OK, self.body.clone())
        };
        let mut res = Response::new(body);
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, self.cache_control.clone());
        h.insert(header::ETAG, self.etag.clone());
        res
    }
}

fn cache_control(max_age: Duration) -> HeaderValue {
    HeaderValue::try_from(format!("public, max-age={}", max_age.as_secs()))
        .unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_head_etag_and_other_methods() {
        let doc = Document::json(&serde_json::json!({"a": 1}), Duration::from_secs(60));
        let none = HeaderMap::new();
        let res = doc.answer(&Method::GET, &none);
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.body(), r#"{"a":1}"#);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "public, max-age=60");
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let etag = res.headers()[header::ETAG].clone();

        let head = doc.answer(&Method::HEAD, &none);
        assert_eq!((head.status(), head.body().as_str()), (StatusCode::OK, ""));

        let mut cond = HeaderMap::new();
        cond.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            doc.answer(&Method::GET, &cond).status(),
            StatusCode::NOT_MODIFIED
        );
        cond.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(doc.answer(&Method::GET, &cond).status(), StatusCode::OK);

        let post = doc.answer(&Method::POST, &none);
        assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[header::ALLOW], "GET, HEAD");
    }
}
