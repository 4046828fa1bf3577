//! The `a{sv}` option dictionaries of rpm-ostree's methods as typed structs, built by the CLI
//! and read by the daemon, so a key is spelled once.
//!
//! Reading follows rpm-ostree: every key it knows for a method is accepted and type-checked, a
//! key it does not know is ignored (the daemon logs it at debug), and a flag at its default
//! value is never an error. A key that asks for something Strata cannot do yet, set to a
//! non-default value, is named by [`DeployOptions::unsupported`] and friends.

use std::collections::HashMap;

use zvariant::{DeserializeDict, OwnedValue, SerializeDict, Type};

/// An options dictionary as it arrives on the bus, before it is read into one of the types here.
pub type RawOptions = HashMap<String, OwnedValue>;

/// A key of a dictionary with a value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind} \"{key}\" has the wrong type: expected {expected}, got a value of signature `{got}`"
)]
pub struct OptionTypeError {
    /// `Option` or `Modifier`.
    pub kind: &'static str,
    /// The key, as the caller sent it (bounded by the bus message size).
    pub key: String,
    /// What the API wants, e.g. "a value of signature `b`".
    pub expected: String,
    /// The D-Bus signature the caller sent.
    pub got: String,
}

/// Read a raw dictionary into `T`: unknown keys are ignored, a known key of the wrong type is an
/// error that names it.
pub fn read<T>(raw: &RawOptions, kind: &'static str) -> Result<T, OptionTypeError>
where
    T: serde::de::DeserializeOwned + Type,
{
    decode(raw).map_err(|e| {
        // Find the key at fault by reading each entry alone, so the error can name it.
        let mut keys: Vec<&String> = raw.keys().collect();
        keys.sort();
        for key in keys {
            let single: RawOptions = raw
                .get_key_value(key)
                .and_then(|(k, v)| Some((k.clone(), v.try_clone().ok()?)))
                .into_iter()
                .collect();
            if let Err(e) = decode::<T>(&single) {
                return OptionTypeError {
                    kind,
                    key: key.clone(),
                    expected: expected_of(&e),
                    got: raw[key].value_signature().to_string(),
                };
            }
        }
        OptionTypeError {
            kind,
            key: String::new(),
            expected: expected_of(&e),
            got: "a{sv}".to_string(),
        }
    })
}

fn expected_of(e: &zvariant::Error) -> String {
    let text = e.to_string();
    match text.split_once(", expected ") {
        Some((_, expected)) => expected.to_string(),
        None => text,
    }
}

fn decode<T>(raw: &RawOptions) -> Result<T, zvariant::Error>
where
    T: serde::de::DeserializeOwned + Type,
{
    // zvariant reads a struct from serialized D-Bus data, not from a map of values: write the
    // dictionary out once and read it back as `T` (a few hundred bytes per call).
    let ctxt = zvariant::serialized::Context::new_dbus(zvariant::LE, 0);
    let data = zvariant::to_bytes(ctxt, raw)?;
    Ok(data.deserialize::<T>()?.0)
}

/// Keys of `raw` that `read` left out of `parsed` (for a debug log: rpm-ostree ignores them
/// too). Every key `T` knows and `raw` has is set in `parsed`, so writing `parsed` out again
/// gives exactly the known ones.
pub fn unknown_keys<'a, T>(raw: &'a RawOptions, parsed: &T) -> Vec<&'a str>
where
    T: serde::Serialize + Type,
{
    let ctxt = zvariant::serialized::Context::new_dbus(zvariant::LE, 0);
    let known: RawOptions = zvariant::to_bytes(ctxt, parsed)
        .and_then(|data| data.deserialize().map(|(m, _)| m))
        .unwrap_or_default();
    let mut v: Vec<&str> = raw
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains_key(*k))
        .collect();
    v.sort_unstable();
    v
}

