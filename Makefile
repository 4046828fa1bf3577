# Strata — build, test and demo entry points. Every target installs what it needs on Debian 12,
# except the Rust toolchain itself (see rust-check).

CARGO ?= cargo
# Where cargo puts what it builds (respects CARGO_TARGET_DIR).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
RUSTC ?= rustc
# The oldest Rust the workspace builds with (rust-version in Cargo.toml).
RUST_MIN := 1.89
# System packages compiling needs: libostree and glib to link against; libdnf and what its
# pkg-config file requires (librepo, librpm, sqlite), and libclang for bindgen over libdnf's
# headers; libzstd for ostree-ext's layer compression.
BUILD_APT_PACKAGES := build-essential pkg-config libglib2.0-dev libostree-dev ca-certificates \
	libdnf-dev librepo-dev librpm-dev libsqlite3-dev libclang-dev libzstd-dev
# System packages only the tests and the demo use: the ostree CLI and GnuPG for the test kit's
# fixtures, dbus-daemon and python3-gi (GDBus) for the daemon suite's client replays, polkitd, gdbus
# (libglib2.0-bin) and unshare/mount for its real-polkit test; rpm (rpmbuild, and rpm itself
# to write test trees' rpmdbs), createrepo-c, bubblewrap and a static busybox (the shell inside
# test trees) for the layering tests; skopeo (ostree-ext's image proxy) and docker-registry (a
# registry on loopback) for the container-image tests. `make install` does not install them.
TEST_APT_PACKAGES := ostree gpg gpg-agent dbus-daemon python3-gi gir1.2-glib-2.0 polkitd skopeo \
	docker-registry \
	libglib2.0-bin util-linux mount rpm createrepo-c bubblewrap busybox-static
# What `make bench` adds: GNU time (CPU and peak memory of each baseline command) and dbus-send
# (the one-call floor of a bus client), valgrind (callgrind: instructions of a deploy, which a
# loaded machine does not blur).
BENCH_APT_PACKAGES := time dbus-bin valgrind

.PHONY: bench bench-quick docs all rust-check build-deps deps build check fmt clippy test demo install install-files \
	clean vm-deps vm-check

PREFIX ?= /usr
DESTDIR ?=
BINDIR ?= $(TARGET_DIR)/release
INSTALL_PROGRAM ?= install
# Scratch space for generated completions (per DESTDIR, so parallel image builds do not race).
DOCS_TMP ?= $(if $(DESTDIR),$(DESTDIR).docs,target/docs)

all: build

# Installs the Debian packages given as $(1) that are missing (as root; otherwise it lists them
# and fails).
define apt-install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "Missing packages:$$missing (run as root or install them)"; exit 1; fi; \
	  echo "Installing:$$missing"; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
endef

# Fails early unless $(CARGO) and $(RUSTC) exist and report Rust >= $(RUST_MIN). Everything that
# runs cargo goes through it first (build-deps and deps depend on it).
rust-check:
	@need="$(RUST_MIN)"; \
	help="Strata needs Rust >= $$need and Debian 12's rustc (1.63) is too old: install Rust with rustup (https://rustup.rs), then run make again."; \
	check() { \
	  tool="$$*"; \
	  out=$$("$$@" --version 2>/dev/null) || { echo "Error: $$tool is missing or not working ('$$tool --version' failed). $$help" >&2; return 1; }; \
	  set -f; set -- $$out; v=$$2; maj=$${v%%.*}; rest=$${v#*.}; min=$${rest%%.*}; min=$${min%%-*}; \
	  case "$$maj" in ''|*[!0-9]*) maj=x;; esac; case "$$min" in ''|*[!0-9]*) maj=x;; esac; \
	  if [ "$$maj" = x ]; then echo "Error: cannot read a version in '$$tool --version' output ($$out). $$help" >&2; return 1; fi; \
	  if [ "$$maj" -lt "$${need%%.*}" ] || { [ "$$maj" -eq "$${need%%.*}" ] && [ "$$min" -lt "$${need#*.}" ]; }; then \
	    echo "Error: '$$tool --version' reports $$v, older than $$need. $$help" >&2; return 1; \
	  fi; \
	}; \
	check $(CARGO) && check $(RUSTC)

# What building needs: the Rust check and the Debian build packages (no test tools, no cargo
# tools). `make install` uses it.
build-deps: rust-check
	$(call apt-install,$(BUILD_APT_PACKAGES))

# Everything the build, the tests and the demo use: build-deps, the test packages, and rustfmt,
# clippy and cargo-nextest.
deps: build-deps
	$(call apt-install,$(TEST_APT_PACKAGES))
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
	$(call apt-install,$(VM_APT_PACKAGES))

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
	$(TARGET_DIR)/debug/strata-demo

