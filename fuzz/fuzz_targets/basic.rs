#![no_main]
//! `Authorization: Basic` client credentials on arbitrary header bytes.

libfuzzer_sys::fuzz_target!(|value: &[u8]| tollgate::fuzzing::basic(value));
