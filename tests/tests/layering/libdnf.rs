//! The safe libdnf wrapper (`bindings/libdnf`) on real repositories and a tree's real rpmdb.

use std::fs;
use std::path::PathBuf;

use libdnf::{Change, Config, Context, Metadata};
use strata_tests::gio::prelude::CancellableExt;
use strata_tests::rpm::{base_shell_package, install_into_tree};
use strata_tests::{HttpServer, RpmRepo, RpmSpec};
use tempfile::TempDir;

/// A tree with base packages in its rpmdb, a repo of packages to layer, and a repos dir.
struct Setup {
    dir: TempDir,
    repo: RpmRepo,
}

impl Setup {
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn repos_dir(&self) -> PathBuf {
        self.dir.path().join("yum.repos.d")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn config(&self) -> Config {
        Config {
            install_root: self.root(),
            rpmdb: "/usr/share/rpm".into(),
            repos_dir: self.repos_dir(),
            cache_dir: self.cache(),
            release_ver: "1".into(),
            arch: None,
        }
    }

    /// A context with the sack loaded.
    fn context(&self) -> Context {
        let mut ctx = Context::new(&self.config(), None).expect("context");
        ctx.load(Metadata::Default, &mut |_, _| {}, None)
            .expect("load");
        ctx
    }

    fn point_repo_at(&self, baseurl: &str) {
        fs::write(
            self.repos_dir().join("test.repo"),
            self.repo.repo_file("test", baseurl),
        )
        .unwrap();
    }
}

/// Base: `strata-test-sh` and `base-lib-1.0`. Repo: `hello` (requires `libhello`, provides
/// `greeter`), `libhello`, `base-lib-2.0`, `clash` (conflicts with `base-lib`), `broken`
/// (requires what nothing provides).
fn setup() -> Setup {
    strata_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base-rpms");
    let base_rpms = vec![
        base_shell_package().build(&base).unwrap(),
        RpmSpec::new("base-lib", "1.0")
            .file("usr/lib/base-lib.txt", "1\n")
            .build(&base)
            .unwrap(),
    ];
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("usr")).unwrap();
    install_into_tree(&root, &base_rpms).unwrap();
    let repo = RpmRepo::create(&dir.path().join("repo")).unwrap();
    repo.add_all(&[
        RpmSpec::new("hello", "1.0")
            .requires("libhello")
            .provides("greeter")
            .executable("usr/bin/hello", "#!/bin/sh\necho hello\n"),
        RpmSpec::new("libhello", "1.0").file("usr/lib/libhello.txt", "lib\n"),
        RpmSpec::new("base-lib", "2.0").file("usr/lib/base-lib.txt", "2\n"),
        RpmSpec::new("clash", "1.0").conflicts("base-lib"),
        RpmSpec::new("broken", "1.0").requires("no-such-capability"),
    ])
    .unwrap();
    fs::create_dir_all(dir.path().join("yum.repos.d")).unwrap();
    let setup = Setup { dir, repo };
    setup.point_repo_at(&setup.repo.file_url());
    setup
}

