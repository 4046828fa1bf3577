//! A small safe wrapper over libdnf's C API with exactly what client-side package layering
//! needs: a [`Context`] whose installed set is the rpmdb of a tree (not of this host), repos from
//! a directory of `.repo` files, metadata download with progress, [`Query`]s by name and
//! provides, a [`Goal`] to install and erase with its resulting package lists, and package
//! downloads with progress.
//!
//! Ownership follows libdnf's: packages, queries and goals point into the context's package
//! sack, so they borrow the [`Context`] (`'c`) and cannot outlive it or a reload of its sack
//! ([`Context::load`] takes `&mut self`). Nothing here is thread-safe (libsolv is not): the
//! types are neither `Send` nor `Sync`. Every string libdnf returns is copied at once, since
//! many live in libsolv's reused buffers.
//!
//! rpm's macros are process-global; [`Context::new`] sets `_dbpath` before each setup, so a
//! process should not drive two contexts with different rpmdb locations at the same time.
//!
//! One of the crates under `bindings/`, the only place Strata writes `unsafe`.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;

use glib::translate::{from_glib, from_glib_full, from_glib_none, ToGlibPtr};
use glib::ObjectExt;
use libdnf_sys as sys;

/// What went wrong in libdnf, or before calling it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A libdnf call failed; `op` says which step.
    #[error("{op}: {source}")]
    Dnf {
        /// The step that failed ("Loading repository metadata", ...).
        op: String,
        /// libdnf's own error.
        #[source]
        source: glib::Error,
    },
    /// The operation was cancelled through its `gio::Cancellable`.
    #[error("{0}: cancelled")]
    Cancelled(String),
    /// An argument libdnf cannot take (a string with a NUL byte, a non-UTF-8 path, ...).
    #[error("{0}")]
    Argument(String),
    /// A libdnf call failed without saying why.
    #[error("{0} failed")]
    Failed(String),
}

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    fn from_gerror(op: impl Into<String>, err: *mut glib::ffi::GError) -> Error {
        let op = op.into();
        if err.is_null() {
            return Error::Failed(op);
        }
        // SAFETY: libdnf hands over ownership of a non-null GError it set.
        let source: glib::Error = unsafe { from_glib_full(err) };
        if source.matches(gio::IOErrorEnum::Cancelled) || is_dnf_error(&source, DnfCode::Cancelled)
        {
            return Error::Cancelled(op);
        }
        Error::Dnf { op, source }
    }

    /// librepo reports a download aborted by cancellation as a curl error: when the operation's
    /// cancellable was triggered, any failure is the cancellation.
    fn or_cancelled(self, cancellable: Option<&gio::Cancellable>) -> Error {
        use gio::prelude::CancellableExt;
        match self {
            Error::Dnf { op, .. } | Error::Failed(op)
                if cancellable.is_some_and(|c| c.is_cancelled()) =>
            {
                Error::Cancelled(op)
            }
            e => e,
        }
    }

    /// Whether this is libdnf's "package not found".
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Dnf { source, .. } if is_dnf_error(source, DnfCode::PackageNotFound))
    }
}

/// The libdnf error codes this crate tells apart (domain `dnf-error-quark`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DnfCode {
    Cancelled,
    PackageNotFound,
    Other(i32),
}

impl glib::error::ErrorDomain for DnfCode {
    fn domain() -> glib::Quark {
        // SAFETY: dnf_error_quark only registers (once) and returns the quark.
        unsafe { from_glib(sys::dnf_error_quark()) }
    }

    fn code(self) -> i32 {
        match self {
            DnfCode::Cancelled => sys::DNF_ERROR_CANCELLED as i32,
            DnfCode::PackageNotFound => sys::DNF_ERROR_PACKAGE_NOT_FOUND as i32,
            DnfCode::Other(c) => c,
        }
    }

    fn from(code: i32) -> Option<Self> {
        Some(match code {
            c if c == sys::DNF_ERROR_CANCELLED as i32 => DnfCode::Cancelled,
            c if c == sys::DNF_ERROR_PACKAGE_NOT_FOUND as i32 => DnfCode::PackageNotFound,
            c => DnfCode::Other(c),
        })
    }
}

fn is_dnf_error(e: &glib::Error, code: DnfCode) -> bool {
    e.kind::<DnfCode>() == Some(code)
}

fn cstring(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Argument(format!("{what} {s:?} contains a NUL byte")))
}

fn cpath(what: &str, p: &Path) -> Result<CString> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::Argument(format!("{what} {} is not UTF-8", p.display())))?;
    cstring(what, s)
}

