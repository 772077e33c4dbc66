//! The scenarios.

pub(crate) mod fanout;
pub(crate) mod idle;
