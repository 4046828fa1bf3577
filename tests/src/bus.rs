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

/// The default policy of Debian's `/usr/share/dbus-1/system.conf`: nobody owns names or sends
/// method calls unless a service's policy punches a hole; replies, signals and the bus driver
/// are allowed. A macro so that the VM guest's `GUEST_BUS_CONFIG` can be one `concat!`.
macro_rules! system_default_policy {
    () => {
        r#"  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
  </policy>
"#
    };
}
pub(crate) use system_default_policy;

/// A bus configuration that lets everyone own and call anything: `bus_type` is `custom` for the
/// test kit's private buses, `system` for the VM guest's bus (see `vm::strata`).
pub(crate) fn allow_all_bus_config(bus_type: &str, socket: &str) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>{bus_type}</type>
  <listen>unix:path={socket}</listen>
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
"#
    )
}

/// A bus configuration with the system bus's default policy ([`system_default_policy`]) plus
/// the policy files in `include`.
fn system_like_bus_config(socket: &str, include: &[&Path]) -> String {
    let includes: String = include
        .iter()
        .map(|p| format!("  <include>{}</include>\n", p.display()))
        .collect();
    let policy = system_default_policy!();
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
{policy}{includes}</busconfig>
"#
    )
}

/// The `Exec=` line of an activatable service, given the bus address.
type ExecLine<'a> = &'a dyn Fn(&str) -> String;

impl PrivateBus {
    /// Start `dbus-daemon --nofork --print-address` with a generated config. The bus directory
    /// is private to the test's user (mode 0700), so only that user can connect.
    pub fn start() -> Result<PrivateBus> {
        Self::start_inner(false, None)
    }

    /// [`PrivateBus::start`], but with the bus directory world-searchable (mode 0755), so that
    /// processes running as other users (a `nobody` client, `polkitd` after it drops to its own
    /// user) can reach the socket. The bus policy already lets every user connect.
    pub fn start_shared() -> Result<PrivateBus> {
        Self::start_inner(true, None)
    }

    /// A shared bus ([`PrivateBus::start_shared`]) with the system bus's default policy and the
    /// given policy files (e.g. the packaged `org.projectatomic.rpmostree1.conf`) instead of
    /// allow-all: what an unprivileged user meets on a real host.
    pub fn start_with_system_policy(include: &[&Path]) -> Result<PrivateBus> {
        let include: Vec<PathBuf> = include.iter().map(|p| p.to_path_buf()).collect();
        Self::start_inner(true, Some(include))
    }

    /// An allow-all bus ([`PrivateBus::start`]) that starts the service `name` on demand (D-Bus
    /// activation) by running `exec(address)`, where `address` is the bus's own address.
    pub fn start_activating(name: &str, exec: impl Fn(&str) -> String) -> Result<PrivateBus> {
        Self::start_inner_with(false, None, Some((name, &exec)))
    }

    fn start_inner(shared: bool, system_policy: Option<Vec<PathBuf>>) -> Result<PrivateBus> {
        Self::start_inner_with(shared, system_policy, None)
    }

