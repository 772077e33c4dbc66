//! The Pusher Channels protocol (version 7), as Herald speaks it to pusher-js, Laravel Echo and
//! the Pusher server SDKs. Pure: no I/O, no runtime.
//!
//! - [`channel`]: channel types by prefix, and the names Pusher allows;
//! - [`socket_id`]: the `1234.5678` connection ids;
//! - [`signature`]: channel authorization strings, and the signed HTTP API requests;
//! - [`message`]: what clients send, and the frames the server writes;
//! - [`codes`]: close codes and `pusher:error` codes;
//! - [`webhook`]: the events sent to an app's webhook URL, and their body.

pub mod channel;
pub mod codes;
pub mod message;
pub mod signature;
pub mod socket_id;
pub mod webhook;

pub use channel::{ChannelKind, PusherChannel};
pub use socket_id::SocketId;
