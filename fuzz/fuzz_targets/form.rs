#![no_main]
//! The token endpoint's form parser on arbitrary bytes.

libfuzzer_sys::fuzz_target!(|body: &[u8]| tollgate::fuzzing::form(body));