    #[context("Starting a private dbus-daemon")]
    fn start_inner_with(
        shared: bool,
        system_policy: Option<Vec<PathBuf>>,
        service: Option<(&str, ExecLine<'_>)>,
    ) -> Result<PrivateBus> {
        crate::init();
        let dir = tempfile::Builder::new()
            .prefix("strata-bus-")
            .tempdir()
            .context("Creating the bus directory")?;
        if shared {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .context("Making the bus directory world-searchable")?;
        }
        let config = dir.path().join("bus.conf");
        let socket = dir.path().join("bus.sock").display().to_string();
        let mut text = match &system_policy {
            None => allow_all_bus_config("custom", &socket),
            Some(include) => {
                let include: Vec<&Path> = include.iter().map(PathBuf::as_path).collect();
                system_like_bus_config(&socket, &include)
            }
        };
        if let Some((name, exec)) = service {
            let services = dir.path().join("services");
            std::fs::create_dir(&services).context("Creating the service dir")?;
            std::fs::write(
                services.join(format!("{name}.service")),
                format!(
                    "[D-BUS Service]\nName={name}\nExec={}\n",
                    exec(&format!("unix:path={socket}"))
                ),
            )
            .context("Writing the activation file")?;
            text = text.replace(
                "</busconfig>",
                &format!(
                    "  <servicedir>{}</servicedir>\n</busconfig>",
                    services.display()
                ),
            );
        }
        std::fs::write(&config, text).context("Writing the bus config")?;
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--print-address", "--nofork"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // dbus-daemon warns about fd limits it may not raise in containers; a startup
            // failure shows as a missing address below.
            .stderr(Stdio::null())
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
    /// `target/<profile>/stratad`: next to the running executable (a binary such as the demo)
    /// or next to the directory holding it (a test executable in `target/<profile>/deps`).
    pub fn binary() -> Result<PathBuf> {
        let exe = std::env::current_exe().context("Finding the test executable")?;
        let dir = exe
            .parent()
            .ok_or_else(|| anyhow!("Unexpected executable path {}", exe.display()))?;
        let candidates = [Some(dir), dir.parent()];
        if let Some(bin) = candidates
            .into_iter()
            .flatten()
            .map(|d| d.join("stratad"))
            .find(|b| b.exists())
        {
            return Ok(bin);
        }
        Err(anyhow!(
            "{} does not exist; build it first (cargo build -p strata-daemon)",
            dir.parent().unwrap_or(dir).join("stratad").display()
        ))
    }

    /// Start `stratad --bus-address ADDR --sysroot DIR --no-polkit` plus `extra_args` (a
    /// `--polkit` there drops `--no-polkit` and is not passed on), with its
    /// own run dir and an empty config (unless `extra_args` give them) and idle exit off
    /// (unless given), and wait until it owns its bus name.
    pub async fn start(bus: &PrivateBus, sysroot: &Path, extra_args: &[&str]) -> Result<Stratad> {
        Self::start_with_env(bus, sysroot, extra_args, &[]).await
    }

    /// [`Stratad::start`] without `--no-polkit`: callers other than uid 0 are authorized by
    /// asking `org.freedesktop.PolicyKit1` on `bus` (see [`Polkitd`]). Same as passing
    /// `--polkit` in `extra_args`.
    pub async fn start_with_polkit(
        bus: &PrivateBus,
        sysroot: &Path,
        extra_args: &[&str],
    ) -> Result<Stratad> {
        let mut args = vec!["--polkit"];
        args.extend_from_slice(extra_args);
        Self::start_with_env(bus, sysroot, &args, &[]).await
    }

    /// [`Stratad::start`] with extra environment variables (e.g. `FAILPOINTS`).
    pub async fn start_with_env(
        bus: &PrivateBus,
        sysroot: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Stratad> {
        Self::start_wrapped(bus, sysroot, extra_args, env, &[]).await
    }

    /// [`Stratad::start_with_env`] with stratad run by `wrapper` (a program and its arguments,
    /// e.g. `valgrind --tool=callgrind`; empty: stratad itself).
    pub async fn start_wrapped(
        bus: &PrivateBus,
        sysroot: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
        wrapper: &[&str],
    ) -> Result<Stratad> {
        crate::init();
        let dir = tempfile::Builder::new()
            .prefix("strata-stratad-")
            .tempdir()
            .context("Creating the daemon directory")?;
        let run_dir = dir.path().join("run");
        let has = |flag: &str| extra_args.iter().any(|a| a.starts_with(flag));
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(Self::binary()?);
                c
            }
            None => Command::new(Self::binary()?),
        };
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
        // As stratad.service sets it (stratad would otherwise execute itself again with it).
        cmd.env("G_SLICE", "always-malloc");
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

/// Debian's `polkitd` (package `polkitd`).
pub const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
/// Where `polkitd` reads action definitions (`*.policy`).
pub const POLKIT_ACTIONS_DIR: &str = "/usr/share/polkit-1/actions";
/// Where `polkitd` reads the admin's JavaScript rules (it also reads
/// `/usr/share/polkit-1/rules.d`, which is left as it is).
pub const POLKIT_RULES_DIR: &str = "/etc/polkit-1/rules.d";

/// A real `polkitd` serving `org.freedesktop.PolicyKit1` on a [`PrivateBus`] started with
/// [`PrivateBus::start_shared`]; killed on drop.
///
/// How it runs, and why:
/// - polkitd always talks to the *system* bus; `DBUS_SYSTEM_BUS_ADDRESS` points it at the
///   private bus, whose permissive policy lets it own `org.freedesktop.PolicyKit1`.
/// - It is started as root (so the test must run as root) and switches to the `polkitd` user
///   the package creates before connecting to the bus ("Successfully changed to user
///   polkitd"); hence the shared (0755) bus directory, and world-readable policy and rules.
/// - Its action and rules directories are fixed paths. Instead of copying files into the
///   host's `/usr/share/polkit-1/actions`, it runs in its own mount namespace
///   (`unshare --mount`, private propagation) where a temp dir holding only the given
///   `.policy` files is bind-mounted over [`POLKIT_ACTIONS_DIR`] and a temp dir holding only
///   the given rules over [`POLKIT_RULES_DIR`]. The host's files are never touched, and tests
///   running at the same time cannot see each other's policy or rules. This needs
///   `CAP_SYS_ADMIN` (root on a normal host or a privileged container).
/// - Without a logind session the caller falls under the action's `allow_any` default
///   (`auth_admin` for every rpm-ostree action), and with no authentication agent registered
///   that is a denial, unless a rule returns `polkit.Result.YES` first.
/// - stdout and stderr (polkitd's debug log: rules loaded, name acquired, JS errors) go to
///   [`Polkitd::log`].
#[derive(Debug)]
pub struct Polkitd {
    child: Option<Child>,
    log: PathBuf,
}

impl Polkitd {
    /// Start polkitd on `bus` with the action definitions in `policies` (copied) and the
    /// JavaScript `rules` (`(file name, text)`, e.g. `("50-test.rules", "polkit.addRule(...)")`),
    /// and wait until it owns `org.freedesktop.PolicyKit1`.
    #[context("Starting polkitd on the private bus")]
    pub async fn start(
        bus: &PrivateBus,
        policies: &[&Path],
        rules: &[(&str, &str)],
    ) -> Result<Polkitd> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        crate::init();
        if !Path::new(POLKITD).exists() {
            return Err(anyhow!("{POLKITD} is missing (apt-get install polkitd)"));
        }
        let euid = std::fs::metadata("/proc/self")
            .context("Finding our uid")?
            .uid();
        if euid != 0 {
            return Err(anyhow!(
                "polkitd must be started as root (it switches to user polkitd itself, and its \
                 policy dir is bind-mounted in a new mount namespace); running as uid {euid}"
            ));
        }
        let bus_mode = std::fs::metadata(bus.dir())?.permissions().mode();
        if bus_mode & 0o005 != 0o005 {
            return Err(anyhow!(
                "the bus dir is not reachable by user polkitd: use PrivateBus::start_shared"
            ));
        }
        let base = bus.dir().join("polkit");
        let actions = base.join("actions");
        let rules_dir = base.join("rules.d");
        for d in [&base, &actions, &rules_dir] {
            std::fs::create_dir_all(d).with_context(|| format!("Creating {}", d.display()))?;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        let readable =
            |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644));
        for policy in policies {
            let name = policy
                .file_name()
                .ok_or_else(|| anyhow!("no file name in {}", policy.display()))?;
            let dest = actions.join(name);
            std::fs::copy(policy, &dest)
                .with_context(|| format!("Copying {}", policy.display()))?;
            readable(&dest)?;
        }
        for (name, text) in rules {
            let dest = rules_dir.join(name);
            std::fs::write(&dest, text).with_context(|| format!("Writing {}", dest.display()))?;
            readable(&dest)?;
        }
        let log = base.join("polkitd.log");
        let out = std::fs::File::create(&log).context("Creating the polkitd log")?;
        let err = out.try_clone()?;
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(format!(
                r#"mount --bind "$1" {POLKIT_ACTIONS_DIR} && mount --bind "$2" {POLKIT_RULES_DIR} && exec {POLKITD}"#
            ))
            .arg("sh")
            .arg(&actions)
            .arg(&rules_dir)
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .with_context(|| format!("Spawning {}", crate::cmd::command_line(&cmd)))?;
        let mut polkitd = Polkitd {
            child: Some(child),
            log,
        };
        polkitd.wait_ready(bus).await?;
        Ok(polkitd)
    }

    async fn wait_ready(&mut self, bus: &PrivateBus) -> Result<()> {
        let conn = bus.connect().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = zbus::names::BusName::try_from("org.freedesktop.PolicyKit1")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if dbus.name_has_owner(name.clone()).await? {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                return Err(anyhow!(
                    "polkitd exited ({status}) before owning org.freedesktop.PolicyKit1; log:\n{}",
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "polkitd did not own org.freedesktop.PolicyKit1 within 30 s; log:\n{}",
                    self.log_text()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// polkitd's log file (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// What polkitd logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("({e})"))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Polkitd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
