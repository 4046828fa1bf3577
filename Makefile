# Strata — build, test and demo entry points. Every target installs what it needs on Debian 12.

CARGO ?= cargo
# System packages the build and the tests use (libostree to link against, the ostree CLI and
# GnuPG for the test kit's fixtures; polkitd, gdbus (libglib2.0-bin) and unshare/mount for the
# daemon suite's real-polkit test).
APT_PACKAGES := build-essential pkg-config libglib2.0-dev libostree-dev ostree gpg gpg-agent \
	ca-certificates dbus-daemon python3-dbus python3-gi polkitd libglib2.0-bin util-linux mount

.PHONY: all build deps check fmt clippy test demo install install-files clean vm-deps vm-check

PREFIX ?= /usr
DESTDIR ?=
BINDIR ?= target/release
INSTALL_PROGRAM ?= install
# Scratch space for generated completions (per DESTDIR, so parallel image builds do not race).
DOCS_TMP ?= $(if $(DESTDIR),$(DESTDIR).docs,target/docs)

all: build

# Install missing Debian packages (as root) and the Rust tools the targets use.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "Missing packages:$$missing (run as root or install them)"; exit 1; fi; \
	  echo "Installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
	@$(CARGO) fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@$(CARGO) clippy --version >/dev/null 2>&1 || rustup component add clippy
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked

build: deps
	$(CARGO) build --workspace --all-targets

fmt: deps
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The integration tests run the real stratad and strata binaries, which cargo only builds for
# their own package's tests: build every binary first.
# The VM suite (tests/tests/vm) boots QEMU guests and runs with `make vm-check`.
test: deps
	$(CARGO) build --workspace --bins
	$(CARGO) nextest run --workspace --no-fail-fast -E 'not binary(vm)'

# Host tools for the VM suite; the guest kernel, ostree-prepare-root and (where apt cannot
# install it next to the backported qemu-utils) QEMU itself are extracted from .debs by
# tests/vm/fetch-assets.sh into target/vm-cache, never installed into the host.
VM_APT_PACKAGES := busybox-static debootstrap syslinux syslinux-common extlinux kmod fdisk cpio e2fsprogs \
	libcapstone4 libfdt1 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2

vm-deps: deps
	@missing=""; for p in $(VM_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

# The VM end-to-end suite (real boots under QEMU/TCG; needs root).
vm-check: vm-deps
	$(CARGO) build --workspace --bins
	$(CARGO) nextest run -p strata-tests --no-fail-fast -E 'binary(vm)'

# The whole suite: formatting, lints, unit and integration tests, then the VM suite (it stays
# well under 20 minutes on a 2-core machine, so it is part of check; it needs root).
check: fmt clippy test vm-check

# Strata end to end on a throwaway sandbox: a test OS repo with two releases served over HTTP on
# loopback, a sysroot, a private dbus-daemon, the real stratad, and the strata CLI driven through
# status, upgrade, kargs and rollback.
demo: deps
	$(CARGO) build --quiet -p strata-daemon -p strata-cli -p strata-tests --bins
	target/debug/strata-demo

# Install binaries (strata, the rpm-ostree symlink, stratad), systemd unit, D-Bus activation and
# policy, polkit actions, tmpfiles, default config, man pages and shell completions.
install: deps
	$(CARGO) build --release -p strata-cli -p strata-daemon
	$(MAKE) install-files

# Lays out the files of `make install` from an existing build in $(BINDIR) (the VM image
# builder uses it with BINDIR=target/debug INSTALL_PROGRAM='install -s' to put this project's
# own build output into the test OS).
install-files:
	$(INSTALL_PROGRAM) -D -m 0755 $(BINDIR)/strata $(DESTDIR)$(PREFIX)/bin/strata
	ln -sf strata $(DESTDIR)$(PREFIX)/bin/rpm-ostree
	$(INSTALL_PROGRAM) -D -m 0755 $(BINDIR)/stratad $(DESTDIR)$(PREFIX)/libexec/stratad
	install -D -m 0644 packaging/stratad.service $(DESTDIR)$(PREFIX)/lib/systemd/system/stratad.service
	install -D -m 0644 packaging/org.projectatomic.rpmostree1.service \
		$(DESTDIR)$(PREFIX)/share/dbus-1/system-services/org.projectatomic.rpmostree1.service
	install -D -m 0644 packaging/org.projectatomic.rpmostree1.conf \
		$(DESTDIR)$(PREFIX)/share/dbus-1/system.d/org.projectatomic.rpmostree1.conf
	install -D -m 0644 packaging/org.projectatomic.rpmostree1.policy \
		$(DESTDIR)$(PREFIX)/share/polkit-1/actions/org.projectatomic.rpmostree1.policy
	install -D -m 0644 packaging/strata-tmpfiles.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/strata.conf
	install -D -m 0644 packaging/rpm-ostreed.conf $(DESTDIR)/etc/rpm-ostreed.conf
	rm -rf $(DOCS_TMP) && mkdir -p $(DESTDIR)$(PREFIX)/share/man/man1
	$(BINDIR)/strata generate-docs --man $(DESTDIR)$(PREFIX)/share/man/man1 \
		--completions $(DOCS_TMP)/completions
	for n in strata rpm-ostree; do \
	  install -D -m 0644 $(DOCS_TMP)/completions/$$n.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$n; \
	  install -D -m 0644 $(DOCS_TMP)/completions/_$$n $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_$$n; \
	  install -D -m 0644 $(DOCS_TMP)/completions/$$n.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$n.fish; \
	done
	rm -rf $(DOCS_TMP)

clean:
	$(CARGO) clean
