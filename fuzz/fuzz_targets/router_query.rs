//! A request path and query string as a client sends them: routing and
//! query parsing never panic, and a routed path reports an action for the
//! methods Zaqar serves or none.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zaqar_host::api::{params, router};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    for admin in [false, true] {
        if let Some(route) = router::route(path, admin) {
            for method in ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"] {
                let _ = route.resource.action(method);
            }
            let _ = route.resource.allow();
        }
    }
    let parsed = params::QueryParams::parse(query);
    let _ = format!("{parsed:?}");
    for value in query.split('&') {
        let _ = params::parse_python_int(value);
        let _ = params::parse_falcon_bool(value);
    }
});
