//! Importing RPMs into the package cache (`strata_core::layering::import_rpm`) on packages
//! built by the real rpmbuild, some of them then edited into what rpmbuild refuses to make.

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use strata_core::layering::{import_rpm, RepoSource};
use strata_core::OpContext;
use strata_tests::cmd;
use strata_tests::rpm::{patch, Compression};
use strata_tests::{RpmEntry, RpmSpec};
use tempfile::TempDir;

struct Cache {
    dir: TempDir,
    repo: ostree::Repo,
}

fn cache() -> Cache {
    strata_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    cmd::ostree(["init", "--mode=bare", &format!("--repo={}", path.display())]).unwrap();
    let repo = ostree::Repo::new_for_path(&path);
    repo.open(ostree::gio::Cancellable::NONE).unwrap();
    Cache { dir, repo }
}

impl Cache {
    fn repo_arg(&self) -> String {
        format!("--repo={}", self.dir.path().join("repo").display())
    }

    fn refs(&self) -> Vec<String> {
        cmd::ostree(["refs", &self.repo_arg()])
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `ostree ls -R` of `rev`: (type+mode, uid, gid, path) per line.
    fn ls(&self, rev: &str) -> Vec<String> {
        cmd::ostree(["ls", "-R", &self.repo_arg(), rev])
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                // mode uid gid size path [-> target]
                format!("{} {} {} {}", f[0], f[1], f[2], f[4..].join(" "))
            })
            .collect()
    }

    fn cat(&self, rev: &str, path: &str) -> String {
        cmd::ostree(["cat", &self.repo_arg(), rev, path]).unwrap()
    }

    fn build(&self, spec: &RpmSpec) -> PathBuf {
        spec.build(&self.dir.path().join("rpms")).unwrap()
    }
}

fn hello() -> RpmSpec {
    RpmSpec::new("hello", "1.0")
        .epoch(2)
        .executable("usr/bin/hello", "#!/bin/sh\necho hello\n")
        .config("etc/hello.conf", "greeting=hi\n")
        .dir("var/lib/hello")
        .file("opt/hello/data", "x\n")
        .file("boot/hello.cfg", "boot\n")
        .symlink("usr/bin/hi", "hello")
        .entry(
            "usr/bin/hello-setuid",
            RpmEntry::Regular {
                content: b"#!/bin/sh\n".to_vec(),
                mode: 0o4755,
            },
        )
}

#[test]
fn a_package_becomes_a_commit_under_its_cache_ref() {
    let c = cache();
    let rpm = c.build(&hello());
    let source = RepoSource {
        id: "test".into(),
        timestamp: 1_700_000_000,
        checksum: Some("sha256:abc".into()),
    };
    let imported = import_rpm(&c.repo, &rpm, Some(&source), &OpContext::silent()).unwrap();
    assert!(!imported.reused);
    assert_eq!(imported.cache_ref, "rpmostree/pkg/hello/2_3A1.0-1.noarch");
    assert_eq!(imported.nevra.to_string(), "hello-2:1.0-1.noarch");
    assert_eq!(c.refs(), std::slice::from_ref(&imported.cache_ref));

    let ls = c.ls(&imported.cache_ref);
    for want in [
        "-00755 0 0 /usr/bin/hello",
        "-04755 0 0 /usr/bin/hello-setuid",
        "l00777 0 0 /usr/bin/hi -> hello",
        "-00644 0 0 /usr/etc/hello.conf",
        "-00644 0 0 /usr/lib/opt/hello/data",
        "-00644 0 0 /usr/lib/ostree-boot/hello.cfg",
        "-00644 0 0 /usr/lib/rpm-ostree/tmpfiles.d/hello.conf",
    ] {
        assert!(ls.iter().any(|l| l == want), "{want} not in {ls:#?}");
    }
    let top_level = |d: &str| {
        ls.iter()
            .any(|l| l.ends_with(&format!(" /{d}")) || l.contains(&format!(" /{d}/")))
    };
    assert!(
        !top_level("var") && !top_level("etc") && !top_level("opt") && !top_level("boot"),
        "{ls:#?}"
    );
    assert_eq!(
        c.cat(&imported.cache_ref, "/usr/bin/hello"),
        "#!/bin/sh\necho hello\n"
    );
    let tmpfiles = c.cat(
        &imported.cache_ref,
        "/usr/lib/rpm-ostree/tmpfiles.d/hello.conf",
    );
    assert!(
        tmpfiles.contains("d /var/lib/hello 0755 root root - -"),
        "{tmpfiles}"
    );
    assert!(
        tmpfiles.contains("L /opt/hello - - - - ../../usr/lib/opt/hello"),
        "{tmpfiles}"
    );

    // The metadata rpm-ostree reads: the bytes before the payload and their digest.
    let commit = strata_core::commit::load(&c.repo, &imported.commit).unwrap();
    let dict = ostree::glib::VariantDict::new(Some(&commit.metadata));
    let prefix: Vec<u8> = dict
        .lookup_value("rpmostree.metadata", None)
        .unwrap()
        .fixed_array::<u8>()
        .unwrap()
        .to_vec();
    let file = fs::read(&rpm).unwrap();
    assert!(file.starts_with(&prefix) && prefix.len() < file.len());
    let digest = hex::encode(Sha256::digest(&prefix));
    assert_eq!(
        commit.meta_string("rpmostree.metadata_sha256"),
        Some(digest.clone())
    );
    assert_eq!(imported.metadata_sha256, digest);
    let nevra = dict
        .lookup::<(String, String, u64, String, String, String)>("rpmostree.nevra")
        .unwrap()
        .unwrap();
    assert_eq!(nevra.0, "hello-2:1.0-1.noarch");
    assert_eq!(nevra.2, 2);
    assert_eq!(
        commit.meta_string("rpmostree.repodata_checksum").as_deref(),
        Some("sha256:abc")
    );
    assert_eq!(commit.parent, None);
}

