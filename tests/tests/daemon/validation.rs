//! Arguments and options are read as rpm-ostree reads them: unknown keys ignored, known keys
//! type-checked, what Strata cannot do yet refused by name.

use std::collections::HashMap;

use strata_api::names;
use strata_api::options::{
    ClientOptions, DeployOptions, FinalizeOptions, Modifiers, RollbackOptions,
};
use strata_tests::FixtureConfig;
use zbus::zvariant::Value;

use crate::*;

/// Calls an `OS` method with a raw body, to send what the typed proxy cannot: unknown keys
/// and values of the wrong type.
async fn call_os<B>(env: &Env, method: &str, body: &B) -> zbus::Result<zbus::Message>
where
    B: serde::Serialize + zbus::zvariant::DynamicType,
{
    let path = names::os_object_path(strata_tests::DEFAULT_OSNAME);
    env.conn
        .call_method(
            Some(names::BUS_NAME),
            path.as_str(),
            Some(names::OS_INTERFACE),
            method,
            body,
        )
        .await
}

fn raw(kv: &[(&str, Value<'static>)]) -> HashMap<String, Value<'static>> {
    kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn options_follow_rpm_ostree_and_unsupported_ones_are_named() {
    let env = Env::new(FixtureConfig::default()).await;
    let before = env.fx.sysroot().unwrap().snapshot().unwrap();
    let os = env.os().await;

    // What real clients send: every flag at its default, plus keys Strata does not know.
    // Accepted (rpm-ostree ignores the unknown ones too): the upgrade runs, finding nothing new.
    let opts = raw(&[
        ("reboot", Value::Bool(false)),
        ("dry-run", Value::Bool(false)),
        ("skip-purge", Value::Bool(false)),
        ("no-pull-base", Value::Bool(false)),
        ("no-overrides", Value::Bool(false)),
        ("colour", Value::from("red")),
    ]);
    let reply = call_os(&env, "Upgrade", &(opts,)).await.unwrap();
    let address: String = reply.body().deserialize().unwrap();
    let (ok, msg) = finished(&run_txn(&address).await);
    assert!(ok, "{msg}");

    let opts = raw(&[("reboot", Value::from("yes"))]);
    let err = call_os(&env, "Deploy", &("1", opts)).await.unwrap_err();
    let (name, msg) = error_name(&err);
    assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
    assert_eq!(
        msg,
        "Option \"reboot\" has the wrong type: expected a value of signature `b`, got a value \
         of signature `s`"
    );

    // Issue 9.8: every known key is type-checked, initiating-command-line included.
    let opts = raw(&[("initiating-command-line", Value::U32(5))]);
    let err = call_os(&env, "Upgrade", &(opts,)).await.unwrap_err();
    let (name, msg) = error_name(&err);
    assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
    assert!(
        msg.starts_with("Option \"initiating-command-line\" has the wrong type"),
        "{msg}"
    );

    let opts = DeployOptions {
        dry_run: Some(true),
        ..Default::default()
    };
    let (name, msg) = error_name(&os.upgrade(&opts).await.unwrap_err());
    assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
    assert_eq!(msg, "Option \"dry-run\" is not supported by Strata yet");

    // reboot=true only on the booted host.
    let opts = RollbackOptions {
        reboot: Some(true),
        ..Default::default()
    };
    let (_, msg) = error_name(&os.rollback(&opts).await.unwrap_err());
    assert!(msg.contains("\"reboot\""), "{msg}");

    let mods = Modifiers {
        override_remove_packages: Some(vec!["htop".to_string()]),
        ..Default::default()
    };
    let (_, msg) = error_name(&os.update_deployment(&mods, &no_opts()).await.unwrap_err());
    assert_eq!(
        msg,
        "Modifier \"override-remove-packages\" is not supported by Strata yet"
    );

    let (_, msg) = error_name(
        &os.rebase(&no_opts(), "testos:other", &["htop"])
            .await
            .unwrap_err(),
    );
    assert!(
        msg.contains("installing packages in one transaction is not supported yet")
            && msg.contains("htop"),
        "{msg}"
    );

    let (_, msg) = error_name(&os.cleanup(&["everything"]).await.unwrap_err());
    assert!(msg.contains("\"everything\""), "{msg}");

    let opts = DeployOptions {
        mode: Some("apply-now".into()),
        ..Default::default()
    };
    let (_, msg) = error_name(&os.automatic_update_trigger(&opts).await.unwrap_err());
    assert!(msg.contains("mode"), "{msg}");

    let (name, _) = error_name(&os.rebase(&no_opts(), "", &[]).await.unwrap_err());
    assert_eq!(name, names::ERROR_INVALID_REFSPEC);

    // Finalizing needs a booted host.
    let opts = FinalizeOptions {
        allow_missing_checksum: Some(true),
        ..Default::default()
    };
    let (name, msg) = error_name(&os.finalize_deployment(&opts).await.unwrap_err());
    assert_eq!(name, names::ERROR_FAILED);
    assert!(msg.contains("not the booted sysroot"), "{msg}");

    // None of this started a transaction or touched the sysroot.
    assert_eq!(
        env.sysroot().await.active_transaction_path().await.unwrap(),
        ""
    );
    assert_eq!(before, env.fx.sysroot().unwrap().snapshot().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_argument_types_are_rejected() {
    let env = Env::new(FixtureConfig::default()).await;
    let path = names::os_object_path(strata_tests::DEFAULT_OSNAME);
    let err = env
        .conn
        .call_method(
            Some(names::BUS_NAME),
            path.as_str(),
            Some(names::OS_INTERFACE),
            "Deploy",
            &(7u32, raw(&[])),
        )
        .await
        .unwrap_err();
    // zbus answers a signature mismatch itself (as org.freedesktop.zbus.Error), naming both.
    let (_, msg) = error_name(&err);
    assert!(
        msg.contains("(ua{sv})") && msg.contains("(sa{sv})"),
        "{msg}"
    );
    let err = env
        .conn
        .call_method(
            Some(names::BUS_NAME),
            path.as_str(),
            Some(names::OS_INTERFACE),
            "Upgrade",
            &(true, "x"),
        )
        .await
        .unwrap_err();
    let (_, msg) = error_name(&err);
    assert!(msg.contains("(bs)") && msg.contains("a{sv}"), "{msg}");
    assert_eq!(
        env.sysroot().await.active_transaction_path().await.unwrap(),
        ""
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn register_and_unregister_client() {
    let env = Env::new(FixtureConfig::default()).await;
    let sysroot = env.sysroot().await;
    let opts = ClientOptions {
        id: Some("test-agent".into()),
    };
    sysroot.register_client(&opts).await.unwrap();
    let address = env.os().await.cleanup(&["base"]).await.unwrap();
    let (_p, txn) = connect_txn(&address).await;
    let desc = txn.initiating_client_description().await.unwrap();
    assert!(desc.contains("id:test-agent"), "{desc}");
    // GNOME Software sends its id to UnregisterClient too; rpm-ostree ignores it.
    sysroot
        .unregister_client(&ClientOptions {
            id: Some("gnome-software".into()),
        })
        .await
        .unwrap();
    sysroot.reload().await.unwrap();
    sysroot.reload_config().await.unwrap();
}

/// Issue 9.6: names a caller gives itself end up in logs and other users' terminals: a newline
/// (forging a log line), an escape sequence or megabytes are refused, and the refusal quotes
/// the value bounded and escaped.
#[tokio::test(flavor = "multi_thread")]
async fn client_ids_and_driver_names_are_short_plain_text() {
    let env = Env::new(FixtureConfig::default()).await;
    let sysroot = env.sysroot().await;
    let huge = "x".repeat(5_000_000);
    for bad in [
        "forged\nstratad[1]: Transaction complete",
        "\u{1b}[2J",
        &huge,
    ] {
        let err = sysroot
            .register_client(&ClientOptions {
                id: Some(bad.to_string()),
            })
            .await
            .unwrap_err();
        let (name, msg) = error_name(&err);
        assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
        assert!(msg.starts_with("Option \"id\" must be"), "{msg}");
        assert!(msg.len() < 400, "{} bytes", msg.len());
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg:?}");
    }
    let opts = DeployOptions {
        register_driver: Some("Evil\u{1b}]0;pwned\u{7}".into()),
        ..Default::default()
    };
    let err = env.os().await.deploy("", &opts).await.unwrap_err();
    let (_, msg) = error_name(&err);
    assert!(
        msg.starts_with("Option \"register-driver\" must be"),
        "{msg}"
    );
    // A plain id is fine.
    sysroot
        .register_client(&ClientOptions {
            id: Some("cockpit-ostree".into()),
        })
        .await
        .unwrap();
}
