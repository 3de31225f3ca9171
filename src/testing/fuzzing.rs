//! Entry points for the fuzz targets in `fuzz/`, and the replay of their corpus as ordinary tests.
//! Not part of the public API: compiled for tests and with the `fuzzing` feature only.

use crate::protocol::{decode_client, encode};
use crate::testing::sim::{Action, World};

/// Decodes one client frame from arbitrary bytes. A frame that decodes must encode and decode
/// back to itself; anything else must be refused with a typed error, never a panic.
pub fn frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(frame) = decode_client(text) {
        let again = decode_client(&encode(&frame)).expect("an encoded frame decodes");
        assert_eq!(again, frame, "a frame survives encoding");
    }
    // The tag-first decoder agrees with decoding through a `serde_json::Value` (which keeps no
    // key order) whenever the text is one JSON object without repeated keys.
    same_either_way::<crate::protocol::ClientFrame>(text);
    same_either_way::<crate::protocol::ServerFrame>(text);
}

fn same_either_way<T>(text: &str)
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let Ok(direct) = serde_json::from_str::<T>(text) else {
        return;
    };
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let via_value = serde_json::from_value::<T>(value);
        assert_eq!(via_value.ok().as_ref(), Some(&direct), "{text}");
    }
}

/// Runs the server core and a client session per device through the actions the bytes spell
/// out, checking every invariant after each step (see `server/sim.rs`).
pub fn core(data: &[u8]) {
    let Some((flags, mut rest)) = data.split_first() else {
        return;
    };
    let mut world = World::new(flags & 1 != 0, flags & 2 != 0);
    while let Some(action) = Action::decode(&mut rest) {
        world.apply(action);
        world.check();
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every input in `fuzz/corpus/<target>`, replayed.
    fn replay(target: &str, run: fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus is in the repository") {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
        count
    }

    #[test]
    fn the_frame_corpus_replays_cleanly() {
        assert!(replay("frame_decode", super::frame) >= 20);
    }

    #[test]
    fn the_core_corpus_replays_cleanly() {
        assert!(replay("room_core", super::core) >= 10);
    }
}