/// Copies a borrowed C string; `None` for NULL.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string for the duration of the call.
unsafe fn copy_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

/// Runs a libdnf call that reports failure through `GError **`.
fn check(
    op: impl FnOnce() -> String,
    f: impl FnOnce(*mut *mut glib::ffi::GError) -> glib::ffi::gboolean,
) -> Result<()> {
    let mut err = ptr::null_mut();
    if f(&mut err) != 0 {
        return Ok(());
    }
    Err(Error::from_gerror(op(), err))
}

/// libdnf's process-wide setup (librepo, rpm's configuration), once.
fn globals_init() -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        let mut err = ptr::null_mut();
        // SAFETY: plain calls without pointers but the error out-parameter; libdnf guards its
        // own init with g_once.
        unsafe {
            sys::dnf_context_set_plugins_all_disabled(1);
            if sys::dnf_context_globals_init(&mut err) == 0 {
                return Err(Error::from_gerror("Initializing libdnf", err).to_string());
            }
        }
        Ok(())
    })
    .clone()
    .map_err(Error::Failed)
}

/// Where a [`Context`] finds its repos and installed packages, and keeps its caches.
#[derive(Debug, Clone)]
pub struct Config {
    /// The tree whose rpmdb is the installed set (a checkout of the base; never `/` here).
    pub install_root: PathBuf,
    /// The rpmdb directory inside the tree (`/usr/share/rpm` on rpm-ostree systems,
    /// `/usr/lib/sysimage/rpm` on newer ones). rpm's `_dbpath`: set explicitly, since
    /// Debian's default is `~/.rpmdb`.
    pub rpmdb: String,
    /// The directory of `.repo` files (the merge deployment's `/etc/yum.repos.d`).
    pub repos_dir: PathBuf,
    /// Metadata cache, solver cache and lock directories go under it (`repomd/`, `solv/`,
    /// `lock/`); created when missing.
    pub cache_dir: PathBuf,
    /// `$releasever` (the base's os-release `VERSION_ID`).
    pub release_ver: String,
    /// Architecture; `None` detects this host's.
    pub arch: Option<String>,
}

/// How [`Context::load`] treats cached repository metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metadata {
    /// Use the cache while each repo's `metadata_expire` allows, otherwise download.
    Default,
    /// Use only the cache; a repo without cached metadata is an error.
    CacheOnly,
    /// Use the cache however old it is; download only what is not cached (queries that must
    /// not wait on the network for every call).
    PreferCache,
    /// Download everything again.
    Refresh,
}

/// A repository configured in the repos directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    /// Its `[id]`.
    pub id: String,
    /// `name=`.
    pub description: String,
    /// Whether packages may come from it.
    pub enabled: bool,
    /// A debuginfo, debugsource or development repo (by libdnf's reading of its id).
    pub is_devel: bool,
    /// A source-package repo.
    pub is_source: bool,
}

/// A libdnf context: configuration, repos and (after [`load`](Self::load)) the package sack.
#[derive(Debug)]
pub struct Context {
    ptr: *mut sys::DnfContext,
    loaded: bool,
    /// Leave the installed packages out of the sack ([`Context::skip_installed`]).
    skip_installed: bool,
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: `ptr` is the owned reference from dnf_context_new.
        unsafe { glib::gobject_ffi::g_object_unref(self.ptr.cast()) }
    }
}

