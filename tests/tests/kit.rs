//! Self-tests of the test kit: each checks a kit promise against the real tools.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use strata_tests::{
    cmd, extra_file_path, Fixture, FixtureConfig, GpgKey, HttpServer, OsRelease, SysrootConfig,
    TestRepo, TestSysroot, DEFAULT_REF, UNTOUCHED_CONF,
};

fn tempdir() -> Result<tempfile::TempDir> {
    strata_tests::init();
    Ok(tempfile::Builder::new().prefix("strata-kit-").tempdir()?)
}

fn repo_arg(path: &Path) -> String {
    format!("--repo={}", path.display())
}

/// `ostree cat` of one file of a commit.
fn cat(repo: &Path, rev: &str, path: &str) -> Result<String> {
    cmd::ostree([repo_arg(repo).as_str(), "cat", rev, path])
}

/// A fresh bare-user repo with `remote` at `url`, gpg-verified with `key` or not verified.
fn client_repo(dir: &Path, url: &str, key: Option<&Path>) -> Result<String> {
    let arg = repo_arg(dir);
    cmd::ostree([arg.as_str(), "init", "--mode=bare-user"])?;
    let mut add = Command::new("ostree");
    add.args(["remote", "add", &arg]);
    match key {
        Some(key) => add
            .arg("--set=gpg-verify=true")
            .arg(format!("--gpg-import={}", key.display())),
        None => add.arg("--no-gpg-verify"),
    };
    add.args(["origin", url]);
    cmd::run(&mut add)?;
    Ok(arg)
}

#[test]
fn release_metadata_history_and_timestamps() -> Result<()> {
    let dir = tempdir()?;
    let repo = TestRepo::create(&dir.path().join("repo"))?;
    let r = "test/ref";
    let c1 = repo.commit_release(r, &OsRelease::new("1").metadata("strata.test", "yes"))?;
    let c2 = repo.commit_release(r, &OsRelease::new("2"))?;
    assert_ne!(c1, c2);
    assert_eq!(repo.rev_parse(r)?, c2);

    // Version visible to the CLI and to libostree.
    let shown = cmd::ostree([
        &repo_arg(repo.path()),
        "show",
        "--print-metadata-key=version",
        r,
    ])?;
    assert_eq!(shown.trim(), "'2'");
    assert_eq!(
        repo.commit_metadata_string(&c1, "version")?.as_deref(),
        Some("1")
    );
    assert_eq!(
        repo.commit_metadata_string(&c1, "strata.test")?.as_deref(),
        Some("yes")
    );
    assert_eq!(
        repo.commit_metadata_string(&c2, "ostree.linux")?.as_deref(),
        Some("6.1.0-strata")
    );
    assert_eq!(repo.commit_metadata_string(&c2, "nope")?, None);

    let history = repo.commit_history(r)?;
    assert_eq!(
        history,
        vec![(c2.clone(), "2".to_string()), (c1.clone(), "1".to_string())]
    );
    let (t1, t2) = (repo.commit_timestamp(&c1)?, repo.commit_timestamp(&c2)?);
    assert!(t2 > t1, "timestamps {t1} then {t2}");

    // Explicit older timestamp (downgrade tests), then the default is past the newest again.
    let c3 = repo.commit_release(r, &OsRelease::new("3").timestamp(1_000_000_000))?;
    assert_eq!(repo.commit_timestamp(&c3)?, 1_000_000_000);
    let c4 = repo.commit_release(r, &OsRelease::new("4"))?;
    assert!(repo.commit_timestamp(&c4)? > t2);
    assert_eq!(repo.commit_history(r)?.len(), 4);

    // Tree content.
    assert_eq!(
        cat(repo.path(), &c1, "/usr/etc/strata-test.conf")?,
        "version=1\n"
    );
    assert_eq!(
        cat(repo.path(), &c2, "/usr/etc/strata-test.conf")?,
        "version=2\n"
    );
    assert_eq!(
        cat(repo.path(), &c2, "/usr/etc/untouched.conf")?,
        UNTOUCHED_CONF
    );
    assert!(cat(repo.path(), &c2, "/usr/lib/os-release")?.contains("PRETTY_NAME=StrataTestOS-2\n"));
    let ls = cmd::ostree([
        &repo_arg(repo.path()),
        "ls",
        &c2,
        "/bin",
        "/usr/bin/strata-release",
    ])?;
    assert!(ls.contains("/bin -> usr/bin"), "{ls}");
    assert!(
        ls.contains("-00755 0 0"),
        "strata-release must be 0755 root-owned: {ls}"
    );
    Ok(())
}

