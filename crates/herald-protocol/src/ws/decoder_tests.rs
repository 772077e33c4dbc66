use super::*;

const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// A masked client frame, as a browser would send it.
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = super::super::client_frame(fin, OpCode::Text, MASK, payload);
    // Opcodes beyond the known ones are part of what is tested.
    f[0] = (f[0] & 0xF0) | opcode;
    f
}

fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Message>, DecodeError> {
    let mut d = Decoder::new(max);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = d.decode(&mut buf)? {
        out.push(m);
    }
    Ok(out)
}

#[test]
fn decodes_text_binary_and_control_frames() {
    let mut bytes = client_frame(true, 1, b"hello");
    bytes.extend(client_frame(true, 2, &[0, 1, 2]));
    bytes.extend(client_frame(true, 9, b"p"));
    bytes.extend(client_frame(true, 10, b""));
    bytes.extend(client_frame(true, 8, &[0x03, 0xE8, b'b', b'y', b'e']));
    assert_eq!(
        decode_all(&bytes, 1024).unwrap(),
        vec![
            Message::Text(Bytes::from_static(b"hello")),
            Message::Binary(Bytes::from_static(&[0, 1, 2])),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Pong,
            Message::Close(Some((1000, "bye".into()))),
        ]
    );
}

#[test]
fn waits_for_partial_frames_byte_by_byte() {
    let payload = vec![b'a'; 300];
    let bytes = client_frame(true, 1, &payload);
    let mut d = Decoder::new(1024);
    let mut buf = BytesMut::new();
    for (i, b) in bytes.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let m = d.decode(&mut buf).unwrap();
        if i + 1 < bytes.len() {
            assert!(m.is_none(), "complete too early at byte {i}");
            assert!(d.wanted(&buf) >= 1);
        } else {
            assert_eq!(m, Some(Message::Text(Bytes::from(payload.clone()))));
        }
    }
    assert!(buf.is_empty());
}

#[test]
fn reassembles_fragments_with_interleaved_control_frames() {
    let mut bytes = client_frame(false, 1, b"he");
    bytes.extend(client_frame(true, 9, b""));
    bytes.extend(client_frame(false, 0, b"ll"));
    bytes.extend(client_frame(true, 0, b"o"));
    assert_eq!(
        decode_all(&bytes, 1024).unwrap(),
        vec![
            Message::Ping(Bytes::new()),
            Message::Text(Bytes::from_static(b"hello"))
        ]
    );
}

#[test]
fn oversized_frames_fail_from_the_header_alone() {
    // Only the header of a frame claiming 2^62 bytes: no payload is needed to refuse it.
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 62).to_be_bytes());
    header.extend_from_slice(&MASK);
    let err = decode_all(&header, 65536).unwrap_err();
    assert!(matches!(err, DecodeError::TooBig { .. }));
    assert_eq!(err.close_code(), 1009);

    let just_over = client_frame(true, 2, &vec![0; 1025]);
    assert!(matches!(
        decode_all(&just_over[..20], 1024),
        Err(DecodeError::TooBig { len: 1025, .. })
    ));
    assert!(decode_all(&client_frame(true, 2, &vec![0; 1024]), 1024).is_ok());
}

#[test]
fn reassembled_messages_over_the_limit_fail() {
    let mut bytes = client_frame(false, 2, &[0; 600]);
    bytes.extend(client_frame(true, 0, &[0; 600]));
    assert!(matches!(
        decode_all(&bytes, 1024),
        Err(DecodeError::TooBig { len: 1200, .. })
    ));
}

#[test]
fn protocol_violations_map_to_1002() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked", vec![0x81, 0x01, b'a']),
        ("reserved bits", {
            let mut f = client_frame(true, 1, b"a");
            f[0] |= 0x40;
            f
        }),
        ("unknown opcode", client_frame(true, 3, b"")),
        ("fragmented ping", client_frame(false, 9, b"")),
        ("long ping", client_frame(true, 9, &[0; 126])),
        ("bare continuation", client_frame(true, 0, b"a")),
        ("text inside fragments", {
            let mut f = client_frame(false, 1, b"a");
            f.extend(client_frame(true, 1, b"b"));
            f
        }),
        ("top bit length", {
            let mut f = vec![0x82, 0xFF];
            f.extend_from_slice(&u64::MAX.to_be_bytes());
            f.extend_from_slice(&MASK);
            f
        }),
        ("close of one byte", client_frame(true, 8, &[3])),
        ("bad close code", client_frame(true, 8, &[0, 5])),
    ];
    for (name, bytes) in cases {
        let err = decode_all(&bytes, 1 << 20).expect_err(name);
        assert_eq!(err.close_code(), 1002, "{name}: {err}");
    }
}

#[test]
fn invalid_utf8_maps_to_1007() {
    let err = decode_all(&client_frame(true, 1, &[0xC3, 0x28]), 1024).unwrap_err();
    assert_eq!(err, DecodeError::InvalidUtf8);
    assert_eq!(err.close_code(), 1007);
    // A character split across fragments is fine once reassembled.
    let mut bytes = client_frame(false, 1, &[0xC3]);
    bytes.extend(client_frame(true, 0, &[0xA9]));
    assert_eq!(
        decode_all(&bytes, 1024).unwrap(),
        vec![Message::Text(Bytes::from("é"))]
    );
    let err = decode_all(&client_frame(true, 8, &[0x03, 0xE8, 0xFF]), 1024).unwrap_err();
    assert_eq!(err.close_code(), 1007);
}
