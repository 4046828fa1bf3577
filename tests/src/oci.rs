//! OS releases as container images, as Fedora CoreOS and bootc ship them: a fixture commit
//! encapsulated by ostree-ext into an `oci:` directory, and a `docker-registry` on loopback to
//! push it to (with `skopeo`, as ostree-ext's own push cannot reach a plain-HTTP registry).
//!
//! Images are chunked by where each file lives (`usr/bin`, `usr/lib/modules`, …), the role
//! rpm-ostree gives packages: a new release then changes only the layers of what changed, so
//! an upgrade on a moved tag fetches only those.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use fn_error_context::context;
use ostree::gio;
use ostree::prelude::*;
use ostree_ext::chunking::ObjectMetaSized;
use ostree_ext::container::{self as oc, ImageReference, Transport};
use ostree_ext::objectsource::{ObjectMeta, ObjectSourceMeta};

use crate::cmd;

/// The most layers an image gets.
const MAX_LAYERS: u32 = 8;

/// The chunk a file of the tree belongs to: its directory, cut to three components
/// (`usr/bin`, `usr/lib/modules`, `usr/share/extra`); `/` for a file at the top.
fn component(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let dirs = &parts[..parts.len().saturating_sub(1)];
    if dirs.is_empty() {
        "/".to_string()
    } else {
        dirs[..dirs.len().min(3)].join("/")
    }
}

/// Every content object of the commit's tree, each owned by its [`component`].
fn chunk_by_path(repo: &ostree::Repo, rev: &str) -> Result<ObjectMeta> {
    let (root, _) = repo.read_commit(rev, gio::Cancellable::NONE)?;
    let mut meta = ObjectMeta::default();
    let mut stack = vec![(root, String::new())];
    while let Some((dir, path)) = stack.pop() {
        let children = dir.enumerate_children(
            "standard::name,standard::type",
            gio::FileQueryInfoFlags::NOFOLLOW_SYMLINKS,
            gio::Cancellable::NONE,
        )?;
        for info in children {
            let info = info?;
            let name = info.name().to_string_lossy().into_owned();
            let child = dir.child(&name);
            let child_path = format!("{path}/{name}");
            if info.file_type() == gio::FileType::Directory {
                stack.push((child, child_path));
                continue;
            }
            let file = child
                .downcast::<ostree::RepoFile>()
                .map_err(|_| anyhow!("{child_path} is not in the repository"))?;
            let owner: Rc<str> = Rc::from(component(&child_path));
            if !meta.set.contains(&*owner) {
                meta.set.insert(ObjectSourceMeta {
                    identifier: Rc::clone(&owner),
                    name: Rc::clone(&owner),
                    srcid: Rc::clone(&owner),
                    change_time_offset: 1,
                    change_frequency: 1,
                });
            }
            // A file at two places (same content) stays in the first one's chunk.
            meta.map.entry(file.checksum().to_string()).or_insert(owner);
        }
    }
    Ok(meta)
}

