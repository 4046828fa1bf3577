//! A private D-Bus daemon and a real `stratad` on it, for the daemon and CLI suites.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use strata_tests::{Fixture, FixtureConfig, PrivateBus, Stratad};
//! let fx = Fixture::new(&FixtureConfig::default())?;
//! let bus = PrivateBus::start()?;
//! let daemon = Stratad::start(&bus, fx.sysroot()?.path(), &[]).await?;
//! let conn = bus.connect().await?;
//! # let _ = (daemon, conn);
//! # Ok(())
//! # }
//! ```

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use fn_error_context::context;

/// A `dbus-daemon` on a unix socket in a temp dir, with a policy that allows everything.
/// Killed on drop.
#[derive(Debug)]
pub struct PrivateBus {
    child: Child,
    address: String,
    dir: tempfile::TempDir,
}

fn bus_config(socket: &Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

impl PrivateBus {
    /// Start `dbus-daemon --nofork --print-address` with a generated config.
    #[context("Starting a private dbus-daemon")]
    pub fn start() -> Result<PrivateBus> {
        crate::init();
        let dir = tempfile::Builder::new()
            .prefix("strata-bus-")
            .tempdir()
            .context("Creating the bus directory")?;
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, bus_config(&dir.path().join("bus.sock")))
            .context("Writing the bus config")?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--print-address", "--nofork"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("Spawning dbus-daemon (apt-get install dbus-daemon)")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("Reading the bus address")?;
        let address = line.trim().to_string();
        if address.is_empty() {
            let _ = child.kill();
            let status = child.wait()?;
            return Err(anyhow!("dbus-daemon printed no address ({status})"));
        }
        Ok(PrivateBus {
            child,
            address,
            dir,
        })
    }

    /// The bus address (`unix:path=...,guid=...`).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The bus's temp dir (free for the test's own files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new client connection to the bus.
    pub async fn connect(&self) -> Result<zbus::Connection> {
        zbus::connection::Builder::address(self.address.as_str())?
            .build()
            .await
            .with_context(|| format!("Connecting to {}", self.address))
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `stratad` (the real binary) on a [`PrivateBus`]; killed on drop.
#[derive(Debug)]
pub struct Stratad {
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    run_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Stratad {
    /// `target/<profile>/stratad`, next to the directory holding the test executable.
    pub fn binary() -> Result<PathBuf> {
        let exe = std::env::current_exe().context("Finding the test executable")?;
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .ok_or_else(|| anyhow!("Unexpected test executable path {}", exe.display()))?;
        let bin = dir.join("stratad");
        if !bin.exists() {
            return Err(anyhow!(
                "{} does not exist; build it first (cargo build -p strata-daemon)",
                bin.display()
            ));
        }
        Ok(bin)
    }

    /// Start `stratad --bus-address ADDR --sysroot DIR --no-polkit` plus `extra_args`, with its
    /// own run dir and an empty config (unless `extra_args` give them) and idle exit off
    /// (unless given), and wait until it owns its bus name.
    pub async fn start(bus: &PrivateBus, sysroot: &Path, extra_args: &[&str]) -> Result<Stratad> {
        Self::start_with_env(bus, sysroot, extra_args, &[]).await
    }

    /// [`Stratad::start`] with extra environment variables (e.g. `FAILPOINTS`).
    pub async fn start_with_env(
        bus: &PrivateBus,
        sysroot: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Stratad> {
        crate::init();
        let dir = tempfile::Builder::new()
            .prefix("strata-stratad-")
            .tempdir()
            .context("Creating the daemon directory")?;
        let run_dir = dir.path().join("run");
        let has = |flag: &str| extra_args.iter().any(|a| a.starts_with(flag));
        let mut cmd = Command::new(Self::binary()?);
        cmd.arg("--bus-address")
            .arg(bus.address())
            .arg("--sysroot")
            .arg(sysroot);
        if !has("--polkit") {
            cmd.arg("--no-polkit");
        }
        if !has("--run-dir") {
            cmd.arg("--run-dir").arg(&run_dir);
        }
        if !has("--config") {
            cmd.arg("--config").arg(dir.path().join("rpm-ostreed.conf"));
        }
        if !has("--idle-exit-timeout") {
            cmd.args(["--idle-exit-timeout", "0"]);
        }
        cmd.args(extra_args.iter().filter(|a| **a != "--polkit"));
        cmd.envs(env.iter().copied());
        cmd.env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or("info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("Spawning {}", crate::cmd::command_line(&cmd)))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = child.stderr.take() {
            let buf = stderr.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    buf.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
            });
        }
        let mut daemon = Stratad {
            child: Some(child),
            stderr,
            run_dir,
            _dir: dir,
        };
        daemon.wait_ready(bus).await?;
        Ok(daemon)
    }

    async fn wait_ready(&mut self, bus: &PrivateBus) -> Result<()> {
        let conn = bus.connect().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let name = zbus::names::BusName::try_from(strata_api::names::BUS_NAME)?;
            if dbus.name_has_owner(name).await? {
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                return Err(anyhow!(
                    "stratad exited ({status}) before owning its name; stderr:\n{}",
                    self.stderr()
                ));
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "stratad did not own its name within 30 s; stderr:\n{}",
                    self.stderr()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// The daemon's `--run-dir` (where transaction sockets go), unless overridden.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status, if the daemon has exited.
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => Err(anyhow!("stratad was already reaped")),
        }
    }

    /// Send a signal (`"TERM"`, `"KILL"`, ...) with kill(1).
    pub fn signal(&self, sig: &str) -> Result<()> {
        let pid = self
            .pid()
            .ok_or_else(|| anyhow!("stratad is not running"))?;
        crate::cmd::run(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string()),
        )?;
        Ok(())
    }

    /// Wait up to `timeout` for the daemon to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "stratad did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Stratad {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
