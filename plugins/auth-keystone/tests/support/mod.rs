//! The real Keystone of the tests lives in `zaqar-test-support`, shared
//! with the server's end-to-end tests.

pub use zaqar_test_support::keystone::Keystone;
