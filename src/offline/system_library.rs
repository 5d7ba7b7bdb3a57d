//! System libraries loaded at run time (libsoxr, LAME, libopusenc): rtfx and its plugin start
//! without them, each is used unmodified as the system ships it (they are LGPL or BSD
//! licensed), and a missing one is an error that names the package to install, raised only
//! when a render needs it.

use crate::error::{Error, Result};

/// A library rtfx can load: what it is for, its file name on each platform, the variable that
/// names another build, and how to install it.
pub struct SystemLibrary {
    /// What needs it, for the message ("Sample-rate conversion").
    pub purpose: &'static str,
    /// Short name ("libsoxr").
    pub name: &'static str,
    /// File names to try on Linux, macOS and Windows, in order (newer sonames first).
    pub files: [&'static [&'static str]; 3],
    /// Environment variable that names another build (a path or a file name).
    pub override_var: &'static str,
    /// How to install it ("Debian/Ubuntu: apt-get install libsoxr0; macOS: brew install
    /// libsoxr").
    pub install: &'static str,
}

impl SystemLibrary {
    /// Loads the library (the override variable's file, else the platform's) and reads its
    /// symbols with `bind`; the error names the package to install.
    pub fn load<T>(
        &self,
        bind: impl FnOnce(libloading::Library) -> std::result::Result<T, libloading::Error>,
    ) -> std::result::Result<T, String> {
        let default = if cfg!(target_os = "macos") {
            self.files[1]
        } else if cfg!(windows) {
            self.files[2]
        } else {
            self.files[0]
        };
        let names: Vec<std::ffi::OsString> = match std::env::var_os(self.override_var) {
            Some(file) => vec![file],
            None => default.iter().map(Into::into).collect(),
        };
        let mut why = String::from("no file name to try");
        for name in names {
            // SAFETY: loading a system library runs its initialisers, which for these
            // libraries set up their own state only.
            match unsafe { libloading::Library::new(&name) } {
                Ok(library) => return bind(library).map_err(|e| e.to_string()),
                Err(e) => why = e.to_string(),
            }
        }
        Err(why)
    }

    /// The error for a library that did not load (`why`, from [`Self::load`]).
    pub fn unavailable(&self, why: &str) -> Error {
        Error::backend_not_available(self.name)
            .with_message(format!(
                "{} needs {}, which could not be loaded ({why})",
                self.purpose, self.name
            ))
            .with_suggestion(format!("install it ({})", self.install))
    }
}

/// Result of a cached load: the symbols, or why they are missing.
pub type Loaded<T> = std::result::Result<std::sync::Arc<T>, String>;

/// Reads a symbol as a plain function pointer (copied out of the library's `Symbol`).
///
/// # Safety
/// `T` must be the symbol's true type, and the library must stay loaded while it is used.
pub unsafe fn symbol<T: Copy>(
    library: &libloading::Library,
    name: &[u8],
) -> std::result::Result<T, libloading::Error> {
    // SAFETY: the caller vouches for the type.
    unsafe { library.get::<T>(name).map(|s| *s) }
}

/// Loads once per process: `cache` keeps the outcome, errors included.
pub fn load_once<T: Send + Sync>(
    cache: &'static std::sync::OnceLock<Loaded<T>>,
    library: &SystemLibrary,
    bind: impl FnOnce(libloading::Library) -> std::result::Result<T, libloading::Error>,
) -> Result<std::sync::Arc<T>> {
    cache
        .get_or_init(|| library.load(bind).map(std::sync::Arc::new))
        .clone()
        .map_err(|why| library.unavailable(&why))
}
