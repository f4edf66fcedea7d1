//! The `keystone` auth strategy of zaqar-server (being written).
