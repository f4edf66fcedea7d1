//! Throw-away databases on the local PostgreSQL, for servers started on
//! the `postgresql` store.

use tokio_postgres::NoTls;

/// Where databases are created: a role allowed to `CREATE DATABASE`.
pub fn admin_uri() -> String {
    std::env::var("ZAQAR_TEST_PG_ADMIN_URI")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Runs one SQL batch on the admin database, on a runtime of its own (the
/// callers are synchronous tests).
pub fn admin_execute(sql: &str) -> Result<(), String> {
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(async move {
                let (client, connection) = tokio_postgres::connect(&admin_uri(), NoTls)
                    .await
                    .map_err(|e| format!("connecting to {}: {e}", admin_uri()))?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await.map_err(|e| e.to_string())
            })
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_owned())?
}

/// A fresh database, dropped (with its connections) when this is.
pub struct TestDatabase {
    /// The database name.
    pub name: String,
    /// A URI for it, with the admin URI's role and host.
    pub uri: String,
}

impl TestDatabase {
    /// Creates `zaqar_test_<random>`.
    pub fn create() -> Self {
        let name = format!("zaqar_test_{}", uuid::Uuid::new_v4().simple());
        admin_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("creating a test database: {e}"));
        let admin = admin_uri();
        let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
        let cut = base.rfind('/').expect("the admin uri names a database");
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let uri = format!("{}/{name}{query}", &base[..cut]);
        Self { name, uri }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Err(e) = admin_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
