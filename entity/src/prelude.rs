//! Every entity, re-exported for `use entity::prelude::*`.