impl Context {
    /// A context for `config`, set up (repo files read, directories created); no network yet.
    pub fn new(config: &Config, cancellable: Option<&gio::Cancellable>) -> Result<Context> {
        globals_init()?;
        let root = cpath("install root", &config.install_root)?;
        let repos = cpath("repos directory", &config.repos_dir)?;
        let cache = cpath("cache directory", &config.cache_dir.join("repomd"))?;
        let solv = cpath("cache directory", &config.cache_dir.join("solv"))?;
        let lock = cpath("cache directory", &config.cache_dir.join("lock"))?;
        let releasever = cstring("release version", &config.release_ver)?;
        let dbpath = cstring("rpmdb path", &config.rpmdb)?;
        let arch = config
            .arch
            .as_deref()
            .map(|a| cstring("architecture", a))
            .transpose()?;
        // SAFETY: dnf_context_new returns an owned new object (never NULL); every string passed
        // below is a valid C string that libdnf copies.
        let ctx = unsafe {
            let ptr = sys::dnf_context_new();
            let ctx = Context {
                ptr,
                loaded: false,
                skip_installed: false,
            };
            sys::dnf_context_set_repo_dir(ptr, repos.as_ptr());
            sys::dnf_context_set_cache_dir(ptr, cache.as_ptr());
            sys::dnf_context_set_solv_dir(ptr, solv.as_ptr());
            sys::dnf_context_set_lock_dir(ptr, lock.as_ptr());
            sys::dnf_context_set_install_root(ptr, root.as_ptr());
            sys::dnf_context_set_source_root(ptr, root.as_ptr());
            sys::dnf_context_set_release_ver(ptr, releasever.as_ptr());
            if let Some(arch) = &arch {
                sys::dnf_context_set_arch(ptr, arch.as_ptr());
            }
            sys::dnf_context_set_rpm_macro(ptr, c"_dbpath".as_ptr(), dbpath.as_ptr());
            // Debian's librepo has no zchunk; nothing here commits an rpm transaction, so no
            // history, disk-space or test-transaction checks; filelists only cost time.
            sys::dnf_context_set_zchunk(ptr, 0);
            sys::dnf_context_set_write_history(ptr, 0);
            sys::dnf_context_set_check_disk_space(ptr, 0);
            sys::dnf_context_set_check_transaction(ptr, 0);
            sys::dnf_context_set_enable_filelists(ptr, 0);
            ctx
        };
        let c = cancellable
            .map(|c| c.to_glib_none().0)
            .unwrap_or(ptr::null_mut());
        check(
            || format!("Setting up libdnf on {}", config.install_root.display()),
            // SAFETY: `ctx.ptr` is alive; `c` is NULL or a live GCancellable.
            |e| unsafe { sys::dnf_context_setup(ctx.ptr, c.cast(), e) },
        )?;
        Ok(ctx)
    }

    /// Load only the repos' packages, not the install root's rpmdb (queries of what is
    /// available need no installed set, and then no rpmdb at all).
    pub fn skip_installed(&mut self) {
        self.skip_installed = true;
    }

    /// The repos read from the repos directory, in libdnf's order (by cost).
    pub fn repos(&self) -> Vec<RepoInfo> {
        self.repo_ptrs()
            .into_iter()
            .map(|r| {
                // SAFETY: `r` is a repo the context owns; the strings are copied at once and
                // the description is an owned g_malloc string.
                unsafe {
                    let desc = sys::dnf_repo_get_description(r);
                    let description = copy_str(desc).unwrap_or_default();
                    glib::ffi::g_free(desc.cast());
                    RepoInfo {
                        id: copy_str(sys::dnf_repo_get_id(r)).unwrap_or_default(),
                        description,
                        enabled: sys::dnf_repo_get_enabled(r) & sys::DNF_REPO_ENABLED_PACKAGES != 0,
                        is_devel: sys::dnf_repo_is_devel(r) != 0,
                        is_source: sys::dnf_repo_is_source(r) != 0,
                    }
                }
            })
            .collect()
    }

    fn repo_ptrs(&self) -> Vec<*mut sys::DnfRepo> {
        // SAFETY: the array is borrowed from the context and read at once.
        unsafe {
            let arr = sys::dnf_context_get_repos(self.ptr);
            ptr_array(arr).into_iter().map(|p| p.cast()).collect()
        }
    }

    fn repo_by_id(&self, id: &str) -> Option<*mut sys::DnfRepo> {
        self.repo_ptrs().into_iter().find(|r| {
            // SAFETY: `r` is a live repo of the context.
            unsafe { copy_str(sys::dnf_repo_get_id(*r)) }.as_deref() == Some(id)
        })
    }

    /// Enables or disables the repo `id` for this context (the `.repo` file is not changed).
    pub fn set_repo_enabled(&mut self, id: &str, enabled: bool) -> Result<()> {
        let r = self
            .repo_by_id(id)
            .ok_or_else(|| Error::Argument(format!("No repository {id:?} is configured")))?;
        let value = if enabled {
            sys::DNF_REPO_ENABLED_PACKAGES
        } else {
            sys::DNF_REPO_ENABLED_NONE
        };
        // SAFETY: `r` is a live repo of the context.
        unsafe { sys::dnf_repo_set_enabled(r, value) };
        Ok(())
    }

    /// Sets `key=value` in the `[id]` section of the repo's `.repo` file and writes the file
    /// (libdnf's own keyfile rewrite, as `dnf config-manager` does).
    pub fn set_repo_option(&mut self, id: &str, key: &str, value: &str) -> Result<()> {
        let r = self
            .repo_by_id(id)
            .ok_or_else(|| Error::Argument(format!("No repository {id:?} is configured")))?;
        let k = cstring("repo option", key)?;
        let v = cstring("repo option value", value)?;
        check(
            || format!("Setting {key} of repository {id:?}"),
            // SAFETY: `r` is a live repo of the context; the strings are valid for the call.
            |e| unsafe { sys::dnf_repo_set_data(r, k.as_ptr(), v.as_ptr(), e) },
        )?;
        check(
            || format!("Writing the .repo file of repository {id:?}"),
            // SAFETY: `r` is a live repo of the context.
            |e| unsafe { sys::dnf_repo_commit(r, e) },
        )
    }