#[test]
fn release_files_remove_and_override() -> Result<()> {
    let dir = tempdir()?;
    let repo = TestRepo::create(&dir.path().join("repo"))?;
    let c = repo.commit_release(
        DEFAULT_REF,
        &OsRelease::new("5")
            .remove("usr/etc/untouched.conf")
            .file("usr/etc/foo.conf", "foo\n")
            .symlink("usr/etc/link.conf", "foo.conf")
            .kernel_bytes("another kernel"),
    )?;
    assert_eq!(cat(repo.path(), &c, "/usr/etc/foo.conf")?, "foo\n");
    assert_eq!(
        cat(repo.path(), &c, "/usr/lib/modules/6.1.0-strata/vmlinuz")?,
        "another kernel"
    );
    assert!(cat(repo.path(), &c, "/usr/etc/untouched.conf").is_err());
    // Removing something that is not in the default tree is a test bug: fail loudly.
    let err = repo.commit_release(DEFAULT_REF, &OsRelease::new("6").remove("usr/etc/nope"));
    assert!(format!("{:#}", err.err().context("must fail")?).contains("usr/etc/nope"));
    Ok(())
}

/// Counts regular files under `path` in `rev` with `ostree ls -R`.
fn count_files(repo: &Path, rev: &str, path: &str) -> Result<usize> {
    let ls = cmd::ostree([&repo_arg(repo), "ls", "-R", rev, path])?;
    Ok(ls.lines().filter(|l| l.starts_with('-')).count())
}

#[test]
fn extra_files_5000() -> Result<()> {
    let dir = tempdir()?;
    let repo = TestRepo::create(&dir.path().join("repo"))?;
    let start = Instant::now();
    let c1 = repo.commit_release(DEFAULT_REF, &OsRelease::new("1").extra_files(5000))?;
    eprintln!(
        "TIMING commit with 5,000 extra files: {:?}",
        start.elapsed()
    );
    assert_eq!(
        count_files(repo.path(), &c1, "/usr/share/strata-test/data")?,
        5000
    );
    assert!(cat(repo.path(), &c1, &format!("/{}", extra_file_path(4999)))?.contains("index=4999"));

    // Same seed: no data file changes; another seed: all of them change.
    let c2 = repo.commit_release(DEFAULT_REF, &OsRelease::new("2").extra_files(5000))?;
    let diff = cmd::ostree([&repo_arg(repo.path()), "diff", &c1, &c2])?;
    assert!(!diff.contains("/usr/share/strata-test/data"), "{diff}");
    let start = Instant::now();
    let c3 = repo.commit_release(
        DEFAULT_REF,
        &OsRelease::new("3")
            .extra_files(5000)
            .extra_files_seed("other"),
    )?;
    eprintln!(
        "TIMING commit with 5,000 changed extra files: {:?}",
        start.elapsed()
    );
    let diff = cmd::ostree([&repo_arg(repo.path()), "diff", &c2, &c3])?;
    let changed = diff
        .lines()
        .filter(|l| l.starts_with("M    /usr/share/strata-test/data/"))
        .count();
    assert_eq!(changed, 5000);
    Ok(())
}