/// Options of rpm-ostree's deploy family: `Upgrade`, `Deploy`, `Rebase`, `UpdateDeployment`
/// (its second dictionary) and `AutomaticUpdateTrigger`. rpm-ostree reads them all through one
/// transaction type, so each of these methods accepts every key.
#[derive(Debug, Clone, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case")]
pub struct DeployOptions {
    /// Reboot once the new deployment is written.
    pub reboot: Option<bool>,
    /// Allow a target older than the booted commit (default: true for Deploy and Rebase).
    pub allow_downgrade: Option<bool>,
    /// Do not touch the network: use what is in the repo.
    pub cache_only: Option<bool>,
    /// Only download (pull); write no deployment.
    pub download_only: Option<bool>,
    /// Resolve and report, change nothing.
    pub dry_run: Option<bool>,
    /// Keep the current base commit (only redo layering).
    pub no_pull_base: Option<bool>,
    /// Rebase: keep the old ref.
    pub skip_purge: Option<bool>,
    /// Deploy: do not check that the commit is on the origin's branch.
    pub skip_branch_check: Option<bool>,
    /// Leave the staged deployment locked until `FinalizeDeployment`.
    pub lock_finalization: Option<bool>,
    /// The client's command line, for the journal.
    pub initiating_command_line: Option<String>,
    /// Register the caller as the update driver (`Deploy("", …)` only registers).
    pub register_driver: Option<String>,
    /// Go ahead although an update driver is registered (the CLI checks this; rpm-ostree's
    /// daemon does not).
    pub bypass_driver: Option<bool>,
    /// Remove all layered packages.
    pub no_layering: Option<bool>,
    /// Remove all overrides.
    pub no_overrides: Option<bool>,
    /// Stop regenerating the initramfs.
    pub no_initramfs: Option<bool>,
    /// Installing an already-requested package is not an error.
    pub idempotent_layering: Option<bool>,
    /// Allow requesting packages that are already in the base.
    pub allow_inactive: Option<bool>,
    /// Apply the change to the running system too.
    pub apply_live: Option<bool>,
    /// AutomaticUpdateTrigger: print to the daemon's own output.
    pub output_to_self: Option<bool>,
    /// Rebase: a custom origin `(url, description)`.
    pub custom_origin: Option<(String, String)>,
    /// Enable rpm-ostree's cliwrap.
    pub ex_cliwrap: Option<bool>,
    /// Rebase: the revision to deploy on the new ref.
    pub revision: Option<String>,
    /// AutomaticUpdateTrigger: `auto`, `none`/`off`, `check`, `stage`/`ex-stage`/`apply`.
    pub mode: Option<String>,
}

impl DeployOptions {
    /// The first key that asks for something Strata cannot do yet. `no-overrides` (Cockpit's
    /// reset) is not one: an origin with base package overrides is refused by every operation
    /// before it changes anything (it names them), so on an origin Strata can change there are
    /// none to drop.
    pub fn unsupported(&self) -> Option<&'static str> {
        let on = |b: Option<bool>| b == Some(true);
        [
            ("dry-run", on(self.dry_run)),
            ("no-pull-base", on(self.no_pull_base)),
            ("no-layering", on(self.no_layering)),
            ("no-initramfs", on(self.no_initramfs)),
            ("apply-live", on(self.apply_live)),
            ("ex-cliwrap", self.ex_cliwrap.is_some()),
            ("custom-origin", self.custom_origin.is_some()),
        ]
        .into_iter()
        .find_map(|(k, set)| set.then_some(k))
    }
}

/// `UpdateDeployment`'s first dictionary: what to change in the origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case")]
pub struct Modifiers {
    /// Rebase onto this refspec.
    pub set_refspec: Option<String>,
    /// Deploy this revision.
    pub set_revision: Option<String>,
    /// Layer these packages.
    pub install_packages: Option<Vec<String>>,
    /// Remove these layered packages.
    pub uninstall_packages: Option<Vec<String>>,
    /// Remove these base packages.
    pub override_remove_packages: Option<Vec<String>>,
    /// Undo these overrides.
    pub override_reset_packages: Option<Vec<String>>,
    /// Replace base packages (rpm-ostree answers "not implemented" here too).
    pub override_replace_packages: Option<Vec<String>>,
    /// Install packages allowed to replace files (rpm-ostree: not implemented).
    pub install_fileoverride_packages: Option<Vec<String>>,
    /// Module streams (rpm-ostree reads them; no client sends them).
    pub enable_modules: Option<Vec<String>>,
    /// Module streams.
    pub disable_modules: Option<Vec<String>>,
    /// Module profiles.
    pub install_modules: Option<Vec<String>>,
    /// Module profiles.
    pub uninstall_modules: Option<Vec<String>>,
    /// A treefile (JSON) of layering changes.
    pub treefile: Option<String>,
}

/// Modifiers carrying file descriptors (`ah`/`h`), which [`Modifiers`] leaves out: the
/// daemon reads `install-local-packages` from the message itself (its fds) and refuses the
/// others as not supported yet.
pub const FD_MODIFIERS: &[&str] = &[
    "install-local-packages",
    "install-fileoverride-local-packages",
    "override-replace-local-packages",
    "ex-local-repo-remote",
];

impl Modifiers {
    /// The first modifier that asks for something Strata cannot do yet (an empty list counts
    /// as absent, as in rpm-ostree).
    pub fn unsupported(&self) -> Option<&'static str> {
        let some = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
        [
            (
                "override-remove-packages",
                some(&self.override_remove_packages),
            ),
            (
                "override-reset-packages",
                some(&self.override_reset_packages),
            ),
            (
                "override-replace-packages",
                some(&self.override_replace_packages),
            ),
            (
                "install-fileoverride-packages",
                some(&self.install_fileoverride_packages),
            ),
            ("enable-modules", some(&self.enable_modules)),
            ("disable-modules", some(&self.disable_modules)),
            ("install-modules", some(&self.install_modules)),
            ("uninstall-modules", some(&self.uninstall_modules)),
            ("treefile", self.treefile.is_some()),
        ]
        .into_iter()
        .find_map(|(k, set)| set.then_some(k))
    }
}

/// `Rollback` and `ClearRollbackTarget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case")]
pub struct RollbackOptions {
    /// Reboot afterwards.
    pub reboot: Option<bool>,
    /// The client's command line, for the journal.
    pub initiating_command_line: Option<String>,
}