    /// Loads the package sack: the installed packages from the tree's rpmdb and the enabled
    /// repos' metadata (downloaded as `policy` says). `progress(repo id, percent)` reports
    /// each repo's metadata download. Returns the ids of the repos whose metadata was
    /// downloaded (the others came from the cache).
    pub fn load(
        &mut self,
        policy: Metadata,
        progress: &mut dyn FnMut(&str, u32),
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<Vec<String>> {
        let mut fetched = Vec::new();
        let age = match policy {
            Metadata::Default => u32::MAX - 1,
            Metadata::CacheOnly | Metadata::PreferCache => u32::MAX,
            Metadata::Refresh => 0,
        };
        for repo in self.repo_ptrs() {
            // SAFETY: `repo` is a live repo of the context.
            let (id, enabled) = unsafe {
                (
                    copy_str(sys::dnf_repo_get_id(repo)).unwrap_or_default(),
                    sys::dnf_repo_get_enabled(repo) & sys::DNF_REPO_ENABLED_PACKAGES != 0,
                )
            };
            if !enabled {
                continue;
            }
            let state = State::new(cancellable);
            // A refresh downloads whatever the check says: libdnf measures the age in whole
            // seconds, so metadata fetched within the same second passes even an age of 0.
            // SAFETY: `repo` and `state` are alive; the error out-parameter is NULL (a failed
            // check only means "download").
            let fresh = policy != Metadata::Refresh
                && unsafe { sys::dnf_repo_check(repo, age, state.ptr, ptr::null_mut()) } != 0;
            if fresh {
                continue;
            }
            if policy == Metadata::CacheOnly {
                return Err(Error::Argument(format!(
                    "Repository {id:?} has no cached metadata; run without --cache-only first"
                )));
            }
            // SAFETY: `state` is alive.
            unsafe { sys::dnf_state_reset(state.ptr) };
            state
                .on_percentage(&mut |pct| progress(&id, pct), || {
                    check(
                        || format!("Downloading metadata of repository {id:?}"),
                        // SAFETY: `repo` and `state` are alive.
                        |e| unsafe {
                            sys::dnf_repo_update(
                                repo,
                                sys::DNF_REPO_UPDATE_FLAG_FORCE,
                                state.ptr,
                                e,
                            )
                        },
                    )
                })
                .map_err(|e| e.or_cancelled(cancellable))?;
            // SAFETY: `repo` is a live repo of the context.
            unsafe { sys::dnf_repo_set_required(repo, 1) };
            fetched.push(id);
        }
        let mut sack_flags = sys::DNF_CONTEXT_SETUP_SACK_FLAG_SKIP_FILELISTS;
        if self.skip_installed {
            sack_flags |= sys::DNF_CONTEXT_SETUP_SACK_FLAG_SKIP_RPMDB;
        }
        let state = State::new(cancellable);
        // SAFETY: the context is alive; the metadata was checked above, so the sack setup must
        // not download again (cache age "forever").
        unsafe { sys::dnf_context_set_cache_age(self.ptr, u32::MAX) };
        check(
            || "Loading the installed packages and repository metadata".to_string(),
            // SAFETY: the context and state are alive.
            |e| unsafe {
                sys::dnf_context_setup_sack_with_flags(self.ptr, state.ptr, sack_flags, e)
            },
        )?;
        // SAFETY: the sack was just created by the context; no install-only packages (a new
        // kernel replaces the old one, as on rpm-ostree systems).
        unsafe {
            let sack = sys::dnf_context_get_sack(self.ptr);
            sys::dnf_sack_set_installonly(sack, ptr::null_mut());
            sys::dnf_sack_set_installonly_limit(sack, 0);
        }
        self.loaded = true;
        Ok(fetched)
    }

    fn sack(&self) -> Result<*mut sys::DnfSack> {
        if !self.loaded {
            return Err(Error::Argument(
                "The package sack is not loaded (Context::load)".into(),
            ));
        }
        // SAFETY: the context is alive and loaded; the sack is borrowed.
        Ok(unsafe { sys::dnf_context_get_sack(self.ptr) })
    }

    /// Adds a local RPM file to the sack (repo `@commandline`). Add every local package before
    /// building a [`Goal`].
    pub fn add_local_package(&self, path: &Path) -> Result<Package<'_>> {
        let sack = self.sack()?;
        let p = cpath("package file", path)?;
        // SAFETY: `sack` is alive; the returned package is an owned reference or NULL.
        let pkg = unsafe { sys::dnf_sack_add_cmdline_package(sack, p.as_ptr()) };
        if pkg.is_null() {
            return Err(Error::Argument(format!(
                "{} is not a readable RPM package",
                path.display()
            )));
        }
        Ok(Package {
            ptr: pkg,
            _ctx: PhantomData,
        })
    }

