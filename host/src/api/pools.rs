//! The pools admin API (`/v2/pools`, WebSocket `pool_*`): register, show,
//! change and remove the message stores queues are placed on. Admin only;
//! routed only with `admin_mode` and `pooling` both on, as in Zaqar.

use plugin_api::{
    management::{ManagementStore, NameListQuery, PoolRecord},
    types::{ROption, RString, RVec},
};
use serde_json::{json, Map, Value};

use super::{
    action::{AdminReply, Caller, PageQuery, Reply},
    body::parse_object,
    command::CatalogListArgs,
    errors::{ApiError, ApiResult},
    render::next_href,
    validation::{page_limit, PageKind},
    Api,
};
use crate::pools::{PoolError, Pools};

/// The longest URI or flavor name a pool may have.
const MAX_TEXT: usize = 255;
/// The largest weight.
const MAX_WEIGHT: i64 = u32::MAX as i64;

/// The pool layer, or a 404 when pooling is off (the routes do not exist).
pub fn pools_of(api: &Api) -> ApiResult<&Pools> {
    api.pools.as_deref().ok_or(ApiError::RouteNotFound)
}

fn admin_only(caller: &Caller) -> ApiResult<()> {
    if caller.admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Pool and flavor names: the queue-name alphabet, 1 to 64 characters.
pub fn check_name(name: &str, what: &str) -> ApiResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::api(format!(
            "The format of the submitted {what} name is not valid."
        )))
    }
}

fn storage(error: plugin_api::PluginError) -> ApiError {
    ApiError::storage(error, "The pool catalogue could not be read or changed.")
}

fn pool_error(error: PoolError) -> ApiError {
    match error {
        PoolError::BadUri(text) | PoolError::Unreachable(text) => ApiError::body(text),
        PoolError::UriInUse => ApiError::Conflict {
            description: "The database URI is in use by another pool.".into(),
            location: None,
        },
        PoolError::HoldsQueues => ApiError::Conflict {
            description: "The pool holds queues, and queues never move between pools: its URI and options cannot change.".into(),
            location: None,
        },
        PoolError::Storage(error) => storage(error),
    }
}

/// The pool as Zaqar shows it: `name, uri, weight, flavor[, options], href`.
pub fn pool_document(record: &PoolRecord, detailed: bool) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(record.name.as_str()));
    out.insert("uri".into(), json!(record.uri.as_str()));
    out.insert("weight".into(), json!(record.weight));
    out.insert(
        "flavor".into(),
        record
            .flavor
            .as_ref()
            .into_option()
            .map_or(Value::Null, |f| json!(f.as_str())),
    );
    if detailed {
        let options: Value = serde_json::from_slice(&record.options).unwrap_or_else(|_| json!({}));
        out.insert("options".into(), options);
    }
    out.insert("href".into(), json!(format!("/v2/pools/{}", record.name)));
    Value::Object(out)
}

/// Checks one field of a pool body, with jsonschema's wording.
fn check_field(key: &str, value: &Value) -> ApiResult<()> {
    let shown = value.to_string();
    match key {
        "uri" | "flavor" => match value.as_str() {
            None => Err(ApiError::body(format!("{shown} is not of type 'string'"))),
            Some(text) if text.chars().count() > MAX_TEXT => {
                Err(ApiError::body(format!("{shown} is too long")))
            }
            Some(_) => Ok(()),
        },
        "weight" => match value.as_i64() {
            None => Err(ApiError::body(format!("{shown} is not of type 'integer'"))),
            Some(weight) if weight < 0 => Err(ApiError::body(format!(
                "{weight} is less than the minimum of 0"
            ))),
            Some(weight) if weight > MAX_WEIGHT => Err(ApiError::body(format!(
                "{weight} is greater than the maximum of {MAX_WEIGHT}"
            ))),
            Some(_) => Ok(()),
        },
        "options" if !value.is_object() => {
            Err(ApiError::body(format!("{shown} is not of type 'object'")))
        }
        "options" => Ok(()),
        other => Err(ApiError::body(format!(
            "Additional properties are not allowed ('{other}' was unexpected)"
        ))),
    }
}

fn apply(record: &mut PoolRecord, fields: &Map<String, Value>) {
    if let Some(uri) = fields.get("uri").and_then(Value::as_str) {
        record.uri = uri.into();
    }
    if let Some(weight) = fields.get("weight").and_then(Value::as_i64) {
        record.weight = weight as u32;
    }
    if let Some(flavor) = fields.get("flavor").and_then(Value::as_str) {
        // An empty flavor clears it, as in Zaqar.
        record.flavor = (!flavor.is_empty()).then(|| RString::from(flavor)).into();
    }
    if let Some(options) = fields.get("options") {
        record.options = RVec::from(serde_json::to_vec(options).unwrap_or_default());
    }
}

