//! Validating `a{sv}` options and method arguments into the core's plain-data operations.
//!
//! Every key is checked: one Strata does not support, or a value of the wrong type, is an error
//! naming it, never silently ignored.

use std::collections::HashMap;
use std::path::Path;

use strata_core::kargs::KargsEdit;
use strata_core::{
    CleanupOptions, DeployOptions, KargsOptions, OpContext, Outcome, RebaseOptions, Revision,
    RollbackOptions, Sysroot, UpgradeOptions,
};
use zbus::zvariant::{OwnedValue, Value};

use crate::error::{Error, Result};

/// Options as they arrive on the bus.
pub(crate) type Options = HashMap<String, OwnedValue>;

/// Reads typed options, refusing unknown keys.
#[derive(Debug)]
pub(crate) struct OptionReader<'a> {
    opts: &'a Options,
    what: &'static str,
}

fn type_name(v: &Value<'_>) -> String {
    v.value_signature().to_string()
}

impl<'a> OptionReader<'a> {
    /// Check that every key of `opts` is in `allowed`.
    pub(crate) fn new(opts: &'a Options, allowed: &[&str]) -> Result<Self> {
        Self::with_kind(opts, allowed, "Option")
    }

    pub(crate) fn with_kind(
        opts: &'a Options,
        allowed: &[&str],
        what: &'static str,
    ) -> Result<Self> {
        let mut keys: Vec<&String> = opts.keys().collect();
        keys.sort();
        for k in keys {
            if !allowed.contains(&k.as_str()) {
                return Err(Error::InvalidArgs(format!(
                    "{what} \"{k}\" is not supported by Strata yet"
                )));
            }
        }
        Ok(Self { opts, what })
    }

    fn wrong(&self, key: &str, expected: &str, v: &Value<'_>) -> Error {
        Error::InvalidArgs(format!(
            "{} \"{key}\" must be {expected}, got {}",
            self.what,
            type_name(v)
        ))
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.opts.get(key).map(|v| &**v) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong(key, "a boolean (b)", v)),
        }
    }

    pub(crate) fn flag(&self, key: &str) -> Result<bool> {
        Ok(self.bool(key)?.unwrap_or(false))
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>> {
        match self.opts.get(key).map(|v| &**v) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.to_string())),
            Some(v) => Err(self.wrong(key, "a string (s)", v)),
        }
    }

    /// A non-negative index, as `u` or `i` (rpm-ostree's clients differ).
    pub(crate) fn index(&self, key: &str) -> Result<Option<usize>> {
        match self.opts.get(key).map(|v| &**v) {
            None => Ok(None),
            Some(Value::U32(i)) => Ok(Some(*i as usize)),
            Some(Value::I32(i)) if *i >= 0 => Ok(Some(*i as usize)),
            Some(Value::I32(i)) => Err(Error::InvalidArgs(format!(
                "{} \"{key}\" must not be negative, got {i}",
                self.what
            ))),
            Some(v) => Err(self.wrong(key, "an index (u or i)", v)),
        }
    }

    pub(crate) fn strv(&self, key: &str) -> Result<Vec<String>> {
        match self.opts.get(key) {
            None => Ok(Vec::new()),
            Some(v) => {
                if v.value_signature() != "as" {
                    return Err(self.wrong(key, "a string array (as)", v));
                }
                Vec::<String>::try_from(v.try_clone().map_err(Error::failed)?)
                    .map_err(|_| self.wrong(key, "a string array (as)", v))
            }
        }
    }
}

/// A canonical text of the arguments of a call, to recognise an identical request.
pub(crate) fn canonical(parts: &[String], opts: &[&Options]) -> String {
    let mut s = parts.join("\u{1f}");
    for o in opts {
        let mut kv: Vec<(&String, &OwnedValue)> = o.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        s.push('\u{1e}');
        for (k, v) in kv {
            s.push_str(&format!("{k}={v:?};"));
        }
    }
    s
}

/// What a transaction does: plain data, so it can cross into the blocking worker.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Upgrade(UpgradeOptions),
    Deploy(DeployOptions),
    Rebase(RebaseOptions),
    Rollback(RollbackOptions),
    Cleanup(CleanupOptions),
    Kargs(KargsOptions),
    Finalize(strata_core::finalize::FinalizeOptions),
    /// Only record an update driver (`Deploy("", {register-driver})`).
    RegisterDriver(Registration),
    /// Record an update driver, then run the operation.
    Registered(Registration, Box<Op>),
}