    /// A query over every package of the sack (installed and available).
    pub fn query(&self) -> Result<Query<'_>> {
        let sack = self.sack()?;
        // SAFETY: `sack` is alive; the query is owned.
        let q = unsafe { sys::hy_query_create(sack) };
        Ok(Query {
            q,
            _ctx: PhantomData,
        })
    }

    /// An empty goal on the sack.
    pub fn goal(&self) -> Result<Goal<'_>> {
        let sack = self.sack()?;
        // SAFETY: `sack` is alive; the goal is owned.
        let goal = unsafe { sys::hy_goal_create(sack) };
        Ok(Goal {
            goal,
            sack,
            _ctx: PhantomData,
        })
    }

    /// Downloads `packages` (from repos; local ones are skipped) into each repo's cache and
    /// returns every package's file, in the order given. `progress(percent)` reports the
    /// whole download. A file already downloaded and intact is not fetched again.
    pub fn download<'p, 'c: 'p>(
        &self,
        packages: impl IntoIterator<Item = &'p Package<'c>>,
        progress: &mut dyn FnMut(u32),
        cancellable: Option<&gio::Cancellable>,
    ) -> Result<Vec<PathBuf>> {
        // SAFETY: a new, empty array without a free function: it borrows our references.
        let arr = unsafe { glib::ffi::g_ptr_array_new() };
        let arr = PtrArray(arr);
        let packages: Vec<&Package<'c>> = packages.into_iter().collect();
        for pkg in &packages {
            let repo_name = pkg.repo_name();
            if pkg.is_installed() || repo_name == COMMANDLINE_REPO {
                continue;
            }
            let repo = self.repo_by_id(&repo_name).ok_or_else(|| {
                Error::Argument(format!(
                    "{} comes from repository {repo_name:?}, which is not configured",
                    pkg.nevra()
                ))
            })?;
            // SAFETY: the package and repo are alive; libdnf stores the repo pointer, which the
            // context (outliving the package) owns.
            unsafe {
                sys::dnf_package_set_repo(pkg.ptr, repo);
                glib::ffi::g_ptr_array_add(arr.0, pkg.ptr.cast());
            }
        }
        // SAFETY: `arr` is a live array.
        if unsafe { (*arr.0).len } > 0 {
            let state = State::new(cancellable);
            state
                .on_percentage(progress, || {
                    check(
                        || "Downloading packages".to_string(),
                        // SAFETY: every element is a live package with its repo set; a NULL
                        // directory means each repo's own packages directory.
                        |e| unsafe {
                            sys::dnf_package_array_download(arr.0, ptr::null(), state.ptr, e)
                        },
                    )
                })
                .map_err(|e| e.or_cancelled(cancellable))?;
        }
        packages
            .iter()
            .map(|p| {
                p.filename()
                    .ok_or_else(|| Error::Argument(format!("{} has no package file", p.nevra())))
            })
            .collect()
    }
}

/// The repo name libdnf gives installed packages.
pub const SYSTEM_REPO: &str = "@System";
/// The repo name libdnf gives local packages ([`Context::add_local_package`]).
pub const COMMANDLINE_REPO: &str = "@commandline";

/// An owned GPtrArray reference.
struct PtrArray(*mut glib::ffi::GPtrArray);

impl Drop for PtrArray {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { glib::ffi::g_ptr_array_unref(self.0) }
    }
}

/// The elements of a GPtrArray (borrowed).
///
/// # Safety
/// `arr` is NULL or a live array.
unsafe fn ptr_array(arr: *mut glib::ffi::GPtrArray) -> Vec<*mut std::ffi::c_void> {
    if arr.is_null() {
        return Vec::new();
    }
    let len = (*arr).len as usize;
    (0..len).map(|i| *(*arr).pdata.add(i)).collect()
}

