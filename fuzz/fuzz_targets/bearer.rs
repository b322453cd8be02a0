#![no_main]
//! The bearer extractor on arbitrary `Authorization` and `Cookie` bytes
//! (split at the first NUL, which no header value may hold).

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (authorization, cookie) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    tollgate::fuzzing::bearer(authorization, cookie);
});
