//! Building workspace artifacts once per test process.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs `cargo build` for one package (release-free debug profile, the
/// workspace's target dir) and panics with cargo's output if it fails.
fn cargo_build(package: &str, extra: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--quiet", "-p", package])
        .args(extra)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo build -p {package} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The `zaqar-server` binary, built (or confirmed up to date) on first use.
pub fn server_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build("zaqar-host", &["--bin", "zaqar-server"]);
            target_dir().join("debug").join("zaqar-server")
        })
        .clone()
}

/// The `zaqar-server` binary, optimised (for benchmarks), built on first use.
pub fn server_binary_release() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            cargo_build("zaqar-host", &["--release", "--bin", "zaqar-server"]);
            target_dir().join("release").join("zaqar-server")
        })
        .clone()
}

/// The dynamic library of a workspace package built as a `cdylib` (debug
/// profile), built on first use. `lib_name` is the crate's library name
/// (`zaqar_notifier_file`).
pub fn plugin_library(package: &str, lib_name: &str) -> PathBuf {
    built_library(package, lib_name, false)
}

/// Like [`plugin_library`], optimised (for benchmarks).
pub fn plugin_library_release(package: &str, lib_name: &str) -> PathBuf {
    built_library(package, lib_name, true)
}

fn built_library(package: &str, lib_name: &str, release: bool) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, bool), PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry((package.to_string(), release))
        .or_insert_with(|| {
            let (flags, profile): (&[&str], &str) = if release {
                (&["--release"], "release")
            } else {
                (&[], "debug")
            };
            cargo_build(package, flags);
            target_dir().join(profile).join(format!(
                "{}{lib_name}.{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_EXTENSION
            ))
        })
        .clone()
}

/// The fixture library built against plugin-api 1.0.0
/// (`tests/fixtures/plugin-v1-0`, outside the workspace, with its own
/// target dir so it never links the current plugin-api), built on first use.
pub fn plugin_library_v1_0() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let crate_dir = workspace_root().join("tests/fixtures/plugin-v1-0");
            let target = target_dir().join("plugin-v1-0");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let output = Command::new(cargo)
                .current_dir(&crate_dir)
                .args(["build", "--quiet", "--target-dir"])
                .arg(&target)
                .output()
                .expect("cargo runs");
            assert!(
                output.status.success(),
                "building the plugin-api 1.0 fixture failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            target.join("debug").join(format!(
                "{}zaqar_fixture_plugin_v1_0.{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_EXTENSION
            ))
        })
        .clone()
}