#[test]
fn gpg_signed_commits_verify_only_with_the_right_key() -> Result<()> {
    let dir = tempdir()?;
    let good = GpgKey::generate(dir.path())?;
    let other = GpgKey::generate(dir.path())?;
    assert_ne!(good.key_id(), other.key_id());
    assert_eq!(good.key_id().len(), 40);
    assert!(fs::read_to_string(good.public_key_path())?.contains("BEGIN PGP PUBLIC KEY BLOCK"));

    let mut repo = TestRepo::create(&dir.path().join("repo"))?;
    repo.set_signer(Some(good.signer()));
    repo.commit_release("signed", &OsRelease::new("1"))?;
    repo.commit_release("unsigned", &OsRelease::new("1").unsigned())?;
    repo.commit_release("wrong", &OsRelease::new("1").sign_with(other.signer()))?;

    let arg = client_repo(
        &dir.path().join("good"),
        &repo.file_url(),
        Some(good.public_key_path()),
    )?;
    cmd::ostree([arg.as_str(), "pull", "origin", "signed"])?;
    let shown = cmd::ostree([arg.as_str(), "show", "--gpg-verify-remote=origin", "signed"])?;
    assert!(shown.contains("Good signature"), "{shown}");
    let err =
        cmd::run_expect_failure(Command::new("ostree").args([&arg, "pull", "origin", "unsigned"]))?;
    assert!(err.contains("GPG"), "{err}");
    let err =
        cmd::run_expect_failure(Command::new("ostree").args([&arg, "pull", "origin", "wrong"]))?;
    assert!(err.contains("GPG") || err.contains("signature"), "{err}");

    let arg = client_repo(
        &dir.path().join("bad"),
        &repo.file_url(),
        Some(other.public_key_path()),
    )?;
    let err =
        cmd::run_expect_failure(Command::new("ostree").args([&arg, "pull", "origin", "signed"]))?;
    assert!(err.contains("GPG") || err.contains("signature"), "{err}");
    Ok(())
}

/// Sends `request` raw and returns (status code, headers, body). The server keeps HTTP/1.1
/// connections alive: a request ends its headers with `Connection: close` to be read to EOF.
fn raw_http(server: &HttpServer, request: &str) -> Result<(u16, String, Vec<u8>)> {
    let mut stream = TcpStream::connect(server.addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).context("no status")?.parse()?;
    Ok((status, head, response[split + 4..].to_vec()))
}

