//! The management store behaviours: pools and flavors.

use plugin_api::{
    management::{FlavorRecord, ManagementStore, NameListQuery, PoolRecord},
    types::{
        ROption::{RNone, RSome},
        RString, RVec,
    },
};

use crate::support::Management;

fn pool(name: &str, weight: u32, flavor: Option<&str>) -> PoolRecord {
    PoolRecord {
        name: name.into(),
        uri: format!("redis://{name}.example.com:6379").into(),
        weight,
        flavor: flavor.map(RString::from).into(),
        options: b"{\"o\":1}".to_vec().into(),
    }
}

fn flavor(project: &str, name: &str, pools: &[&str]) -> FlavorRecord {
    FlavorRecord {
        project: project.into(),
        name: name.into(),
        pool_list: pools.iter().map(|p| RString::from(*p)).collect(),
        capabilities: b"[\"claims\"]".to_vec().into(),
    }
}

fn page(marker: Option<&str>, limit: u32) -> NameListQuery {
    NameListQuery {
        marker: marker.map(RString::from).into(),
        limit,
    }
}

/// A pool put creates (true), a second put replaces (false).
pub async fn pool_put_creates_then_replaces(s: Management) {
    assert!(s.pool_put(pool("a", 10, None)).await.unwrap());
    assert_eq!(
        s.pool_get("a".into()).await.unwrap(),
        RSome(pool("a", 10, None))
    );
    assert!(!s.pool_put(pool("a", 20, Some("gold"))).await.unwrap());
    assert_eq!(
        s.pool_get("a".into()).await.unwrap(),
        RSome(pool("a", 20, Some("gold")))
    );
}

/// A missing pool is `RNone`; deleting it succeeds.
pub async fn missing_pool_is_none_and_its_delete_succeeds(s: Management) {
    assert_eq!(s.pool_get("nope".into()).await.unwrap(), RNone);
    s.pool_delete("nope".into()).await.unwrap();
}

/// Deleting a pool removes it.
pub async fn pool_delete_removes_it(s: Management) {
    s.pool_put(pool("a", 1, None)).await.unwrap();
    s.pool_delete("a".into()).await.unwrap();
    assert_eq!(s.pool_get("a".into()).await.unwrap(), RNone);
    assert!(s.pool_list(page(None, 10)).await.unwrap().is_empty());
}

/// Pools list by ascending name, strictly after the marker.
pub async fn pool_list_pages_by_name_after_marker(s: Management) {
    for name in ["c", "a", "b", "d"] {
        s.pool_put(pool(name, 1, None)).await.unwrap();
    }
    let names = |v: RVec<PoolRecord>| v.iter().map(|p| p.name.to_string()).collect::<Vec<_>>();
    assert_eq!(names(s.pool_list(page(None, 2)).await.unwrap()), ["a", "b"]);
    assert_eq!(
        names(s.pool_list(page(Some("b"), 2)).await.unwrap()),
        ["c", "d"]
    );
    assert!(s.pool_list(page(Some("d"), 2)).await.unwrap().is_empty());
    assert_eq!(
        s.pool_list(page(None, 10)).await.unwrap()[0],
        pool("a", 1, None)
    );
}

/// A flavor put creates then replaces, within its project.
pub async fn flavor_put_creates_then_replaces_within_its_project(s: Management) {
    assert!(s.flavor_put(flavor("p", "gold", &["a"])).await.unwrap());
    assert!(
        s.flavor_put(flavor("q", "gold", &["b"])).await.unwrap(),
        "another project's flavor"
    );
    assert!(!s
        .flavor_put(flavor("p", "gold", &["a", "c"]))
        .await
        .unwrap());
    assert_eq!(
        s.flavor_get("p".into(), "gold".into()).await.unwrap(),
        RSome(flavor("p", "gold", &["a", "c"]))
    );
    assert_eq!(
        s.flavor_get("q".into(), "gold".into()).await.unwrap(),
        RSome(flavor("q", "gold", &["b"]))
    );
    assert_eq!(
        s.flavor_get("r".into(), "gold".into()).await.unwrap(),
        RNone
    );
}

/// Flavors list by name within a project, strictly after the marker.
pub async fn flavor_list_pages_by_name_within_the_project(s: Management) {
    for name in ["c", "a", "b"] {
        s.flavor_put(flavor("p", name, &[])).await.unwrap();
    }
    s.flavor_put(flavor("pp", "x", &[])).await.unwrap();
    s.flavor_put(flavor("o", "z", &[])).await.unwrap();
    let names = |v: RVec<FlavorRecord>| v.iter().map(|f| f.name.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(s.flavor_list("p".into(), page(None, 2)).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(s.flavor_list("p".into(), page(Some("b"), 5)).await.unwrap()),
        ["c"]
    );
    assert!(s
        .flavor_list("nobody".into(), page(None, 5))
        .await
        .unwrap()
        .is_empty());
}

/// Deleting a flavor removes only that project's flavor; a missing one succeeds.
pub async fn flavor_delete_removes_only_that_projects_flavor(s: Management) {
    s.flavor_put(flavor("p", "gold", &[])).await.unwrap();
    s.flavor_put(flavor("q", "gold", &[])).await.unwrap();
    s.flavor_delete("p".into(), "gold".into()).await.unwrap();
    assert_eq!(
        s.flavor_get("p".into(), "gold".into()).await.unwrap(),
        RNone
    );
    assert!(s
        .flavor_get("q".into(), "gold".into())
        .await
        .unwrap()
        .is_some());
    s.flavor_delete("p".into(), "gold".into()).await.unwrap();
}

/// The store answers its health check.
pub async fn management_store_is_alive(s: Management) {
    assert!(s.is_alive().await.unwrap());
}
