"""rpm-ostree's D-Bus interfaces as a typed client, the way gdbus-codegen's generated proxies
use them (GNOME Software's plugin is built on those): every call's arguments are built from the
interface XML's in-signature, every reply, property and signal is checked against its
out-signature, and a mismatch is an error, as GDBus raises it for a generated proxy.

The XML is Strata's transcription of rpm-ostree's interfaces (api/contract/), which the daemon's
own tests hold stratad's introspection to.

Only python3-gi (Gio, GLib) is used: the D-Bus stack GNOME Software and rpm-ostree use.
"""

import json
import os
import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

BUS_NAME = "org.projectatomic.rpmostree1"
BASE = "/org/projectatomic/rpmostree1"
SYSROOT_PATH = BASE + "/Sysroot"
SYSROOT = "org.projectatomic.rpmostree1.Sysroot"
OS = "org.projectatomic.rpmostree1.OS"
TXN = "org.projectatomic.rpmostree1.Transaction"
PROPERTIES = "org.freedesktop.DBus.Properties"

CONTRACT_XML = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..",
    "..",
    "api",
    "contract",
    "org.projectatomic.rpmostree1.xml",
)


class ContractError(Exception):
    """A reply, property or signal whose type is not rpm-ostree's."""


def _tuple(args):
    return "(" + "".join(a.signature for a in args) + ")"


class Contract:
    def __init__(self, path=CONTRACT_XML):
        with open(path, encoding="utf-8") as f:
            self.node = Gio.DBusNodeInfo.new_for_xml(f.read())

    def iface(self, name):
        info = self.node.lookup_interface(name)
        if info is None:
            raise ContractError(f"{name} is not one of rpm-ostree's interfaces")
        return info

    def method(self, iface, name):
        m = self.iface(iface).lookup_method(name)
        if m is None:
            raise ContractError(f"{iface}.{name} is not in rpm-ostree's interface")
        return _tuple(m.in_args), _tuple(m.out_args)

    def property(self, iface, name):
        p = self.iface(iface).lookup_property(name)
        if p is None:
            raise ContractError(f"{iface}.{name} is not a property of rpm-ostree's")
        return p.signature

    def signal(self, iface, name):
        s = self.iface(iface).lookup_signal(name)
        if s is None:
            raise ContractError(f"{iface}.{name} is not a signal of rpm-ostree's")
        return _tuple(s.args)


CONTRACT = Contract()


def remote_error(e):
    """The D-Bus error name of a GLib.Error from a call ('' for a local error)."""
    return Gio.DBusError.get_remote_error(e) or ""