/// Encapsulates `rev` of the repository at `repo_path` into the `oci:` directory `dir` as
/// `tag`, chunked (see the module), labelled bootable; returns the manifest digest
/// (`sha256:…`).
#[context("Encapsulating {rev} into {}:{tag}", dir.display())]
pub fn encapsulate(repo_path: &Path, rev: &str, dir: &Path, tag: &str) -> Result<String> {
    let (repo_path, rev, dir, tag) = (
        repo_path.to_path_buf(),
        rev.to_string(),
        dir.to_path_buf(),
        tag.to_string(),
    );
    // ostree-ext is async and libostree's objects stay on their thread: a thread of its own
    // with its own runtime (the caller may be inside a runtime already).
    std::thread::spawn(move || -> Result<String> {
        let repo = ostree::Repo::new_for_path(&repo_path);
        repo.open(gio::Cancellable::NONE)?;
        let sized = ObjectMetaSized::compute_sizes(&repo, chunk_by_path(&repo, &rev)?)?;
        fs::create_dir_all(&dir)?;
        let dest = ImageReference {
            transport: Transport::OciDir,
            name: format!("{}:{tag}", dir.display()),
        };
        let mut opts = oc::ExportOpts::default();
        opts.max_layers = NonZeroU32::new(MAX_LAYERS);
        opts.contentmeta = Some(&sized);
        let config = oc::Config {
            labels: Some(BTreeMap::from([(
                oc::BOOTC_LABEL.to_string(),
                "1".to_string(),
            )])),
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let digest = rt.block_on(oc::encapsulate(&repo, &rev, &config, Some(opts), &dest))?;
        Ok(digest.to_string())
    })
    .join()
    .map_err(|_| anyhow!("The encapsulating thread panicked"))?
}

/// Where the containers stack reads registry drop-ins (skopeo 1.9 has no environment
/// override of `registries.conf`).
const REGISTRIES_D: &str = "/etc/containers/registries.conf.d";

/// Where it reads where each registry's signatures are kept (`lookaside` stores).
const SIGSTORES_D: &str = "/etc/containers/registries.d";

/// The containers signature policy.
const POLICY: &str = "/etc/containers/policy.json";

/// A `docker-registry` (the distribution registry) serving plain HTTP on a loopback port,
/// its storage and log in a temporary directory; stopped when dropped.
///
/// Clients reach it as an rpm-ostree host reaches a plain-HTTP registry: a drop-in
/// `/etc/containers/registries.conf.d/50-strata-test-127.0.0.1-PORT.conf` marks it
/// `insecure = true`, and `/etc/containers/registries.d/50-strata-test-127.0.0.1-PORT.yaml`
/// keeps its image signatures in a directory beside its storage (both written at start,
/// removed when dropped; this needs root, as the integration tests do). Drop-ins left by a
/// killed test name only a loopback port.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    dropins: Vec<PathBuf>,
}

impl Registry {
    /// Starts one and waits until it answers.
    #[context("Starting docker-registry")]
    pub fn start() -> Result<Registry> {
        let dir = tempfile::Builder::new()
            .prefix("strata-registry-")
            .tempdir()?;
        // A free port: bound, then released for the registry (a race only with another
        // process grabbing it in between).
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )?;
        let log = fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("Running docker-registry (apt-get install docker-registry)")?;
        let mut reg = Registry {
            child,
            port,
            dir,
            dropins: Vec::new(),
        };
        let name = format!("50-strata-test-127.0.0.1-{port}");
        reg.drop_in(
            &Path::new(REGISTRIES_D).join(format!("{name}.conf")),
            &format!("[[registry]]\nlocation = \"127.0.0.1:{port}\"\ninsecure = true\n"),
        )?;
        let sigstore = format!("file://{}", reg.dir.path().join("sigstore").display());
        reg.drop_in(
            &Path::new(SIGSTORES_D).join(format!("{name}.yaml")),
            &format!(
                "docker:\n  127.0.0.1:{port}:\n    sigstore: {sigstore}\n    sigstore-staging: {sigstore}\n"
            ),
        )?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if reg.get("/v2/").is_ok_and(|s| s == 200) {
                return Ok(reg);
            }
            if let Some(status) = reg.child.try_wait()? {
                bail!("docker-registry exited ({status}):\n{}", reg.log());
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not answer within 30 s:\n{}", reg.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:PORT`, the registry part of an image name.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The HTTP status of a GET of `path` (the registry API is plain HTTP/1.1; a status line
    /// is all this needs).
    fn get(&self, path: &str) -> Result<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.host()
        )?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head)?;
        let text = String::from_utf8_lossy(&head);
        text.get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| anyhow!("Not an HTTP status line: {text:?}"))
    }

    /// Writes a drop-in of the containers configuration, removed when the registry is dropped.
    fn drop_in(&mut self, path: &Path, text: &str) -> Result<()> {
        fs::create_dir_all(path.parent().expect("a drop-in has a directory"))?;
        fs::write(
            path,
            format!("# A test registry of Strata's test kit, removed when the test ends.\n{text}"),
        )
        .with_context(|| format!("Writing {} (the tests run as root)", path.display()))?;
        self.dropins.push(path.to_path_buf());
        Ok(())
    }

    /// Pushes `tag` of `dir` to `name` here with a signature made with `key` (a
    /// containers "simple signing" signature, kept in the registry's signature store).
    #[context("Pushing {}:{tag} to {name}, signed", dir.display())]
    pub fn push_signed(
        &self,
        dir: &Path,
        tag: &str,
        name: &str,
        key: &crate::GpgKey,
    ) -> Result<()> {
        cmd::run(
            Command::new("skopeo")
                .env("GNUPGHOME", key.homedir())
                .args(["copy", "--quiet", "--dest-tls-verify=false", "--sign-by"])
                .arg(key.key_id())
                .arg(format!("oci:{}:{tag}", dir.display()))
                .arg(format!("docker://{}/{name}", self.host())),
        )?;
        Ok(())
    }

    /// Pushes `tag` of the `oci:` directory `dir` to `name` (`os:stable`) here.
    #[context("Pushing {}:{tag} to {name}", dir.display())]
    pub fn push(&self, dir: &Path, tag: &str, name: &str) -> Result<()> {
        cmd::run(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:{tag}", dir.display()))
                .arg(format!("docker://{}/{name}", self.host())),
        )?;
        Ok(())
    }

    /// How many blob downloads (`GET …/blobs/sha256:…`) the registry has served.
    pub fn blob_fetches(&self) -> usize {
        self.blobs_fetched().len()
    }

    /// The digests (`sha256:…`) of the blobs downloaded so far, in order, repeats included.
    pub fn blobs_fetched(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/"))
            .filter_map(|l| {
                let start = l.find("/blobs/sha256:")? + "/blobs/".len();
                let digest: String = l[start..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
                    .collect();
                Some(digest)
            })
            .collect()
    }

    /// Stops serving (the port then refuses connections); the drop-in stays until drop.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The file of a stored blob (`sha256:…`), to damage it.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
            .join("data")
    }

    /// The registry's log.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where it keeps its data.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
        for d in &self.dropins {
            let _ = fs::remove_file(d);
        }
    }
}