#[test]
fn the_same_package_is_imported_once_and_every_codec_gives_the_same_tree() {
    let c = cache();
    let mut roots = Vec::new();
    for compression in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Xz,
        Compression::None,
    ] {
        let rpm = hello()
            .release(format!("{compression:?}"))
            .compression(compression)
            .build(&c.dir.path().join(format!("{compression:?}")))
            .unwrap();
        let first = import_rpm(&c.repo, &rpm, None, &OpContext::silent()).unwrap();
        let again = import_rpm(&c.repo, &rpm, None, &OpContext::silent()).unwrap();
        assert!(again.reused, "{compression:?}");
        assert_eq!(again.commit, first.commit);
        roots.push(c.ls(&first.cache_ref));
    }
    for r in &roots[1..] {
        assert_eq!(r, &roots[0]);
    }
}

#[test]
fn hard_links_get_their_data() {
    let c = cache();
    let rpm = c.build(
        &RpmSpec::new("links", "1")
            .file("usr/share/links/a", "shared data\n")
            .entry(
                "usr/share/links/b",
                RpmEntry::HardLink("usr/share/links/a".into()),
            )
            .entry(
                "usr/share/links/c",
                RpmEntry::HardLink("usr/share/links/a".into()),
            ),
    );
    let imported = import_rpm(&c.repo, &rpm, None, &OpContext::silent()).unwrap();
    for f in ["a", "b", "c"] {
        assert_eq!(
            c.cat(&imported.cache_ref, &format!("/usr/share/links/{f}")),
            "shared data\n"
        );
    }
}

/// Imports `rpm`, expecting a refusal that names the package and `path`, and no ref.
fn assert_refused(c: &Cache, rpm: &Path, pkg: &str, path: &str) {
    let err = import_rpm(&c.repo, rpm, None, &OpContext::silent()).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains(pkg) && msg.contains(path), "{msg}");
    assert!(c.refs().is_empty(), "{:?}", c.refs());
}

#[test]
fn paths_outside_the_deployment_are_refused() {
    let c = cache();
    let rpm = c.build(&RpmSpec::new("website", "1").file("srv/www/index.html", "hi\n"));
    assert_refused(&c, &rpm, "website-1-1.noarch", "/srv/www/index.html");
}

#[test]
fn device_nodes_are_refused() {
    let c = cache();
    let rpm = c.build(&RpmSpec::new("devnode", "1").entry(
        "usr/lib/devnode/null",
        RpmEntry::Device {
            kind: 'c',
            major: 1,
            minor: 3,
        },
    ));
    assert_refused(&c, &rpm, "devnode-1-1.noarch", "/usr/lib/devnode/null");
}

#[test]
fn a_path_escaping_the_tree_is_refused() {
    let c = cache();
    let rpm = c.build(
        &RpmSpec::new("escape", "1")
            .compression(Compression::None)
            .file("usr/share/AA/passwd", "root::0:0::/:/bin/sh\n"),
    );
    // Header (dirname) and payload (cpio name) both say /usr/share/../passwd now.
    patch(&rpm, b"/usr/share/AA/", b"/usr/share/../").unwrap();
    assert_refused(&c, &rpm, "escape-1-1.noarch", "/usr/share/../passwd");
}

#[test]
fn payload_entries_the_header_does_not_list_are_refused() {
    let c = cache();
    let rpm = c.build(
        &RpmSpec::new("sneaky", "1")
            .compression(Compression::None)
            .file("usr/bin/sneaky-aa", "x\n"),
    );
    // Only the payload names the full path; the header stores the base name alone.
    patch(&rpm, b"./usr/bin/sneaky-aa", b"./usr/bin/sneaky-zz").unwrap();
    assert_refused(&c, &rpm, "sneaky-1-1.noarch", "/usr/bin/sneaky-zz");
}

#[test]
fn a_setuid_bit_only_the_payload_has_is_refused() {
    let c = cache();
    let rpm = c.build(
        &RpmSpec::new("setuid", "1")
            .compression(Compression::None)
            .entry(
                "usr/bin/su-ish",
                RpmEntry::Regular {
                    content: b"x\n".to_vec(),
                    mode: 0o755,
                },
            ),
    );
    // The cpio header's mode field (newc: 8 hex digits) 0100755 becomes 0104755.
    let n = patch(&rpm, b"000081ed", b"000089ed")
        .or_else(|_| patch(&rpm, b"000081ED", b"000089ED"))
        .unwrap();
    assert_eq!(n, 1);
    assert_refused(&c, &rpm, "setuid-1-1.noarch", "/usr/bin/su-ish");
}

#[test]
fn a_cancelled_import_writes_no_ref() {
    let c = cache();
    let rpm = c.build(&hello());
    let ctx = OpContext::silent();
    use ostree::gio::prelude::CancellableExt;
    ctx.cancellable().cancel();
    let err = import_rpm(&c.repo, &rpm, None, &ctx).unwrap_err();
    assert!(strata_core::is_cancelled(&err), "{err:#}");
    assert!(c.refs().is_empty());
}
