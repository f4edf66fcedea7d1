//! The auth strategies linked into the server are found like every other
//! built-in: `zaqar-server plugins` lists them under `zaqar.auth`.

use zaqar_tests::TestServer;

#[test]
fn keystone_and_static_are_built_in_auth_strategies() {
    let exited = TestServer::run_to_exit("", &["plugins"], &[]);
    assert!(exited.status.success(), "{exited:?}");
    for (name, crate_name) in [("keystone", "auth-keystone"), ("static", "auth-static")] {
        let row = exited
            .stdout
            .lines()
            .find(|l| {
                let columns: Vec<&str> = l.split_whitespace().collect();
                columns.first() == Some(&"zaqar.auth") && columns.get(1) == Some(&name)
            })
            .unwrap_or_else(|| panic!("no zaqar.auth {name} in:\n{}", exited.stdout));
        assert!(row.contains(&format!("built-in ({crate_name})")), "{row}");
    }
}
