#!/bin/sh
# Fetches the guest's kernel, ostree-prepare-root and (when the host has no usable
# qemu-system-x86_64) QEMU itself as Debian packages, and EXTRACTS them into DEST without
# installing anything on the host:
#
#   DEST/kernel/       linux-image-<kver>-amd64 (boot/vmlinuz-<kver>, lib/modules/<kver>, depmod'ed)
#   DEST/ostree-boot/  ostree-boot (usr/lib/ostree/ostree-prepare-root); installing it would pull dracut
#   DEST/qemu/         qemu-system-x86 + qemu-system-common + qemu-system-data + seabios + ipxe-qemu
#                      (only if `qemu-system-x86_64` is not on PATH: on these machines qemu-utils comes
#                      from bookworm-backports and Breaks bookworm's qemu-system-common, so apt cannot
#                      install qemu-system-x86 next to it)
#   DEST/assets.env    KVER=..., QEMU=... (read by tests/src/vm/assets.rs)
#
# Host packages it needs (installed by the caller): kmod (depmod, modprobe), dpkg, apt.
# Usage: tests/vm/fetch-assets.sh DEST
set -eu
dest=${1:?usage: fetch-assets.sh DEST}
mkdir -p "$dest/debs"
dest=$(cd "$dest" && pwd)
cd "$dest/debs"

# The current kernel ABI package that linux-image-amd64 points at (refreshing apt's package
# lists once if this machine has none yet).
resolve_kernel() {
	apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1
}
kpkg=$(resolve_kernel)
if [ -z "$kpkg" ]; then
	apt-get update >&2
	kpkg=$(resolve_kernel)
fi
[ -n "$kpkg" ] || { echo "cannot resolve linux-image-amd64 (apt-cache depends linux-image-amd64)" >&2; exit 1; }
pkgs="$kpkg ostree-boot"
need_qemu=0
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	need_qemu=1
	pkgs="$pkgs qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu"
fi
# apt-get download warns (harmlessly) when _apt cannot write here. Stale package lists (a
# version the mirror no longer has) get one refresh and a retry.
download() { apt-get download $pkgs 2>&1 | grep -v '^W: Download is performed unsandboxed' || true; }
download
for p in $pkgs; do
	ls ${p}_*.deb >/dev/null 2>&1 || { apt-get update >&2; download; break; }
done

rm -rf "$dest/kernel" "$dest/ostree-boot"
dpkg-deb -x "$(ls ${kpkg}_*.deb | head -n1)" "$dest/kernel"
dpkg-deb -x "$(ls ostree-boot_*.deb | head -n1)" "$dest/ostree-boot"
kver=$(ls "$dest/kernel/lib/modules" | head -n1)
depmod -b "$dest/kernel" "$kver"

qemu=qemu-system-x86_64
if [ "$need_qemu" = 1 ]; then
	rm -rf "$dest/qemu"
	for p in qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu; do
		dpkg-deb -x "$(ls ${p}_*.deb | head -n1)" "$dest/qemu"
	done
	qemu="$dest/qemu/usr/bin/qemu-system-x86_64"
	if ldd "$qemu" | grep -q 'not found'; then
		echo "QEMU's shared libraries are missing (install them with apt-get):" >&2
		ldd "$qemu" | grep 'not found' >&2
		exit 1
	fi
fi
printf 'KVER=%s\nQEMU=%s\n' "$kver" "$qemu" > "$dest/assets.env.tmp"
mv "$dest/assets.env.tmp" "$dest/assets.env"
echo "assets ready in $dest (kernel $kver, qemu $qemu)"
