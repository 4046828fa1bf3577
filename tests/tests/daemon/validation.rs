//! Arguments and options are validated; nothing is silently ignored.

use strata_api::names;
use strata_tests::FixtureConfig;
use zbus::zvariant::Value;

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_options_are_rejected_by_name() {
    let env = Env::new(FixtureConfig::default()).await;
    let before = env.fx.sysroot().unwrap().snapshot().unwrap();
    let os = env.os().await;

    let mut opts = no_opts();
    opts.insert("foo", Value::Bool(true));
    let (name, msg) = error_name(&os.upgrade(opts).await.unwrap_err());
    assert_eq!(name, "org.freedesktop.DBus.Error.InvalidArgs");
    assert_eq!(msg, "Option \"foo\" is not supported by Strata yet");

    let mut opts = no_opts();
    opts.insert("reboot", Value::from("yes"));
    let (_, msg) = error_name(&os.deploy("1", opts).await.unwrap_err());
    assert_eq!(msg, "Option \"reboot\" must be a boolean (b), got s");

    // reboot=true only on the booted host.
    let mut opts = no_opts();
    opts.insert("reboot", Value::Bool(true));
    let (_, msg) = error_name(&os.rollback(opts).await.unwrap_err());
    assert!(msg.contains("\"reboot\""), "{msg}");

    let mut mods = no_opts();
    mods.insert("install-packages", Value::from(vec!["htop".to_string()]));
    let (_, msg) = error_name(&os.update_deployment(mods, no_opts()).await.unwrap_err());
    assert_eq!(
        msg,
        "Modifier \"install-packages\" is not supported by Strata yet"
    );

    let (_, msg) = error_name(
        &os.rebase(no_opts(), "testos:other", &["htop"])
            .await
            .unwrap_err(),
    );
    assert!(msg.contains("layering is not supported"), "{msg}");

    let (_, msg) = error_name(&os.cleanup(&["everything"]).await.unwrap_err());
    assert!(msg.contains("\"everything\""), "{msg}");

    let mut opts = no_opts();
    opts.insert("mode", Value::from("apply-now"));
    let (_, msg) = error_name(&os.automatic_update_trigger(opts).await.unwrap_err());
    assert!(msg.contains("mode"), "{msg}");

    let (name, _) = error_name(&os.rebase(no_opts(), "", &[]).await.unwrap_err());
    assert_eq!(name, names::ERROR_INVALID_REFSPEC);

    // Finalizing needs a booted host.
    let mut opts = no_opts();
    opts.insert("allow-missing-checksum", Value::Bool(true));
    let (name, msg) = error_name(&os.finalize_deployment(opts).await.unwrap_err());
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
            &(7u32, no_opts()),
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
    let mut opts = no_opts();
    opts.insert("id", Value::from("test-agent"));
    sysroot.register_client(opts).await.unwrap();
    let address = env.os().await.cleanup(&["base"]).await.unwrap();
    let (_p, txn) = connect_txn(&address).await;
    let desc = txn.initiating_client_description().await.unwrap();
    assert!(desc.contains("id:test-agent"), "{desc}");
    let mut bad = no_opts();
    bad.insert("colour", Value::from("red"));
    let (_, msg) = error_name(&sysroot.register_client(bad).await.unwrap_err());
    assert_eq!(msg, "Option \"colour\" is not supported by Strata yet");
    sysroot.unregister_client(no_opts()).await.unwrap();
    sysroot.reload().await.unwrap();
    sysroot.reload_config().await.unwrap();
}
