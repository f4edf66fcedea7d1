//! A WebSocket frame as a client sends it, as JSON text and as MessagePack:
//! decoding, reading its headers and body fields, finding a MessagePack
//! frame's members and transcoding between the two encodings never panic,
//! and a JSON value that survives the trip to MessagePack and back is the
//! same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zaqar_host::api::{frame, packed};

fn read(text: &[u8]) {
    if let Ok(frame::Decoded::Frame(decoded)) = frame::decode(text) {
        let headers = frame::Headers::read(decoded.headers);
        let _ = headers.get("client-id");
        let _ = headers.to_http();
        let _ = frame::Fields::read(decoded.body);
        let _ = frame::as_string(decoded.action);
    }
}

fuzz_target!(|data: &[u8]| {
    read(data);
    if let Some(members) = packed::members(data) {
        let mut answer = Vec::new();
        let _ = packed::envelope(&mut answer, &members, false, b"{}", 200);
    }
    if let Ok(json) = frame::msgpack_to_json(data) {
        read(&json);
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