/// Packages from an owned GPtrArray of DnfPackage: each gets its own reference, then the array
/// is released.
///
/// # Safety
/// `arr` is NULL or an owned array of live DnfPackage pointers.
unsafe fn take_packages<'c>(arr: *mut glib::ffi::GPtrArray) -> Vec<Package<'c>> {
    if arr.is_null() {
        return Vec::new();
    }
    let arr = PtrArray(arr);
    ptr_array(arr.0)
        .into_iter()
        .map(|p| {
            glib::gobject_ffi::g_object_ref(p.cast());
            Package {
                ptr: p.cast(),
                _ctx: PhantomData,
            }
        })
        .collect()
}

/// A DnfState: progress and cancellation of one libdnf operation.
struct State {
    ptr: *mut sys::DnfState,
}

impl State {
    fn new(cancellable: Option<&gio::Cancellable>) -> State {
        // SAFETY: dnf_state_new returns an owned object; the cancellable, if any, is referenced
        // by the state.
        unsafe {
            let ptr = sys::dnf_state_new();
            if let Some(c) = cancellable {
                let c: *mut gio::ffi::GCancellable = c.to_glib_none().0;
                sys::dnf_state_set_cancellable(ptr, c);
            }
            State { ptr }
        }
    }

    /// Runs `f` with `progress` called on each "percentage-changed" of this state.
    fn on_percentage<T>(&self, progress: &mut dyn FnMut(u32), f: impl FnOnce() -> T) -> T {
        // SAFETY: the state is a live GObject; we take our own reference for the wrapper.
        let obj: glib::Object =
            unsafe { from_glib_none(self.ptr.cast::<glib::gobject_ffi::GObject>()) };
        let cell = RefCell::new(progress);
        // SAFETY: the handler is disconnected before `cell` goes out of scope, and libdnf emits
        // the signal synchronously on this thread.
        let id = unsafe {
            obj.connect_unsafe("percentage-changed", false, |args| {
                if let Some(pct) = args.get(1).and_then(|v| v.get::<u32>().ok()) {
                    if let Ok(mut cb) = cell.try_borrow_mut() {
                        cb(pct);
                    }
                }
                None
            })
        };
        let out = f();
        obj.disconnect(id);
        out
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // SAFETY: we own the reference from dnf_state_new.
        unsafe { glib::gobject_ffi::g_object_unref(self.ptr.cast()) }
    }
}

/// A package of the sack: installed (`@System`), from a repo, or local.
#[derive(Debug)]
pub struct Package<'c> {
    ptr: *mut sys::DnfPackage,
    _ctx: PhantomData<&'c Context>,
}

impl Clone for Package<'_> {
    fn clone(&self) -> Self {
        // SAFETY: a new reference to a live object.
        unsafe { glib::gobject_ffi::g_object_ref(self.ptr.cast()) };
        Package {
            ptr: self.ptr,
            _ctx: PhantomData,
        }
    }
}

impl Drop for Package<'_> {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { glib::gobject_ffi::g_object_unref(self.ptr.cast()) }
    }
}

impl PartialEq for Package<'_> {
    fn eq(&self, other: &Self) -> bool {
        // SAFETY: both packages are alive.
        unsafe { sys::dnf_package_get_identical(self.ptr, other.ptr) != 0 }
    }
}

macro_rules! string_getter {
    ($(#[$doc:meta])* $name:ident, $ffi:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> String {
            // SAFETY: the package is alive; the string is copied at once.
            unsafe { copy_str(sys::$ffi(self.ptr)) }.unwrap_or_default()
        }
    };
}

