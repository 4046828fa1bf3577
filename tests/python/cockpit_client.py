#!/usr/bin/python3
"""Cockpit's OSTree page (cockpit-ostree's src/client.js, ostree.jsx, deploymentModals.jsx),
replayed call for call against stratad.

Usage: cockpit_client.py BUS_ADDRESS OTHER_REFSPEC

The test behind it has deployed release 1, committed release 2 to the followed ref and another
release to OTHER_REFSPEC. Cockpit builds each call from the object's introspection, so that is
checked first against rpm-ostree's interface. The walk: the page load (ObjectManager,
RegisterClient, the Sysroot and OS properties, one row per deployment); "Check for updates"
(DownloadUpdateRpmDiff, CachedUpdate, GetCachedUpdateRpmDiff); "Update" (Deploy of the cached
checksum); the package list of a row (GetDeploymentsRpmDiff); the rebase dialog
(GetCachedRebaseRpmDiff, DownloadRebaseRpmDiff, Rebase with the revision it showed);
"Roll back"; cleanup; "Reset" (UpdateDeployment no-layering, no-overrides). Prints what the
page would show, as JSON.
"""

import sys

from gi.repository import GLib

from rpmostree_contract import (
    BASE, CONTRACT, OS, SYSROOT, SYSROOT_PATH, Client, ContractError, finish, need,
    run_transaction)

KINDS = {0: "Additions", 1: "Removals", 2: "Updates", 3: "Downgrades"}


def txn(address, what):
    ok, message, _ = run_transaction(address)
    if not ok:
        raise ContractError(f"{what} failed: {message}")


def check_introspection(c, path, iface):
    """Cockpit's bridge takes each method's signature from Introspect: every member of
    rpm-ostree's interface must be there with rpm-ostree's signature."""
    info = c.introspect(path).lookup_interface(iface)
    if info is None:
        raise ContractError(f"{path} does not introspect {iface}")
    missing = []
    for m in CONTRACT.iface(iface).methods:
        got = info.lookup_method(m.name)
        want_in = "".join(a.signature for a in m.in_args)
        if got is None or "".join(a.signature for a in got.in_args) != want_in:
            missing.append(m.name)
    if missing:
        raise ContractError(f"{iface} introspection lacks or differs in {missing}")
    return len(CONTRACT.iface(iface).methods)


def row(d):
    """A deployment row: the keys the page reads without checking."""
    return {
        "id": need(d, "id", str),
        "osname": need(d, "osname", str),
        "checksum": need(d, "checksum", str),
        "timestamp": need(d, "timestamp", int),
        "booted": need(d, "booted", bool),
        "staged": d.get("staged", False),
        "origin": d.get("origin") or d.get("container-image-reference"),
        "version": d.get("version"),
        "pinned": d.get("pinned", False),
    }


def render(result):
    """The package list of a diff: Cockpit reads result[0] as [name, type, dict]; removals
    show the previous package, everything else the new one, as (name, evr, arch)."""
    shown = {}
    for name, kind, info in result:
        pkg = info["PreviousPackage"] if kind == 1 else info["NewPackage"]
        if pkg[0] != name:
            raise ContractError(f"{name}: package tuple names {pkg[0]}")
        shown.setdefault(KINDS[kind], []).append(f"{name} {pkg[1]} {pkg[2]}")
    return shown


