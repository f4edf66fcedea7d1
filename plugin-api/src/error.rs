//! The one error type that crosses the plugin boundary.

use std::fmt;

use abi_stable::{std_types::RString, StableAbi};

/// What kind of failure a [`PluginError`] reports.
///
/// A transparent `u32` rather than an enum, so that later versions of this
/// crate can add codes without breaking the ABI: a host that meets a code it
/// does not know treats it like [`ErrorCode::INTERNAL`].
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// A bug or an unexpected state inside the plugin. The host answers 500.
    pub const INTERNAL: Self = Self(0);
    /// The plugin's code panicked; the panic was caught at the boundary.
    pub const PANICKED: Self = Self(1);
    /// The backend (disk, database, network) is unavailable right now.
    /// The host answers 503 and the client may retry.
    pub const UNAVAILABLE: Self = Self(2);
    /// The plugin's configuration is invalid; reported at start-up.
    pub const BAD_CONFIG: Self = Self(3);
    /// The plugin does not offer this method: it was written (or its library
    /// built) against an older plugin-api 1.x, or it chose not to implement
    /// an optional method. The host falls back to what the method's
    /// documentation says it does without it. Since 1.1.
    pub const UNSUPPORTED: Self = Self(4);
    /// The addressed queue does not exist.
    pub const QUEUE_NOT_FOUND: Self = Self(10);
    /// The addressed message does not exist (or has expired).
    pub const MESSAGE_NOT_FOUND: Self = Self(11);
    /// The addressed claim does not exist (or has expired).
    pub const CLAIM_NOT_FOUND: Self = Self(12);
    /// The addressed subscription does not exist (or has expired).
    pub const SUBSCRIPTION_NOT_FOUND: Self = Self(13);
    /// The addressed pool or flavor does not exist.
    pub const RESOURCE_NOT_FOUND: Self = Self(14);
    /// A message is under a live claim and the caller did not present it.
    pub const MESSAGE_IS_CLAIMED: Self = Self(20);
    /// A claim id was given for a message that is not currently claimed.
    pub const MESSAGE_NOT_CLAIMED: Self = Self(21);
    /// The write would violate a uniqueness rule (e.g. a duplicate subscriber).
    pub const CONFLICT: Self = Self(30);
    /// The caller's input is invalid in a way only the plugin can tell.
    pub const INVALID_INPUT: Self = Self(40);
    /// A notification could not be delivered but a retry may succeed.
    pub const DELIVERY_RETRYABLE: Self = Self(50);
    /// A notification can never be delivered (bad address, rejected).
    pub const DELIVERY_PERMANENT: Self = Self(51);
    /// The request's credentials are missing, invalid or expired (an auth
    /// plugin's refusal). The host answers 401. Since 1.1.
    pub const UNAUTHORIZED: Self = Self(60);

    /// A short lowercase name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::INTERNAL => "internal",
            Self::PANICKED => "panicked",
            Self::UNAVAILABLE => "unavailable",
            Self::BAD_CONFIG => "bad_config",
            Self::UNSUPPORTED => "unsupported",
            Self::QUEUE_NOT_FOUND => "queue_not_found",
            Self::MESSAGE_NOT_FOUND => "message_not_found",
            Self::CLAIM_NOT_FOUND => "claim_not_found",
            Self::SUBSCRIPTION_NOT_FOUND => "subscription_not_found",
            Self::RESOURCE_NOT_FOUND => "resource_not_found",
            Self::MESSAGE_IS_CLAIMED => "message_is_claimed",
            Self::MESSAGE_NOT_CLAIMED => "message_not_claimed",
            Self::CONFLICT => "conflict",
            Self::INVALID_INPUT => "invalid_input",
            Self::DELIVERY_RETRYABLE => "delivery_retryable",
            Self::DELIVERY_PERMANENT => "delivery_permanent",
            Self::UNAUTHORIZED => "unauthorized",
            _ => "unknown",
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

/// An error returned by a plugin (or by the host to a plugin).
///
/// `message` is for operators and logs; the host decides what a client sees.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// A human-readable explanation.
    pub message: RString,
}

impl PluginError {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: RString::from(message.into()),
        }
    }

    /// [`ErrorCode::INTERNAL`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::INTERNAL, message)
    }

    /// [`ErrorCode::UNAVAILABLE`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UNAVAILABLE, message)
    }

    /// [`ErrorCode::BAD_CONFIG`].
    pub fn bad_config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BAD_CONFIG, message)
    }

    /// [`ErrorCode::UNSUPPORTED`] for `method`.
    pub fn unsupported(method: &str) -> Self {
        Self::new(
            ErrorCode::UNSUPPORTED,
            format!("`{method}` is not offered by this plugin"),
        )
    }

    /// [`ErrorCode::UNAUTHORIZED`].
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UNAUTHORIZED, message)
    }

    /// Whether this is [`ErrorCode::UNSUPPORTED`].
    pub fn is_unsupported(&self) -> bool {
        self.code == ErrorCode::UNSUPPORTED
    }

    /// An error describing a caught panic, with the panic's message when it
    /// is a string.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        Self::new(ErrorCode::PANICKED, format!("plugin panicked: {text}"))
    }
}

impl fmt::Debug for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PluginError({:?}: {})", self.code, self.message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.name())
    }
}

impl std::error::Error for PluginError {}

/// The result of every fallible plugin call, on the Rust side of the boundary.
pub type PluginResult<T> = Result<T, PluginError>;
