//! Every error a client can see, in one enum: each variant knows Zaqar's
//! status, title and description (`transport/wsgi/errors.py` and falcon's
//! defaults), so no handler spells an error body itself.

use plugin_api::{ErrorCode, PluginError};

/// The media type queue PATCH requires.
pub const JSON_PATCH_MEDIA_TYPE: &str = "application/openstack-messaging-v2.0-json-patch";

/// A request that cannot be served, as Zaqar reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No route matches the path: falcon's bare `404 Not Found`.
    RouteNotFound,
    /// A pre-signed URL that does not verify: the same bare 404.
    SignatureRejected,
    /// The route exists but not for this method; `allow` lists the methods.
    MethodNotAllowed { allow: String },
    /// `Content-Type: application/x-www-form-urlencoded` with a body.
    FormUrlencodedBody,
    /// The client's `Accept` excludes JSON: falcon answers 406 with no body.
    NotAcceptable,
    /// No `Client-ID` header.
    MissingClientId,
    /// A `Client-ID` that is not a UUID (strict mode).
    MalformedClientId,
    /// A `Client-ID` of the wrong length (`client_id_uuid_safe = off`).
    ClientIdLength { min: u32, max: u32 },
    /// No `X-Project-ID` header.
    MissingProject,
    /// An empty `X-Project-ID` header.
    EmptyProject,
    /// A bad queue name (or a project id too long) in the path.
    InvalidQueueIdentification,
    /// A query parameter of the wrong type (falcon's wording).
    InvalidParameter { name: String, expected: ParamKind },
    /// Zaqar's `HTTPBadRequestAPI`: a validator's message.
    BadRequestApi(String),
    /// Zaqar's `HTTPBadRequestBody`: the body is malformed or misshapen.
    BadRequestBody(String),
    /// An object was expected and something else came, or vice versa.
    DocumentTypeNotSupported,
    /// The policy denies the action (admin-only routes).
    Forbidden,
    /// `Not found` with the storage error's sentence.
    NotFound(String),
    /// `Resource conflict` with a sentence; `location` is sent as a header.
    Conflict {
        description: String,
        location: Option<String>,
    },
    /// Queue PATCH without the JSON-patch media type.
    UnsupportedPatchMediaType,
    /// The body was larger than the transport accepts: 413, nothing done.
    BodyTooLarge,
    /// Missing, invalid or expired credentials under an auth strategy:
    /// 401 with keystonemiddleware's document.
    Unauthorized,
    /// Message deletion refused: 400 or 403 with title `Unable to delete`.
    UnableToDelete {
        status: u16,
        description: &'static str,
    },
    /// A pool or flavor change refused, with Zaqar's title for it
    /// (`Unable to create`, `Unable to delete`, `updatefail`).
    Refused {
        status: u16,
        title: &'static str,
        description: String,
    },
    /// Subscription PATCH naming only unknown fields (Zaqar's wording).
    UnableToUpdateSubscription { id: String },
    /// The project made more requests than `[server]
    /// rate_limit_per_project` allows: 429 with `Retry-After`.
    TooManyRequests { retry_after: u64 },
    /// The backend is unavailable: `<what failed> Please try again in a few seconds.`
    Unavailable(&'static str),
    /// A bug or a plugin panic: the request fails, the server keeps serving.
    Internal(&'static str),
}

/// The type falcon expected of a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// An integer (`limit`, `pop`).
    Integer,
    /// A boolean (`echo`, `detailed`, ...).
    Boolean,
}

impl ApiError {
    /// Maps a storage failure in a handler whose Zaqar failure sentence is
    /// `what` (e.g. `"Queue could not be created."`): an unavailable backend
    /// is a 503 the client may retry; anything else is a 500.
    pub fn storage(error: PluginError, what: &'static str) -> Self {
        match error.code {
            ErrorCode::UNAVAILABLE => {
                tracing::warn!(%error, "storage unavailable: {what}");
                Self::Unavailable(what)
            }
            _ => {
                tracing::error!(%error, "storage failure: {what}");
                Self::Internal(what)
            }
        }
    }