/// `KernelArgs` (the lists to append, replace and delete are method arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case")]
pub struct KernelArgsOptions {
    /// `--append-if-missing`.
    pub append_if_missing: Option<Vec<String>>,
    /// `--delete-if-present`.
    pub delete_if_present: Option<Vec<String>>,
    /// The whole new command line (`--editor`); takes precedence over the lists.
    pub final_kernel_args: Option<String>,
    /// Leave the staged deployment locked.
    pub lock_finalization: Option<bool>,
    /// Reboot afterwards.
    pub reboot: Option<bool>,
    /// The client's command line, for the journal.
    pub initiating_command_line: Option<String>,
    /// Strata's extension: start from the deployment at this index (rpm-ostree's CLI reads
    /// that deployment's arguments itself and sends them as the existing string).
    pub deploy_index: Option<u32>,
}

/// `RefreshMd`.
#[derive(Debug, Clone, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case")]
pub struct RefreshMdOptions {
    /// Fetch every repository's metadata again, however fresh.
    pub force: Option<bool>,
}

/// `FinalizeDeployment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case")]
pub struct FinalizeOptions {
    /// The staged deployment's checksum the caller expects.
    pub checksum: Option<String>,
    /// Finalize without naming the checksum.
    pub allow_missing_checksum: Option<bool>,
    /// Finalize although the deployment is not locked.
    pub allow_unlocked: Option<bool>,
    /// The client's command line, for the journal.
    pub initiating_command_line: Option<String>,
}

/// `Sysroot.RegisterClient` and `UnregisterClient` (which rpm-ostree ignores).
#[derive(Debug, Clone, Default, PartialEq, Eq, SerializeDict, DeserializeDict, Type)]
#[zvariant(signature = "a{sv}", rename_all = "kebab-case")]
pub struct ClientOptions {
    /// The client's name, e.g. `cockpit-ostree`.
    pub id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use zvariant::Value;

    fn raw(kv: &[(&str, Value<'static>)]) -> RawOptions {
        kv.iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn unknown_keys_are_ignored_and_known_ones_read() {
        let r = raw(&[
            ("reboot", Value::Bool(true)),
            ("colour", Value::from("red")),
            (
                "custom-origin",
                Value::from(("u".to_string(), "d".to_string())),
            ),
        ]);
        let o: DeployOptions = read(&r, "Option").unwrap();
        assert_eq!(o.reboot, Some(true));
        assert_eq!(o.custom_origin, Some(("u".into(), "d".into())));
        assert_eq!(unknown_keys(&r, &o), ["colour"]);
    }

    #[test]
    fn wrong_types_name_the_key() {
        let r = raw(&[
            ("cache-only", Value::Bool(true)),
            ("reboot", Value::from("yes")),
        ]);
        let e = read::<DeployOptions>(&r, "Option").unwrap_err();
        assert_eq!(e.key, "reboot");
        assert_eq!(e.got, "s");
        assert_eq!(
            e.to_string(),
            "Option \"reboot\" has the wrong type: expected a value of signature `b`, got a \
             value of signature `s`"
        );
        let r = raw(&[("install-packages", Value::from("htop"))]);
        let e = read::<Modifiers>(&r, "Modifier").unwrap_err();
        assert!(
            e.to_string().starts_with("Modifier \"install-packages\""),
            "{e}"
        );
    }

    #[test]
    fn defaults_are_never_unsupported() {
        let all_false = DeployOptions {
            reboot: Some(false),
            allow_downgrade: Some(false),
            cache_only: Some(false),
            download_only: Some(false),
            dry_run: Some(false),
            no_pull_base: Some(false),
            skip_purge: Some(false),
            no_layering: Some(false),
            no_overrides: Some(false),
            apply_live: Some(false),
            ..Default::default()
        };
        assert_eq!(all_false.unsupported(), None);
        let dry = DeployOptions {
            dry_run: Some(true),
            ..Default::default()
        };
        assert_eq!(dry.unsupported(), Some("dry-run"));
        let m = Modifiers {
            override_remove_packages: Some(vec![]),
            install_packages: Some(vec!["htop".into()]),
            ..Default::default()
        };
        assert_eq!(m.unsupported(), None);
        let m = Modifiers {
            override_remove_packages: Some(vec!["htop".into()]),
            ..Default::default()
        };
        assert_eq!(m.unsupported(), Some("override-remove-packages"));
    }

    #[test]
    fn what_the_cli_builds_is_what_the_daemon_reads() {
        let sent = DeployOptions {
            reboot: Some(true),
            revision: Some("abc".into()),
            custom_origin: Some(("u".into(), "d".into())),
            ..Default::default()
        };
        let ctxt = zvariant::serialized::Context::new_dbus(zvariant::LE, 0);
        let data = zvariant::to_bytes(ctxt, &sent).unwrap();
        let (on_the_bus, _): (RawOptions, _) = data.deserialize().unwrap();
        // None fields are not sent at all.
        assert_eq!(on_the_bus.len(), 3);
        assert_eq!(read::<DeployOptions>(&on_the_bus, "Option").unwrap(), sent);
    }
}
