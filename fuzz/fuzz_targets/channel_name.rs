//! Channel names from clients and the HTTP API: a name that parses is the input unchanged,
//! within the length limit, and its namespace is its prefix.

#![no_main]

use herald_protocol::{channel::MAX_LEN, ChannelName};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let limit = data.first().map_or(MAX_LEN, |&b| usize::from(b));
    for (name, max) in [
        (ChannelName::parse(text), MAX_LEN),
        (ChannelName::parse_with_max(text, limit), limit.min(MAX_LEN)),
    ] {
        if let Ok(name) = name {
            assert_eq!(name.as_str(), text);
            assert!(!text.is_empty() && text.len() <= max);
            if let Some(ns) = name.namespace() {
                assert!(text.starts_with(ns) && text[ns.len()..].starts_with(':'));
            }
        }
    }
});
