//! The registry of every entry point found, where it came from, and what
//! was refused.

use std::{fmt, path::PathBuf};

use plugin_api::{
    builtin_plugins, AuthConstructor, AuthEntryPoint, Constructor, EntryPoint, NAMESPACE_AUTH,
    PLUGIN_API_VERSION,
};

use super::{library, library::Entries};

/// Where an entry point came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Linked into the host.
    Builtin {
        /// The crate that registered it.
        crate_name: &'static str,
    },
    /// Loaded from a dynamic library.
    Library {
        /// The library file.
        path: PathBuf,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin { crate_name } => write!(f, "built-in ({crate_name})"),
            Self::Library { path } => write!(f, "{}", path.display()),
        }
    }
}

/// How an entry point is built: the 1.0 roles share one constructor enum;
/// auth strategies (since plugin-api 1.1) come from their own list.
#[derive(Clone, Copy)]
pub enum Factory {
    /// A transport, store or notifier sink.
    Role(Constructor),
    /// An auth strategy.
    Auth(AuthConstructor),
    /// A transport, store or notifier sink of a library built against
    /// plugin-api 1.0, bridged when built (see `v1_0`).
    V1_0(plugin_api_v1_0::Constructor),
}

/// One entry point, ready to construct.
#[derive(Clone)]
pub struct Plugin {
    /// Its namespace (`zaqar.transport`, ...).
    pub namespace: &'static str,
    /// The name it is selected by.
    pub name: String,
    /// Where it came from.
    pub origin: Origin,
    /// The plugin-api version it was built against.
    pub api_version: String,
    /// Its constructor.
    pub constructor: Factory,
}

/// A library that was not loaded, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The file (or configured path) refused.
    pub path: PathBuf,
    /// A short reason.
    pub reason: String,
}

/// The same `(namespace, name)` provided twice.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// The namespace.
    pub namespace: &'static str,
    /// The name.
    pub name: String,
    /// The provider kept.
    pub first: Origin,
    /// The provider ignored.
    pub second: Origin,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}` is provided twice: by {} and by {}",
            self.namespace, self.name, self.first, self.second
        )
    }
}

/// Everything found at start-up.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<Plugin>,
    refusals: Vec<Refusal>,
    conflicts: Vec<Conflict>,
}

impl Registry {
    /// Collects the built-ins and loads every library under `paths`.
    pub fn discover(paths: &[PathBuf]) -> Self {
        let mut registry = Self::default();
        for builtin in builtin_plugins() {
            let origin = Origin::Builtin {
                crate_name: builtin.crate_name,
            };
            registry.add_all((builtin.entry_points)(), &origin, PLUGIN_API_VERSION);
            registry.add_all_auth((builtin.auth_entry_points)(), &origin, PLUGIN_API_VERSION);
        }
        for file in library::candidate_files(paths, &mut registry.refusals) {
            match library::load(&file) {
                Ok(loaded) => {
                    let origin = Origin::Library { path: file };
                    let version = &loaded.api_version;
                    match loaded.entries {
                        Entries::Current { entry_points, auth } => {
                            registry.add_all(entry_points, &origin, version);
                            registry.add_all_auth(auth, &origin, version);
                        }
                        Entries::V1_0(entry_points) => {
                            for entry in entry_points {
                                let namespace = entry.constructor.namespace();
                                let factory = Factory::V1_0(entry.constructor);
                                let name = entry.name.to_string();
                                registry.add(namespace, name, factory, &origin, version);
                            }
                        }
                    }
                }
                Err(reason) => registry.refusals.push(Refusal { path: file, reason }),
            }
        }
        registry
    }

    fn add_all(
        &mut self,
        entry_points: impl IntoIterator<Item = EntryPoint>,
        origin: &Origin,
        api_version: &str,
    ) {
        for entry in entry_points {
            let namespace = entry.namespace();
            let factory = Factory::Role(entry.constructor);
            self.add(
                namespace,
                entry.name.to_string(),
                factory,
                origin,
                api_version,
            );
        }
    }

    fn add_all_auth(
        &mut self,
        entry_points: impl IntoIterator<Item = AuthEntryPoint>,
        origin: &Origin,
        api_version: &str,
    ) {
        for entry in entry_points {
            let factory = Factory::Auth(entry.constructor);
            self.add(
                NAMESPACE_AUTH,
                entry.name.to_string(),
                factory,
                origin,
                api_version,
            );
        }
    }

    fn add(
        &mut self,
        namespace: &'static str,
        name: String,
        constructor: Factory,
        origin: &Origin,
        api_version: &str,
    ) {
        if let Some(existing) = self.find(namespace, &name) {
            self.conflicts.push(Conflict {
                namespace,
                name,
                first: existing.origin.clone(),
                second: origin.clone(),
            });
            return;
        }
        self.plugins.push(Plugin {
            namespace,
            name,
            origin: origin.clone(),
            api_version: api_version.to_string(),
            constructor,
        });
    }

    fn find(&self, namespace: &str, name: &str) -> Option<&Plugin> {
        self.plugins
            .iter()
            .find(|p| p.namespace == namespace && p.name == name)
    }

    /// Every entry point, built-ins first.
    pub fn plugins(&self) -> &[Plugin] {
        &self.plugins
    }

    /// Every library refused.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }

    /// Every name provided twice.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// The entry points of one namespace.
    pub fn in_namespace<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Plugin> + 'a {
        self.plugins
            .iter()
            .filter(move |p| p.namespace == namespace)
    }

    /// The entry point selected by `name`, or an error for the operator that
    /// lists what is available (and which libraries were refused, since one
    /// of them may have been meant to provide it).
    pub fn select(&self, namespace: &str, name: &str, config_key: &str) -> Result<&Plugin, String> {
        if let Some(conflict) = self
            .conflicts
            .iter()
            .find(|c| c.namespace == namespace && c.name == name)
        {
            return Err(format!(
                "{config_key} = \"{name}\" is ambiguous: {conflict}"
            ));
        }
        if let Some(plugin) = self.find(namespace, name) {
            return Ok(plugin);
        }
        let available: Vec<&str> = self
            .in_namespace(namespace)
            .map(|p| p.name.as_str())
            .collect();
        let mut message = format!(
            "{config_key} = \"{name}\": no plugin provides `{name}` in {namespace}; available: {}",
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        );
        for refusal in &self.refusals {
            message.push_str(&format!(
                "\n  refused library {}: {}",
                refusal.path.display(),
                refusal.reason
            ));
        }
        Err(message)
    }
}
