//! The command line: rpm-ostree's verbs and flags as clap definitions.
//!
//! Verbs Strata does not support yet are caught by [`Command::Other`] and answered by
//! [`crate::unsupported`]; flags we accept for compatibility but cannot honour yet are hidden
//! arguments that the verb rejects with a clear message.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// strata: manage atomic OS deployments through stratad (rpm-ostree compatible)
#[derive(Debug, Parser)]
#[command(
    name = "strata",
    version,
    about = "Manage atomic, image-based OS deployments (rpm-ostree compatible)",
    long_about = "strata talks to the stratad daemon over D-Bus to show, upgrade, deploy, rebase and \
roll back ostree deployments. It accepts rpm-ostree's verbs, flags and exit codes, and behaves \
identically when installed as `rpm-ostree`.",
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every verb accepts (before or after the verb, as rpm-ostree does).
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOpts {
    /// Use system root SYSROOT (only / is supported by the client; run `stratad --sysroot DIR`
    /// to manage another sysroot)
    #[arg(long, global = true, value_name = "SYSROOT")]
    pub sysroot: Option<PathBuf>,
    /// Operate on the provided stateroot (default: the booted one)
    #[arg(long = "stateroot", alias = "os", global = true, value_name = "NAME")]
    pub stateroot: Option<String>,
    /// Avoid printing most informational messages
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Force a peer-to-peer connection instead of using the system message bus (rpm-ostree's
    /// vestigial flag; not supported)
    #[arg(long, global = true, hide = true)]
    pub peer: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the deployments, which one is booted, and what the daemon is doing
    Status(StatusArgs),
    /// Perform a system upgrade
    #[command(visible_alias = "update")]
    Upgrade(UpgradeArgs),
    /// Deploy a specific commit
    Deploy(DeployArgs),
    /// Switch to a different tree
    Rebase(RebaseArgs),
    /// Revert to the previously booted tree
    Rollback(RollbackArgs),
    /// Overlay additional packages
    #[command(visible_alias = "pkg-add")]
    Install(InstallArgs),
    /// Remove overlayed additional packages
    #[command(visible_aliases = ["remove", "pkg-remove"])]
    Uninstall(UninstallArgs),
    /// Remove all mutations (layered packages)
    Reset(ResetArgs),
    /// Query or modify kernel arguments
    Kargs(KargsArgs),
    /// Clear cached/pending data
    Cleanup(CleanupArgs),
    /// Cancel an active transaction
    Cancel,
    /// Reload configuration
    Reload,
    /// Unset the finalization locking state of the staged deployment and reboot
    FinalizeDeployment(FinalizeArgs),
    /// Commands to query the RPM database of commits (read locally, without the daemon)
    Db(DbArgs),
    /// Generate rpm repo metadata
    #[command(name = "refresh-md", alias = "makecache")]
    RefreshMd(RefreshMdArgs),
    /// Search for packages
    Search(SearchArgs),
    /// Write man pages and shell completions (used by `make install`)
    #[command(hide = true)]
    GenerateDocs(GenerateDocsArgs),
    /// Any other verb: rpm-ostree verbs Strata does not support yet, or a typo
    #[command(external_subcommand)]
    Other(Vec<OsString>),
}

/// `db`: rpm-ostree's local queries of commits' package lists.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Path to the OSTree repository (default: /sysroot/ostree/repo)
    #[arg(short = 'r', long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum DbCommand {
    /// List packages within commits
    List(DbListArgs),
    /// Show the rpmdb version of packages within the commits
    Version(DbVersionArgs),
    /// Show package changes between two commits
    Diff(DbDiffArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct DbListArgs {
    /// Commits (checksums, refs, REV^), then package name patterns (globs matched against
    /// name, NEVRA, NAME.ARCH and N-V-R): the first argument that is not a commit starts the
    /// patterns
    #[arg(value_name = "REV... [PATTERN...]")]
    pub args: Vec<String>,
    /// Also list security advisories
    #[arg(short = 'a', long)]
    pub advisories: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DbVersionArgs {
    /// Commits
    #[arg(value_name = "COMMIT")]
    pub commits: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DbDiffArgs {
    /// From this commit (default: the booted deployment, or the rollback one when nothing is
    /// pending)
    #[arg(value_name = "FROM")]
    pub from: Option<String>,
    /// To this commit (default: the pending deployment, or the booted one)
    #[arg(value_name = "TO")]
    pub to: Option<String>,
    /// Output format
    #[arg(short = 'F', long, value_name = "FORMAT", default_value = "block",
          value_parser = ["block", "diff", "json"])]
    pub format: String,
    /// Also output RPM changelogs
    #[arg(short = 'c', long)]
    pub changelogs: bool,
    /// Diff the base commits of deployments (without layered packages)
    #[arg(long)]
    pub base: bool,
    /// Also output new security advisories
    #[arg(short = 'a', long)]
    pub advisories: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct StatusArgs {
    /// Print additional fields (e.g. StateRoot); implies -a
    #[arg(short, long)]
    pub verbose: bool,
    /// Output security advisories (none exist without package layering)
    #[arg(short = 'a', long)]
    pub advisories: bool,
    /// Output JSON
    #[arg(long, conflicts_with = "jsonpath")]
    pub json: bool,
    /// Filter JSONPath expression
    #[arg(short = 'J', long, value_name = "EXPRESSION")]
    pub jsonpath: Option<String>,
    /// Only print the booted deployment
    #[arg(short, long)]
    pub booted: bool,
    /// If a pending deployment exists, exit 77
    #[arg(long)]
    pub pending_exit_77: bool,
    /// Deprecated no-op
    #[arg(short = 'p', long, hide = true)]
    pub pretty: bool,
}

/// Flags `upgrade`, `deploy` and `rebase` share.
#[derive(Debug, Clone, Default, Args)]
pub struct DeployFlags {
    /// Do not download latest ostree and RPM data
    #[arg(short = 'C', long)]
    pub cache_only: bool,
    /// Just download latest ostree and RPM data, don't deploy
    #[arg(long)]
    pub download_only: bool,
    /// Prevent automatic deployment finalization on shutdown
    #[arg(long)]
    pub lock_finalization: bool,
    /// Go ahead even if an update driver (e.g. Zincati) is registered
    #[arg(long)]
    pub bypass_driver: bool,
    /// Overlay additional packages (not supported yet)
    #[arg(long, hide = true, value_name = "PKG")]
    pub install: Vec<String>,
    /// Remove overlayed packages (not supported yet)
    #[arg(long, hide = true, value_name = "PKG")]
    pub uninstall: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct UpgradeArgs {
    /// Initiate a reboot after operation is complete
    #[arg(short, long, conflicts_with_all = ["check", "preview"])]
    pub reboot: bool,
    /// Permit deployment of chronologically older trees
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Just check if an upgrade is available, without downloading it or performing a package
    /// diff; exit 77 if none
    #[arg(long)]
    pub check: bool,
    /// Just preview package differences (implies --unchanged-exit-77)
    #[arg(long)]
    pub preview: bool,
    /// If no new deployment made, exit 77
    #[arg(long, alias = "upgrade-unchanged-exit-77")]
    pub unchanged_exit_77: bool,
    /// Trigger the automatic update policy configured in the daemon (used by the timer unit)
    #[arg(long, hide = true)]
    pub trigger_automatic_update_policy: bool,
    /// Check for an update and show the package diff (rpm-ostree's old name of --preview)
    #[arg(long, hide = true)]
    pub check_diff: bool,
    #[command(flatten)]
    pub common: DeployFlags,
}

#[derive(Debug, Clone, Default, Args)]
pub struct DeployArgs {
    /// The commit to deploy: a checksum, `revision=CHECKSUM` or `version=VERSION`; on an
    /// image-based deployment, an image of the followed repository by manifest digest
    /// (`sha256:…`)
    #[arg(value_name = "REVISION", allow_hyphen_values = false)]
    pub revision: Option<String>,
    /// Initiate a reboot after operation is complete
    #[arg(short, long)]
    pub reboot: bool,
    /// Just preview package differences (not supported yet)
    #[arg(long)]
    pub preview: bool,
    /// Allow deploying a commit on a branch other than the booted one
    #[arg(long)]
    pub skip_branch_check: bool,
    /// Forbid deployment of chronologically older trees
    #[arg(long)]
    pub disallow_downgrade: bool,
    /// If no new deployment made, exit 77
    #[arg(long)]
    pub unchanged_exit_77: bool,
    /// Register the calling agent as the driver for updates; if REVISION is empty, register only
    #[arg(long, value_name = "DRIVERNAME")]
    pub register_driver: Option<String>,
    /// Set up cliwrap (not supported)
    #[arg(long, hide = true)]
    pub ex_cliwrap: bool,
    #[command(flatten)]
    pub common: DeployFlags,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RebaseArgs {
    /// REFSPEC [REVISION], or only [REVISION] with --branch/--remote. REFSPEC is an ostree ref
    /// (REMOTE:BRANCH, :BRANCH, REMOTE:) or a container image reference
    /// (ostree-unverified-registry:HOST/NAME:TAG, ostree-unverified-image:oci:DIR:TAG,
    /// ostree-remote-image:REMOTE:…, ostree-image-signed:…); for an image, REVISION is a
    /// manifest digest (sha256:…)
    #[arg(value_name = "REFSPEC [REVISION]", num_args = 0..=2)]
    pub positional: Vec<String>,
    /// Rebase to branch BRANCH; use --remote to change remote as well
    #[arg(short, long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Rebase to current branch name using REMOTE; may also be combined with --branch
    #[arg(short = 'm', long, value_name = "REMOTE")]
    pub remote: Option<String>,
    /// Initiate a reboot after operation is complete
    #[arg(short, long)]
    pub reboot: bool,
    /// Keep previous refspec after rebase
    #[arg(long)]
    pub skip_purge: bool,
    /// Forbid deployment of chronologically older trees
    #[arg(long)]
    pub disallow_downgrade: bool,
    /// Human-readable description of a custom origin (not supported yet)
    #[arg(long, hide = true)]
    pub custom_origin_description: Option<String>,
    /// Machine-readable URL of a custom origin (not supported yet)
    #[arg(long, hide = true)]
    pub custom_origin_url: Option<String>,
    /// Enable experimental features (not supported)
    #[arg(long, hide = true)]
    pub experimental: bool,
    #[command(flatten)]
    pub common: DeployFlags,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RollbackArgs {
    /// Initiate a reboot after operation is complete
    #[arg(short, long)]
    pub reboot: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct KargsArgs {
    /// Append a kernel argument, also when it is already there; useful with e.g. console=,
    /// which can be given several times. An empty value (KEY=) is allowed
    #[arg(long, value_name = "KEY=VALUE")]
    pub append: Vec<String>,
    /// Like --append, but does nothing if exactly this argument is already present
    #[arg(long, value_name = "KEY=VALUE")]
    pub append_if_missing: Vec<String>,
    /// Delete a kernel argument: KEY=VALUE removes that pair, a bare KEY removes the key's only
    /// value (it fails when the key has several)
    #[arg(long, value_name = "KEY=VALUE")]
    pub delete: Vec<String>,
    /// Like --delete, but does nothing unless exactly this argument is present
    #[arg(long, value_name = "KEY=VALUE")]
    pub delete_if_present: Vec<String>,
    /// Replace a kernel argument: KEY=OLD=NEW changes one value, KEY=VALUE sets the value of a
    /// key that has only one
    #[arg(long, value_name = "KEY=VALUE=NEWVALUE")]
    pub replace: Vec<String>,
    /// Use an editor to modify the kernel arguments
    #[arg(long, conflicts_with_all = ["append", "append_if_missing", "delete", "delete_if_present", "replace", "import_proc_cmdline"])]
    pub editor: bool,
    /// Modify the kernel args from a specific deployment based on index. Index is in the form
    /// of a number (e.g. 0 means the first deployment in the list)
    #[arg(long, value_name = "INDEX")]
    pub deploy_index: Option<usize>,
    /// Instead of modifying old kernel arguments, we modify args from current /proc/cmdline
    /// (the booted deployment; only on the running system)
    #[arg(long, conflicts_with = "deploy_index")]
    pub import_proc_cmdline: bool,
    /// Initiate a reboot after operation is complete
    #[arg(long)]
    pub reboot: bool,
    /// If no changes were made, exit 77
    #[arg(long)]
    pub unchanged_exit_77: bool,
    /// Prevent automatic deployment finalization on shutdown
    #[arg(long)]
    pub lock_finalization: bool,
}

impl KargsArgs {
    /// Whether any flag asks for a change (otherwise `kargs` only prints).
    pub fn modifies(&self) -> bool {
        !(self.append.is_empty()
            && self.append_if_missing.is_empty()
            && self.delete.is_empty()
            && self.delete_if_present.is_empty()
            && self.replace.is_empty())
            || self.editor
            || self.import_proc_cmdline
    }
}

/// Flags `install`, `uninstall` and `reset` share (rpm-ostree's package-change options).
#[derive(Debug, Clone, Default, Args)]
pub struct PackageFlags {
    /// Initiate a reboot after operation is complete
    #[arg(short, long)]
    pub reboot: bool,
    /// Exit after printing the transaction
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Auto-confirm interactive prompts for non-security questions (accepted; Strata does not
    /// ask)
    #[arg(short = 'y', long)]
    pub assumeyes: bool,
    /// Allow inactive package requests (packages the base already provides)
    #[arg(long)]
    pub allow_inactive: bool,
    /// Do nothing if a package request is already present (install) or not present
    /// (uninstall); exit 77 when nothing changed
    #[arg(long)]
    pub idempotent: bool,
    /// If no overlays were changed, exit 77
    #[arg(long)]
    pub unchanged_exit_77: bool,
    /// Do not download latest ostree and RPM data
    #[arg(short = 'C', long)]
    pub cache_only: bool,
    /// Just download latest ostree and RPM data, don't deploy
    #[arg(long)]
    pub download_only: bool,
    /// Prevent automatic deployment finalization on shutdown
    #[arg(long)]
    pub lock_finalization: bool,
    /// Apply changes to both pending deployment and running filesystem tree (not supported
    /// yet)
    #[arg(short = 'A', long, hide = true)]
    pub apply_live: bool,
    /// Allow package to replace files from other packages (not supported yet)
    #[arg(long, hide = true)]
    pub force_replacefiles: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct InstallArgs {
    /// Packages to overlay: names or provides from the configured repositories (`htop`,
    /// `vim-enhanced`), or local .rpm files (a path ending in .rpm, or a file:// URL)
    #[arg(value_name = "PACKAGE", required = true)]
    pub packages: Vec<String>,
    /// Remove overlayed package PKG in the same transaction
    #[arg(long, value_name = "PKG")]
    pub uninstall: Vec<String>,
    #[command(flatten)]
    pub flags: PackageFlags,
}

#[derive(Debug, Clone, Default, Args)]
pub struct UninstallArgs {
    /// Layered packages to remove (as they were requested)
    #[arg(value_name = "PACKAGE", required_unless_present = "all")]
    pub packages: Vec<String>,
    /// Overlay package PKG in the same transaction
    #[arg(long, value_name = "PKG")]
    pub install: Vec<String>,
    /// Remove all overlayed additional packages
    #[arg(long, conflicts_with = "packages")]
    pub all: bool,
    #[command(flatten)]
    pub flags: PackageFlags,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ResetArgs {
    /// Remove all overlayed packages
    #[arg(short = 'l', long)]
    pub overlays: bool,
    /// Remove all overrides (not supported yet: Strata has no overrides)
    #[arg(short = 'o', long)]
    pub overrides: bool,
    /// Stop regenerating initramfs or tracking files (not supported yet)
    #[arg(short = 'i', long)]
    pub initramfs: bool,
    /// Initiate a reboot after operation is complete
    #[arg(short, long)]
    pub reboot: bool,
    /// Prevent automatic deployment finalization on shutdown
    #[arg(long, hide = true)]
    pub lock_finalization: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct CleanupArgs {
    /// Clear temporary files; will leave deployments unchanged
    #[arg(short, long)]
    pub base: bool,
    /// Remove pending deployment
    #[arg(short, long)]
    pub pending: bool,
    /// Remove rollback deployment
    #[arg(short, long)]
    pub rollback: bool,
    /// Delete cached rpm repo metadata
    #[arg(short = 'm', long)]
    pub repomd: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RefreshMdArgs {
    /// Expire current cache
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct SearchArgs {
    /// Terms to look for in package names and summaries (globs allowed)
    #[arg(value_name = "PACKAGE", required = true)]
    pub terms: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct FinalizeArgs {
    /// Checksum (or sha256 digest) of the staged deployment to finalize
    #[arg(value_name = "CHECKSUM")]
    pub checksum: Option<String>,
    /// Don't verify the checksum of the staged deployment
    #[arg(long)]
    pub allow_missing_checksum: bool,
    /// Don't error out if the staged deployment is not locked
    #[arg(long)]
    pub allow_unlocked: bool,
}

#[derive(Debug, Clone, Default, Args)]
pub struct GenerateDocsArgs {
    /// Write man pages (section 1) into DIR
    #[arg(long, value_name = "DIR")]
    pub man: Option<PathBuf>,
    /// Write bash, zsh and fish completions into DIR
    #[arg(long, value_name = "DIR")]
    pub completions: Option<PathBuf>,
}
