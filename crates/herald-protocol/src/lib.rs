//! Herald's wire formats, with no I/O.
//!
//! This crate is pure: it never depends on tokio, hyper, fastwebsockets or redis, so everything
//! in it is tested deterministically and fuzzed. It holds:
//!
//! - validated identifiers ([`ConnId`], [`NodeId`], [`MessageId`]) and [`ChannelName`];
//! - the native client protocol: [`client`] requests in JSON or MessagePack, and the [`server`]
//!   frames (replies and pushes) encoded once per [`WireFormat`];
//! - WebSocket framing ([`ws`]): a decoder for client frames that never allocates what a frame
//!   merely claims, and an encoder for server frames that are built once and shared;
//! - the envelope between nodes ([`envelope`]), including the forms applications publish
//!   straight into Redis;
//! - the close codes ([`close`]) and reply error codes ([`ErrorCode`]) with their meaning.

pub mod channel;
pub mod client;
pub mod close;
pub mod envelope;
mod error_code;
pub mod event;
mod format;
mod ids;
pub mod position;
pub mod presence;
pub mod server;
pub mod trace;
pub mod ws;

pub use channel::{ChannelError, ChannelName};
pub use error_code::ErrorCode;
pub use event::EventName;
pub use format::WireFormat;
pub use ids::{ConnAddress, ConnId, MessageId, NodeId};
pub use position::{Epoch, Position};
pub use trace::TraceParent;
