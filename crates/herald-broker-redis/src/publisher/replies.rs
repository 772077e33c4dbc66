//! The replies the publish connection awaits, in the order its commands went out; with
//! `broker.redis.wait_replicas`, each batch ends with a `WAIT`, and its replies are held until
//! the replicas confirm: a publication is acknowledged only once they have it.

use std::collections::VecDeque;

use herald_broker::BrokerError;
use tokio::{sync::oneshot, time::Instant};

use crate::{conn::LinkError, resp::Value};

type Sender = oneshot::Sender<Result<Value, BrokerError>>;

enum Pending {
    /// A command's reply, for its caller.
    Reply(Instant, Sender),
    /// A `WAIT`'s: how many replicas have the batch before it.
    Wait(Instant),
}

/// What the connection waits for.
pub(super) struct Replies {
    pending: VecDeque<Pending>,
    /// Replies of the batch whose `WAIT` has not answered yet.
    held: Vec<(Sender, Value)>,
    /// The replicas a batch must reach (`None`: no `WAIT`).
    wait: Option<u32>,
}

impl Replies {
    pub(super) fn new(wait: Option<u32>) -> Self {
        Self {
            pending: VecDeque::new(),
            held: Vec::new(),
            wait,
        }
    }

    /// A command went out at `now`; its reply goes to `reply`.
    pub(super) fn sent(&mut self, now: Instant, reply: Sender) {
        self.pending.push_back(Pending::Reply(now, reply));
    }

    /// The replicas to wait for after a batch, if any.
    pub(super) fn wait(&self) -> Option<u32> {
        self.wait
    }

    /// A `WAIT` went out at `now`, after the batch.
    pub(super) fn waited(&mut self, now: Instant) {
        self.pending.push_back(Pending::Wait(now));
    }

    /// When the oldest awaited reply's command went out.
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.pending.front().map(|p| match p {
            Pending::Reply(at, _) | Pending::Wait(at) => *at,
        })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Takes the next reply from Redis.
    ///
    /// # Errors
    /// When the connection must be dropped: a reply nobody awaits, or `READONLY` (the server
    /// is a replica now: a failover).
    pub(super) fn take(&mut self, value: Value) -> Result<(), LinkError> {
        match self.pending.pop_front() {
            None => Err(LinkError::Unexpected),
            Some(Pending::Reply(_, reply)) => {
                if let Value::Error(message) = &value {
                    if message.starts_with("READONLY") {
                        // Nothing was written; the node reconnects to the master.
                        let refused =
                            BrokerError::Unavailable("redis is a replica now: finding the master");
                        let _ = reply.send(Err(refused));
                        return Err(LinkError::Refused {
                            command: "publish",
                            message: message.clone(),
                        });
                    }
                }
                match self.wait {
                    Some(_) => self.held.push((reply, value)),
                    None => {
                        let _ = reply.send(Ok(value));
                    }
                }
                Ok(())
            }
            Some(Pending::Wait(_)) => {
                let reached = match value {
                    Value::Int(n) => u64::try_from(n).unwrap_or(0),
                    _ => 0,
                };
                let enough = reached >= u64::from(self.wait.unwrap_or(0));
                for (reply, value) in self.held.drain(..) {
                    // A refusal needs no replica: it is final.
                    let answer = if enough || matches!(value, Value::Error(_)) {
                        Ok(value)
                    } else {
                        Err(BrokerError::Uncertain(
                            "not on broker.redis.wait_replicas replicas in time",
                        ))
                    };
                    let _ = reply.send(answer);
                }
                Ok(())
            }
        }
    }

    /// The connection is gone: every awaited reply fails as uncertain.
    pub(super) fn lost(self) {
        let lost = || Err(BrokerError::Uncertain("redis connection lost"));
        for (reply, _) in self.held {
            let _ = reply.send(lost());
        }
        for pending in self.pending {
            if let Pending::Reply(_, reply) = pending {
                let _ = reply.send(lost());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(r: &mut Replies) -> oneshot::Receiver<Result<Value, BrokerError>> {
        let (tx, rx) = oneshot::channel();
        r.sent(Instant::now(), tx);
        rx
    }

    #[test]
    fn with_wait_a_batch_is_acknowledged_only_when_the_replicas_have_it() {
        let mut r = Replies::new(Some(1));
        let (mut one, mut two) = (request(&mut r), request(&mut r));
        r.waited(Instant::now());
        r.take(Value::Int(7)).unwrap();
        r.take(Value::Error("ERR refused".into())).unwrap();
        assert!(one.try_recv().is_err(), "held until the WAIT answers");
        r.take(Value::Int(0)).unwrap();
        assert!(matches!(one.try_recv(), Ok(Err(BrokerError::Uncertain(_)))));
        assert!(
            matches!(two.try_recv(), Ok(Ok(Value::Error(_)))),
            "a refusal is final"
        );

        let mut three = request(&mut r);
        r.waited(Instant::now());
        r.take(Value::Int(8)).unwrap();
        r.take(Value::Int(1)).unwrap();
        assert!(matches!(three.try_recv(), Ok(Ok(Value::Int(8)))));
    }

    #[test]
    fn readonly_drops_the_connection_and_nothing_is_acknowledged() {
        let mut r = Replies::new(None);
        let mut one = request(&mut r);
        let two = request(&mut r);
        assert!(r
            .take(Value::Error("READONLY You can't write".into()))
            .is_err());
        assert!(matches!(
            one.try_recv(),
            Ok(Err(BrokerError::Unavailable(_)))
        ));
        r.lost();
        let mut two = two;
        assert!(matches!(two.try_recv(), Ok(Err(BrokerError::Uncertain(_)))));
    }
}