/// An update driver to record in a run dir.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub run_dir: std::path::PathBuf,
    pub driver: crate::driver::UpdateDriver,
}

impl Registration {
    fn record(&self, ctx: &OpContext) -> anyhow::Result<()> {
        crate::driver::save(&self.run_dir, &self.driver)?;
        ctx.message(format!(
            "Registered {} as the update driver",
            self.driver.describe()
        ));
        Ok(())
    }
}

impl Op {
    /// Whether the operation leaves a finalization-locked deployment.
    pub(crate) fn lock_finalization(&self) -> bool {
        match self {
            Op::Upgrade(o) => o.lock_finalization && !o.check_only && !o.download_only,
            Op::Deploy(o) => o.lock_finalization && !o.download_only,
            Op::Rebase(o) => o.lock_finalization && !o.download_only,
            Op::Kargs(o) => o.lock_finalization,
            Op::Registered(_, op) => op.lock_finalization(),
            _ => false,
        }
    }

    pub(crate) fn run(&self, sysroot: &Sysroot, ctx: &OpContext) -> anyhow::Result<Outcome> {
        match self {
            Op::RegisterDriver(r) => {
                r.record(ctx)?;
                Ok(Outcome::Unchanged)
            }
            Op::Registered(r, op) => {
                r.record(ctx)?;
                op.run(sysroot, ctx)
            }
            Op::Upgrade(o) => strata_core::upgrade(sysroot, o, ctx),
            Op::Deploy(o) => strata_core::deploy(sysroot, o, ctx),
            Op::Rebase(o) => strata_core::rebase(sysroot, o, ctx),
            Op::Rollback(o) => strata_core::rollback(sysroot, o, ctx),
            Op::Cleanup(o) => strata_core::cleanup(sysroot, o, ctx),
            Op::Kargs(o) => strata_core::kargs(sysroot, o, ctx),
            Op::Finalize(o) => strata_core::finalize::finalize(sysroot, o, ctx),
        }
    }
}

/// A validated request: the operation, its title, and whether to reboot afterwards.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub op: Op,
    pub title: String,
    pub reboot: bool,
    pub driver: DriverIntent,
}

/// What a request means for the update driver.
#[derive(Debug, Clone, Default)]
pub(crate) struct DriverIntent {
    /// It changes what the system updates to (upgrade, deploy, rebase), so a registered driver
    /// must agree.
    pub guarded: bool,
    /// `bypass-driver`: go ahead even though a driver is registered.
    pub bypass: bool,
    /// `register-driver`: the caller registers itself as the driver.
    pub register: Option<String>,
}

impl DriverIntent {
    fn guarded(r: &OptionReader<'_>) -> Result<Self> {
        Ok(Self {
            guarded: true,
            bypass: r.flag("bypass-driver")?,
            register: None,
        })
    }
}

/// Options every transaction method accepts.
const COMMON: &[&str] = &["reboot", "initiating-command-line"];

