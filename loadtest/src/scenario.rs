//! The scenarios.

pub(crate) mod churn;
pub(crate) mod fanout;
pub(crate) mod idle;
pub(crate) mod storm;