    /// A Zaqar `HTTPBadRequestAPI` with the given validator message.
    pub fn api(message: impl Into<String>) -> Self {
        Self::BadRequestApi(message.into())
    }

    /// A Zaqar `HTTPBadRequestBody` with the given message.
    pub fn body(message: impl Into<String>) -> Self {
        Self::BadRequestBody(message.into())
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Self::RouteNotFound | Self::SignatureRejected | Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::NotAcceptable => 406,
            Self::Forbidden => 403,
            Self::Conflict { .. } => 409,
            Self::UnsupportedPatchMediaType => 415,
            Self::BodyTooLarge => 413,
            Self::Unauthorized => 401,
            Self::UnableToDelete { status, .. } | Self::Refused { status, .. } => *status,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
            Self::TooManyRequests { .. } => 429,
            Self::FormUrlencodedBody
            | Self::MissingClientId
            | Self::MalformedClientId
            | Self::ClientIdLength { .. }
            | Self::MissingProject
            | Self::EmptyProject
            | Self::InvalidQueueIdentification
            | Self::InvalidParameter { .. }
            | Self::BadRequestApi(_)
            | Self::BadRequestBody(_)
            | Self::DocumentTypeNotSupported
            | Self::UnableToUpdateSubscription { .. } => 400,
        }
    }

    /// The error title.
    pub fn title(&self) -> String {
        match self {
            Self::RouteNotFound | Self::SignatureRejected => "404 Not Found".into(),
            Self::MethodNotAllowed { .. } => "405 Method Not Allowed".into(),
            Self::FormUrlencodedBody => "Invalid Content-Type".into(),
            Self::NotAcceptable => "406 Not Acceptable".into(),
            Self::MissingClientId => "Missing header value".into(),
            Self::MalformedClientId => "Wrong UUID value".into(),
            // Zaqar puts this sentence in the title and sends no description.
            Self::ClientIdLength { min, max } => {
                format!("Length of client id must be at least {min} and no greater than {max}.")
            }
            Self::MissingProject => "Project-Id Missing".into(),
            Self::EmptyProject => "Empty project header not allowed".into(),
            Self::InvalidQueueIdentification => "Invalid queue identification".into(),
            Self::InvalidParameter { .. } => "Invalid parameter".into(),
            Self::BadRequestApi(_) => "Invalid API request".into(),
            Self::BadRequestBody(_) | Self::DocumentTypeNotSupported => {
                "Invalid request body".into()
            }
            Self::Forbidden => "Not authorized".into(),
            Self::NotFound(_) => "Not found".into(),
            Self::Conflict { .. } => "Resource conflict".into(),
            Self::UnsupportedPatchMediaType => "415 Unsupported Media Type".into(),
            Self::BodyTooLarge => "Request body too large".into(),
            Self::Unauthorized => "Unauthorized".into(),
            Self::UnableToDelete { .. } => "Unable to delete".into(),
            Self::Refused { title, .. } => (*title).into(),
            Self::UnableToUpdateSubscription { .. } => "Unable to update subscription".into(),
            Self::Unavailable(_) => "Service temporarily unavailable".into(),
            Self::TooManyRequests { .. } => "Too many requests".into(),
            Self::Internal(_) => "Internal server error".into(),
        }
    }

    /// The error description, absent where Zaqar sends only a title.
    pub fn description(&self) -> Option<String> {
        let text = match self {
            Self::RouteNotFound
            | Self::SignatureRejected
            | Self::MethodNotAllowed { .. }
            | Self::NotAcceptable
            | Self::ClientIdLength { .. } => return None,
            Self::FormUrlencodedBody => "Endpoint does not accept `application/x-www-form-urlencoded` content; currently supported media type is `application/json`; specify proper client-side media type with the \"Content-Type\" header.".into(),
            Self::MissingClientId => "The \"Client-Id\" header is required.".into(),
            Self::MalformedClientId => "Malformed hexadecimal UUID.".into(),
            Self::MissingProject => "The header X-PROJECT-ID was missing".into(),
            Self::EmptyProject => "X-PROJECT-ID cannot be an empty string. Specify the right header X-PROJECT-ID and retry.".into(),
            Self::InvalidQueueIdentification => {
                "The format of the submitted queue name or project id is not valid.".into()
            }
            Self::InvalidParameter { name, expected: ParamKind::Integer } => {
                format!("The \"{name}\" parameter is invalid. The value must be an integer.")
            }
            Self::InvalidParameter { name, expected: ParamKind::Boolean } => format!(
                "The \"{name}\" parameter is invalid. The value of the parameter must be \"true\" or \"false\"."
            ),
            Self::BadRequestApi(text) | Self::BadRequestBody(text) | Self::NotFound(text) => text.clone(),
            Self::DocumentTypeNotSupported => "Document type not supported.".into(),
            Self::Forbidden => "You are not authorized to complete this action.".into(),
            Self::Conflict { description, .. } => description.clone(),
            // The text stays Zaqar's (a Python dict); the header is really sent too.
            Self::UnsupportedPatchMediaType => format!(
                "Accepted media type for PATCH: {{'Accept-Patch': '{JSON_PATCH_MEDIA_TYPE}'}}."
            ),
            Self::Unauthorized => {
                "The request you have made requires authentication.".into()
            }
            Self::BodyTooLarge => {
                "The request body is larger than this server accepts; nothing was changed.".into()
            }
            Self::UnableToDelete { description, .. } => (*description).into(),
            Self::Refused { description, .. } => description.clone(),
            Self::UnableToUpdateSubscription { id } => format!("Subscription {id} could not be updated."),
            Self::Unavailable(what) => format!("{what} Please try again in a few seconds."),
            Self::TooManyRequests { retry_after } => format!(
                "This project made more requests than the server allows per second; nothing was changed. Please try again in {retry_after} second(s)."
            ),
            Self::Internal(what) => (*what).into(),
        };
        Some(text)
    }

    /// Extra response headers this error carries.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::MethodNotAllowed { allow } => vec![("allow", allow.clone())],
            Self::UnsupportedPatchMediaType => vec![("accept-patch", JSON_PATCH_MEDIA_TYPE.into())],
            Self::Conflict {
                location: Some(location),
                ..
            } => vec![("location", location.clone())],
            Self::TooManyRequests { retry_after } => {
                vec![("retry-after", retry_after.to_string())]
            }
            _ => Vec::new(),
        }
    }

    /// Whether falcon would send a body (it cannot serialize a 406 for a
    /// client that does not accept JSON).
    pub fn has_body(&self) -> bool {
        !matches!(self, Self::NotAcceptable)
    }
}

