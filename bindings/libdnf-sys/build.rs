//! Generates the bindings from the installed libdnf headers at build time, so they always match
//! the library the crate links against (Debian 12: libdnf 0.69, `libdnf-dev`; bindgen needs
//! `libclang-dev`).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    let dnf = pkg_config::Config::new()
        .atleast_version("0.60")
        .probe("libdnf")
        .unwrap_or_else(|e| panic!("libdnf not found by pkg-config (install libdnf-dev): {e}"));
    // libdnf.pc omits gobject-2.0 although DnfContext, DnfRepo, ... are GObjects.
    pkg_config::probe_library("gobject-2.0")
        .unwrap_or_else(|e| panic!("gobject-2.0 not found by pkg-config: {e}"));

    let mut builder = bindgen::Builder::default()
        .header("wrapper.h")
        .allowlist_function("(dnf|hy)_.*")
        .allowlist_type("(Dnf|Hy|_Hy|_Dnf|_hy_).*")
        .allowlist_var("(DNF|HY|_HY)_.*")
        // GLib and GObject types come from the gtk-rs -sys crates, so values pass between this
        // crate and glib (GError, GPtrArray, GCancellable, ...) without casts.
        .blocklist_type("_?G[A-Z].*")
        .raw_line("#[allow(unused_imports)] use glib_sys::*;")
        .raw_line("#[allow(unused_imports)] use gobject_sys::*;")
        .raw_line("#[allow(unused_imports)] use gio_sys::*;")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .derive_debug(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    for path in &dnf.include_paths {
        builder = builder.clang_arg(format!("-I{}", path.display()));
    }
    let bindings = builder.generate().unwrap_or_else(|e| {
        panic!("bindgen over libdnf.h failed (is libclang-dev installed?): {e}")
    });
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");
}
