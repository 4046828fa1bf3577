#!/usr/bin/python3
"""GNOME Software's rpm-ostree plugin (plugins/rpm-ostree/gs-plugin-rpm-ostree.c), replayed
call for call against stratad, with its generated-proxy type checks.

Usage: gnome_software_client.py BUS_ADDRESS

The test behind it has deployed release 1 (with an rpm-md repository "test" offering `hello`
and `libhello`) and committed release 2 to the remote. The walk: register; refresh (RefreshMd,
then AutomaticUpdateTrigger in check mode, Reload, CachedUpdate); the update list built from
`rpm-diff` as the plugin builds it; download (Upgrade download-only) and apply (Upgrade
cache-only); install and remove a package (UpdateDeployment, with an fd list as the plugin
always attaches); the repository list, switched off and on (ListRepos, ModifyYumRepo); package
lookups (GetPackages, WhatProvides); cancelling an offline update (Cleanup pending-deploy);
unregister. Prints what the plugin would show, as JSON.
"""

import sys

from gi.repository import GLib

from rpmostree_contract import (
    OS, SYSROOT, SYSROOT_PATH, Client, ContractError, finish, need, run_transaction)

CLIENT_ID = "gnome-software"


def options(**set_):
    """make_rpmostree_options_variant: always all eight flags."""
    keys = ["reboot", "allow-downgrade", "cache-only", "download-only", "skip-purge",
            "no-pull-base", "dry-run", "no-overrides"]
    return {k: GLib.Variant("b", bool(set_.get(k.replace("-", "_"), False))) for k in keys}


def txn(address, what):
    ok, message, signals = run_transaction(address)
    if not ok:
        raise ContractError(f"{what} failed: {message}")
    return signals


def typed(dict_variant, key, type_string):
    """g_variant_dict_lookup_value with a type: None when absent or of another type."""
    v = dict_variant.lookup_value(key, GLib.VariantType.new(type_string))
    return None if v is None else v.unpack()


def update_list(cached):
    """The apps the plugin makes from CachedUpdate: checksum and version required, then
    rpm-diff's four lists with their exact types (a type mismatch fails the listing)."""
    if typed(cached, "checksum", "s") is None or typed(cached, "version", "s") is None:
        return None
    diff = cached.lookup_value("rpm-diff", GLib.VariantType.new("a{sv}"))
    if diff is None:
        return []
    out = []
    for key, sig in [("upgraded", "a(us(ss)(ss))"), ("downgraded", "a(us(ss)(ss))"),
                     ("removed", "a(usss)"), ("added", "a(usss)")]:
        items = typed(diff, key, sig)
        if items is None:
            raise ContractError(f"rpm-diff {key} is not {sig}")
        for item in items:
            if key in ("upgraded", "downgraded"):
                _, name, (old_evr, _), (new_evr, _) = item
                out.append(f"{key}: {name} {old_evr} -> {new_evr}")
            else:
                _, name, evr, arch = item
                out.append(f"{key}: {name}-{evr}.{arch}")
    return out


def default_deployment(c, os_path):
    d = c.prop(os_path, OS, "DefaultDeployment").unpack()
    # The plugin asserts these three keys exist.
    need(d, "checksum", str)
    need(d, "packages", list)
    need(d, "requested-local-packages", list)
    return d


def main():
    c = Client(sys.argv[1])
    out = {}
    c.call(SYSROOT_PATH, SYSROOT, "RegisterClient", {"id": GLib.Variant("s", CLIENT_ID)})
    os_path = c.os_path()
    out["path"] = c.prop(SYSROOT_PATH, SYSROOT, "Path").unpack()

    # Refresh: metadata, then a check for an OS update.
    txn(c.call(os_path, OS, "RefreshMd", {"force": GLib.Variant("b", False)}), "RefreshMd")
    enabled, address = c.call(os_path, OS, "AutomaticUpdateTrigger",
                              {"mode": GLib.Variant("s", "check")})
    if not address:
        raise ContractError("AutomaticUpdateTrigger(check) returned no transaction")
    txn(address, "AutomaticUpdateTrigger")
    c.call(SYSROOT_PATH, SYSROOT, "Reload")
    cached = c.prop(os_path, OS, "CachedUpdate")
    out["update_checksum"] = typed(cached, "checksum", "s")
    out["update_version"] = typed(cached, "version", "s")
    out["updates"] = update_list(cached)
    # Read the advisories as the plugin does (type a(suuasa{sv})).
    adv = cached.lookup_value("advisories", GLib.VariantType.new("a(suuasa{sv})"))
    out["advisories"] = None if adv is None else adv.unpack()

    # Download, then apply (only when something is upgraded or downgraded).
    txn(c.call(os_path, OS, "Upgrade", options(download_only=True)), "download")
    if any(u.startswith(("upgraded", "downgraded")) for u in out["updates"] or []):
        txn(c.call(os_path, OS, "Upgrade", options(cache_only=True)), "apply")
    d = default_deployment(c, os_path)
    out["applied_checksum"] = d["checksum"]
    out["staged"] = d.get("staged", False)

    # Install and remove an app's package.
    install = {"install-packages": GLib.Variant("as", ["hello"])}
    txn(c.call(os_path, OS, "UpdateDeployment", install, options(), fds=[]), "install")
    out["after_install"] = default_deployment(c, os_path)["packages"]
    remove = {"uninstall-packages": GLib.Variant("as", ["hello"])}
    txn(c.call(os_path, OS, "UpdateDeployment", remove, options(), fds=[]), "remove")
    out["after_remove"] = default_deployment(c, os_path)["packages"]

    # Repositories: listed, switched off, listed, switched on.
    def repos():
        return [(need(r, "id", str), need(r, "description", str), need(r, "is-enabled", bool),
                 need(r, "is-devel", bool), need(r, "is-source", bool))
                for r in c.call(os_path, OS, "ListRepos")]
    out["repos"] = repos()
    txn(c.call(os_path, OS, "ModifyYumRepo", "test", {"enabled": "0"}), "disable repo")
    out["repos_disabled"] = repos()
    txn(c.call(os_path, OS, "ModifyYumRepo", "test", {"enabled": "1"}), "enable repo")

    # Package lookups (for search results and "what provides").
    out["packages"] = [
        {k: need(p, k, str) for k in ("key", "evr", "nevra", "reponame", "name", "summary")}
        for p in c.call(os_path, OS, "GetPackages", ["hello", "not-there"])]
    out["provides"] = [(need(p, "nevra", str), need(p, "name", str))
                       for p in c.call(os_path, OS, "WhatProvides", ["libhello"])]

    # Cancelling an offline update, then leaving.
    txn(c.call(os_path, OS, "Cleanup", ["pending-deploy"]), "cleanup")
    c.call(SYSROOT_PATH, SYSROOT, "UnregisterClient", {"id": GLib.Variant("s", CLIENT_ID)})
    out["active_transaction_path"] = c.prop(SYSROOT_PATH, SYSROOT,
                                            "ActiveTransactionPath").unpack()
    finish(out)


if __name__ == "__main__":
    main()
