//! Package layering against real components: RPMs built with `rpmbuild`, repositories indexed
//! with `createrepo_c` and served over `file://` or loopback HTTP, trees with a real rpmdb
//! written by `rpm`, and libdnf itself.

mod deploy;
mod import;
mod libdnf;
mod local;
mod scripts;
