//! How failures inside the store are told apart: a caller's own error
//! (answered to that caller only) versus a database failure (which aborts
//! the transaction it happened in).

use plugin_api::{ErrorCode, PluginError};

/// The error of one store operation.
#[derive(Debug)]
pub(crate) enum OpError {
    /// A documented outcome for this caller (`CLAIM_NOT_FOUND`, ...). An
    /// operation returns it before it has written anything, so the batch it
    /// ran in can still commit for everyone else.
    Caller(PluginError),
    /// The database failed (I/O, corruption). The transaction is abandoned.
    Database(String),
}

impl OpError {
    /// The error a caller sees.
    pub(crate) fn into_plugin(self) -> PluginError {
        match self {
            Self::Caller(e) => e,
            Self::Database(message) => {
                PluginError::unavailable(format!("embedded store: {message}"))
            }
        }
    }
}

impl From<PluginError> for OpError {
    fn from(e: PluginError) -> Self {
        Self::Caller(e)
    }
}

macro_rules! database_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for OpError {
            fn from(e: $t) -> Self {
                Self::Database(e.to_string())
            }
        }
    )*};
}

database_errors!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError
);

/// A record that cannot be decoded: the file was damaged or written by an
/// incompatible build.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> OpError {
    OpError::Database(format!("corrupt record: {what}"))
}

/// A caller error with the given code.
pub(crate) fn caller(code: ErrorCode, message: impl Into<String>) -> OpError {
    OpError::Caller(PluginError::new(code, message))
}

/// Shorthand for results inside the store.
pub(crate) type OpResult<T> = Result<T, OpError>;