class Client:
    """A connection to the bus at ADDRESS, calling stratad as a generated proxy would."""

    def __init__(self, address):
        flags = (
            Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
        )
        self.conn = Gio.DBusConnection.new_for_address_sync(address, flags, None, None)

    def call(self, path, iface, method, *args, fds=None):
        """Call METHOD with ARGS (Python values, typed by the contract); returns the reply's
        values. GDBus refuses a reply of another type than the contract's."""
        in_sig, out_sig = CONTRACT.method(iface, method)
        params = GLib.Variant(in_sig, tuple(args))
        reply_type = GLib.VariantType.new(out_sig)
        if fds is not None:
            fd_list = Gio.UnixFDList.new()
            for fd in fds:
                fd_list.append(fd)
            reply, _ = self.conn.call_with_unix_fd_list_sync(
                BUS_NAME, path, iface, method, params, reply_type,
                Gio.DBusCallFlags.NONE, -1, fd_list, None)
        else:
            reply = self.conn.call_sync(
                BUS_NAME, path, iface, method, params, reply_type,
                Gio.DBusCallFlags.NONE, -1, None)
        values = reply.unpack()
        return values[0] if len(values) == 1 else values

    def prop(self, path, iface, name):
        """Read a property; its type must be the contract's."""
        want = CONTRACT.property(iface, name)
        reply = self.conn.call_sync(
            BUS_NAME, path, PROPERTIES, "Get", GLib.Variant("(ss)", (iface, name)),
            GLib.VariantType.new("(v)"), Gio.DBusCallFlags.NONE, -1, None)
        value = reply.get_child_value(0).get_variant()
        if value.get_type_string() != want:
            raise ContractError(
                f"{iface}.{name} is {value.get_type_string()}, rpm-ostree's is {want}")
        return value

    def props(self, path, iface):
        """GetAll, each value checked against the contract; returns the variants by name."""
        reply = self.conn.call_sync(
            BUS_NAME, path, PROPERTIES, "GetAll", GLib.Variant("(s)", (iface,)),
            GLib.VariantType.new("(a{sv})"), Gio.DBusCallFlags.NONE, -1, None)
        out = {}
        d = reply.get_child_value(0)
        for i in range(d.n_children()):
            entry = d.get_child_value(i)
            name = entry.get_child_value(0).get_string()
            value = entry.get_child_value(1).get_variant()
            want = CONTRACT.property(iface, name)
            if value.get_type_string() != want:
                raise ContractError(
                    f"{iface}.{name} is {value.get_type_string()}, rpm-ostree's is {want}")
            out[name] = value
        return out

    def os_path(self):
        booted = self.prop(SYSROOT_PATH, SYSROOT, "Booted").unpack()
        if booted != "/":
            return booted
        return self.call(SYSROOT_PATH, SYSROOT, "GetOS", "")

    def introspect(self, path):
        reply = self.conn.call_sync(
            BUS_NAME, path, "org.freedesktop.DBus.Introspectable", "Introspect", None,
            GLib.VariantType.new("(s)"), Gio.DBusCallFlags.NONE, -1, None)
        return Gio.DBusNodeInfo.new_for_xml(reply.unpack()[0])


def run_transaction(address, timeout=180, cancel_after=None):
    """Connect peer-to-peer to a transaction, subscribe, Start, and wait for Finished.
    Returns (success, error_message, signals) with signals as [(name, values)], each signal's
    type checked against the contract."""
    peer = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT, None, None)
    loop = GLib.MainLoop()
    seen = []
    problems = []
    result = {}

    def on_signal(_conn, _sender, _path, iface, name, params):
        try:
            want = CONTRACT.signal(iface, name)
            if params.get_type_string() != want:
                problems.append(f"signal {name} is {params.get_type_string()}, not {want}")
        except ContractError as e:
            problems.append(str(e))
        seen.append((name, params.unpack()))
        if name == "Finished":
            result["finished"] = params.unpack()
            loop.quit()

    peer.signal_subscribe(None, TXN, None, "/", None, Gio.DBusSignalFlags.NONE, on_signal)
    _, out_sig = CONTRACT.method(TXN, "Start")
    peer.call_sync(None, "/", TXN, "Start", None, GLib.VariantType.new(out_sig),
                   Gio.DBusCallFlags.NONE, -1, None)
    GLib.timeout_add_seconds(timeout, loop.quit)
    loop.run()
    peer.close_sync(None)
    if problems:
        raise ContractError("; ".join(problems))
    if "finished" not in result:
        raise ContractError(f"no Finished within {timeout}s; signals: {seen}")
    success, message = result["finished"]
    return success, message, seen


def need(d, key, types):
    """The value of KEY in the unpacked dict D, which must be there with a Python type in
    TYPES (the client's own check before it uses it)."""
    if key not in d:
        raise ContractError(f"missing key {key!r} in {sorted(d)}")
    if not isinstance(d[key], types):
        raise ContractError(f"{key!r} is {type(d[key]).__name__}")
    return d[key]


def finish(result):
    """Print the client's findings as JSON (for the Rust test) and exit 0."""
    json.dump(result, sys.stdout, default=str)
    sys.stdout.write("\n")
    sys.exit(0)
