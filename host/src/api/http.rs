//! The HTTP front end: Zaqar's request hooks in their order, then the
//! command, then the reply rendered as Zaqar's HTTP API renders it.

use std::borrow::Cow;

use plugin_api::transport::{ApiRequest, Protocol};

use super::{
    action::Caller,
    command::{Command, Document, Param, PostBody, Source},
    errors::{ApiError, ApiResult, JSON_PATCH_MEDIA_TYPE},
    homedoc::VERSIONS,
    http_render::render,
    params::QueryParams,
    queues::{self, LIST_PARAMS},
    router::{self, Action, Resource},
    signed_url::{self, SignedHeaders},
    validation::{ClientId, ProjectId, QueueName},
    Api,
};
use crate::metrics::Route;

/// An HTTP answer before it crosses the boundary.
#[derive(Debug)]
pub struct HttpResponse {
    /// The status.
    pub status: u16,
    /// Headers, lowercase names.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON answer.
    pub fn json(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body,
        }
    }

    /// An answer without a body (204, or a 201 the caller decorates).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Zaqar's error document (`{"title"[, "description"]}`, `vary: Accept`).
    pub fn error(error: &ApiError) -> Self {
        let mut headers = error.headers();
        let mut body = Vec::new();
        if let ApiError::Unauthorized = error {
            // keystonemiddleware's document, which Zaqar clients expect.
            body.extend_from_slice(
                b"{\"error\":{\"code\":401,\"title\":\"Unauthorized\",\"message\":",
            );
            super::render::push_str(&mut body, &error.description().unwrap_or_default());
            body.extend_from_slice(b"}}");
            headers.push(("content-type", "application/json".into()));
        } else if error.has_body() {
            body.extend_from_slice(b"{\"title\":");
            super::render::push_str(&mut body, &error.title());
            if let Some(description) = error.description() {
                body.extend_from_slice(b",\"description\":");
                super::render::push_str(&mut body, &description);
            }
            body.push(b'}');
            headers.push(("content-type", "application/json".into()));
        }
        headers.push(("vary", "Accept".into()));
        Self {
            status: error.status(),
            headers,
            body,
        }
    }
}

/// Serves one HTTP request. HEAD answers carry no body. `route` learns
/// what the request asked for, as far as it got (for the metrics).
pub async fn handle(api: &Api, request: &ApiRequest, route: &mut Route) -> HttpResponse {
    let console = api.console.serve(
        request.method.as_str(),
        &request.path,
        header(request, "host"),
    );
    let mut response = match console {
        Some(response) => response,
        None => match serve(api, request, route).await {
            Ok(response) => response,
            Err(error) => HttpResponse::error(&error),
        },
    };
    if request.method.as_str() == "HEAD" {
        response.body.clear();
    }
    response
}

fn header<'a>(request: &'a ApiRequest, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|h| h.name.as_str() == name)
        .map(|h| h.value.as_str())
}

