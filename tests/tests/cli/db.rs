//! `db list`, `db version`, `db diff`: the `strata-db` helper reading commits' package lists
//! from the repository (the layered commit's `rpmostree.rpmdb.pkglist`, the base's rpmdb).

use std::process::Command;

use sha2::{Digest, Sha256};
use strata_tests::{cmd, FixtureConfig, TestPackages};

use crate::{output, Env};

struct Db {
    env: Env,
    repo: String,
    base: String,
    layered: String,
    _dir: tempfile::TempDir,
}

/// Release 1 with `hello` layered (so `libhello` too).
async fn db() -> Db {
    strata_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let pkgs = TestPackages::create(dir.path()).unwrap();
    let env = Env::new(FixtureConfig {
        release: pkgs.release("1"),
        ..Default::default()
    })
    .await;
    env.strata(&["install", "hello"]).await.expect(0);
    let repo = format!("--repo={}", env.sysroot().repo_path().display());
    let base = env.fx.first_commit().to_string();
    let layered = env.sysroot().deployments().unwrap()[0].checksum.clone();
    Db {
        env,
        repo,
        base,
        layered,
        _dir: dir,
    }
}

impl Db {
    async fn run(&self, args: &[&str]) -> crate::Out {
        let mut all = vec!["db"];
        all.extend_from_slice(args);
        all.push(&self.repo);
        self.env.strata(&all).await
    }
}

#[tokio::test]
async fn list_shows_each_commits_packages() {
    let d = db().await;
    let arch = strata_tests::rpm::host_arch();
    let out = d.run(&["list", &d.base]).await.expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "ostree commit: {b}\n base-lib-1.0-1.noarch\n strata-test-sh-1.0-1.{arch}\n",
            b = d.base
        )
    );
    // A ref, then patterns (globs, case-insensitive, also against the NEVRA).
    let refspec = d.env.fx.sysroot_config().refspec();
    let out = d
        .run(&[
            "list",
            &d.layered,
            &refspec,
            "HELLO",
            "libhello-1.0-1.noarch",
        ])
        .await
        .expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "ostree commit: {l}\n hello-1.0-1.noarch\n libhello-1.0-1.noarch\n\
             ostree commit: {refspec} ({b})\n",
            l = d.layered,
            b = d.base
        )
    );
    // As rpm-ostree: the first argument that is not a commit starts the patterns.
    let out = d.run(&["list", "no-such-rev"]).await.expect(0);
    assert_eq!(out.stdout, "");
    // The rpm-ostree name runs it too.
    let out = output(
        d.env
            .rpm_ostree_cmd(&["db", "list", &d.repo, &d.layered, "tool"]),
    )
    .await
    .expect(0);
    assert_eq!(out.stdout, format!("ostree commit: {}\n", d.layered));
}

#[tokio::test]
async fn diff_in_each_format() {
    let d = db().await;
    let out = d.run(&["diff", &d.base, &d.layered]).await.expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "ostree diff commit from: {b}\nostree diff commit to:   {l}\n\
             Added:\n  hello-1.0-1.noarch\n  libhello-1.0-1.noarch\n",
            b = d.base,
            l = d.layered
        )
    );
    let out = d
        .run(&["diff", "--format=diff", &d.layered, &d.base])
        .await
        .expect(0);
    assert!(
        out.stdout
            .ends_with("-hello-1.0-1.noarch\n-libhello-1.0-1.noarch\n"),
        "{}",
        out.stdout
    );
    let out = d
        .run(&["diff", "-F", "json", &d.base, &d.layered])
        .await
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["ostree-commit-from"], serde_json::json!(d.base));
    assert_eq!(v["ostree-commit-to"], serde_json::json!(d.layered));
    assert_eq!(
        v["pkgdiff"],
        serde_json::json!([
            ["hello", 0, {"NewPackage": ["hello", "1.0-1", "noarch"]}],
            ["libhello", 0, {"NewPackage": ["libhello", "1.0-1", "noarch"]}],
        ])
    );
    assert_eq!(v["advisories"], serde_json::json!([]));

    let out = d.run(&["diff", &d.base, "nope"]).await.expect(1);
    assert!(out.stderr.contains("Refspec 'nope' not found"), "{out:#?}");
    let out = d
        .run(&["diff", "--format=json", "-c", &d.base, &d.layered])
        .await
        .expect(1);
    assert!(
        out.stderr
            .contains("json format and --changelogs not supported"),
        "{out:#?}"
    );
    let out = d.run(&["diff", "--format=yaml"]).await.expect(1);
    assert!(out.stderr.contains("yaml"), "{out:#?}");
}

