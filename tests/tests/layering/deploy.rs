//! Layering through the engine on a real sysroot: `strata_core::pkg_change` and `upgrade` with
//! packages from a real rpm-md repository configured in the deployment's `/etc/yum.repos.d`.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use strata_core::{pkg_change, upgrade, OpContext, PackageChange, Sysroot, UpgradeOptions};
use strata_tests::{cmd, Fixture, FixtureConfig, TestPackages};
use tempfile::TempDir;

pub struct Layering {
    pub fx: Fixture,
    pub pkgs: TestPackages,
    _rpms: TempDir,
}

/// The kit's [`TestPackages`] and a fixture whose release "1" has their base rpmdb and repo.
pub fn layering() -> Layering {
    strata_tests::init();
    let rpms = tempfile::tempdir().unwrap();
    let pkgs = TestPackages::create(rpms.path()).unwrap();
    let fx = Fixture::new(&FixtureConfig {
        release: pkgs.release("1"),
        ..Default::default()
    })
    .unwrap();
    Layering {
        fx,
        pkgs,
        _rpms: rpms,
    }
}

impl Layering {
    pub fn from_parts(fx: Fixture, pkgs: TestPackages, rpms: TempDir) -> Layering {
        Layering {
            fx,
            pkgs,
            _rpms: rpms,
        }
    }

    pub fn sysroot(&self) -> Sysroot {
        Sysroot::open(self.fx.sysroot().unwrap().path()).unwrap()
    }

