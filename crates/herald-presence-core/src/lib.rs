//! Herald's presence model, with no I/O and time passed in.
//!
//! Two layers, each emitting events exactly once:
//!
//! - [`LocalPresence`], on each gateway: connections come and go; a user *joins* a channel on
//!   the node with their first connection there and *leaves* with their last. Several
//!   connections of one user are one member.
//! - [`PresenceTable`], shared (in Redis for a cluster, in-process for the embedded default):
//!   nodes report their joins and leaves and renew a lease; a user is a member of a channel
//!   while at least one live node has them, so the cluster-wide join happens on the first node
//!   and the leave on the last. When a node's lease runs out (it died without saying goodbye),
//!   each member that was only on that node leaves, once.
//!
//! Pure: depends on herald-protocol and bytes only, never on tokio or redis. The Redis
//! functions of the presence service implement the same transitions and are tested against
//! the same scenarios.

mod local;
mod member;
mod table;

pub use local::{LocalChange, LocalPresence};
pub use member::{UserId, UserIdError};
pub use table::{Event, PresenceTable};

/// Milliseconds on the caller's clock. The crate never reads a clock itself.
pub type Millis = u64;