fn get(server: &HttpServer, path: &str) -> Result<(u16, String, Vec<u8>)> {
    raw_http(
        server,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

#[test]
fn http_serves_files_and_refuses_escapes() -> Result<()> {
    let dir = tempdir()?;
    let root = dir.path().join("root");
    fs::create_dir_all(root.join("sub"))?;
    fs::write(root.join("sub/hello file.txt"), "hello\n")?;
    fs::write(dir.path().join("secret"), "secret\n")?;
    std::os::unix::fs::symlink("../secret", root.join("escape"))?;
    let server = HttpServer::serve(&root)?;
    assert_eq!(server.requests(), 0);

    let (status, head, body) = get(&server, "/sub/hello%20file.txt")?;
    assert_eq!((status, body.as_slice()), (200, b"hello\n".as_slice()));
    assert!(head.contains("Content-Length: 6"), "{head}");
    let (status, head, body) = raw_http(
        &server,
        "HEAD /sub/hello%20file.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )?;
    assert_eq!(status, 200);
    assert!(
        head.contains("Content-Length: 6") && body.is_empty(),
        "{head}"
    );
    assert_eq!(get(&server, "/missing")?.0, 404);
    assert_eq!(get(&server, "/sub")?.0, 404);
    assert_eq!(get(&server, "/../secret")?.0, 403);
    assert_eq!(get(&server, "/sub/%2e%2e/%2E%2E/secret")?.0, 403);
    assert_eq!(get(&server, "/escape")?.0, 403);
    assert_eq!(
        raw_http(
            &server,
            "POST /sub HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?
        .0,
        405
    );
    // Answered by tiny_http itself: neither counted nor logged.
    assert_eq!(raw_http(&server, "garbage\r\n\r\n")?.0, 400);
    assert_eq!(server.requests(), 8);
    let log = server.request_log();
    assert_eq!(log.len(), 8);
    assert_eq!(
        (log[0].path.as_str(), log[0].status),
        ("/sub/hello%20file.txt", 200)
    );

    // A delayed request is counted on arrival; dropping the server does not wait out the delay.
    server.set_delay(Duration::from_secs(60));
    let addr = server.addr();
    let client = std::thread::spawn(move || -> Result<()> {
        let mut s = TcpStream::connect(addr)?;
        s.write_all(b"GET /sub/hello%20file.txt HTTP/1.1\r\nConnection: close\r\n\r\n")?;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        Ok(())
    });
    server.wait_for_requests(9, Duration::from_secs(10))?;
    assert!(server
        .wait_for_requests(10, Duration::from_millis(200))
        .is_err());
    let start = Instant::now();
    drop(server);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "drop took {:?}",
        start.elapsed()
    );
    client
        .join()
        .map_err(|_| anyhow::anyhow!("client panicked"))??;
    Ok(())
}

#[test]
fn http_ostree_pull() -> Result<()> {
    let dir = tempdir()?;
    let repo = TestRepo::create(&dir.path().join("repo"))?;
    let c1 = repo.commit_release(DEFAULT_REF, &OsRelease::new("1"))?;
    let server = HttpServer::serve(repo.path())?;
    let arg = client_repo(&dir.path().join("client"), &server.url(), None)?;
    cmd::ostree([arg.as_str(), "pull", "origin", DEFAULT_REF])?;
    assert_eq!(
        cmd::ostree([arg.as_str(), "rev-parse", DEFAULT_REF])?.trim(),
        c1
    );
    let after_first = server.requests();
    assert!(after_first > 5, "only {after_first} requests");
    assert!(server
        .request_log()
        .iter()
        .any(|r| r.path.contains("/objects/") && r.status == 200));

    let c2 = repo.commit_release(DEFAULT_REF, &OsRelease::new("2").extra_files(50))?;
    cmd::ostree([arg.as_str(), "pull", "origin", DEFAULT_REF])?;
    assert_eq!(
        cmd::ostree([arg.as_str(), "rev-parse", DEFAULT_REF])?.trim(),
        c2
    );
    assert!(server.requests() > after_first + 50);
    Ok(())
}

#[test]
fn sysroot_deploy_snapshot_and_upgrade() -> Result<()> {
    let start = Instant::now();
    let fx = Fixture::new(&FixtureConfig::default())?;
    eprintln!(
        "TIMING fixture (repo + release 1 + sysroot): {:?}",
        start.elapsed()
    );
    let sysroot = fx.sysroot()?;
    assert!(fx.url().starts_with("file:///"));

    let deployments = sysroot.deployments()?;
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].checksum, fx.first_commit());
    assert_eq!(deployments[0].osname, "stratatest");
    let origin = deployments[0].origin.as_deref().context("no origin")?;
    assert!(
        origin.contains("refspec=testos:stratatest/stable/x86_64"),
        "{origin}"
    );

    let entries = sysroot.boot_entries()?;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].version, "1");
    assert!(
        entries[0].title.starts_with("StrataTestOS-1"),
        "{}",
        entries[0].title
    );
    for karg in ["root=LABEL=root", "rw", "quiet"] {
        assert!(
            entries[0].kargs().contains(&karg),
            "{karg} not in {:?}",
            entries[0].options
        );
    }
    assert!(
        entries[0].linux.contains("vmlinuz-6.1.0-strata"),
        "{}",
        entries[0].linux
    );
    let loader = sysroot.loader_target()?;
    assert!(loader == "loader.0" || loader == "loader.1", "{loader}");
    let etc = sysroot.deploy_dir(0)?.join("etc");
    assert_eq!(
        fs::read_to_string(etc.join("strata-test.conf"))?,
        "version=1\n"
    );
    assert!(sysroot.deploy_dir(1).is_err());

    let before = sysroot.snapshot()?;
    assert_eq!(before, sysroot.snapshot()?);
    assert_eq!(before.deploy_dirs.len(), 1);
    // Committing on the server changes nothing in the sysroot.
    let c2 = fx.commit(&OsRelease::new("2"))?;
    assert_eq!(before, sysroot.snapshot()?);

    let deployed = sysroot.upgrade_cli()?;
    assert_eq!(deployed, c2);
    let after = sysroot.snapshot()?;
    assert_ne!(before, after);
    assert_eq!(after.deployments.len(), 2);
    assert_eq!(after.deployments[0].checksum, c2);
    assert_ne!(after.loader_target, before.loader_target);
    let entries = sysroot.boot_entries()?;
    assert_eq!(entries.len(), 2);
    assert!(
        entries[0].title.starts_with("StrataTestOS-2"),
        "{entries:?}"
    );
    assert!(
        entries[0].kargs().contains(&"quiet"),
        "kargs are inherited: {entries:?}"
    );
    let etc = sysroot.deploy_dir(0)?.join("etc");
    assert_eq!(
        fs::read_to_string(etc.join("strata-test.conf"))?,
        "version=2\n"
    );
    Ok(())
}