    pub fn install(&self, pkgs: &[&str]) -> anyhow::Result<strata_core::stage::Outcome> {
        let change = PackageChange {
            install: pkgs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        pkg_change(&self.sysroot(), &change, &OpContext::silent())
    }

    pub fn uninstall(&self, pkgs: &[&str]) -> anyhow::Result<strata_core::stage::Outcome> {
        let change = PackageChange {
            uninstall: pkgs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        pkg_change(&self.sysroot(), &change, &OpContext::silent())
    }

    /// Commits release `version` and upgrades to it; checks that its files are deployed.
    pub fn upgrade_to(&self, version: &str) {
        self.fx.commit(&self.pkgs.release(version)).unwrap();
        upgrade(
            &self.sysroot(),
            &UpgradeOptions::default(),
            &OpContext::silent(),
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(self.deployment().join("usr/bin/strata-release")).unwrap(),
            format!("#!/bin/sh\necho {version}\n")
        );
    }

    /// The newest deployment's directory.
    pub fn deployment(&self) -> PathBuf {
        self.fx.sysroot().unwrap().deploy_dir(0).unwrap()
    }

    /// `rpm -qa` in the newest deployment, sorted names.
    pub fn rpm_names(&self) -> Vec<String> {
        let out = cmd::run(
            Command::new("rpm")
                .arg("--root")
                .arg(self.deployment())
                .args(["--dbpath", "/usr/share/rpm", "-qa", "--qf", "%{NAME}\\n"]),
        )
        .unwrap();
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    }

    pub fn refs(&self) -> Vec<String> {
        let repo = self.fx.sysroot().unwrap().repo_path();
        cmd::ostree(["refs", &format!("--repo={}", repo.display())])
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The newest deployment's origin file.
    pub fn origin(&self) -> String {
        let dir = self.deployment();
        fs::read_to_string(format!("{}.origin", dir.display())).unwrap()
    }
}

#[test]
fn install_layers_a_package_with_its_dependency() {
    let l = layering();
    let before = l.fx.sysroot().unwrap().deployments().unwrap().len();
    l.install(&["hello"]).unwrap();
    assert_eq!(
        l.fx.sysroot().unwrap().deployments().unwrap().len(),
        before + 1
    );
    let d = l.deployment();
    assert_eq!(
        fs::read_to_string(d.join("usr/bin/hello")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    assert_eq!(
        fs::read_to_string(d.join("usr/lib/libhello.txt")).unwrap(),
        "lib\n"
    );
    // /etc content arrives through the 3-way merge; /var as a tmpfiles line.
    assert_eq!(
        fs::read_to_string(d.join("etc/hello.conf")).unwrap(),
        "greeting=hi\n"
    );
    let autovar =
        fs::read_to_string(d.join("usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf")).unwrap();
    assert!(
        autovar.contains("d /var/lib/hello 0755 root root - -"),
        "{autovar}"
    );
    assert_eq!(
        l.rpm_names(),
        ["base-lib", "hello", "libhello", "strata-test-sh"]
    );
    let origin = l.origin();
    assert!(
        origin.contains("baserefspec=") && origin.contains("requested=hello;"),
        "{origin}"
    );
    // Status: the layered commit's parent is the base; what is layered.
    let st = strata_core::status::load(&l.sysroot()).unwrap();
    let d = &st.deployments[0];
    assert_eq!(d.base_checksum.as_deref(), Some(l.fx.first_commit()));
    assert_eq!(d.packages, ["hello"]);
    assert_eq!(d.requested_packages, ["hello"]);
    let layered = d.layered_commit_meta.as_ref().unwrap();
    assert_eq!(layered["rpmostree.clientlayer"], serde_json::json!(true));
    assert_eq!(d.base_commit_meta["version"], serde_json::json!("1"));
    let refs = l.refs();
    for want in [
        "rpmostree/pkg/hello/1.0-1.noarch",
        "rpmostree/pkg/libhello/1.0-1.noarch",
    ] {
        assert!(refs.iter().any(|r| r == want), "{want} not in {refs:?}");
    }
}

/// On a booted host `/usr` is read-only: the layered rpmdb must be readable there (a WAL-mode
/// SQLite database is not without its `-shm` file).
#[test]
fn the_layered_rpmdb_is_readable_on_a_read_only_tree() {
    let l = layering();
    l.install(&["hello"]).unwrap();
    let d = l.deployment();
    let script = r#"set -e
mnt=$(mktemp -d)
mount --bind "$1" "$mnt"
mount -o remount,bind,ro "$mnt"
rpm --root "$mnt" --dbpath /usr/share/rpm -q hello libhello"#;
    let out = cmd::run(
        Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(&d),
    )
    .unwrap();
    assert!(
        out.contains("hello-1.0-1.noarch") && out.contains("libhello-1.0-1.noarch"),
        "{out}"
    );
}

#[test]
fn the_same_request_reuses_the_layered_commit() {
    let l = layering();
    l.install(&["hello"]).unwrap();
    let first = l.fx.sysroot().unwrap().deployments().unwrap()[0]
        .checksum
        .clone();
    l.uninstall(&["hello"]).unwrap();
    let base = l.fx.sysroot().unwrap().deployments().unwrap()[0]
        .checksum
        .clone();
    assert_ne!(base, first);
    assert_eq!(
        base,
        l.fx.first_commit(),
        "no packages left: the plain base is deployed"
    );
    l.install(&["hello"]).unwrap();
    let again = l.fx.sysroot().unwrap().deployments().unwrap()[0]
        .checksum
        .clone();
    assert_eq!(again, first, "same base and packages: same commit");
}

#[test]
fn a_missing_package_changes_nothing() {
    let l = layering();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let err = format!("{:#}", l.install(&["no-such-package"]).unwrap_err());
    assert!(err.contains("Packages not found: no-such-package"), "{err}");
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
}

#[test]
fn a_conflict_with_a_base_package_is_refused_naming_it() {
    let l = layering();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let err = format!("{:#}", l.install(&["clash"]).unwrap_err());
    assert!(err.contains("base-lib"), "{err}");
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
    // Asking for a newer base package replaces nothing either.
    let err = format!("{:#}", l.install(&["base-lib-2.0"]).unwrap_err());
    assert!(err.contains("base-lib"), "{err}");
}

#[test]
fn a_request_the_base_satisfies_needs_allow_inactive() {
    let l = layering();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let err = format!("{:#}", l.install(&["base-lib"]).unwrap_err());
    assert!(
        err.contains("base-lib-1.0-1.noarch") && err.contains("--allow-inactive"),
        "{err}"
    );
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);
    let change = PackageChange {
        install: vec!["base-lib".into()],
        allow_inactive: true,
        ..Default::default()
    };
    let outcome = pkg_change(&l.sysroot(), &change, &OpContext::silent()).unwrap();
    // The origin records the request; the deployment is the plain base.
    assert!(!outcome.is_unchanged());
    let d = &l.fx.sysroot().unwrap().deployments().unwrap()[0];
    assert_eq!(d.checksum, l.fx.first_commit());
}

#[test]
fn layered_packages_survive_an_upgrade() {
    let l = layering();
    l.install(&["hello"]).unwrap();
    l.upgrade_to("2");
    let d = l.deployment();
    assert!(d.join("usr/bin/hello").is_file());
    assert_eq!(
        l.rpm_names(),
        ["base-lib", "hello", "libhello", "strata-test-sh"]
    );
}

#[test]
fn a_request_a_new_base_contains_becomes_inactive() {
    let l = layering();
    l.install(&["tool"]).unwrap();
    // Release 2 ships `tool` in the base.
    let tool = l.pkgs.repo.path().join("tool-2.0-1.noarch.rpm");
    let v2 = l.fx.commit(&l.pkgs.release("2").rpms([tool])).unwrap();
    upgrade(
        &l.sysroot(),
        &UpgradeOptions::default(),
        &OpContext::silent(),
    )
    .unwrap();
    let st = strata_core::status::load(&l.sysroot()).unwrap();
    let d = &st.deployments[0];
    assert_eq!(d.checksum, v2, "nothing left to layer: the plain new base");
    assert_eq!(
        d.requested_packages,
        ["tool"],
        "the request stays, inactive"
    );
    assert!(d.packages.is_empty());
    assert!(l.deployment().join("usr/bin/tool").is_file());
}

#[test]
fn layered_packages_survive_a_rebase() {
    let l = layering();
    l.install(&["hello"]).unwrap();
    let other = "stratatest/testing/x86_64";
    l.fx.repo()
        .commit_release(other, &l.pkgs.release("10-testing"))
        .unwrap();
    let opts = strata_core::RebaseOptions {
        osname: None,
        refspec: other.to_string(),
        revision: None,
        skip_purge: false,
        disallow_downgrade: false,
        lock_finalization: false,
        cache_only: false,
        download_only: false,
    };
    strata_core::rebase(&l.sysroot(), &opts, &OpContext::silent()).unwrap();
    let d = l.deployment();
    assert_eq!(
        fs::read_to_string(d.join("usr/bin/strata-release")).unwrap(),
        "#!/bin/sh\necho 10-testing\n"
    );
    assert!(d.join("usr/bin/hello").is_file());
    let origin = l.origin();
    assert!(
        origin.contains(&format!("baserefspec=testos:{other}"))
            && origin.contains("requested=hello;"),
        "{origin}"
    );
}

/// Layered packages sit on an image base as on a ref base: carried over by the rebase onto a
/// container image (the origin keeps them beside `container-image-reference`), re-layered when
/// the image's tag moves, and installed on the image-based deployment.
#[test]
fn layered_packages_on_a_container_image_base() {
    let l = layering();
    l.install(&["hello"]).unwrap();
    let oci = l.fx.dir().join("oci");
    let publish = |version: &str| {
        let rev = l.fx.commit(&l.pkgs.release(version)).unwrap();
        strata_tests::oci::encapsulate(l.fx.repo().path(), &rev, &oci, "stable").unwrap();
    };
    publish("2");
    let imgref = format!("ostree-unverified-image:oci:{}:stable", oci.display());
    let opts = strata_core::RebaseOptions {
        refspec: imgref.clone(),
        ..Default::default()
    };
    strata_core::rebase(&l.sysroot(), &opts, &OpContext::silent()).unwrap();
    let d = l.deployment();
    assert!(d.join("usr/bin/hello").is_file());
    assert_eq!(
        fs::read_to_string(d.join("usr/bin/strata-release")).unwrap(),
        "#!/bin/sh\necho 2\n"
    );
    let origin = l.origin();
    assert!(
        origin.contains(&format!("container-image-reference={imgref}"))
            && origin.contains("requested=hello;"),
        "{origin}"
    );
    publish("3");
    upgrade(
        &l.sysroot(),
        &UpgradeOptions::default(),
        &OpContext::silent(),
    )
    .unwrap();
    let d = l.deployment();
    assert!(d.join("usr/bin/hello").is_file());
    assert_eq!(
        fs::read_to_string(d.join("usr/bin/strata-release")).unwrap(),
        "#!/bin/sh\necho 3\n"
    );
    l.install(&["tool"]).unwrap();
    let d = l.deployment();
    assert!(d.join("usr/bin/hello").is_file() && d.join("usr/bin/tool").is_file());
    assert!(
        l.origin().contains("container-image-reference="),
        "{}",
        l.origin()
    );
}

/// Packages from an HTTP repo are downloaded into the sysroot's cache, imported, and the
/// downloaded files removed; the repo's own files are untouched.
#[test]
fn downloaded_packages_do_not_pile_up() {
    strata_tests::init();
    let rpms = tempfile::tempdir().unwrap();
    let pkgs = TestPackages::create(rpms.path()).unwrap();
    let http = strata_tests::HttpServer::serve(pkgs.repo.path()).unwrap();
    let fx = Fixture::new(&FixtureConfig {
        release: pkgs.release_with_url("1", &http.url()),
        ..Default::default()
    })
    .unwrap();
    let l = Layering {
        fx,
        pkgs,
        _rpms: rpms,
    };
    l.install(&["hello"]).unwrap();
    assert!(l.deployment().join("usr/bin/hello").is_file());
    let sysroot = l.fx.sysroot().unwrap();
    let cache = sysroot
        .path()
        .join("ostree/deploy")
        .join(sysroot.osname())
        .join("var/cache/strata");
    assert!(cache.join("repomd").is_dir(), "{}", cache.display());
    let leftovers: Vec<_> = walk(&cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rpm"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(l.pkgs.repo.path().join("hello-1.0-1.noarch.rpm").is_file());
    // `cleanup -m` clears the metadata cache.
    let opts = strata_core::CleanupOptions {
        repomd: true,
        ..Default::default()
    };
    strata_core::cleanup(&l.sysroot(), &opts, &OpContext::silent()).unwrap();
    assert!(!cache.join("repomd").exists());
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Adding packages to a layered deployment builds on its layered commit (only the new packages
/// are checked out and their scriptlets run), and gives the same tree and rpmdb as assembling
/// the whole request on the base.
#[test]
fn adding_packages_is_incremental_and_equals_from_scratch() {
    let l = layering();
    l.install(&["hello", "svc"]).unwrap();
    let sysroot = l.fx.sysroot().unwrap();
    let first = sysroot.deployments().unwrap()[0].checksum.clone();
    let repo = ostree::Repo::new_for_path(sysroot.repo_path());
    repo.open(ostree::gio::Cancellable::NONE).unwrap();
    let first_info = strata_core::commit::load(&repo, &first).unwrap();
    let work = tempfile::tempdir_in(sysroot.repo_path().join("tmp")).unwrap();
    let req = strata_core::layering::LayerRequest {
        base: l.fx.first_commit().to_string(),
        packages: ["hello", "svc", "scripted", "tool"]
            .map(String::from)
            .to_vec(),
        local: Vec::new(),
        repos_dir: l.deployment().join("etc/yum.repos.d"),
        cache_dir: work.path().join("cache"),
        cache_only: false,
        forbid_inactive: Vec::new(),
        work_dir: work.path().to_path_buf(),
    };
    let ctx = OpContext::silent();
    let incremental = strata_core::layering::assemble(&repo, &req, &[first_info], &ctx).unwrap();
    assert_eq!(
        incremental.incremental_from.as_deref(),
        Some(first.as_str())
    );
    let scratch = strata_core::layering::assemble(&repo, &req, &[], &ctx).unwrap();
    assert_eq!(scratch.incremental_from, None);
    assert!(!incremental.reused && !scratch.reused);
    assert_ne!(
        incremental.commit, scratch.commit,
        "two commits were written"
    );

    // The trees differ in the rpmdb's bytes alone (rpm records install times).
    let diff = cmd::ostree([
        "diff",
        &format!("--repo={}", sysroot.repo_path().display()),
        &incremental.commit,
        &scratch.commit,
    ])
    .unwrap();
    let other: Vec<&str> = diff
        .lines()
        .filter(|l| {
            !l.trim_start_matches(['M', 'A', 'D'])
                .trim()
                .starts_with("/usr/share/rpm/")
        })
        .collect();
    assert!(
        other.is_empty(),
        "trees differ outside the rpmdb: {other:?}"
    );
    // Same packages in the rpmdb, with the same headers; same metadata.
    let packages = |commit: &str| {
        let dir = work.path().join(&commit[..12]);
        cmd::ostree([
            "checkout",
            "-H",
            &format!("--repo={}", sysroot.repo_path().display()),
            commit,
            &dir.to_string_lossy(),
        ])
        .unwrap();
        cmd::run(Command::new("rpm").arg("--root").arg(&dir).args([
            "--dbpath",
            "/usr/share/rpm",
            "-qa",
            "--qf",
            "%{NEVRA} %{SHA256HEADER}\\n",
        ]))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
    };
    let in_scratch = packages(&scratch.commit);
    assert_eq!(packages(&incremental.commit), in_scratch);
    assert_eq!(in_scratch.len(), 7, "{in_scratch:?}");
    let meta = |commit: &str| strata_core::commit::load(&repo, commit).unwrap();
    let value = |commit: &str, key: &str| {
        ostree::glib::VariantDict::new(Some(&meta(commit).metadata)).lookup_value(key, None)
    };
    for key in [
        "rpmostree.state-sha512",
        "rpmostree.packages",
        "rpmostree.rpmdb.pkglist",
    ] {
        assert_eq!(
            value(&incremental.commit, key),
            value(&scratch.commit, key),
            "{key}"
        );
    }
    // The user svc's %pre added owns its file in both, and /etc/scripted exists.
    let passwd = |commit: &str| {
        cmd::ostree([
            "cat",
            &format!("--repo={}", sysroot.repo_path().display()),
            commit,
            "/usr/etc/passwd",
        ])
        .unwrap()
    };
    assert!(passwd(&incremental.commit).contains("svc:x:990"));

    // Removing a package is never incremental.
    let fewer = strata_core::layering::LayerRequest {
        packages: vec!["hello".into()],
        ..req.clone()
    };
    let infos = [meta(&incremental.commit), meta(&scratch.commit)];
    let rebuilt = strata_core::layering::assemble(&repo, &fewer, &infos, &ctx).unwrap();
    assert_eq!(rebuilt.incremental_from, None);
    assert!(!rebuilt.reused);

    // Through the engine: the next install starts from the deployed layered commit.
    l.install(&["tool"]).unwrap();
    let d = sysroot.deployments().unwrap()[0].checksum.clone();
    let info = meta(&d);
    assert_eq!(info.parent.as_deref(), Some(l.fx.first_commit()));
    assert!(l.deployment().join("usr/bin/tool").is_file());
    assert!(l.deployment().join("usr/share/svc/data").is_file());
}

/// Two layered packages shipping the same path with different content: the second one's
/// checkout is refused naming it, and nothing is deployed. A `/boot` and an `/opt` payload
/// land where rpm-ostree puts them.
#[test]
fn file_conflicts_between_layered_packages_and_boot_and_opt_payloads() {
    let l = layering();
    l.pkgs
        .repo
        .add_all(&[
            strata_tests::RpmSpec::new("clash-a", "1.0").file("usr/share/clash.txt", "a\n"),
            strata_tests::RpmSpec::new("clash-b", "1.0").file("usr/share/clash.txt", "b\n"),
            strata_tests::RpmSpec::new("bootstuff", "1.0")
                .file("boot/bootstuff.cfg", "cfg\n")
                .file("opt/bootstuff/bin/run", "run\n"),
        ])
        .unwrap();
    let before = l.fx.sysroot().unwrap().snapshot().unwrap();
    let err = format!("{:#}", l.install(&["clash-a", "clash-b"]).unwrap_err());
    assert!(
        err.contains("clash-b") && err.contains("conflicts"),
        "{err}"
    );
    assert_eq!(l.fx.sysroot().unwrap().snapshot().unwrap(), before);

    l.install(&["bootstuff"]).unwrap();
    let d = l.deployment();
    assert_eq!(
        fs::read_to_string(d.join("usr/lib/ostree-boot/bootstuff.cfg")).unwrap(),
        "cfg\n"
    );
    assert_eq!(
        fs::read_to_string(d.join("usr/lib/opt/bootstuff/bin/run")).unwrap(),
        "run\n"
    );
    let autovar =
        fs::read_to_string(d.join("usr/lib/tmpfiles.d/rpm-ostree-1-autovar.conf")).unwrap();
    assert!(autovar.contains("/opt/bootstuff"), "{autovar}");
}

/// Uninstalling a package takes its dependency with it when nothing else needs it, and keeps
/// the other layered package (a removal rebuilds from the base).
#[test]
fn uninstall_removes_an_orphaned_dependency() {
    let l = layering();
    l.install(&["hello", "tool"]).unwrap();
    assert!(l.deployment().join("usr/lib/libhello.txt").is_file());
    l.uninstall(&["hello"]).unwrap();
    let d = l.deployment();
    assert!(!d.join("usr/lib/libhello.txt").exists());
    assert!(!d.join("usr/bin/hello").exists());
    assert!(d.join("usr/bin/tool").is_file());
    assert_eq!(l.rpm_names(), ["base-lib", "strata-test-sh", "tool"]);
}