/// `pool_list`: a page of pools by name.
pub async fn list(api: &Api, caller: &Caller, args: &CatalogListArgs) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    let limit = page_limit(
        args.limit,
        api.limits.max_pools_per_page,
        PageKind::Catalogue,
    )?;
    let detailed = args.detailed == Some(true);
    let records = pools
        .management()
        .pool_list(NameListQuery {
            marker: args.marker.clone().map(RString::from).into(),
            limit,
        })
        .await
        .map_err(storage)?;
    let mut page = PageQuery {
        pairs: Vec::new(),
        marker_first: args.marker.is_some(),
    };
    if let Some(limit) = args.limit {
        page.pairs.push(("limit", limit.to_string()));
    }
    if let Some(detailed) = args.detailed {
        page.pairs.push(("detailed", detailed.to_string()));
    }
    let links = match records.last() {
        Some(last) => json!([{"rel": "next", "href": next_href("/v2/pools", &page, &last.name)}]),
        None => json!([]),
    };
    let listed: Vec<Value> = records.iter().map(|r| pool_document(r, detailed)).collect();
    let content_location = std::iter::once("/v2/pools".to_string())
        .chain((!page.pairs.is_empty() || args.marker.is_some()).then(|| {
            let mut query: Vec<String> =
                page.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if let Some(marker) = &args.marker {
                query.insert(0, format!("marker={marker}"));
            }
            format!("?{}", query.join("&"))
        }))
        .collect();
    Ok(Reply::Admin(AdminReply {
        content_location: Some(content_location),
        ..AdminReply::document(200, json!({"links": links, "pools": listed}))
    }))
}

/// `pool_get`.
pub async fn get(
    api: &Api,
    caller: &Caller,
    name: &str,
    detailed: Option<bool>,
) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    let record = find(pools, name).await?;
    Ok(Reply::Admin(AdminReply::document(
        200,
        pool_document(&record, detailed == Some(true)),
    )))
}

async fn find(pools: &Pools, name: &str) -> ApiResult<PoolRecord> {
    pools
        .management()
        .pool_get(name.into())
        .await
        .map_err(storage)?
        .into_option()
        .ok_or_else(|| ApiError::NotFound(format!("Pool {name} does not exist")))
}

/// `pool_create` (PUT): registers the pool once its store answers; a
/// re-PUT replaces it (201 either way, as Zaqar).
pub async fn create(
    api: &Api,
    caller: &Caller,
    name: &str,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    check_name(name, "pool")?;
    let fields = parse_object(body)?;
    for key in ["uri", "weight"] {
        if !fields.contains_key(key) {
            return Err(ApiError::body(format!("'{key}' is a required property")));
        }
    }
    for (key, value) in &fields {
        check_field(key, value)?;
    }
    let mut record = PoolRecord {
        name: name.into(),
        uri: RString::new(),
        weight: 0,
        flavor: ROption::RNone,
        options: RVec::from(b"{}".to_vec()),
    };
    apply(&mut record, &fields);
    pools.register(record).await.map_err(pool_error)?;
    Ok(Reply::Admin(AdminReply::created(
        format!("/v2/pools/{name}"),
        format!("Pool {name} created."),
    )))
}

/// `pool_update` (PATCH): any of `uri`, `weight`, `flavor`, `options`.
pub async fn update(
    api: &Api,
    caller: &Caller,
    name: &str,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    let fields = parse_object(body)?;
    if !["uri", "weight", "flavor", "options"]
        .iter()
        .any(|key| fields.contains_key(*key))
    {
        return Err(ApiError::body(
            "One of `uri`, `weight`, `flavor`, or `options` needs to be specified",
        ));
    }
    for (key, value) in &fields {
        check_field(key, value)?;
    }
    let mut record = find(pools, name).await?;
    apply(&mut record, &fields);
    pools.register(record.clone()).await.map_err(pool_error)?;
    Ok(Reply::Admin(AdminReply::document(
        200,
        pool_document(&record, false),
    )))
}

/// `pool_delete`: refused while the pool holds queues, or when it is the
/// last pool of its flavor; a missing pool is fine.
pub async fn delete(api: &Api, caller: &Caller, name: &str) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    let Some(record) = pools
        .management()
        .pool_get(name.into())
        .await
        .map_err(storage)?
        .into_option()
    else {
        return Ok(Reply::Done);
    };
    if let ROption::RSome(flavor) = &record.flavor {
        let others = pools
            .records()
            .await
            .map_err(storage)?
            .iter()
            .filter(|r| r.name != record.name && r.flavor.as_ref().into_option() == Some(flavor))
            .count();
        if others == 0 {
            return Err(ApiError::Refused {
                status: 403,
                title: "Unable to delete",
                description: format!(
                    "This pool is used by flavors {flavor}; It cannot be deleted."
                ),
            });
        }
    }
    pools.unregister(name).await.map_err(|error| match error {
        PoolError::HoldsQueues => ApiError::Refused {
            status: 403,
            title: "Unable to delete",
            description: format!(
                "Pool {name} still holds queues; queues never move between pools, so it cannot be deleted."
            ),
        },
        other => pool_error(other),
    })?;
    Ok(Reply::Done)
}

/// Queue PUT under pooling: a `_flavor` must name one of the project's
/// flavors.
pub async fn check_queue_flavor(
    api: &Api,
    caller: &Caller,
    metadata: &Map<String, Value>,
) -> ApiResult<()> {
    let (Some(pools), Some(flavor)) = (api.pools.as_deref(), metadata.get("_flavor")) else {
        return Ok(());
    };
    let name = match flavor {
        Value::String(name) if !name.is_empty() => name.clone(),
        Value::Null => return Ok(()),
        Value::String(_) => return Ok(()),
        other => return Err(ApiError::api(format!("Flavor {other} does not exist"))),
    };
    let found = pools
        .management()
        .flavor_get(caller.project.as_str().into(), name.as_str().into())
        .await
        .map_err(storage)?;
    if found.is_none() {
        return Err(ApiError::api(format!("Flavor {name} does not exist")));
    }
    Ok(())
}
