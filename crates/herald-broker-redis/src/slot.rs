//! Redis Cluster hash slots: CRC16 (XMODEM) of the key's hash tag, modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The slot of `key`, honouring a `{hash tag}`.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) % SLOTS as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"123456789"), 12739);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"herald:seq:{news}"), slot(b"news"));
        assert_eq!(slot(b"herald:ch:{news}"), slot(b"herald:seq:{news}"));
        assert_eq!(
            slot(b"a{}b"),
            slot(b"a{}b"),
            "an empty tag hashes the whole key"
        );
    }
}
