//! The one boxed error type: what the application's pluggable parts (a
//! password verifier, a shared DPoP replay store) and request bodies fail
//! with. tollgate never shows its text to a client.

/// Any error, boxed, that can cross threads.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
