//! The WebSocket front end (§5).

use plugin_api::transport::ApiRequest;

use super::{http::HttpResponse, Api};

/// Serves one WebSocket frame.
pub async fn handle(_api: &Api, _request: &ApiRequest) -> HttpResponse {
    HttpResponse::empty(400)
}