fn names(pkgs: &[libdnf::Package<'_>]) -> Vec<String> {
    let mut v: Vec<String> = pkgs.iter().map(|p| p.name()).collect();
    v.sort();
    v
}

#[test]
fn installed_set_is_the_trees_rpmdb() {
    let s = setup();
    let ctx = s.context();
    let installed = ctx.query().unwrap().installed().unwrap().run();
    assert_eq!(names(&installed), ["base-lib", "strata-test-sh"]);
    let base_lib = &installed[0];
    assert_eq!(base_lib.evr(), "1.0-1");
    assert!(base_lib.is_installed());
    let available = ctx.query().unwrap().available().unwrap().run();
    assert_eq!(
        names(&available),
        ["base-lib", "broken", "clash", "hello", "libhello"]
    );
    assert_eq!(ctx.repos().len(), 1);
    assert!(ctx.repos()[0].enabled);
    // Repo packages carry the repo metadata's checksum of their file.
    assert!(ctx.query().unwrap().name("hello").unwrap().run()[0]
        .checksum()
        .unwrap()
        .starts_with("sha256:"));
}

#[test]
fn install_pulls_in_a_dependency_and_provides_resolve() {
    let s = setup();
    let ctx = s.context();
    let mut goal = ctx.goal().unwrap();
    assert!(goal.install_spec("greeter").unwrap(), "provide resolves");
    goal.solve(false).unwrap();
    assert_eq!(names(&goal.list(Change::Install)), ["hello", "libhello"]);
    assert!(goal.list(Change::Erase).is_empty());
    assert!(goal.list(Change::Upgrade).is_empty());
}

#[test]
fn a_missing_package_is_reported_as_not_matching() {
    let s = setup();
    let ctx = s.context();
    let mut goal = ctx.goal().unwrap();
    assert!(!goal.install_spec("no-such-package").unwrap());
}

#[test]
fn unresolvable_dependencies_fail_with_the_problem() {
    let s = setup();
    let ctx = s.context();
    let mut goal = ctx.goal().unwrap();
    assert!(goal.install_spec("broken").unwrap());
    let err = goal.solve(false).unwrap_err().to_string();
    assert!(err.contains("no-such-capability"), "{err}");
}

#[test]
fn a_locked_base_package_is_not_replaced_or_removed() {
    let s = setup();
    let ctx = s.context();
    // Unlocked, the solver may erase the base package to satisfy the conflict.
    let mut goal = ctx.goal().unwrap();
    goal.install_spec("clash").unwrap();
    goal.solve(true).unwrap();
    assert_eq!(names(&goal.list(Change::Erase)), ["base-lib"]);
    // Locked, it must fail and name the conflict.
    let mut goal = ctx.goal().unwrap();
    for p in ctx.query().unwrap().installed().unwrap().run() {
        goal.lock(&p).unwrap();
    }
    goal.install_spec("clash").unwrap();
    let err = goal.solve(true).unwrap_err().to_string();
    assert!(err.contains("base-lib"), "{err}");
    // Asking for the newer base-lib is an upgrade the solver reports as such.
    let mut goal = ctx.goal().unwrap();
    goal.install_spec("base-lib-2.0").unwrap();
    goal.solve(false).unwrap();
    let up = goal.list(Change::Upgrade);
    assert_eq!(names(&up), ["base-lib"]);
    assert_eq!(names(&goal.replaced_by(&up[0])), ["base-lib"]);
    assert_eq!(goal.replaced_by(&up[0])[0].evr(), "1.0-1");
}

#[test]
fn erase_and_local_packages() {
    let s = setup();
    let local = RpmSpec::new("local-tool", "3.1")
        .requires("libhello")
        .build(&s.dir.path().join("local"))
        .unwrap();
    let ctx = s.context();
    let pkg = ctx.add_local_package(&local).unwrap();
    assert_eq!(pkg.repo_name(), libdnf::COMMANDLINE_REPO);
    assert_eq!(pkg.nevra(), "local-tool-3.1-1.noarch");
    let base_lib = ctx
        .query()
        .unwrap()
        .installed()
        .unwrap()
        .name("base-lib")
        .unwrap()
        .run();
    let mut goal = ctx.goal().unwrap();
    goal.install(&pkg).unwrap();
    goal.erase(&base_lib[0]).unwrap();
    goal.solve(false).unwrap();
    assert_eq!(
        names(&goal.list(Change::Install)),
        ["libhello", "local-tool"]
    );
    assert_eq!(names(&goal.list(Change::Erase)), ["base-lib"]);
    let err = ctx
        .add_local_package(&s.dir.path().join("nope.rpm"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope.rpm"), "{err}");
}

#[test]
fn downloads_over_http_with_progress_once() {
    let s = setup();
    let http = HttpServer::serve(s.repo.path()).unwrap();
    s.point_repo_at(&http.url());
    let mut metadata_progress = Vec::new();
    let mut ctx = Context::new(&s.config(), None).unwrap();
    ctx.load(
        Metadata::Default,
        &mut |repo, pct| metadata_progress.push((repo.to_string(), pct)),
        None,
    )
    .unwrap();
    assert!(
        metadata_progress
            .iter()
            .any(|(r, p)| r == "test" && *p == 100),
        "{metadata_progress:?}"
    );
    let mut goal = ctx.goal().unwrap();
    goal.install_spec("hello").unwrap();
    goal.solve(false).unwrap();
    let pkgs = goal.list(Change::Install);
    let mut pct = Vec::new();
    let files = ctx.download(&pkgs, &mut |p| pct.push(p), None).unwrap();
    assert_eq!(pct.last(), Some(&100), "{pct:?}");
    for (pkg, file) in pkgs.iter().zip(&files) {
        assert!(file.starts_with(s.cache()), "{}", file.display());
        assert_eq!(
            fs::read(file).unwrap(),
            fs::read(s.repo.path().join(file.file_name().unwrap())).unwrap(),
            "{}",
            pkg.nevra()
        );
    }
    let requests = http.requests();
    ctx.download(&pkgs, &mut |_| {}, None).unwrap();
    assert_eq!(
        http.requests(),
        requests,
        "cached packages are not fetched again"
    );
}

#[test]
fn cache_only_needs_cached_metadata() {
    let s = setup();
    let http = HttpServer::serve(s.repo.path()).unwrap();
    s.point_repo_at(&http.url());
    let mut ctx = Context::new(&s.config(), None).unwrap();
    let err = ctx
        .load(Metadata::CacheOnly, &mut |_, _| {}, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("test") && err.contains("cache"), "{err}");
    drop(ctx);
    s.context();
    let requests = http.requests();
    let mut ctx = Context::new(&s.config(), None).unwrap();
    ctx.load(Metadata::CacheOnly, &mut |_, _| {}, None).unwrap();
    assert_eq!(http.requests(), requests);
    assert_eq!(ctx.query().unwrap().name("hello").unwrap().run().len(), 1);
}

#[test]
fn a_cancelled_download_stops() {
    let s = setup();
    let http = HttpServer::serve(s.repo.path()).unwrap();
    s.point_repo_at(&http.url());
    let ctx = s.context();
    let mut goal = ctx.goal().unwrap();
    goal.install_spec("hello").unwrap();
    goal.solve(false).unwrap();
    let cancel = strata_tests::gio::Cancellable::new();
    cancel.cancel();
    let err = ctx
        .download(&goal.list(Change::Install), &mut |_| {}, Some(&cancel))
        .unwrap_err();
    assert!(matches!(err, libdnf::Error::Cancelled(_)), "{err}");
}

#[test]
fn disabling_a_repo_hides_its_packages() {
    let s = setup();
    let mut ctx = Context::new(&s.config(), None).unwrap();
    ctx.set_repo_enabled("test", false).unwrap();
    assert!(ctx.set_repo_enabled("nope", true).is_err());
    ctx.load(Metadata::Default, &mut |_, _| {}, None).unwrap();
    assert!(ctx.query().unwrap().name("hello").unwrap().run().is_empty());
}

#[test]
fn strings_with_nul_bytes_are_refused() {
    let s = setup();
    let ctx = s.context();
    let err = ctx.query().unwrap().name("a\0b").unwrap_err().to_string();
    assert!(err.contains("NUL"), "{err}");
}
