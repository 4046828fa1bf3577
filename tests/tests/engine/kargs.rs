use strata_core::kargs::KargsEdit;
use strata_core::{kargs, KargsOptions, OpContext, Outcome};

use crate::*;

fn edit(f: impl FnOnce(&mut KargsEdit)) -> KargsOptions {
    let mut e = KargsEdit::default();
    f(&mut e);
    KargsOptions {
        edit: e,
        ..Default::default()
    }
}

fn options(fx: &strata_tests::Fixture, i: usize) -> String {
    fx.sysroot().unwrap().deployments().unwrap()[i]
        .options
        .clone()
        .unwrap()
}

/// The kernel arguments without libostree's own `ostree=` argument.
fn user_kargs(fx: &strata_tests::Fixture, i: usize) -> Vec<String> {
    options(fx, i)
        .split_whitespace()
        .filter(|a| !a.starts_with("ostree="))
        .map(String::from)
        .collect()
}

#[test]
fn edits_create_new_deployments() {
    let fx = fixture();
    assert_eq!(user_kargs(&fx, 0), ["root=LABEL=root", "rw", "quiet"]);
    let run = |o: KargsOptions| kargs(&open(&fx), &o, &OpContext::silent()).unwrap();

    let out = run(edit(|e| {
        e.append = vec!["foo=bar".into(), "console=ttyS0".into()]
    }));
    assert!(matches!(out, Outcome::Deployed { .. }));
    assert_eq!(
        user_kargs(&fx, 0),
        ["root=LABEL=root", "rw", "quiet", "foo=bar", "console=ttyS0"]
    );
    assert_eq!(fx.sysroot().unwrap().deployments().unwrap().len(), 2);
    // Same commit, new deployment.
    let deps = fx.sysroot().unwrap().deployments().unwrap();
    assert_eq!(deps[0].checksum, deps[1].checksum);

    run(edit(|e| e.replace = vec!["foo=bar=baz".into()]));
    assert!(user_kargs(&fx, 0).contains(&"foo=baz".to_string()));
    run(edit(|e| e.delete = vec!["quiet".into()]));
    assert!(!user_kargs(&fx, 0).contains(&"quiet".to_string()));
    run(edit(|e| {
        e.append_if_missing = vec!["rw".into(), "new".into()];
        e.delete_if_present = vec!["absent".into()];
    }));
    assert_eq!(user_kargs(&fx, 0).iter().filter(|a| *a == "rw").count(), 1);
    assert!(user_kargs(&fx, 0).contains(&"new".to_string()));
    run(edit(|e| e.replace_all = Some("root=LABEL=other ro".into())));
    assert_eq!(user_kargs(&fx, 0), ["root=LABEL=other", "ro"]);
}

#[test]
fn append_of_a_present_argument_duplicates_it_as_rpm_ostree_does() {
    let fx = fixture();
    kargs(
        &open(&fx),
        &edit(|e| e.append = vec!["quiet".into()]),
        &OpContext::silent(),
    )
    .unwrap();
    assert_eq!(
        user_kargs(&fx, 0),
        ["root=LABEL=root", "rw", "quiet", "quiet"]
    );
}

#[test]
fn no_change_is_unchanged() {
    let fx = fixture();
    let before = snapshot(&fx);
    let out = kargs(
        &open(&fx),
        &edit(|e| e.append_if_missing = vec!["rw".into()]),
        &OpContext::silent(),
    )
    .unwrap();
    assert_eq!(out, Outcome::Unchanged);
    assert_eq!(before, snapshot(&fx));
}

#[test]
fn invalid_kargs_fail_cleanly() {
    let fx = fixture();
    let cases: Vec<(KargsOptions, &str)> = vec![
        (edit(|e| e.append = vec!["foo\nbar".into()]), "newline"),
        (edit(|e| e.append = vec!["=value".into()]), "empty key"),
        (edit(|e| e.append = vec!["".into()]), "empty"),
        // Issue 9.7: a 100 KB argument would be truncated by the bootloader.
        (
            edit(|e| e.append = vec![format!("big={}", "x".repeat(100_000))]),
            "COMMAND_LINE_SIZE",
        ),
        (
            edit(|e| e.replace_all = Some(format!("big={}", "x".repeat(200_000)))),
            "COMMAND_LINE_SIZE",
        ),
        (edit(|e| e.delete = vec!["absent".into()]), "absent"),
        (edit(|e| e.replace = vec!["nokey=1".into()]), "nokey"),
        (
            KargsOptions {
                existing: Some("console=tty0 console=ttyS0".into()),
                ..edit(|e| e.delete = vec!["console".into()])
            },
            "Multiple values for key 'console'",
        ),
        (
            edit(|e| {
                e.replace_all = Some("x".into());
                e.append = vec!["y".into()];
            }),
            "",
        ),
        (
            KargsOptions {
                deploy_index: Some(7),
                ..edit(|e| e.append = vec!["z".into()])
            },
            "out of range",
        ),
    ];
    for (o, expect) in cases {
        let err = assert_fails_unchanged(&fx, |s| kargs(s, &o, &OpContext::silent()));
        assert!(err.contains(expect), "{o:?}: {err}");
    }
}

#[test]
fn deploy_index_starts_from_that_deployment() {
    let fx = fixture();
    let run = |o: KargsOptions| kargs(&open(&fx), &o, &OpContext::silent()).unwrap();
    run(edit(|e| e.append = vec!["first=1".into()]));
    // Index 1 (the original) does not have first=1: edit from there.
    run(KargsOptions {
        deploy_index: Some(1),
        ..edit(|e| e.append = vec!["second=2".into()])
    });
    let args = user_kargs(&fx, 0);
    assert!(args.contains(&"second=2".to_string()), "{args:?}");
    assert!(!args.contains(&"first=1".to_string()), "{args:?}");
}