# Strata side by side with the ostree CLI (release build; see docs/benchmarks.md). Not part of
# `make check`: no test asserts a time. `make bench-quick` runs fewer rounds.
bench: deps
	$(call apt-install,$(BENCH_APT_PACKAGES))
	$(CARGO) build --release -p strata-cli -p strata-daemon -p strata-tests --bin strata \
		--bin stratad --bin strata-bench
	$(TARGET_DIR)/release/strata-bench

bench-quick: deps
	$(call apt-install,$(BENCH_APT_PACKAGES))
	$(CARGO) build --release -p strata-cli -p strata-daemon -p strata-tests --bin strata \
		--bin stratad --bin strata-bench
	STRATA_BENCH_QUICK=1 $(TARGET_DIR)/release/strata-bench

# Regenerate the references generated from the code: docs/dbus-api.md and
# docs/dbus/org.projectatomic.rpmostree1.xml (stratad's interfaces) and docs/cli.md (strata's
# clap definitions). `make test` fails while a committed copy is stale.
docs: deps
	STRATA_UPDATE_DOCS=1 $(CARGO) test -p strata-daemon --lib apidoc
	STRATA_UPDATE_DOCS=1 $(CARGO) test -p strata-cli --lib cli_reference

# Install binaries (strata, the rpm-ostree symlink, stratad, the strata-db helper), systemd unit, D-Bus activation and
# policy, polkit actions, tmpfiles, default config (unless /etc/rpm-ostreed.conf exists), man
# pages and shell completions. Only the build packages are installed, never the test tools.
install: build-deps
	$(CARGO) build --release --no-default-features -p strata-cli -p strata-daemon -p strata-db
	@# Failpoints (FAILPOINTS=...) are for the test suites, never in an installed stratad.
	@if $(BINDIR)/stratad --version | grep -q failpoints; then \
	  echo "Error: $(BINDIR)/stratad was built with failpoints" >&2; exit 1; fi
	$(MAKE) install-files

# Lays out the files of `make install` from an existing build in $(BINDIR) (the VM image
# builder uses it with BINDIR=target/debug INSTALL_PROGRAM='install -s' to put this project's
# own build output into the test OS). An existing $(DESTDIR)/etc/rpm-ostreed.conf is the
# administrator's and is never overwritten.
install-files:
	$(INSTALL_PROGRAM) -D -m 0755 $(BINDIR)/strata $(DESTDIR)$(PREFIX)/bin/strata
	ln -sf strata $(DESTDIR)$(PREFIX)/bin/rpm-ostree
	$(INSTALL_PROGRAM) -D -m 0755 $(BINDIR)/stratad $(DESTDIR)$(PREFIX)/libexec/stratad
	$(INSTALL_PROGRAM) -D -m 0755 $(BINDIR)/strata-db $(DESTDIR)$(PREFIX)/libexec/strata-db
	install -D -m 0644 packaging/stratad.service $(DESTDIR)$(PREFIX)/lib/systemd/system/stratad.service
	install -D -m 0644 packaging/org.projectatomic.rpmostree1.service \
		$(DESTDIR)$(PREFIX)/share/dbus-1/system-services/org.projectatomic.rpmostree1.service
	install -D -m 0644 packaging/org.projectatomic.rpmostree1.conf \
		$(DESTDIR)$(PREFIX)/share/dbus-1/system.d/org.projectatomic.rpmostree1.conf
	install -D -m 0644 packaging/org.projectatomic.rpmostree1.policy \
		$(DESTDIR)$(PREFIX)/share/polkit-1/actions/org.projectatomic.rpmostree1.policy
	install -D -m 0644 api/contract/org.projectatomic.rpmostree1.xml \
		$(DESTDIR)$(PREFIX)/share/dbus-1/interfaces/org.projectatomic.rpmostree1.xml
	install -D -m 0644 packaging/strata-tmpfiles.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/strata.conf
	if [ -e "$(DESTDIR)/etc/rpm-ostreed.conf" ]; then \
	  echo "Keeping the existing $(DESTDIR)/etc/rpm-ostreed.conf"; \
	else \
	  install -D -m 0644 packaging/rpm-ostreed.conf "$(DESTDIR)/etc/rpm-ostreed.conf"; \
	fi
	rm -rf $(DOCS_TMP) && mkdir -p $(DESTDIR)$(PREFIX)/share/man/man1
	$(BINDIR)/stratad --generate-man $(DESTDIR)$(PREFIX)/share/man/man8
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