/// `db version` against the same digest computed here from `rpm -qa` of a checkout.
#[tokio::test]
async fn version_is_a_count_and_digest_of_the_rpmdb() {
    let d = db().await;
    let out = d.run(&["version", &d.layered]).await.expect(0);
    let dir = tempfile::tempdir().unwrap();
    let co = dir.path().join("co");
    cmd::ostree(["checkout", "-H", &d.repo, &d.layered, &co.to_string_lossy()]).unwrap();
    let listed = cmd::run(Command::new("rpm").arg("--root").arg(&co).args([
        "--dbpath",
        "/usr/share/rpm",
        "-qa",
        "--qf",
        "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n",
    ]))
    .unwrap();
    let mut nevras: Vec<&str> = listed.lines().collect();
    nevras.sort();
    let mut h = Sha256::new();
    for n in &nevras {
        h.update(n.as_bytes());
    }
    let want = format!("{}:{}", nevras.len(), hex::encode(h.finalize()));
    assert_eq!(
        out.stdout,
        format!("ostree commit: {}\n  rpmdbv is: {want}\n", d.layered)
    );
    assert_eq!(nevras.len(), 4, "{nevras:?}");
}

/// `db diff --changelogs`, as GNOME Software runs it for its update history: each upgrade
/// with the `%changelog` entries the old package did not have.
#[tokio::test(flavor = "multi_thread")]
async fn diff_with_changelogs() {
    strata_tests::init();
    let dir = tempfile::tempdir().unwrap();
    let author = "Dev <dev@example.com>";
    let first = (
        "Mon Nov 02 2026",
        format!("{author} - 1.0-1"),
        "- First release",
    );
    let lib = |v: &str| {
        strata_tests::RpmSpec::new("base-lib", v).file("usr/lib/base-lib.txt", format!("{v}\n"))
    };
    let sh = strata_tests::rpm::base_shell_package()
        .build(dir.path())
        .unwrap();
    let v1 = strata_tests::OsRelease::new("1").rpms([
        sh.clone(),
        lib("1.0")
            .changelog(first.0, first.1.clone(), first.2)
            .build(dir.path())
            .unwrap(),
    ]);
    let v2 = strata_tests::OsRelease::new("2").rpms([
        sh,
        lib("2.0")
            .changelog(
                "Mon Nov 30 2026",
                format!("{author} - 2.0-1"),
                "- Second release\n- Fixes",
            )
            .changelog(first.0, first.1.clone(), first.2)
            .build(dir.path())
            .unwrap(),
    ]);
    let env = crate::Env::new(FixtureConfig {
        release: v1,
        ..Default::default()
    })
    .await;
    let a = env.fx.first_commit().to_string();
    let b = env.fx.commit(&v2).unwrap();
    let repo = format!("--repo={}", env.fx.repo().path().display());
    let out = env
        .strata(&["db", "diff", "--changelogs", &repo, &a, &b])
        .await
        .expect(0);
    assert_eq!(
        out.stdout,
        format!(
            "ostree diff commit from: {a}\nostree diff commit to:   {b}\nUpgraded:\n  \
             base-lib 1.0-1.noarch -> 2.0-1.noarch\n    * Mon Nov 30 2026 {author} - 2.0-1\n    \
             - Second release\n    - Fixes\n\n"
        ),
        "{out:#?}"
    );
    // Nothing new the other way round (a downgrade lists no changelog).
    let back = env
        .strata(&["db", "diff", "-c", &repo, &b, &a])
        .await
        .expect(0);
    assert!(
        back.stdout
            .ends_with("Downgraded:\n  base-lib 2.0-1.noarch -> 1.0-1.noarch\n"),
        "{back:#?}"
    );
    let json = env
        .strata(&["db", "diff", "-c", "--format=json", &repo, &a, &b])
        .await;
    assert_eq!(json.code, 1, "{json:#?}");
}
