//! Queue PATCH: the JSON-patch operations Zaqar accepts on queue
//! metadata (`validation.py queue_patching`, `v2_0/queues.py _do_*`).

use serde_json::{Map, Value};

use super::{
    errors::{ApiError, ApiResult},
    metadata::RESERVED_KEYS,
};

/// One queue PATCH operation, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOp {
    /// Set a key.
    Add(String, Value),
    /// Delete a key.
    Remove(String),
    /// Overwrite an existing (or reserved) key.
    Replace(String, Value),
}

/// Validates the operations of a queue PATCH (Zaqar's `queue_patching`).
/// Errors are body errors.
pub fn parse_patch(document: Value) -> ApiResult<Vec<PatchOp>> {
    // The validator's own text, where Zaqar answers 503.
    let Value::Array(changes) = document else {
        return Err(ApiError::body(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    changes.into_iter().map(parse_operation).collect()
}

fn parse_operation(change: Value) -> ApiResult<PatchOp> {
    let Value::Object(mut change) = change else {
        return Err(ApiError::body("Operations must be JSON objects."));
    };
    let op = match change.get("op") {
        None => {
            return Err(ApiError::body(
                "Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.",
            ))
        }
        Some(Value::String(op)) if matches!(op.as_str(), "add" | "remove" | "replace") => op.clone(),
        Some(other) => {
            let shown = other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string());
            return Err(ApiError::body(format!(
                "Invalid operation: `{shown}`. It must be one of the following: add, remove, replace."
            )));
        }
    };
    let path = match change.get("path") {
        None => {
            return Err(ApiError::body(
                "Unable to find 'path' in JSON Schema change",
            ))
        }
        Some(Value::String(path)) => path.clone(),
        Some(other) => {
            return Err(ApiError::body(format!(
                "Pointer `{other}` does not start with \"/\"."
            )))
        }
    };
    let tokens = decode_pointer(&path).map_err(ApiError::body)?;
    if tokens.len() != 2 {
        return Err(ApiError::body(format!(
            "Invalid JSON pointer for this resource: '/{}, e.g /metadata/key'",
            tokens.join("/")
        )));
    }
    if !tokens[0].eq_ignore_ascii_case("metadata") {
        return Err(ApiError::body(
            "The root of path must be metadata, e.g /metadata/key.",
        ));
    }
    let key = tokens[1].clone();
    if op == "remove" {
        return Ok(PatchOp::Remove(key));
    }
    let value = change.remove("value").ok_or_else(|| {
        ApiError::body(format!(
            "Operation \"{op}\" requires a member named \"value\"."
        ))
    })?;
    Ok(if op == "add" {
        PatchOp::Add(key, value)
    } else {
        PatchOp::Replace(key, value)
    })
}

/// Zaqar's `_validate_json_pointer` + `_decode_json_pointer`.
fn decode_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if !pointer.starts_with('/') {
        return Err(format!("Pointer `{pointer}` does not start with \"/\"."));
    }
    let rest = &pointer[1..];
    let adjacent = rest
        .match_indices('/')
        .any(|(index, _)| rest[index + 1..].trim_start().starts_with('/'));
    if adjacent {
        return Err(format!("Pointer `{pointer}` contains adjacent \"/\"."));
    }
    if pointer.len() > 1 && pointer.ends_with('/') {
        return Err(format!("Pointer `{pointer}` end with \"/\"."));
    }
    if rest.trim() == "/" {
        return Err(format!(
            "Pointer `{pointer}` does not contains valid token."
        ));
    }
    let bad_escape = pointer
        .match_indices('~')
        .any(|(index, _)| !matches!(pointer.as_bytes().get(index + 1), Some(b'0' | b'1')));
    if bad_escape {
        return Err(format!(
            "Pointer `{pointer}` contains \"~\" not part of a recognized escape sequence."
        ));
    }
    Ok(pointer
        .trim_start_matches('/')
        .split('/')
        .map(|part| {
            part.replace("~1", "/")
                .replace("~0", "~")
                .trim()
                .to_string()
        })
        .collect())
}

/// Applies validated operations in order (Zaqar's `_do_add/_do_remove/_do_replace`).
pub fn apply_patch(metadata: &mut Map<String, Value>, operations: Vec<PatchOp>) -> ApiResult<()> {
    let reserved = |key: &str| RESERVED_KEYS.contains(&key);
    for operation in operations {
        match operation {
            PatchOp::Add(key, value) => {
                metadata.insert(key, value);
            }
            PatchOp::Replace(key, value) => {
                if !metadata.contains_key(&key) && !reserved(&key) {
                    return Err(conflict(format!(
                        "Can't replace non-existent object {key}."
                    )));
                }
                metadata.insert(key, value);
            }
            PatchOp::Remove(key) => {
                // shift_remove keeps the order of the remaining keys.
                if metadata.shift_remove(&key).is_none() && !reserved(&key) {
                    return Err(conflict(format!("Can't remove non-existent object {key}.")));
                }
            }
        }
    }
    Ok(())
}

fn conflict(description: String) -> ApiError {
    ApiError::Conflict {
        description,
        location: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn patch_operations_are_validated_with_zaqars_messages() {
        let error = |value: Value| parse_patch(value).unwrap_err().description().unwrap();
        assert_eq!(
            error(json!({"op": "add"})),
            "Request body must be a JSON array of operation objects."
        );
        assert_eq!(error(json!([1])), "Operations must be JSON objects.");
        assert_eq!(
            error(json!([{"op": "move", "path": "/metadata/a"}])),
            "Invalid operation: `move`. It must be one of the following: add, remove, replace."
        );
        assert_eq!(
            error(json!([{"op": "add", "value": 1}])),
            "Unable to find 'path' in JSON Schema change"
        );
        assert_eq!(
            error(json!([{"op": "add", "path": "metadata/a", "value": 1}])),
            "Pointer `metadata/a` does not start with \"/\"."
        );
        assert_eq!(
            error(json!([{"op": "add", "path": "/metadata//a", "value": 1}])),
            "Pointer `/metadata//a` contains adjacent \"/\"."
        );
        assert_eq!(
            error(json!([{"op": "add", "path": "/metadata/a/", "value": 1}])),
            "Pointer `/metadata/a/` end with \"/\"."
        );
        assert_eq!(
            error(json!([{"op": "add", "path": "/metadata/a~2", "value": 1}])),
            "Pointer `/metadata/a~2` contains \"~\" not part of a recognized escape sequence."
        );
        assert_eq!(
            error(json!([{"op": "add", "path": "/metadata/a/b", "value": 1}])),
            "Invalid JSON pointer for this resource: '/metadata/a/b, e.g /metadata/key'"
        );
        assert_eq!(
            error(json!([{"op": "add", "path": "/meta/a", "value": 1}])),
            "The root of path must be metadata, e.g /metadata/key."
        );
        assert_eq!(
            error(json!([{"op": "add", "path": "/metadata/a"}])),
            "Operation \"add\" requires a member named \"value\"."
        );
    }

    #[test]
    fn pointer_escapes_are_decoded() {
        let ops = parse_patch(json!([{"op": "remove", "path": "/METADATA/a~1b~0c"}])).unwrap();
        assert_eq!(ops, vec![PatchOp::Remove("a/b~c".into())]);
    }

    #[test]
    fn replace_and_remove_of_missing_plain_keys_conflict_but_reserved_keys_do_not() {
        let mut metadata = map(json!({"a": 1}));
        let replace = vec![PatchOp::Replace("zz".into(), json!(1))];
        assert_eq!(
            apply_patch(&mut metadata, replace)
                .unwrap_err()
                .description()
                .unwrap(),
            "Can't replace non-existent object zz."
        );
        let remove = vec![PatchOp::Remove("zz".into())];
        assert_eq!(
            apply_patch(&mut metadata, remove).unwrap_err().status(),
            409
        );
        let reserved = vec![
            PatchOp::Remove("_max_claim_count".into()),
            PatchOp::Replace("_default_message_ttl".into(), json!(60)),
        ];
        apply_patch(&mut metadata, reserved).unwrap();
        assert_eq!(
            Value::Object(metadata),
            json!({"a": 1, "_default_message_ttl": 60})
        );
    }
}
