#!/usr/bin/python3
"""Drive stratad's D-Bus API the way Cockpit's cockpit-ostree does, without Strata's CLI.

Usage: cockpit_client.py BUS_ADDRESS CHECKSUM

Discovers the OS object through org.freedesktop.DBus.ObjectManager, reads the Sysroot's
Deployments property, calls OS.Deploy(CHECKSUM, {"reboot": False}), connects peer-to-peer to the
returned transaction address, subscribes to Message/DownloadProgress/Finished, calls Start and
waits for Finished. Prints one JSON object describing what it saw; exits 0 when the transaction
succeeded.
"""

import json
import sys

import dbus
import dbus.connection
import dbus.mainloop.glib
from gi.repository import GLib

BUS_NAME = "org.projectatomic.rpmostree1"
BASE = "/org/projectatomic/rpmostree1"
OS_IFACE = "org.projectatomic.rpmostree1.OS"
SYSROOT_IFACE = "org.projectatomic.rpmostree1.Sysroot"
TXN_IFACE = "org.projectatomic.rpmostree1.Transaction"


def main():
    address, checksum = sys.argv[1], sys.argv[2]
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    result = {}

    manager = dbus.Interface(bus.get_object(BUS_NAME, BASE), "org.freedesktop.DBus.ObjectManager")
    objects = manager.GetManagedObjects()
    os_paths = [str(p) for p, ifaces in objects.items() if OS_IFACE in ifaces]
    result["os_paths"] = os_paths
    result["sysroot_exported"] = any(SYSROOT_IFACE in i for i in objects.values())
    if not os_paths:
        raise SystemExit("no OS object exported")

    props = dbus.Interface(bus.get_object(BUS_NAME, BASE + "/Sysroot"), "org.freedesktop.DBus.Properties")
    deployments = props.Get(SYSROOT_IFACE, "Deployments")
    result["deployments_before"] = [str(d["checksum"]) for d in deployments]

    os_obj = dbus.Interface(bus.get_object(BUS_NAME, os_paths[0]), OS_IFACE)
    txn_address = os_obj.Deploy(checksum, dbus.Dictionary({"reboot": False}, signature="sv"))
    result["transaction_address"] = str(txn_address)

    peer = dbus.connection.Connection(str(txn_address))
    loop = GLib.MainLoop()
    messages = []
    downloads = []
    finished = {}

    def on_finished(success, error_message):
        finished["success"] = bool(success)
        finished["error"] = str(error_message)
        loop.quit()

    peer.add_signal_receiver(lambda text: messages.append(str(text)), "Message", TXN_IFACE)
    peer.add_signal_receiver(lambda *args: downloads.append(len(args)), "DownloadProgress", TXN_IFACE)
    peer.add_signal_receiver(on_finished, "Finished", TXN_IFACE)

    txn = dbus.Interface(peer.get_object(None, "/"), TXN_IFACE)
    result["started"] = bool(txn.Start())
    GLib.timeout_add_seconds(120, loop.quit)
    loop.run()

    result["finished"] = finished
    result["messages"] = messages
    result["download_signals"] = downloads
    deployments = props.Get(SYSROOT_IFACE, "Deployments")
    result["deployments_after"] = [str(d["checksum"]) for d in deployments]
    print(json.dumps(result))
    sys.exit(0 if finished.get("success") else 1)


if __name__ == "__main__":
    main()