def main():
    address, other = sys.argv[1], sys.argv[2]
    c = Client(address)
    out = {}

    # Page load.
    objects = c.conn.call_sync(
        "org.projectatomic.rpmostree1", BASE, "org.freedesktop.DBus.ObjectManager",
        "GetManagedObjects", None, GLib.VariantType.new("(a{oa{sa{sv}}})"), 0, -1,
        None).unpack()[0]
    os_paths = [p for p, ifaces in objects.items() if OS in ifaces]
    if not os_paths:
        raise ContractError("no OS object")
    os_path = os_paths[0]
    out["os_methods"] = check_introspection(c, os_path, OS)
    out["sysroot_methods"] = check_introspection(c, SYSROOT_PATH, SYSROOT)
    c.call(SYSROOT_PATH, SYSROOT, "RegisterClient", {"id": GLib.Variant("s", "cockpit-ostree")})
    sysroot = c.props(SYSROOT_PATH, SYSROOT)
    out["active_transaction"] = sysroot["ActiveTransaction"].unpack()
    os_props = c.props(os_path, OS)
    out["name"] = os_props["Name"].unpack()
    rows = [row(d) for d in sysroot["Deployments"].unpack()]
    out["rows_before"] = [r["checksum"] for r in rows]
    default = os_props["DefaultDeployment"].unpack()

    # "Check for updates".
    c.call(SYSROOT_PATH, SYSROOT, "ReloadConfig")
    txn(c.call(os_path, OS, "DownloadUpdateRpmDiff"), "DownloadUpdateRpmDiff")
    cached = c.prop(os_path, OS, "CachedUpdate").unpack()
    if "id" in cached:
        raise ContractError("CachedUpdate must not have an id (Cockpit would take it for a deployment)")
    update = {
        "osname": need(cached, "osname", str),
        "checksum": need(cached, "checksum", str),
        "timestamp": need(cached, "timestamp", int),
        "origin": need(cached, "origin", str),
        "version": cached.get("version"),
    }
    out["update"] = update
    out["update_available"] = update["checksum"] != default["checksum"]
    result, _details = c.call(os_path, OS, "GetCachedUpdateRpmDiff", "")
    out["update_diff"] = render(result)

    # "Update".
    txn(c.call(os_path, OS, "Deploy", update["checksum"], {"reboot": GLib.Variant("b", False)}),
        "Deploy")
    rows = [row(d) for d in c.prop(SYSROOT_PATH, SYSROOT, "Deployments").unpack()]
    out["rows_after_update"] = [r["checksum"] for r in rows]
    # The package list of the new row against the old one (the booted one on a host).
    out["row_diff"] = render(c.call(os_path, OS, "GetDeploymentsRpmDiff", rows[1]["id"],
                                    rows[0]["id"]))

    # The rebase dialog: the diff from what is cached, then downloaded, then the rebase to
    # the revision it showed.
    c.call(os_path, OS, "GetCachedRebaseRpmDiff", other, [])
    txn(c.call(os_path, OS, "DownloadRebaseRpmDiff", other, []), "DownloadRebaseRpmDiff")
    result, details = c.call(os_path, OS, "GetCachedRebaseRpmDiff", other, [])
    out["rebase_diff"] = render(result)
    out["rebase_checksum"] = need(details, "checksum", str)
    txn(c.call(os_path, OS, "Rebase",
               {"reboot": GLib.Variant("b", False),
                "revision": GLib.Variant("s", out["rebase_checksum"])}, other, []), "Rebase")
    out["origin_after_rebase"] = c.prop(os_path, OS, "DefaultDeployment").unpack()["origin"]

    # "Roll back", cleanup, "Reset".
    txn(c.call(os_path, OS, "Rollback", {"reboot": GLib.Variant("b", False)}), "Rollback")
    out["origin_after_rollback"] = c.prop(os_path, OS, "DefaultDeployment").unpack()["origin"]
    txn(c.call(os_path, OS, "Cleanup", ["rollback-deploy"]), "Cleanup")
    reset = {"no-layering": GLib.Variant("b", True), "no-overrides": GLib.Variant("b", True)}
    txn(c.call(os_path, OS, "UpdateDeployment", {}, reset), "Reset")
    out["rows_end"] = [row(d)["checksum"]
                       for d in c.prop(SYSROOT_PATH, SYSROOT, "Deployments").unpack()]
    finish(out)


if __name__ == "__main__":
    main()