fn allowed(extra: &[&'static str]) -> Vec<&'static str> {
    COMMON.iter().chain(extra).copied().collect()
}

/// `reboot`: only when this daemon manages the booted host.
pub(crate) fn reboot_option(r: &OptionReader<'_>, sysroot: &Path) -> Result<bool> {
    let reboot = r.flag("reboot")?;
    if reboot && sysroot != Path::new("/") {
        return Err(Error::InvalidArgs(format!(
            "Option \"reboot\" is only possible when managing the booted system, not the sysroot {}",
            sysroot.display()
        )));
    }
    Ok(reboot)
}

fn parse_revision(s: &str) -> Result<Revision> {
    Revision::parse(s).map_err(|e| Error::Failed(format!("{e:#}")))
}

pub(crate) fn upgrade(osname: &str, opts: &Options, sysroot: &Path) -> Result<Request> {
    let r = OptionReader::new(
        opts,
        &allowed(&[
            "allow-downgrade",
            "cache-only",
            "download-only",
            "lock-finalization",
            "bypass-driver",
        ]),
    )?;
    let o = UpgradeOptions {
        osname: Some(osname.to_string()),
        check_only: false,
        download_only: r.flag("download-only")?,
        cache_only: r.flag("cache-only")?,
        allow_downgrade: r.flag("allow-downgrade")?,
        lock_finalization: r.flag("lock-finalization")?,
    };
    let title = if o.download_only {
        "upgrade (download only)"
    } else {
        "upgrade"
    };
    Ok(Request {
        title: title.into(),
        reboot: reboot_option(&r, sysroot)?,
        driver: DriverIntent::guarded(&r)?,
        op: Op::Upgrade(o),
    })
}

pub(crate) fn deploy(
    osname: &str,
    revision: &str,
    opts: &Options,
    sysroot: &Path,
) -> Result<Request> {
    let r = OptionReader::new(
        opts,
        &allowed(&[
            "allow-downgrade",
            "skip-branch-check",
            "cache-only",
            "download-only",
            "lock-finalization",
            "bypass-driver",
            "register-driver",
        ]),
    )?;
    let mut driver = DriverIntent::guarded(&r)?;
    driver.register = r.string("register-driver")?.filter(|s| !s.is_empty());
    if revision.is_empty() {
        let Some(name) = driver.register.clone() else {
            return Err(Error::Failed(
                "Missing revision: expected a checksum, revision=CHECKSUM or version=VERSION (an empty one only registers an update driver, with \"register-driver\")".into(),
            ));
        };
        // Only the registration; the Op is completed with the caller's unit by the caller.
        return Ok(Request {
            title: format!("register update driver {name}"),
            reboot: reboot_option(&r, sysroot)?,
            driver,
            op: Op::RegisterDriver(Registration {
                run_dir: Default::default(),
                driver: crate::driver::UpdateDriver {
                    name,
                    sd_unit: String::new(),
                },
            }),
        });
    }
    let mut o = DeployOptions::new(parse_revision(revision)?);
    o.osname = Some(osname.to_string());
    o.skip_branch_check = r.flag("skip-branch-check")?;
    o.disallow_downgrade = !r.bool("allow-downgrade")?.unwrap_or(true);
    o.lock_finalization = r.flag("lock-finalization")?;
    o.cache_only = r.flag("cache-only")?;
    o.download_only = r.flag("download-only")?;
    Ok(Request {
        title: "deploy".into(),
        reboot: reboot_option(&r, sysroot)?,
        driver,
        op: Op::Deploy(o),
    })
}

pub(crate) fn rebase(
    osname: &str,
    opts: &Options,
    refspec: &str,
    packages: &[String],
    sysroot: &Path,
) -> Result<Request> {
    if !packages.is_empty() {
        return Err(Error::Failed(format!(
            "Package layering is not supported by Strata yet (requested: {})",
            packages.join(", ")
        )));
    }
    let r = OptionReader::new(
        opts,
        &allowed(&[
            "skip-purge",
            "revision",
            "allow-downgrade",
            "cache-only",
            "download-only",
            "lock-finalization",
            "bypass-driver",
        ]),
    )?;
    if refspec.is_empty() {
        return Err(Error::InvalidRefspec(
            "Invalid refspec \"\": expected REMOTE:REF, :REF or REMOTE:".into(),
        ));
    }
    let revision = r
        .string("revision")?
        .map(|s| parse_revision(&s))
        .transpose()?;
    let o = RebaseOptions {
        osname: Some(osname.to_string()),
        refspec: refspec.to_string(),
        revision,
        skip_purge: r.flag("skip-purge")?,
        disallow_downgrade: !r.bool("allow-downgrade")?.unwrap_or(true),
        lock_finalization: r.flag("lock-finalization")?,
        cache_only: r.flag("cache-only")?,
        download_only: r.flag("download-only")?,
    };
    Ok(Request {
        title: "rebase".into(),
        reboot: reboot_option(&r, sysroot)?,
        driver: DriverIntent::guarded(&r)?,
        op: Op::Rebase(o),
    })
}

pub(crate) fn rollback(osname: &str, opts: &Options, sysroot: &Path) -> Result<Request> {
    let r = OptionReader::new(opts, COMMON)?;
    Ok(Request {
        title: "rollback".into(),
        reboot: reboot_option(&r, sysroot)?,
        driver: DriverIntent::default(),
        op: Op::Rollback(RollbackOptions {
            osname: Some(osname.to_string()),
        }),
    })
}

pub(crate) fn clear_rollback(osname: &str, opts: &Options, sysroot: &Path) -> Result<Request> {
    let r = OptionReader::new(opts, COMMON)?;
    Ok(Request {
        title: "clear-rollback".into(),
        reboot: reboot_option(&r, sysroot)?,
        driver: DriverIntent::default(),
        op: Op::Cleanup(CleanupOptions {
            osname: Some(osname.to_string()),
            rollback: true,
            ..Default::default()
        }),
    })
}

pub(crate) fn cleanup(osname: &str, elements: &[String]) -> Result<Request> {
    let mut o = CleanupOptions {
        osname: Some(osname.to_string()),
        ..Default::default()
    };
    for e in elements {
        match e.as_str() {
            "base" => o.base = true,
            "pending-deploy" => o.pending = true,
            "rollback-deploy" => o.rollback = true,
            "repomd" => o.repomd = true,
            other => {
                return Err(Error::InvalidArgs(format!(
                    "Cleanup element \"{other}\" is not supported: expected base, pending-deploy, rollback-deploy or repomd"
                )))
            }
        }
    }
    Ok(Request {
        title: "cleanup".into(),
        reboot: false,
        driver: DriverIntent::default(),
        op: Op::Cleanup(o),
    })
}

pub(crate) fn kernel_args(
    osname: &str,
    existing: &str,
    added: &[String],
    replaced: &[String],
    removed: &[String],
    opts: &Options,
    sysroot: &Path,
) -> Result<Request> {
    let r = OptionReader::new(
        opts,
        &allowed(&[
            "append-if-missing",
            "delete-if-present",
            "final-kernel-args",
            "lock-finalization",
            "deploy-index",
        ]),
    )?;
    let edit = KargsEdit {
        append: added.to_vec(),
        append_if_missing: r.strv("append-if-missing")?,
        delete: removed.to_vec(),
        delete_if_present: r.strv("delete-if-present")?,
        replace: replaced.to_vec(),
        replace_all: r.string("final-kernel-args")?,
    };
    edit.validate().map_err(Error::failed)?;
    Ok(Request {
        title: "kernel-args".into(),
        reboot: reboot_option(&r, sysroot)?,
        driver: DriverIntent::default(),
        op: Op::Kargs(KargsOptions {
            osname: Some(osname.to_string()),
            edit,
            existing: Some(existing.to_string()).filter(|s| !s.trim().is_empty()),
            deploy_index: r.index("deploy-index")?,
            lock_finalization: r.flag("lock-finalization")?,
        }),
    })
}

pub(crate) fn finalize(opts: &Options) -> Result<Request> {
    let r = OptionReader::new(
        opts,
        &[
            "checksum",
            "allow-missing-checksum",
            "allow-unlocked",
            "initiating-command-line",
        ],
    )?;
    Ok(Request {
        title: "finalize-deployment".into(),
        // Finalizing means rebooting into the staged deployment.
        reboot: true,
        driver: DriverIntent::default(),
        op: Op::Finalize(strata_core::finalize::FinalizeOptions {
            checksum: r.string("checksum")?,
            allow_missing_checksum: r.flag("allow-missing-checksum")?,
            allow_unlocked: r.flag("allow-unlocked")?,
        }),
    })
}

/// `AutomaticUpdateTrigger`'s effective mode: `None` when automatic updates are off.
pub(crate) fn trigger_mode(opts: &Options, policy: &str) -> Result<Option<&'static str>> {
    let r = OptionReader::new(opts, &["mode", "output-to-self", "initiating-command-line"])?;
    r.flag("output-to-self")?;
    let mode = r.string("mode")?.unwrap_or_else(|| "auto".into());
    let mode = if mode == "auto" {
        policy.to_string()
    } else {
        mode
    };
    match mode.as_str() {
        "none" | "off" => Ok(None),
        "check" => Ok(Some("check")),
        "stage" => Ok(Some("stage")),
        other => Err(Error::InvalidArgs(format!(
            "Option \"mode\" must be auto, none, check or stage, got {other:?}"
        ))),
    }
}

pub(crate) fn automatic_update(osname: &str, mode: &str) -> Request {
    let check_only = mode == "check";
    Request {
        title: if check_only {
            "upgrade (check only)".into()
        } else {
            "upgrade".into()
        },
        reboot: false,
        driver: DriverIntent::default(),
        op: Op::Upgrade(UpgradeOptions {
            osname: Some(osname.to_string()),
            check_only,
            ..Default::default()
        }),
    }
}

pub(crate) fn update_deployment(
    osname: &str,
    modifiers: &Options,
    opts: &Options,
    sysroot: &Path,
) -> Result<Request> {
    let m = OptionReader::with_kind(modifiers, &["set-refspec", "set-revision"], "Modifier")?;
    let r = OptionReader::new(
        opts,
        &allowed(&[
            "allow-downgrade",
            "skip-purge",
            "skip-branch-check",
            "cache-only",
            "download-only",
            "lock-finalization",
            "bypass-driver",
        ]),
    )?;
    let reboot = reboot_option(&r, sysroot)?;
    let refspec = m.string("set-refspec")?;
    let revision = m.string("set-revision")?;
    let lock_finalization = r.flag("lock-finalization")?;
    let cache_only = r.flag("cache-only")?;
    let download_only = r.flag("download-only")?;
    // rpm-ostree: allow-downgrade defaults to true when the target is explicit.
    let explicit = refspec.is_some() || revision.is_some();
    let driver = DriverIntent {
        guarded: explicit,
        ..DriverIntent::guarded(&r)?
    };
    let allow_downgrade = r.bool("allow-downgrade")?.unwrap_or(explicit);
    let (title, op) = match (refspec, revision) {
        (Some(refspec), revision) => {
            if refspec.is_empty() {
                return Err(Error::InvalidRefspec(
                    "Invalid refspec \"\": expected REMOTE:REF, :REF or REMOTE:".into(),
                ));
            }
            (
                "rebase",
                Op::Rebase(RebaseOptions {
                    osname: Some(osname.to_string()),
                    refspec,
                    revision: revision.map(|s| parse_revision(&s)).transpose()?,
                    skip_purge: r.flag("skip-purge")?,
                    disallow_downgrade: !allow_downgrade,
                    lock_finalization,
                    cache_only,
                    download_only,
                }),
            )
        }
        (None, Some(revision)) => {
            let mut o = DeployOptions::new(parse_revision(&revision)?);
            o.osname = Some(osname.to_string());
            o.skip_branch_check = r.flag("skip-branch-check")?;
            o.disallow_downgrade = !allow_downgrade;
            o.lock_finalization = lock_finalization;
            o.cache_only = cache_only;
            o.download_only = download_only;
            ("deploy", Op::Deploy(o))
        }
        (None, None) => (
            if download_only {
                "upgrade (download only)"
            } else {
                "upgrade"
            },
            Op::Upgrade(UpgradeOptions {
                osname: Some(osname.to_string()),
                check_only: false,
                download_only,
                cache_only,
                allow_downgrade,
                lock_finalization,
            }),
        ),
    };
    Ok(Request {
        title: title.into(),
        reboot,
        driver,
        op,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, Value<'static>)]) -> Options {
        kv.iter()
            .map(|(k, v)| (k.to_string(), OwnedValue::try_from(v.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn unknown_and_mistyped_options() {
        let o = opts(&[("foo", Value::Bool(true))]);
        let e = upgrade("os", &o, Path::new("/tmp/x")).unwrap_err();
        assert_eq!(e.message(), "Option \"foo\" is not supported by Strata yet");
        let o = opts(&[("reboot", Value::from("yes"))]);
        let e = upgrade("os", &o, Path::new("/tmp/x")).unwrap_err();
        assert_eq!(
            e.message(),
            "Option \"reboot\" must be a boolean (b), got s"
        );
        let o = opts(&[("reboot", Value::Bool(true))]);
        let e = upgrade("os", &o, Path::new("/tmp/x")).unwrap_err();
        assert!(e.message().contains("reboot"), "{e}");
        let o = opts(&[("install-packages", Value::from(vec!["x".to_string()]))]);
        let e = update_deployment("os", &o, &Options::new(), Path::new("/")).unwrap_err();
        assert_eq!(
            e.message(),
            "Modifier \"install-packages\" is not supported by Strata yet"
        );
    }

    #[test]
    fn string_arrays() {
        let o = opts(&[("append-if-missing", Value::from(vec!["a=1".to_string()]))]);
        let req = kernel_args("os", "", &[], &[], &[], &o, Path::new("/x")).unwrap();
        match req.op {
            Op::Kargs(k) => assert_eq!(k.edit.append_if_missing, ["a=1"]),
            o => panic!("{o:?}"),
        }
        let o = opts(&[("append-if-missing", Value::from("a=1"))]);
        let e = kernel_args("os", "", &[], &[], &[], &o, Path::new("/x")).unwrap_err();
        assert_eq!(
            e.message(),
            "Option \"append-if-missing\" must be a string array (as), got s"
        );
    }

    #[test]
    fn canonical_is_order_independent() {
        let a = opts(&[("a", Value::Bool(true)), ("b", Value::from("x"))]);
        let b = opts(&[("b", Value::from("x")), ("a", Value::Bool(true))]);
        assert_eq!(canonical(&[], &[&a]), canonical(&[], &[&b]));
        let c = opts(&[("a", Value::Bool(false))]);
        assert_ne!(canonical(&[], &[&a]), canonical(&[], &[&c]));
    }
}
