//! The kernel's view of a process's TCP sockets (`/proc/net/tcp` and `tcp6`), to assert what a
//! user checks with `ss`: that a connection is really gone on the server, buffers and all.

/// The states (`ss` names: `ESTABLISHED`, `FIN-WAIT-1`, ...) of every TCP socket bound to the
/// local `port`, listening sockets excepted.
pub fn tcp_states_on_port(port: u16) -> Vec<&'static str> {
    let mut states = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                continue;
            };
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && *state != "0A" {
                states.push(state_name(state));
            }
        }
    }
    states
}

fn state_name(hex: &str) -> &'static str {
    match hex {
        "01" => "ESTABLISHED",
        "02" => "SYN-SENT",
        "03" => "SYN-RECV",
        "04" => "FIN-WAIT-1",
        "05" => "FIN-WAIT-2",
        "06" => "TIME-WAIT",
        "07" => "CLOSE",
        "08" => "CLOSE-WAIT",
        "09" => "LAST-ACK",
        "0B" => "CLOSING",
        _ => "UNKNOWN",
    }
}
