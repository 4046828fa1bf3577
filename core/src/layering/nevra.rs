//! Package identity: name, epoch, version, release, arch; and the ref of a package's commit in
//! the package cache, `rpmostree/pkg/<name>/<evr>.<arch>` escaped as rpm-ostree does.

use std::fmt;

/// Prefix of every package-cache ref.
pub const PKG_REF_PREFIX: &str = "rpmostree/pkg/";

/// A package's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nevra {
    /// `Name`.
    pub name: String,
    /// `Epoch` (0 when the package has none).
    pub epoch: u64,
    /// `Version`.
    pub version: String,
    /// `Release`.
    pub release: String,
    /// `Arch`.
    pub arch: String,
}

impl Nevra {
    /// Parses `NAME-[EPOCH:]VERSION-RELEASE.ARCH` (the form [`Display`](fmt::Display) writes
    /// and rpm-ostree records in `requested-local`); `None` when a part is missing or empty.
    pub fn parse(s: &str) -> Option<Nevra> {
        let (rest, arch) = s.rsplit_once('.')?;
        let (rest, release) = rest.rsplit_once('-')?;
        let (name, ev) = rest.rsplit_once('-')?;
        let (epoch, version) = match ev.split_once(':') {
            Some((e, v)) => (e.parse().ok()?, v),
            None => (0, ev),
        };
        let nevra = Nevra {
            name: name.into(),
            epoch,
            version: version.into(),
            release: release.into(),
            arch: arch.into(),
        };
        [name, version, release, arch]
            .iter()
            .all(|p| !p.is_empty())
            .then_some(nevra)
    }

    /// `[EPOCH:]VERSION-RELEASE`, the epoch only when it is not 0 (rpm's own form).
    pub fn evr(&self) -> String {
        if self.epoch == 0 {
            format!("{}-{}", self.version, self.release)
        } else {
            format!("{}:{}-{}", self.epoch, self.version, self.release)
        }
    }

    /// The package-cache ref of this package.
    pub fn cache_ref(&self) -> String {
        format!(
            "{PKG_REF_PREFIX}{}/{}",
            escape_ref_component(&self.name),
            escape_ref_component(&format!("{}.{}", self.evr(), self.arch))
        )
    }
}

impl fmt::Display for Nevra {
    /// `NAME-[EPOCH:]VERSION-RELEASE.ARCH`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}.{}", self.name, self.evr(), self.arch)
    }
}

/// rpm-ostree's escaping of a ref component: ASCII letters, digits, `.` and `-` stay, `_`
/// doubles, every other byte is `_` and its two hex digits (`:` is `_3A`, `+` is `_2B`).
pub fn escape_ref_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' => out.push(b as char),
            b'_' => out.push_str("__"),
            _ => out.push_str(&format!("_{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nevra(name: &str, epoch: u64, v: &str, r: &str, arch: &str) -> Nevra {
        Nevra {
            name: name.into(),
            epoch,
            version: v.into(),
            release: r.into(),
            arch: arch.into(),
        }
    }

    #[test]
    fn cache_refs_are_escaped_like_rpm_ostree() {
        // The examples rpm-ostree's documentation gives.
        assert_eq!(
            nevra("perl", 4, "5.16.3", "291.el7", "x86_64").cache_ref(),
            "rpmostree/pkg/perl/4_3A5.16.3-291.el7.x86__64"
        );
        assert_eq!(
            nevra("buildah", 0, "1.12.0", "2.fc31", "x86_64").cache_ref(),
            "rpmostree/pkg/buildah/1.12.0-2.fc31.x86__64"
        );
        assert_eq!(
            nevra("libstdc++", 0, "13.2.1", "3.fc39", "x86_64").cache_ref(),
            "rpmostree/pkg/libstdc_2B_2B/13.2.1-3.fc39.x86__64"
        );
        assert_eq!(
            nevra("vim", 2, "9.0~rc1", "1", "noarch").to_string(),
            "vim-2:9.0~rc1-1.noarch"
        );
        assert_eq!(escape_ref_component("9.0~rc1^git"), "9.0_7Erc1_5Egit");
    }

    #[test]
    fn parse_reads_what_display_writes() {
        for n in [
            nevra("perl", 4, "5.16.3", "291.el7", "x86_64"),
            nevra("my-tool", 0, "1.0", "1", "noarch"),
            nevra("libstdc++", 0, "13.2.1", "3.fc39", "x86_64"),
        ] {
            assert_eq!(Nevra::parse(&n.to_string()), Some(n));
        }
        for bad in [
            "",
            "foo",
            "foo-1.0",
            "foo-1.0-1",
            "-1.0-1.noarch",
            "foo-x:1-1.noarch",
        ] {
            assert_eq!(Nevra::parse(bad), None, "{bad}");
        }
    }
}
