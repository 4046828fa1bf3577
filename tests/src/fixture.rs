//! [`Fixture`]: a temp dir with a repo holding release "1", optionally a signing key and an
//! HTTP server, and a sysroot with that release deployed.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

use crate::{GpgKey, HttpServer, OsRelease, SysrootConfig, TestRepo, TestSysroot};

/// What [`Fixture::new`] builds.
#[derive(Debug, Clone)]
pub struct FixtureConfig {
    /// The first release, committed before the sysroot is created (default: version "1").
    pub release: OsRelease,
    /// Generate a GPG key, sign every commit with it and import it into the sysroot's remote
    /// with `gpg-verify=true` (default `false`).
    pub gpg: bool,
    /// Serve the repo over HTTP and point the sysroot's remote there instead of `file://`
    /// (default `false`).
    pub http: bool,
    /// Create the sysroot (default `true`).
    pub sysroot: bool,
    /// Sysroot settings. `url` is filled in by the fixture; `gpg` is set to the fixture key's
    /// public key when `gpg` is on and this is `None`. `ref_` is where releases are committed.
    pub sysroot_config: SysrootConfig,
}

impl Default for FixtureConfig {
    fn default() -> Self {
        Self {
            release: OsRelease::new("1"),
            gpg: false,
            http: false,
            sysroot: true,
            sysroot_config: SysrootConfig::default(),
        }
    }
}

/// A temp dir with `repo/` (archive repo, first release committed), optionally `gpg-*/` and an
/// HTTP server for `repo/`, and `sysroot/` with that release deployed. Dropping it stops the
/// server and the gpg-agent and deletes the directory.
#[derive(Debug)]
pub struct Fixture {
    // Field order is drop order: users of the directory first, the directory last.
    sysroot: Option<TestSysroot>,
    http: Option<HttpServer>,
    repo: TestRepo,
    gpg: Option<GpgKey>,
    config: SysrootConfig,
    first_commit: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Builds the fixture described by `config`.
    #[context("Creating test fixture")]
    pub fn new(config: &FixtureConfig) -> Result<Fixture> {
        crate::init();
        let dir = tempfile::Builder::new()
            .prefix("strata-test-")
            .tempdir()
            .context("Creating the fixture directory")?;
        let gpg = if config.gpg {
            Some(GpgKey::generate(dir.path())?)
        } else {
            None
        };
        let mut repo = TestRepo::create(&dir.path().join("repo"))?;
        repo.set_signer(gpg.as_ref().map(GpgKey::signer));
        let mut sysroot_config = config.sysroot_config.clone();
        let first_commit = repo.commit_release(&sysroot_config.ref_, &config.release)?;
        let http = if config.http {
            Some(HttpServer::serve(repo.path())?)
        } else {
            None
        };
        sysroot_config.url = match &http {
            Some(http) => http.url(),
            None => repo.file_url(),
        };
        if let (Some(key), None) = (&gpg, &sysroot_config.gpg) {
            sysroot_config.gpg = Some(key.public_key_path().to_path_buf());
        }
        let sysroot = if config.sysroot {
            Some(TestSysroot::create(
                &dir.path().join("sysroot"),
                &sysroot_config,
            )?)
        } else {
            None
        };
        Ok(Fixture {
            sysroot,
            http,
            repo,
            gpg,
            config: sysroot_config,
            first_commit,
            dir,
        })
    }

    /// The fixture's temp directory; free for the test's own files too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The archive repo releases are committed to.
    pub fn repo(&self) -> &TestRepo {
        &self.repo
    }

    /// The signing key (`FixtureConfig::gpg`).
    pub fn gpg(&self) -> Result<&GpgKey> {
        self.gpg
            .as_ref()
            .ok_or_else(|| anyhow!("Fixture was created without gpg"))
    }

    /// The HTTP server (`FixtureConfig::http`).
    pub fn http(&self) -> Result<&HttpServer> {
        self.http
            .as_ref()
            .ok_or_else(|| anyhow!("Fixture was created without http"))
    }

    /// The sysroot (`FixtureConfig::sysroot`).
    pub fn sysroot(&self) -> Result<&TestSysroot> {
        self.sysroot
            .as_ref()
            .ok_or_else(|| anyhow!("Fixture was created without a sysroot"))
    }

    /// The sysroot settings in effect (with the real `url` and `gpg`).
    pub fn sysroot_config(&self) -> &SysrootConfig {
        &self.config
    }

    /// The remote URL (HTTP or `file://`).
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The ref releases are committed to.
    pub fn ref_(&self) -> &str {
        &self.config.ref_
    }

    /// `remote:ref` as deployed in the sysroot.
    pub fn refspec(&self) -> String {
        self.config.refspec()
    }

    /// Checksum of the first release's commit.
    pub fn first_commit(&self) -> &str {
        &self.first_commit
    }

    /// Commits a further release on the fixture's ref (signed when the fixture has a key);
    /// returns its checksum.
    pub fn commit(&self, release: &OsRelease) -> Result<String> {
        self.repo.commit_release(&self.config.ref_, release)
    }
}