/// The result of every API step.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_storage_is_a_503_with_zaqars_retry_sentence() {
        let error = ApiError::storage(
            PluginError::unavailable("disk gone"),
            "Queue could not be created.",
        );
        assert_eq!(error.status(), 503);
        assert_eq!(error.title(), "Service temporarily unavailable");
        assert_eq!(
            error.description().unwrap(),
            "Queue could not be created. Please try again in a few seconds."
        );
    }

    #[test]
    fn panicked_or_internal_storage_is_a_500_without_plugin_text() {
        for code in [ErrorCode::PANICKED, ErrorCode::INTERNAL, ErrorCode(999)] {
            let error = ApiError::storage(
                PluginError::new(code, "secret detail"),
                "Claim could not be created.",
            );
            assert_eq!(error.status(), 500);
            assert_eq!(error.description().unwrap(), "Claim could not be created.");
        }
    }

    #[test]
    fn client_id_length_error_has_only_a_title() {
        let error = ApiError::ClientIdLength { min: 10, max: 36 };
        assert_eq!(
            error.title(),
            "Length of client id must be at least 10 and no greater than 36."
        );
        assert_eq!(error.description(), None);
    }

    #[test]
    fn patch_media_type_error_announces_accept_patch() {
        let error = ApiError::UnsupportedPatchMediaType;
        assert_eq!(error.status(), 415);
        assert_eq!(
            error.description().unwrap(),
            "Accepted media type for PATCH: {'Accept-Patch': 'application/openstack-messaging-v2.0-json-patch'}."
        );
        assert_eq!(
            error.headers(),
            vec![("accept-patch", JSON_PATCH_MEDIA_TYPE.to_string())]
        );
    }
}