impl Package<'_> {
    string_getter!(
        /// `Name`.
        name, dnf_package_get_name
    );
    string_getter!(
        /// `Arch`.
        arch, dnf_package_get_arch
    );
    string_getter!(
        /// `[EPOCH:]VERSION-RELEASE`.
        evr, dnf_package_get_evr
    );
    string_getter!(
        /// `Version`.
        version, dnf_package_get_version
    );
    string_getter!(
        /// `Release`.
        release, dnf_package_get_release
    );
    string_getter!(
        /// `NAME-[EPOCH:]VERSION-RELEASE.ARCH`.
        nevra, dnf_package_get_nevra
    );
    string_getter!(
        /// The repo it comes from: an id, [`SYSTEM_REPO`] or [`COMMANDLINE_REPO`].
        repo_name, dnf_package_get_reponame
    );
    string_getter!(
        /// `Summary`.
        summary, dnf_package_get_summary
    );

    /// `Epoch` (0 when unset).
    pub fn epoch(&self) -> u64 {
        // SAFETY: the package is alive.
        unsafe { sys::dnf_package_get_epoch(self.ptr) }
    }

    /// Whether it is in the installed set (the tree's rpmdb).
    pub fn is_installed(&self) -> bool {
        // SAFETY: the package is alive.
        unsafe { sys::dnf_package_installed(self.ptr) != 0 }
    }

    /// Download size in bytes (0 for installed packages).
    pub fn download_size(&self) -> u64 {
        // SAFETY: the package is alive.
        unsafe { sys::dnf_package_get_downloadsize(self.ptr) }
    }

    /// The package file: the downloaded file for repo packages (after
    /// [`Context::download`]), the file itself for local ones; `None` for installed packages.
    pub fn filename(&self) -> Option<PathBuf> {
        // SAFETY: the package is alive; the string is cached on the object and copied at once.
        unsafe { copy_str(sys::dnf_package_get_filename(self.ptr)) }.map(PathBuf::from)
    }

    /// The repo metadata's checksum of the package file, as `TYPE:HEX` (e.g. `sha256:...`).
    pub fn checksum(&self) -> Option<String> {
        let mut kind = 0;
        // SAFETY: the package is alive; the raw checksum is read and converted at once, the hex
        // string is owned (g_free) and the type name static.
        unsafe {
            let raw = sys::dnf_package_get_chksum(self.ptr, &mut kind);
            if raw.is_null() {
                return None;
            }
            let hex = sys::hy_chksum_str(raw, kind);
            let out = copy_str(hex);
            glib::ffi::g_free(hex.cast());
            let name = copy_str(sys::hy_chksum_name(kind)).unwrap_or_default();
            out.map(|h| format!("{name}:{h}"))
        }
    }
}

/// A query over the sack's packages; filters narrow it, [`run`](Self::run) lists the result.
#[derive(Debug)]
pub struct Query<'c> {
    q: sys::HyQuery,
    _ctx: PhantomData<&'c Context>,
}

impl Drop for Query<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the query.
        unsafe { sys::hy_query_free(self.q) }
    }
}

impl<'c> Query<'c> {
    fn filter(self, key: u32, cmp: u32, what: &str, value: &str) -> Result<Self> {
        let v = cstring(what, value)?;
        // SAFETY: the query is alive and the string valid for the call (libdnf copies it).
        let rc = unsafe { sys::hy_query_filter(self.q, key as i32, cmp as i32, v.as_ptr()) };
        if rc != 0 {
            return Err(Error::Argument(format!(
                "Cannot filter on {what} {value:?}"
            )));
        }
        Ok(self)
    }

    /// Packages named exactly `name`.
    pub fn name(self, name: &str) -> Result<Self> {
        self.filter(sys::HY_PKG_NAME, sys::HY_EQ, "package name", name)
    }

    /// Packages providing `capability` (a name, optionally with a version: `foo >= 1.0`).
    pub fn provides(self, capability: &str) -> Result<Self> {
        self.filter(sys::HY_PKG_PROVIDES, sys::HY_EQ, "capability", capability)
    }

    /// Only installed packages (the tree's rpmdb).
    pub fn installed(self) -> Result<Self> {
        self.filter(sys::HY_PKG_REPONAME, sys::HY_EQ, "repository", SYSTEM_REPO)
    }

    /// Only packages that are not installed.
    pub fn available(self) -> Result<Self> {
        self.filter(sys::HY_PKG_REPONAME, sys::HY_NEQ, "repository", SYSTEM_REPO)
    }

    /// Only the packages of repo `id`.
    pub fn repo(self, id: &str) -> Result<Self> {
        self.filter(sys::HY_PKG_REPONAME, sys::HY_EQ, "repository", id)
    }

    /// Only the newest version of each name and architecture.
    pub fn latest(self) -> Self {
        // SAFETY: the query is alive.
        unsafe { sys::hy_query_filter_latest_per_arch(self.q, 1) };
        self
    }

    /// The matching packages.
    pub fn run(&self) -> Vec<Package<'c>> {
        // SAFETY: the query is alive; hy_query_run returns an owned array of packages.
        unsafe { take_packages(sys::hy_query_run(self.q)) }
    }
}

/// What a solved [`Goal`] changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New packages.
    Install,
    /// Installed packages taken away.
    Erase,
    /// Installed packages replaced by a newer version.
    Upgrade,
    /// Installed packages replaced by an older version.
    Downgrade,
    /// Installed packages installed again.
    Reinstall,
    /// Installed packages replaced through `Obsoletes`.
    Obsoleted,
}

/// A set of requests (install, erase, lock) solved against the sack.
#[derive(Debug)]
pub struct Goal<'c> {
    goal: sys::HyGoal,
    sack: *mut sys::DnfSack,
    _ctx: PhantomData<&'c Context>,
}

