//! Building workspace artifacts once per test process.

use std::{
    collections::{HashMap, HashSet},
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

/// The `zaqar-server` binary, optimised (for benchmarks), built on first use;
/// or the one `BENCH_SERVER_BIN` names.
pub fn server_binary_release() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // A saved build to compare against (`bench/ab.sh` does the same
            // for the HTTP benches).
            if let Some(binary) = std::env::var_os("BENCH_SERVER_BIN") {
                return PathBuf::from(binary);
            }
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

/// The dynamic libraries of several workspace `cdylib` packages, built
/// together in one cargo run (debug profile) on first use: one feature
/// resolution for all of them, so every test binary that asks for the same
/// set reuses the same artifacts. `libraries` are (package, library name).
pub fn plugin_libraries(libraries: &[(&str, &str)]) -> Vec<PathBuf> {
    static BUILT: OnceLock<Mutex<HashSet<Vec<String>>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let packages: Vec<String> = libraries.iter().map(|(p, _)| p.to_string()).collect();
    if !built.contains(&packages) {
        let mut args: Vec<&str> = Vec::new();
        for package in &packages[1..] {
            args.extend(["-p", package.as_str()]);
        }
        cargo_build(&packages[0], &args);
        built.insert(packages);
    }
    libraries
        .iter()
        .map(|(_, lib_name)| {
            target_dir().join("debug").join(format!(
                "{}{lib_name}.{}",
                std::env::consts::DLL_PREFIX,
                std::env::consts::DLL_EXTENSION
            ))
        })
        .collect()
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

/// The dynamic library of an example under `examples/<dir>` (its own crate
/// and workspace, like a third party's plugin), built on first use the way a
/// third party builds it: the crate is copied outside the repository, its
/// `path` dependencies on `plugin-api` (and the conformance suite) pointed at
/// this checkout, and `cargo build` run there with the workspace's
/// `Cargo.lock` (so the versions are those tested). `lib_name` is the
/// crate's library name (`zaqar_notifier_file`).
pub fn example_library(dir: &str, lib_name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(dir.to_string())
        .or_insert_with(|| build_out_of_tree(dir, lib_name))
        .clone()
}

fn build_out_of_tree(dir: &str, lib_name: &str) -> PathBuf {
    let output = cargo_out_of_tree(dir, &["build", "--quiet", "--lib"]);
    assert!(
        output.status.success(),
        "building examples/{dir} out of tree failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out_of_tree_target().join("debug").join(format!(
        "{}{lib_name}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    ))
}

/// One target directory for every example built out of tree, kept between
/// runs.
fn out_of_tree_target() -> PathBuf {
    target_dir().join("examples-out-of-tree")
}

/// Runs `cargo <args>` on a copy of `examples/<dir>` made outside the
/// repository (see [`example_library`]) and returns its output.
pub fn cargo_out_of_tree(dir: &str, args: &[&str]) -> std::process::Output {
    let root = workspace_root();
    let source = root.join("examples").join(dir);
    static COPIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let copy = std::env::temp_dir().join(format!(
        "zaqar-example-{dir}-{}-{}",
        std::process::id(),
        COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(&source, &copy);
    let manifest = copy.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("example manifest");
    let text = text
        .replace(
            "path = \"../../plugin-api\"",
            &format!("path = {:?}", root.join("plugin-api").display().to_string()),
        )
        .replace(
            "path = \"../../tests/storage-conformance\"",
            &format!(
                "path = {:?}",
                root.join("tests/storage-conformance").display().to_string()
            ),
        );
    assert!(
        !text.contains("../"),
        "examples/{dir}/Cargo.toml has a relative path this build cannot follow"
    );
    std::fs::write(&manifest, text).expect("write manifest");
    std::fs::copy(root.join("Cargo.lock"), copy.join("Cargo.lock")).expect("copy Cargo.lock");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&copy)
        .args(args)
        .env("CARGO_TARGET_DIR", out_of_tree_target())
        .output()
        .expect("cargo runs");
    let _ = std::fs::remove_dir_all(&copy);
    output
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let name = entry.file_name();
        if name == "target" || name == "Cargo.lock" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy file");
        }
    }
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