async fn serve(api: &Api, request: &ApiRequest, seen: &mut Route) -> ApiResult<HttpResponse> {
    // An unknown route is a 404 before any header is looked at.
    let Some(route) = router::route_with(&request.path, api.admin_mode, api.pooling()) else {
        if request.path.as_str() == "/metrics" && api.metrics {
            *seen = Route::Metrics;
            return metrics_endpoint(api, request).await;
        }
        return Err(ApiError::RouteNotFound);
    };
    let method = request.method.as_str();
    if let Some(action) = route.resource.action(method) {
        *seen = Route::Action(action);
    }
    if route.resource == Resource::Versions {
        *seen = Route::Versions;
        // `/` needs no headers at all.
        return match method {
            "GET" => Ok(HttpResponse::json(300, VERSIONS.as_bytes().to_vec())),
            "OPTIONS" => Ok(HttpResponse::empty(200).with("allow", "GET, OPTIONS".into())),
            _ => Err(ApiError::MethodNotAllowed {
                allow: "GET, OPTIONS".into(),
            }),
        };
    }

    // Hook 1: a pre-signed URL must verify.
    check_signature(api, request, &route.path)?;
    // Hook 2: curl's `-d` default type is refused when a body comes with it.
    let content_type = header(request, "content-type");
    let has_body = header(request, "content-length").is_some_and(|length| length.trim() != "0")
        || !request.body.is_empty();
    if has_body
        && content_type.is_some_and(|t| {
            media_type(t).eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    {
        return Err(ApiError::FormUrlencodedBody);
    }
    // Hook 3.
    if !accepts_json(header(request, "accept")) {
        return Err(ApiError::NotAcceptable);
    }
    let caller = identify(api, request).await?;
    let project = &caller.project;
    let queue = route
        .queue
        .as_deref()
        .map(|name| QueueName::parse(name, project))
        .transpose()?;

    // Only now does a wrong method show: Zaqar's hooks run first.
    if method == "OPTIONS" {
        return Ok(HttpResponse::empty(200).with("allow", route.resource.allow()));
    }
    let mut action = route
        .resource
        .action(method)
        .ok_or_else(|| ApiError::MethodNotAllowed {
            allow: route.resource.allow(),
        })?;
    // Zaqar answers HEAD /v2/ping without asking the store.
    if method == "HEAD" && action == Action::PingNode {
        return Ok(HttpResponse::empty(204));
    }
    let params = QueryParams::parse(&request.query);
    if action == Action::MessageList && params.list("ids")?.is_some() {
        action = Action::MessageGetMany;
        *seen = Route::Action(action);
    }
    let body = (!request.body.is_empty()).then_some(request.body.as_slice());
    if action == Action::QueueUpdate {
        queues::check_patch_size(api, body)?;
        // Media type parameters such as `; charset=utf-8` are accepted.
        if !content_type.is_some_and(|t| media_type(t).eq_ignore_ascii_case(JSON_PATCH_MEDIA_TYPE))
        {
            return Err(ApiError::UnsupportedPatchMediaType);
        }
    }
    let source = HttpSource {
        query: &params,
        body,
    };
    let command = Command::build(api, action, queue, route.id.clone(), &source)?;
    // `wait` turns an empty listing or claim into a long-poll.
    let reply = crate::streams::wait::dispatch(api, &caller, &command, &params).await?;
    Ok(render(api, &command, &route.path, reply))
}

/// `GET /metrics`: the Prometheus exposition, for the admin role only (as
/// the identity grants it; `X-Roles: admin` under `noauth`).
async fn metrics_endpoint(api: &Api, request: &ApiRequest) -> ApiResult<HttpResponse> {
    let method = request.method.as_str();
    if !matches!(method, "GET" | "HEAD" | "OPTIONS") {
        return Err(ApiError::MethodNotAllowed {
            allow: "GET, HEAD, OPTIONS".into(),
        });
    }
    if method == "OPTIONS" {
        return Ok(HttpResponse::empty(200).with("allow", "GET, HEAD, OPTIONS".into()));
    }
    let admin = match &api.auth {
        Some(auth) => {
            auth.authenticate(
                &request.headers,
                Protocol::HTTP,
                request.peer.as_str(),
                api.now_ms(),
            )
            .await?
            .admin
        }
        None => Caller::roles_grant_admin(header(request, "x-roles")),
    };
    if !admin {
        return Err(ApiError::Forbidden);
    }
    let metrics = crate::metrics::global();
    metrics.read_store(&api.stores.messages).await;
    Ok(HttpResponse {
        status: 200,
        headers: vec![("content-type", crate::metrics::CONTENT_TYPE.into())],
        body: metrics.render().into_bytes(),
    })
}

/// Zaqar's first request hook: a pre-signed URL (`URL-Signature` and its
/// companions) must verify for this method and path.
pub(crate) fn check_signature(api: &Api, request: &ApiRequest, path: &str) -> ApiResult<()> {
    let method = request.method.as_str();
    if let Some(signature) = header(request, "url-signature") {
        let headers = SignedHeaders {
            signature,
            methods: header(request, "url-methods"),
            paths: header(request, "url-paths"),
            expires: header(request, "url-expires"),
            project: header(request, "x-project-id"),
        };
        if !signed_url::verify(
            api.signing_key.as_deref(),
            method,
            path,
            headers,
            api.now_ms(),
        ) {
            return Err(ApiError::SignatureRejected);
        }
    }
    Ok(())
}

/// Who is asking: the auth strategy's identity (unless the URL is
/// pre-signed, its signature checked already), then Zaqar's `Client-ID`
/// and `X-Project-ID` hooks.
pub(crate) async fn identify(api: &Api, request: &ApiRequest) -> ApiResult<Caller> {
    // Under an auth strategy every request proves who it is, except a
    // pre-signed one, whose signature (checked above) names its project.
    let signed = header(request, "url-signature").is_some();
    let identity = match &api.auth {
        Some(auth) if !signed => Some(
            auth.authenticate(
                &request.headers,
                Protocol::HTTP,
                request.peer.as_str(),
                api.now_ms(),
            )
            .await?,
        ),
        _ => None,
    };
    // Hooks 4–7.
    let client_id = ClientId::from_header(header(request, "client-id"), api.client_id_rule)?;
    let project = match &identity {
        Some(identity) => {
            ProjectId::from_header(Some(identity.project_for(header(request, "x-project-id"))?))?
        }
        None => ProjectId::from_header(header(request, "x-project-id"))?,
    };
    // Roles come from the identity; `X-Roles` only counts without auth.
    let admin = match &identity {
        Some(identity) => identity.admin,
        None => api.auth.is_none() && Caller::roles_grant_admin(header(request, "x-roles")),
    };
    api.admit(&project)?;
    Ok(Caller {
        project,
        client_id,
        admin,
    })
}

/// An HTTP request's fields: the query string's parameters and the body,
/// which is every action's document.
struct HttpSource<'a> {
    query: &'a QueryParams,
    body: Option<&'a [u8]>,
}

impl Source for HttpSource<'_> {
    fn text(&self, param: Param) -> ApiResult<Option<Cow<'_, str>>> {
        self.query.text(param.name())
    }

    fn int(&self, param: Param) -> ApiResult<Option<i64>> {
        self.query.int(param.name())
    }

    fn boolean(&self, param: Param) -> ApiResult<Option<bool>> {
        self.query.boolean(param.name())
    }

    fn list(&self, param: Param) -> ApiResult<Option<Vec<String>>> {
        self.query.list(param.name())
    }

    fn filters(&self) -> Vec<(String, String)> {
        self.query.others(&LIST_PARAMS)
    }

    fn document(&self, _: Document) -> Option<Cow<'_, [u8]>> {
        self.body.map(Cow::Borrowed)
    }

    fn post_body(&self) -> PostBody<'_> {
        PostBody::Document(self.body)
    }
}