#[test]
fn fixture_with_gpg_over_http() -> Result<()> {
    let start = Instant::now();
    let fx = Fixture::new(&FixtureConfig {
        gpg: true,
        http: true,
        ..Default::default()
    })?;
    eprintln!("TIMING fixture with gpg + http: {:?}", start.elapsed());
    let sysroot = fx.sysroot()?;
    assert!(fx.url().starts_with("http://127.0.0.1:"));
    assert!(fx.http()?.requests() > 0);
    let remote_conf = fs::read_to_string(sysroot.repo_path().join("config"))?;
    assert!(remote_conf.contains("gpg-verify=true"), "{remote_conf}");

    // A release signed by another key is refused and the sysroot stays as it was.
    let before = sysroot.snapshot()?;
    let other = GpgKey::generate(fx.dir())?;
    fx.commit(&OsRelease::new("2").sign_with(other.signer()))?;
    let err = sysroot
        .upgrade_cli()
        .err()
        .context("wrongly signed release must not deploy")?;
    ensure!(
        format!("{err:#}").contains("public key not found"),
        "{err:#}"
    );
    assert_eq!(before, sysroot.snapshot()?);

    let c3 = fx.commit(&OsRelease::new("3"))?;
    assert_eq!(sysroot.upgrade_cli()?, c3);
    assert_eq!(sysroot.deployments()?.len(), 2);
    Ok(())
}

#[test]
fn sysroot_with_explicit_kargs_and_second_remote() -> Result<()> {
    let dir = tempdir()?;
    let repo = TestRepo::create(&dir.path().join("repo"))?;
    let c1 = repo.commit_release("other/ref", &OsRelease::new("1"))?;
    let config = SysrootConfig {
        osname: "otheros".into(),
        remote: "r1".into(),
        ref_: "other/ref".into(),
        kargs: vec!["console=ttyS0".into(), "root=/dev/vda1".into()],
        ..SysrootConfig::new(repo.file_url())
    };
    let sysroot = TestSysroot::create(&dir.path().join("sysroot"), &config)?;
    let entries = sysroot.boot_entries()?;
    assert_eq!(entries[0].kargs()[..2], ["console=ttyS0", "root=/dev/vda1"]);
    assert!(!entries[0].options.contains("quiet"));
    assert_eq!(entries[0].file_name, "ostree-1-otheros.conf");
    assert!(sysroot
        .deploy_dir(0)?
        .starts_with(sysroot.path().join("ostree/deploy/otheros/deploy")));

    sysroot.add_remote("r2", &repo.file_url(), None)?;
    assert_eq!(sysroot.pull("r2", "other/ref")?, c1);
    sysroot.deploy("r2:other/ref", Some(&["quiet"]))?;
    let entries = sysroot.boot_entries()?;
    assert_eq!(entries[0].kargs()[0], "quiet");
    assert!(!entries[0].options.contains("console="), "{entries:?}");
    let d = sysroot.deployments()?;
    assert_eq!(
        (d[0].checksum.as_str(), d[0].serial, d[1].serial),
        (c1.as_str(), 1, 0)
    );
    assert!(d[0]
        .origin
        .as_deref()
        .unwrap_or_default()
        .contains("refspec=r2:other/ref"));

    // A sysroot without deployment.
    let empty = TestSysroot::create(
        &dir.path().join("empty"),
        &SysrootConfig {
            deploy: false,
            ..SysrootConfig::new(repo.file_url())
        },
    )?;
    assert!(empty.deployments()?.is_empty());
    assert!(empty.boot_entries()?.is_empty());
    assert_eq!(empty.snapshot()?.loader_target, None);
    Ok(())
}

