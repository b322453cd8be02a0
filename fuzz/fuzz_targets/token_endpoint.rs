#![no_main]
//! The whole `/token` service (over in-memory SQLite) on arbitrary bodies
//! and content types: always an RFC 6749 answer, never a 500.

use std::sync::LazyLock;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::Full;
use tollgate::{
    issuer::Issuer,
    keys::{Algorithm, KeySet, SigningKey},
    secret::RefreshSecret,
    store::{self, clients::NewClient},
    token_endpoint::TokenEndpoint,
};
use tower::ServiceExt;

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
});

static ENDPOINT: LazyLock<TokenEndpoint> = LazyLock::new(|| {
    RT.block_on(async {
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        store::migrate(&db).await.unwrap();
        let mut spa = NewClient::public("spa", "read");
        spa.allow_password = true;
        store::clients::register(&db, spa, std::time::SystemTime::now()).await.unwrap();
        let issuer = Issuer::builder()
            .db(db)
            .keys(SigningKey::hmac("k", Algorithm::HS256, &[1; 32]).unwrap())
            .issuer("https://issuer.example")
            .audience("api")
            .refresh_secret(RefreshSecret::new(&[2; 32]).unwrap())
            .build()
            .unwrap();
        TokenEndpoint::builder(issuer)
            .password_verifier(|user: String, password: String| async move {
                Ok((user == "alice" && password == "pw").then_some(user))
            })
            .build()
            .unwrap()
    })
});

const CONTENT_TYPES: [&str; 4] = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "text/plain",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let req = Request::post("/token")
        .header(header::CONTENT_TYPE, CONTENT_TYPES[usize::from(selector) % 4])
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap();
    let res = RT.block_on(ENDPOINT.clone().oneshot(req)).unwrap();
    assert!(
        matches!(
            res.status(),
            StatusCode::OK
                | StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::PAYLOAD_TOO_LARGE
        ),
        "{}",
        res.status()
    );
});
