//! libostree's `ostree_repo_remote_fetch_summary_with_options`, bound by hand: the ostree
//! crate's `Repo::remote_fetch_summary_with_options` (0.19) wraps both out parameters as
//! non-nullable `glib::Bytes`, but libostree leaves the summary NULL when the remote has none
//! and the signatures NULL when it is unsigned — the binding would make a `Bytes` of a null
//! pointer. One of the crates under `bindings/`, the only place Strata writes `unsafe`.
#![allow(unsafe_code)]

use ostree::glib::translate::{from_glib_full, ToGlibPtr};
use ostree::{gio, glib};

/// The summary file of the remote `name` (`None` when the remote has none), fetched through
/// libostree: the remote's URL, mirror list, TLS settings and summary cache apply, and the
/// summary is verified as the remote's `gpg-verify-summary` and `sign-verify-summary` ask. No
/// repository transaction is opened.
pub fn fetch(
    repo: &ostree::Repo,
    name: &str,
    cancellable: Option<&gio::Cancellable>,
) -> Result<Option<glib::Bytes>, glib::Error> {
    let mut summary = std::ptr::null_mut();
    let mut error = std::ptr::null_mut();
    // SAFETY: the repo, name and cancellable pointers are valid for the call (borrowed
    // stashes); options and the signatures' out parameter are documented as nullable. On
    // success `summary` is NULL or a reference we own; on failure `error` is a GError we own.
    unsafe {
        let ok = ostree::ffi::ostree_repo_remote_fetch_summary_with_options(
            repo.to_glib_none().0,
            name.to_glib_none().0,
            std::ptr::null_mut(),
            &mut summary,
            std::ptr::null_mut(),
            cancellable.to_glib_none().0,
            &mut error,
        );
        if ok == glib::ffi::GFALSE {
            Err(from_glib_full(error))
        } else {
            Ok(from_glib_full(summary))
        }
    }
}
