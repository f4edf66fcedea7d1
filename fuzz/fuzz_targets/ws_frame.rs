//! A WebSocket frame as a client sends it, as JSON text and as MessagePack:
//! decoding, reading its headers and body fields, finding a MessagePack
//! frame's members and transcoding between the two encodings never panic;
//! a MessagePack frame read where it lies reads as its JSON text does; and
//! a JSON value that survives the trip to MessagePack and back is the same
//! value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zaqar_host::api::{frame, packed};

/// What serving reads of a JSON frame, if it is one.
fn read(text: &[u8]) -> Option<String> {
    match frame::decode(text) {
        Ok(frame::Decoded::Frame(decoded)) => {
            Some(frame::describe(&frame::Members::json(&decoded)))
        }
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    read(data);
    if let Some(members) = packed::members(data) {
        let mut answer = Vec::new();
        let _ = packed::envelope(&mut answer, &members, false, b"{}", 200);
    }
    let plain = packed::plain_members(data)
        .map(|members| frame::describe(&frame::Members::packed(&members)));
    if let Ok(json) = frame::msgpack_to_json(data) {
        let through_json = read(&json);
        if plain.is_some() {
            assert_eq!(
                plain, through_json,
                "a MessagePack frame read where it lies differs from its JSON text"
            );
        }
    }
    if let Ok(packed) = frame::json_to_msgpack(data) {
        let back = frame::msgpack_to_json(&packed).expect("our own MessagePack reads back");
        let original: Result<serde_json::Value, _> = serde_json::from_slice(data);
        if let Ok(original) = original {
            let back: serde_json::Value =
                serde_json::from_slice(&back).expect("transcoded JSON parses");
            assert_eq!(
                original, back,
                "JSON → MessagePack → JSON changed the value"
            );
        }
    }
});
