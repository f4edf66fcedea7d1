//! A subscriber URI as a client sends it in a subscription: finding its
//! scheme and the private-address check never panic, and a web URI whose
//! host (as the webhook sink's URI parser reads it) is a literal private
//! address is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zaqar_host::{api::subscriptions, notify};

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    let _ = notify::scheme_of(uri);
    let scheme = subscriptions::url_scheme(uri);
    let accepted = subscriptions::check_public_address(uri).is_ok();
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return;
    }
    let Ok(parsed) = uri.parse::<http::Uri>() else {
        return;
    };
    let Some(host) = parsed.host() else {
        return;
    };
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(address) = literal.parse::<std::net::IpAddr>() {
        if plugin_api::net::is_private_address(address) {
            assert!(!accepted, "{uri} reaches the private address {address}");
        }
    }
});
