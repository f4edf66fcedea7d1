//! A message post body (`POST /v2/queues/{name}/messages`), and any JSON
//! request document, as a client sends it: parsing never panics, and a body
//! that parses as a post yields messages each with a body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zaqar_host::api::{body, post_body};

fuzz_target!(|data: &[u8]| {
    let _ = body::parse_document(Some(data));
    let _ = body::parse_optional_object(Some(data));
    let _ = post_body::read_post(Some(data));
});
