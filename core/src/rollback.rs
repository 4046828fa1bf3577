//! `rollback` and the deployment-list planning it shares with `cleanup`.

use anyhow::{anyhow, Result};
use fn_error_context::context;
use ostree::gio;

use crate::progress::OpContext;
use crate::stage::Outcome;
use crate::sysroot::{deployment_id, new_ref, Sysroot};

/// What planning needs to know of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub osname: String,
    pub booted: bool,
    pub staged: bool,
    pub pinned: bool,
}

/// Index of the deployment `osname` runs now: the booted one if it belongs to `osname`, else the
/// first (default) deployment of `osname`.
pub(crate) fn current_index(slots: &[Slot], osname: &str) -> Option<usize> {
    slots
        .iter()
        .position(|s| s.booted && s.osname == osname)
        .or_else(|| slots.iter().position(|s| s.osname == osname))
}

/// rpm-ostree's rollback: if the current deployment is the default, the next one of the same
/// stateroot (the rollback deployment) becomes the default; if something else is queued above
/// the booted deployment (pending), the booted one goes back on top. Returns the new order as
/// indexes into `slots`; a staged deployment that is not the target is dropped (it can only
/// ever be first).
pub fn plan_rollback(slots: &[Slot], osname: &str) -> Result<Vec<usize>> {
    let current = current_index(slots, osname)
        .ok_or_else(|| anyhow!("No deployments for stateroot {osname:?}"))?;
    let rollback = slots
        .iter()
        .enumerate()
        .skip(current + 1)
        .find(|(_, s)| s.osname == osname)
        .map(|(i, _)| i);
    let pending = slots[..current].iter().any(|s| s.osname == osname);
    let target = match (pending, rollback) {
        (true, _) => current,
        (false, Some(r)) => r,
        (false, None) => return Err(anyhow!("No rollback deployment found")),
    };
    let mut order = vec![target];
    order.extend((0..slots.len()).filter(|&i| i != target && !slots[i].staged));
    Ok(order)
}

pub(crate) fn slots(sysroot: &Sysroot) -> Vec<Slot> {
    let booted = sysroot.booted_deployment();
    sysroot
        .deployments()
        .iter()
        .map(|d| Slot {
            osname: d.osname().to_string(),
            booted: booted.as_ref().is_some_and(|b| b.equal(d)),
            staged: d.is_staged(),
            pinned: d.is_pinned(),
        })
        .collect()
}

/// Options of [`rollback`].
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    pub osname: Option<String>,
}

/// Make the rollback (or booted) deployment the default for the next boot.
#[context("Rolling back")]
pub fn rollback(sysroot: &Sysroot, opts: &RollbackOptions, ctx: &OpContext) -> Result<Outcome> {
    let _lock = sysroot.lock()?;
    sysroot.reload()?;
    let osname = sysroot.resolve_osname(opts.osname.as_deref())?;
    let deployments = sysroot.deployments();
    let order = plan_rollback(&slots(sysroot), &osname)?;
    let new: Vec<ostree::Deployment> = order.iter().map(|&i| new_ref(&deployments[i])).collect();
    let id = deployment_id(&new[0]);
    ctx.check_cancelled()?;
    ctx.task("Writing bootloader entries", || {
        Ok(sysroot
            .ostree()
            .write_deployments(&new, gio::Cancellable::NONE)?)
    })?;
    sysroot.reload()?;
    let msg = format!("Moving {id} to be the default for the next boot");
    ctx.message(&msg);
    Ok(Outcome::Changed(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(os: &str, booted: bool, staged: bool) -> Slot {
        Slot {
            osname: os.into(),
            booted,
            staged,
            pinned: false,
        }
    }

    #[test]
    fn not_booted_swaps_first_two() {
        let s = vec![slot("a", false, false), slot("a", false, false)];
        assert_eq!(plan_rollback(&s, "a").unwrap(), vec![1, 0]);
        // And back again.
        assert_eq!(plan_rollback(&s, "a").unwrap(), vec![1, 0]);
    }

    #[test]
    fn booted_default_rolls_back() {
        let s = vec![
            slot("a", true, false),
            slot("a", false, false),
            slot("b", false, false),
        ];
        assert_eq!(plan_rollback(&s, "a").unwrap(), vec![1, 0, 2]);
    }

    #[test]
    fn pending_puts_booted_back_on_top() {
        let s = vec![
            slot("a", false, false),
            slot("a", true, false),
            slot("a", false, false),
        ];
        assert_eq!(plan_rollback(&s, "a").unwrap(), vec![1, 0, 2]);
    }

    #[test]
    fn staged_is_dropped() {
        let s = vec![
            slot("a", false, true),
            slot("a", true, false),
            slot("a", false, false),
        ];
        assert_eq!(plan_rollback(&s, "a").unwrap(), vec![1, 2]);
    }

    #[test]
    fn other_stateroot_is_skipped() {
        let s = vec![
            slot("a", false, false),
            slot("b", false, false),
            slot("a", false, false),
        ];
        assert_eq!(plan_rollback(&s, "a").unwrap(), vec![2, 0, 1]);
    }

    #[test]
    fn single_deployment_errors() {
        let s = vec![slot("a", true, false), slot("b", false, false)];
        let e = plan_rollback(&s, "a").unwrap_err().to_string();
        assert_eq!(e, "No rollback deployment found");
        assert!(plan_rollback(&s, "zzz").is_err());
    }
}
