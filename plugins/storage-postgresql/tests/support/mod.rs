//! Throw-away databases on the local PostgreSQL for the tests.
//!
//! `ZAQAR_TEST_PG_ADMIN_URI` names a database and a role allowed to create
//! databases (default: `postgres` on 127.0.0.1:5432, trust auth). Each test
//! gets `zaqar_test_<random>`, dropped (with its connections) at the end.

#![allow(dead_code)] // each test file uses a different part of this module

use storage_postgresql::PostgresConfig;
use tokio_postgres::NoTls;

pub fn admin_uri() -> String {
    std::env::var("ZAQAR_TEST_PG_ADMIN_URI")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The admin URI with its database replaced by `name`.
pub fn uri_of(name: &str) -> String {
    let admin = admin_uri();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_owned(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let cut = base.rfind('/').expect("the admin uri names a database");
    format!("{}/{name}{query}", &base[..cut])
}

pub async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&admin_uri(), NoTls)
        .await
        .expect("the test PostgreSQL answers (see ZAQAR_TEST_PG_ADMIN_URI)");
    tokio::spawn(connection);
    client
}

/// A database that is dropped when this is.
pub struct TestDatabase {
    pub name: String,
    pub uri: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("zaqar_test_{}", uuid::Uuid::new_v4().simple());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        let uri = uri_of(&name);
        Self { name, uri }
    }

    pub fn config(&self) -> PostgresConfig {
        PostgresConfig {
            uri: self.uri.clone(),
            pool_size: 8,
            ..PostgresConfig::default()
        }
    }

    /// A connection to this database (not through a store).
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.uri, NoTls)
            .await
            .expect("the test database answers");
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime, where blocking on another
        // future is not allowed: drop the database from a helper thread.
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(async move {
                    admin()
                        .await
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