#[test]
fn http_delay_and_cancelled_pull() -> Result<()> {
    let dir = tempdir()?;
    let repo = TestRepo::create(&dir.path().join("repo"))?;
    repo.commit_release(DEFAULT_REF, &OsRelease::new("1"))?;
    fs::write(repo.path().join("hello"), "hi")?;
    let server = HttpServer::serve(repo.path())?;

    server.set_delay(Duration::from_millis(300));
    let start = Instant::now();
    assert_eq!(get(&server, "/hello")?.2, b"hi");
    assert!(start.elapsed() >= Duration::from_millis(300));

    // Kill a pull stuck on the delay: the server carries on serving.
    server.set_delay(Duration::from_secs(60));
    let arg = client_repo(&dir.path().join("client"), &server.url(), None)?;
    let mut pull = Command::new("ostree")
        .args([arg.as_str(), "pull", "origin", DEFAULT_REF])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let seen = server.requests();
    let waited = server.wait_for_requests(seen + 1, Duration::from_secs(10));
    pull.kill()?;
    pull.wait()?;
    waited?;
    server.set_delay(Duration::ZERO);
    let start = Instant::now();
    assert_eq!(get(&server, "/hello")?.0, 200);
    assert!(start.elapsed() < Duration::from_secs(5));
    cmd::ostree([arg.as_str(), "pull", "origin", DEFAULT_REF])?;
    Ok(())
}

/// Releases encapsulated as chunked container images: bootable, several layers, and a new
/// release shares every layer but those of what changed; `docker-registry` serves them over
/// loopback and counts what is fetched.
#[test]
fn container_images_are_chunked_and_served_by_a_registry() -> Result<()> {
    use strata_tests::oci;
    let dir = tempdir()?;
    let repo = TestRepo::create(&dir.path().join("repo"))?;
    let v1 = repo.commit_release(DEFAULT_REF, &OsRelease::new("1").extra_files(50))?;
    let v2 = repo.commit_release(DEFAULT_REF, &OsRelease::new("2").extra_files(50))?;
    let oci_dir = dir.path().join("oci");
    let d1 = oci::encapsulate(repo.path(), &v1, &oci_dir, "v1")?;
    let d2 = oci::encapsulate(repo.path(), &v2, &oci_dir, "v2")?;
    ensure!(d1.starts_with("sha256:") && d1 != d2, "{d1} {d2}");
    let l1 = oci::layers(&format!("oci:{}:v1", oci_dir.display()))?;
    let l2 = oci::layers(&format!("oci:{}:v2", oci_dir.display()))?;
    ensure!(l1.len() > 2, "one chunk per component, got {l1:?}");
    let changed: Vec<&String> = l2.iter().filter(|l| !l1.contains(l)).collect();
    ensure!(
        !changed.is_empty() && changed.len() < l2.len() / 2 + 1,
        "a new release changes only some layers: {l1:?} -> {l2:?}"
    );

    let registry = oci::Registry::start()?;
    registry.push(&oci_dir, "v1", "os:stable")?;
    let remote = format!("docker://{}/os:stable", registry.host());
    ensure!(oci::layers(&remote)? == l1);
    registry.push(&oci_dir, "v2", "os:stable")?;
    ensure!(oci::layers(&remote)? == l2, "the tag moved");
    // Inspecting reads the manifest and config, not the layers; a copy out fetches them.
    let fetched = registry.blob_fetches();
    cmd::run(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false", &remote])
            .arg(format!("oci:{}:copy", dir.path().join("out").display())),
    )?;
    ensure!(
        registry.blob_fetches() >= fetched + l2.len(),
        "{}",
        registry.log()
    );
    Ok(())
}