/// The media type of a `Content-Type` value, without parameters.
fn media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// Falcon's `client_accepts_json`: no `Accept`, or a range admitting
/// `application/json` with a non-zero quality.
fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        quality > 0.0 && matches!(media.as_str(), "*/*" | "application/*" | "application/json")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_admits_json_through_wildcards_unless_quality_is_zero() {
        for accept in [
            None,
            Some(""),
            Some("application/json"),
            Some("*/*"),
            Some("text/html, application/*;q=0.5"),
        ] {
            assert!(accepts_json(accept), "{accept:?}");
        }
        for accept in [
            Some("text/html"),
            Some("application/xml"),
            Some("application/json;q=0"),
        ] {
            assert!(!accepts_json(accept), "{accept:?}");
        }
    }

    #[test]
    fn media_type_ignores_parameters() {
        assert_eq!(
            media_type("application/openstack-messaging-v2.0-json-patch; charset=utf-8"),
            JSON_PATCH_MEDIA_TYPE
        );
    }

    #[test]
    fn error_document_has_title_description_and_vary() {
        let response = HttpResponse::error(&ApiError::MissingClientId);
        assert_eq!(response.status, 400);
        assert_eq!(
            String::from_utf8(response.body).unwrap(),
            r#"{"title":"Missing header value","description":"The \"Client-Id\" header is required."}"#
        );
        assert!(response.headers.contains(&("vary", "Accept".to_string())));
    }

    #[test]
    fn not_acceptable_has_no_body() {
        let response = HttpResponse::error(&ApiError::NotAcceptable);
        assert_eq!(response.status, 406);
        assert!(response.body.is_empty());
    }
}
