//! Herald's own protocol (JSON or MessagePack): a connection's session (its requests, one file
//! per kind, and their replies), how the hub frames pushes for it, and its HTTP routes.
//! Written against [`crate::peer`]: the socket loop (`ws`) drives a session, and knows no
//! request.

mod framing;
pub(crate) mod history;
pub(crate) mod http;
mod presence;
mod publish;
mod recover;
mod session;
mod subscribe;
#[cfg(test)]
mod tests;

pub(crate) use framing::NativeFraming;
pub(crate) use session::Session;
