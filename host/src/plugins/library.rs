//! Loading plugin libraries from disk with abi_stable, which checks the
//! library's plugin-api version and the layout of every type reachable from
//! its root module before anything in it is called.

use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibraryError};
use plugin_api::{AuthEntryPoint, EntryPoint, PluginModuleRef};

use super::{registry::Refusal, v1_0};

/// What a library offers, in the types of the plugin-api it was built
/// against.
pub enum Entries {
    /// A library built against this host's plugin-api minor or a later one.
    Current {
        /// Its entry points.
        entry_points: Vec<EntryPoint>,
        /// Its auth strategies.
        auth: Vec<AuthEntryPoint>,
    },
    /// A library built against plugin-api 1.0.
    V1_0(Vec<plugin_api_v1_0::EntryPoint>),
}

/// A library that passed the checks.
pub struct LoadedLibrary {
    /// What it offers.
    pub entries: Entries,
    /// The plugin-api version it was built against.
    pub api_version: String,
}

/// The library files named by `paths`: files as given, directories
/// expanded to the libraries directly inside them (sorted, so the order, and
/// so which of two duplicates wins, is stable). Paths that don't exist are
/// refused.
pub fn candidate_files(paths: &[PathBuf], refusals: &mut Vec<Refusal>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            match std::fs::read_dir(path) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file() && is_library(p))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(e) => refusals.push(Refusal {
                    path: path.clone(),
                    reason: format!("cannot read directory: {e}"),
                }),
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            refusals.push(Refusal {
                path: path.clone(),
                reason: "no such file or directory".into(),
            });
        }
    }
    files
}

fn is_library(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == std::env::consts::DLL_EXTENSION)
}

/// Loads one library. The library stays loaded for the life of the process:
/// nothing guarantees no pointer into it remains, so it is never unloaded.
pub fn load(path: &Path) -> Result<LoadedLibrary, String> {
    let header = lib_header_from_path(path).map_err(|e| short_reason(&e))?;
    let api_version = header.version_strings().version.to_string();
    if v1_0::is_v1_0(&api_version) {
        let loaded = v1_0::load(path).map_err(|e| short_reason(&e))?;
        return Ok(LoadedLibrary {
            entries: Entries::V1_0(loaded.entry_points),
            api_version,
        });
    }
    let module = header
        .init_root_module::<PluginModuleRef>()
        .map_err(|e| short_reason(&e))?;
    let entry_points = (module.entry_points())().into_vec();
    let auth = module
        .auth_entry_points()
        .map(|list| list().into_vec())
        .unwrap_or_default();
    Ok(LoadedLibrary {
        entries: Entries::Current { entry_points, auth },
        api_version,
    })
}

/// abi_stable's errors can run to hundreds of lines (a full layout diff);
/// operators need the gist: which check failed, on which type.
fn short_reason(error: &LibraryError) -> String {
    let prefix = match error {
        LibraryError::OpenError { .. } => "cannot open the library",
        LibraryError::GetSymbolError { .. } => "not a zaqar plugin (no abi_stable root module)",
        LibraryError::ParseVersionError(_) => "unreadable plugin-api version",
        LibraryError::IncompatibleVersionNumber { .. } => {
            "built against an incompatible plugin-api version"
        }
        LibraryError::AbiInstability(_) => {
            "its plugin-api types do not match the host's (ABI layout mismatch)"
        }
        LibraryError::InvalidAbiHeader(_) => "built with an incompatible abi_stable",
        LibraryError::InvalidCAbi { .. } => "built with an incompatible C ABI",
        LibraryError::RootModule { .. } => "its root module failed to initialise",
        _ => "refused",
    };
    let detail: String = error
        .to_string()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let mut detail = detail;
    if detail.len() > 300 {
        let mut cut = 300;
        while !detail.is_char_boundary(cut) {
            cut -= 1;
        }
        detail.truncate(cut);
        detail.push('…');
    }
    format!("{prefix}: {detail}")
}