impl Drop for Goal<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the goal.
        unsafe { sys::hy_goal_free(self.goal) }
    }
}

impl<'c> Goal<'c> {
    /// Asks for `pkg` to be installed.
    pub fn install(&mut self, pkg: &Package<'c>) -> Result<()> {
        // SAFETY: the goal and package are alive.
        match unsafe { sys::hy_goal_install(self.goal, pkg.ptr) } {
            0 => Ok(()),
            _ => Err(Error::Failed(format!("Requesting {}", pkg.nevra()))),
        }
    }

    /// Asks for the best match of `spec` (a name, `name-version`, NEVRA or a provide, tried in
    /// that order, as dnf does) to be installed. `Ok(false)` when nothing matches.
    pub fn install_spec(&mut self, spec: &str) -> Result<bool> {
        let s = cstring("package", spec)?;
        // SAFETY: the subject and selector are owned and freed here; the sack is alive; the
        // matches array is owned.
        unsafe {
            let subject = sys::hy_subject_create(s.as_ptr());
            let sel = sys::hy_subject_get_best_selector(
                subject,
                self.sack,
                ptr::null_mut(),
                false,
                ptr::null(),
            );
            sys::hy_subject_free(subject);
            let matches = PtrArray(sys::hy_selector_matches(sel));
            let found = !matches.0.is_null() && (*matches.0).len > 0;
            let mut result = Ok(found);
            if found {
                let mut err = ptr::null_mut();
                if sys::hy_goal_install_selector(self.goal, sel, &mut err) == 0 {
                    result = Err(Error::from_gerror(format!("Requesting {spec:?}"), err));
                }
            }
            sys::hy_selector_free(sel);
            result
        }
    }

    /// Asks for the installed `pkg` to be erased.
    pub fn erase(&mut self, pkg: &Package<'c>) -> Result<()> {
        // SAFETY: the goal and package are alive.
        match unsafe { sys::hy_goal_erase(self.goal, pkg.ptr) } {
            0 => Ok(()),
            _ => Err(Error::Failed(format!(
                "Requesting removal of {}",
                pkg.nevra()
            ))),
        }
    }

    /// Forbids the solver to change the installed `pkg` (neither erase nor replace it).
    pub fn lock(&mut self, pkg: &Package<'c>) -> Result<()> {
        let mut err = ptr::null_mut();
        // SAFETY: the goal and package are alive.
        match unsafe { sys::hy_goal_lock(self.goal, pkg.ptr, &mut err) } {
            0 => Ok(()),
            _ => Err(Error::from_gerror(format!("Locking {}", pkg.nevra()), err)),
        }
    }

    /// Solves the goal. `allow_erasing`: the solver may erase installed packages that are not
    /// locked. On failure the error carries libdnf's description of each problem.
    pub fn solve(&mut self, allow_erasing: bool) -> Result<()> {
        let mut flags = sys::DNF_INSTALL;
        if allow_erasing {
            flags |= sys::DNF_ALLOW_UNINSTALL;
        }
        check(
            || "Resolving dependencies".to_string(),
            // SAFETY: the goal is alive.
            |e| unsafe { sys::dnf_goal_depsolve(self.goal, flags, e) },
        )
    }

    /// The packages of one kind of change in the solved goal (empty before a successful
    /// [`solve`](Self::solve)).
    pub fn list(&self, change: Change) -> Vec<Package<'c>> {
        let f = match change {
            Change::Install => sys::hy_goal_list_installs,
            Change::Erase => sys::hy_goal_list_erasures,
            Change::Upgrade => sys::hy_goal_list_upgrades,
            Change::Downgrade => sys::hy_goal_list_downgrades,
            Change::Reinstall => sys::hy_goal_list_reinstalls,
            Change::Obsoleted => sys::hy_goal_list_obsoleted,
        };
        let mut err = ptr::null_mut();
        // SAFETY: the goal is alive; the array is owned; an error (unsolved goal) is freed.
        unsafe {
            let arr = f(self.goal, &mut err);
            if !err.is_null() {
                glib::ffi::g_error_free(err);
            }
            take_packages(arr)
        }
    }

    /// The installed packages `pkg` (being installed) obsoletes or replaces.
    pub fn replaced_by(&self, pkg: &Package<'c>) -> Vec<Package<'c>> {
        // SAFETY: the goal and package are alive; the array is owned.
        unsafe { take_packages(sys::hy_goal_list_obsoleted_by_package(self.goal, pkg.ptr)) }
    }
}
