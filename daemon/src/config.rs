//! The daemon configuration: rpm-ostree's `/etc/rpm-ostreed.conf`, group `[Daemon]`.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use ostree::glib;

/// `AutomaticUpdatePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum AutomaticUpdatePolicy {
    #[default]
    None,
    Check,
    Stage,
}

impl AutomaticUpdatePolicy {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AutomaticUpdatePolicy::None => "none",
            AutomaticUpdatePolicy::Check => "check",
            AutomaticUpdatePolicy::Stage => "stage",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" => Ok(Self::None),
            "check" => Ok(Self::Check),
            // rpm-ostree accepts "apply" as an older spelling of "stage".
            "stage" | "ex-stage" | "apply" => Ok(Self::Stage),
            other => Err(anyhow!(
                "Invalid AutomaticUpdatePolicy {other:?}: expected none, check or stage"
            )),
        }
    }
}

/// The settings Strata reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    pub automatic_update_policy: AutomaticUpdatePolicy,
    /// Seconds of idleness before exiting; 0 disables idle exit.
    pub idle_exit_timeout: u64,
    /// Forbid any change to the base (layering, overrides).
    pub lock_layering: bool,
    /// `RebootCommand` (a Strata extension): the program and arguments run when a transaction
    /// asks for a reboot, split at whitespace and run without a shell. Default
    /// [`DEFAULT_REBOOT_COMMAND`]; hosts without systemd (the VM suite's busybox guest) set it.
    pub reboot_command: Vec<String>,
}

/// What a transaction's reboot runs unless `RebootCommand` says otherwise.
pub(crate) const DEFAULT_REBOOT_COMMAND: &[&str] = &["systemctl", "reboot"];

impl Default for Config {
    fn default() -> Self {
        Self {
            automatic_update_policy: AutomaticUpdatePolicy::None,
            idle_exit_timeout: 60,
            lock_layering: false,
            reboot_command: DEFAULT_REBOOT_COMMAND
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// The `[Daemon]` group of the key file, read with glib's `GKeyFile` (as rpm-ostree does).
const GROUP: &str = "Daemon";

/// The `[Daemon]` keys Strata reads (`Recommends` is rpm-ostree's, meaningless here).
const KNOWN_KEYS: &[&str] = &[
    "AutomaticUpdatePolicy",
    "IdleExitTimeout",
    "LockLayering",
    "RebootCommand",
    "Recommends",
];

/// `[Daemon] key` as a trimmed string; `None` when the group or key is absent.
fn daemon_key(kf: &glib::KeyFile, key: &str) -> Result<Option<String>> {
    match kf.string(GROUP, key) {
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(e)
            if e.matches(glib::KeyFileError::GroupNotFound)
                || e.matches(glib::KeyFileError::KeyNotFound) =>
        {
            Ok(None)
        }
        Err(e) => Err(anyhow!("Invalid {key} in [{GROUP}]: {}", e.message())),
    }
}

impl Config {
    /// Parse the key-file text. Unknown keys and groups are ignored (with a warning) so a
    /// config written for rpm-ostree keeps working.
    pub(crate) fn parse(text: &str) -> Result<Config> {
        let kf = glib::KeyFile::new();
        kf.load_from_data(text, glib::KeyFileFlags::NONE)
            .map_err(|e| anyhow!("Not a valid key file: {}", e.message()))?;
        let mut c = Config::default();
        if let Some(v) = daemon_key(&kf, "AutomaticUpdatePolicy")? {
            c.automatic_update_policy = AutomaticUpdatePolicy::parse(&v)?;
        }
        if let Some(v) = daemon_key(&kf, "IdleExitTimeout")? {
            c.idle_exit_timeout = v
                .parse()
                .with_context(|| format!("Invalid IdleExitTimeout {v:?}"))?;
        }
        if let Some(v) = daemon_key(&kf, "LockLayering")? {
            c.lock_layering = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                other => {
                    return Err(anyhow!(
                        "Invalid LockLayering {other:?}: expected true or false"
                    ))
                }
            };
        }
        if let Some(v) = daemon_key(&kf, "RebootCommand")? {
            let argv: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            if argv.is_empty() {
                return Err(anyhow!(
                    "Invalid RebootCommand: expected a program and its arguments"
                ));
            }
            c.reboot_command = argv;
        }
        if let Ok(keys) = kf.keys(GROUP) {
            for key in keys.iter() {
                if !KNOWN_KEYS.contains(&key.as_str()) {
                    tracing::warn!("Ignoring unknown key {:?} in [{GROUP}]", key.as_str());
                }
            }
        }
        Ok(c)
    }

    /// Read `path`; a missing file means the defaults.
    pub(crate) fn load(path: &Path) -> Result<Config> {
        match fs_err::read_to_string(path) {
            Ok(t) => Config::parse(&t).with_context(|| format!("Parsing {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_config() {
        let c = Config::parse(
            "# comment\n[Daemon]\nAutomaticUpdatePolicy=check\nIdleExitTimeout=5\nLockLayering=true\n[Other]\nX=y\n",
        )
        .unwrap();
        assert_eq!(c.automatic_update_policy, AutomaticUpdatePolicy::Check);
        assert_eq!(c.idle_exit_timeout, 5);
        assert!(c.lock_layering);
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert!(Config::parse("[Daemon]\nIdleExitTimeout=x\n").is_err());
        assert!(Config::parse("[Daemon]\nAutomaticUpdatePolicy=bogus\n").is_err());
        assert!(Config::parse("[Daemon]\nLockLayering=maybe\n").is_err());
        let err = Config::parse("IdleExitTimeout=5\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Not a valid key file"), "{err}");
    }

    #[test]
    fn parse_reboot_command() {
        assert_eq!(
            Config::default().reboot_command,
            ["systemctl", "reboot"],
            "production default"
        );
        let c = Config::parse("[Daemon]\nRebootCommand= /bin/busybox  reboot \n").unwrap();
        assert_eq!(c.reboot_command, ["/bin/busybox", "reboot"]);
        let c = Config::parse("[Daemon]\nRebootCommand=reboot\n").unwrap();
        assert_eq!(c.reboot_command, ["reboot"]);
        // Only [Daemon] counts; an empty value is an error, not a silent no-op reboot.
        let c = Config::parse("[Other]\nRebootCommand=reboot\n").unwrap();
        assert_eq!(c.reboot_command, ["systemctl", "reboot"]);
        assert!(Config::parse("[Daemon]\nRebootCommand=\n").is_err());
        assert!(Config::parse("[Daemon]\nRebootCommand=   \n").is_err());
    }
}