/// A containers signature policy (`/etc/containers/policy.json`) that requires images of
/// `registry` to be signed by `key`, rejects what it does not name, and accepts anything from
/// other registries and `oci:` directories as before (other tests may run meanwhile). The
/// previous policy is put back when dropped. There is one policy per host: tests that install
/// one must not run at the same time.
#[derive(Debug)]
pub struct SignaturePolicy {
    previous: Option<Vec<u8>>,
    _key: PathBuf,
}

impl SignaturePolicy {
    #[context("Installing a signature policy")]
    pub fn install(registry: &Registry, key: &crate::GpgKey, dir: &Path) -> Result<Self> {
        // The key where skopeo reads it: skopeo may drop privileges, a test's temporary
        // directory is readable.
        let key_path = dir.join("policy-key.asc");
        fs::copy(key.public_key_path(), &key_path)?;
        let accept = serde_json::json!([{ "type": "insecureAcceptAnything" }]);
        let policy = serde_json::json!({
            "default": [{ "type": "reject" }],
            "transports": {
                "docker": {
                    "": accept,
                    registry.host(): [{
                        "type": "signedBy",
                        "keyType": "GPGKeys",
                        "keyPath": key_path,
                    }],
                },
                "oci": { "": accept },
                "docker-daemon": { "": accept },
            },
        });
        let previous = fs::read(POLICY).ok();
        let tmp = Path::new(POLICY).with_extension("json.strata-test");
        fs::write(&tmp, serde_json::to_vec_pretty(&policy)?)?;
        fs::rename(&tmp, POLICY)?;
        Ok(SignaturePolicy {
            previous,
            _key: key_path,
        })
    }
}

impl Drop for SignaturePolicy {
    fn drop(&mut self) {
        match &self.previous {
            Some(p) => {
                let tmp = Path::new(POLICY).with_extension("json.strata-test");
                let _ = fs::write(&tmp, p).and_then(|()| fs::rename(&tmp, POLICY));
            }
            None => {
                let _ = fs::remove_file(POLICY);
            }
        }
    }
}

/// The layer digests of an image (`skopeo inspect`), e.g. of `oci:DIR:TAG` or
/// `docker://HOST/NAME:TAG` (TLS verification off, for the loopback registry).
#[context("Inspecting {image}")]
pub fn layers(image: &str) -> Result<Vec<String>> {
    let out = cmd::run(Command::new("skopeo").args(["inspect", "--tls-verify=false", image]))?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["Layers"]
        .as_array()
        .context("No Layers in skopeo's answer")?
        .iter()
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components() {
        assert_eq!(component("/usr/bin/sh"), "usr/bin");
        assert_eq!(component("/usr/lib/modules/6/vmlinuz"), "usr/lib/modules");
        assert_eq!(component("/usr/lib/os-release"), "usr/lib");
        assert_eq!(component("/usr/x"), "usr");
        assert_eq!(component("/x"), "/");
    }
}
