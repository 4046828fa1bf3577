//! Properties, ObjectManager and the cached state.

use std::time::Duration;

use futures_util::StreamExt;
use strata_api::names;
use strata_tests::{FixtureConfig, OsRelease, DEFAULT_OSNAME};
use zbus::fdo::ObjectManagerProxy;

use crate::*;

#[tokio::test(flavor = "multi_thread")]
async fn properties_and_object_manager() {
    let env = Env::new(FixtureConfig::default()).await;
    let sysroot = env.sysroot().await;
    let expected = env.fx.sysroot().unwrap().deployments().unwrap();

    let deps = sysroot.deployments().await.unwrap();
    assert_eq!(deps.len(), expected.len());
    assert_eq!(dict_str(&deps[0], "checksum"), expected[0].checksum);
    assert_eq!(dict_str(&deps[0], "osname"), DEFAULT_OSNAME);
    assert_eq!(
        dict_str(&deps[0], "id"),
        format!(
            "{DEFAULT_OSNAME}-{}.{}",
            expected[0].checksum, expected[0].serial
        )
    );
    assert_eq!(deps[0]["serial"].value_signature().to_string(), "i");
    assert_eq!(deps[0]["booted"].value_signature().to_string(), "b");
    assert_eq!(deps[0]["packages"].value_signature().to_string(), "as");
    assert_eq!(dict_str(&deps[0], "origin"), env.fx.refspec());

    assert_eq!(
        sysroot.path().await.unwrap(),
        env.fx.sysroot().unwrap().path().display().to_string()
    );
    // A test sysroot is not booted.
    assert_eq!(sysroot.booted().await.unwrap().as_str(), "/");
    assert_eq!(
        sysroot.active_transaction().await.unwrap(),
        (String::new(), String::new(), String::new())
    );
    assert_eq!(sysroot.active_transaction_path().await.unwrap(), "");
    assert_eq!(sysroot.automatic_update_policy().await.unwrap(), "none");

    let os_path = names::os_object_path(DEFAULT_OSNAME);
    assert_eq!(sysroot.get_os("").await.unwrap().as_str(), os_path);
    assert_eq!(
        sysroot.get_os(DEFAULT_OSNAME).await.unwrap().as_str(),
        os_path
    );
    let err = sysroot.get_os("nosuchos").await.unwrap_err();
    assert!(error_name(&err).1.contains("nosuchos"), "{err}");

    let os = env.os().await;
    assert_eq!(os.name().await.unwrap(), DEFAULT_OSNAME);
    assert_eq!(
        dict_str(&os.default_deployment().await.unwrap(), "checksum"),
        expected[0].checksum
    );
    assert!(os.booted_deployment().await.unwrap().is_empty());
    assert!(os.rollback_deployment().await.unwrap().is_empty());
    assert!(os.cached_update().await.unwrap().is_empty());
    assert!(!os.has_cached_update_rpm_diff().await.unwrap());

    let om = ObjectManagerProxy::builder(&env.conn)
        .destination(names::BUS_NAME)
        .unwrap()
        .path(names::BASE_PATH)
        .unwrap()
        .build()
        .await
        .unwrap();
    let objects = om.get_managed_objects().await.unwrap();
    let paths: Vec<String> = objects.keys().map(|p| p.to_string()).collect();
    assert!(
        paths.contains(&names::SYSROOT_PATH.to_string()),
        "{paths:?}"
    );
    assert!(paths.contains(&os_path), "{paths:?}");
    let os_ifaces = &objects[&zbus::zvariant::OwnedObjectPath::try_from(os_path.clone()).unwrap()];
    let os_props = os_ifaces
        .iter()
        .find(|(k, _)| k.as_str() == names::OS_INTERFACE)
        .map(|(_, v)| v)
        .expect("OS interface");
    assert!(os_props.contains_key("DefaultDeployment"));
    assert_eq!(
        String::try_from(os_props["Name"].try_clone().unwrap()).unwrap(),
        DEFAULT_OSNAME
    );
}

async fn properties_proxy(
    conn: &zbus::Connection,
    path: &str,
) -> zbus::fdo::PropertiesProxy<'static> {
    zbus::fdo::PropertiesProxy::builder(conn)
        .destination(names::BUS_NAME)
        .unwrap()
        .path(path.to_string())
        .unwrap()
        .build()
        .await
        .unwrap()
}

/// rpm-ostree (GDBus) answers a write to one of its properties with `PropertyReadOnly`, and a
/// name it does not have with `UnknownProperty`; zbus alone answers both with the second.
#[tokio::test(flavor = "multi_thread")]
async fn writing_a_property_is_refused_as_read_only() {
    let env = Env::new(FixtureConfig::default()).await;
    let os_path = names::os_object_path(DEFAULT_OSNAME);
    for (path, iface, property) in [
        (names::SYSROOT_PATH, names::SYSROOT_INTERFACE, "Booted"),
        (
            names::SYSROOT_PATH,
            names::STRATA_EXT_INTERFACE,
            "UpdateDriver",
        ),
        (os_path.as_str(), names::OS_INTERFACE, "Name"),
    ] {
        let props = properties_proxy(&env.conn, path).await;
        let iface = zbus::names::InterfaceName::try_from(iface).unwrap();
        let before = props.get(iface.clone(), property).await.unwrap();
        let value = zbus::zvariant::Value::from("/tmp/elsewhere");
        let err = props
            .set(iface.clone(), property, value.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, zbus::fdo::Error::PropertyReadOnly(_)),
            "{iface}.{property}: {err:?}"
        );
        assert_eq!(props.get(iface.clone(), property).await.unwrap(), before);
        let err = props
            .set(iface.clone(), "NoSuchProperty", value.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, zbus::fdo::Error::UnknownProperty(_)),
            "{err:?}"
        );
        let all = props.get_all(iface.clone()).await.unwrap();
        assert_eq!(all[property], before, "{iface}");
    }
    let props = properties_proxy(&env.conn, names::SYSROOT_PATH).await;
    let err = props
        .get_all(zbus::names::InterfaceName::try_from("org.example.Nothing").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, zbus::fdo::Error::UnknownInterface(_)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn escaped_object_path_for_stateroot_with_dash() {
    let mut config = FixtureConfig::default();
    config.sysroot_config.osname = "test-os.x".into();
    let env = Env::new(config).await;
    let sysroot = env.sysroot().await;
    let path = sysroot.get_os("").await.unwrap();
    assert_eq!(path.as_str(), "/org/projectatomic/rpmostree1/test_os_2ex");
    let os = OSProxy::builder(&env.conn)
        .path(path)
        .unwrap()
        .build()
        .await
        .unwrap();
    assert_eq!(os.name().await.unwrap(), "test-os.x");
}

#[tokio::test(flavor = "multi_thread")]
async fn outside_change_shows_up_in_properties() {
    let env = Env::new(FixtureConfig::default()).await;
    // A caching proxy: it only learns about the change through PropertiesChanged.
    let cached = SysrootProxy::new(&env.conn).await.unwrap();
    assert_eq!(cached.deployments().await.unwrap().len(), 1);
    let mut changes = cached.receive_deployments_changed().await;
    let v2 = env.fx.commit(&OsRelease::new("2")).unwrap();
    env.fx.sysroot().unwrap().upgrade_cli().unwrap();

    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(c) = changes.next().await {
            let deps = c.get().await.unwrap();
            if deps.len() == 2 {
                assert_eq!(dict_str(&deps[0], "checksum"), v2);
                return;
            }
        }
    })
    .await
    .expect("PropertiesChanged for Deployments after ostree admin deploy");

    // An uncached read sees it too, and the OS object now has a rollback deployment.
    let deps = env.sysroot().await.deployments().await.unwrap();
    assert_eq!(deps.len(), 2);
    let os = env.os().await;
    assert_eq!(
        dict_str(&os.rollback_deployment().await.unwrap(), "checksum"),
        env.fx.first_commit()
    );
}

/// An origin edited in place by another tool (`ostree admin set-origin` replaces the origin
/// file; the deployment list stays the same) reaches a caching client as PropertiesChanged.
#[tokio::test(flavor = "multi_thread")]
async fn outside_origin_edit_is_published() {
    let env = Env::new(FixtureConfig::default()).await;
    let cached = SysrootProxy::new(&env.conn).await.unwrap();
    assert_eq!(
        dict_str(&cached.deployments().await.unwrap()[0], "origin"),
        env.fx.refspec()
    );
    let mut changes = cached.receive_deployments_changed().await;
    let sysroot = env.fx.sysroot().unwrap();
    strata_tests::cmd::ostree([
        "admin",
        "set-origin",
        "--index=0",
        &format!("--sysroot={}", sysroot.path().display()),
        "elsewhere",
        env.fx.url(),
        "other/ref",
    ])
    .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(c) = changes.next().await {
            let deps = c.get().await.unwrap();
            if dict_str(&deps[0], "origin") == "elsewhere:other/ref" {
                return;
            }
        }
    })
    .await
    .expect("PropertiesChanged for Deployments after ostree admin set-origin");
}

#[tokio::test(flavor = "multi_thread")]
async fn boot_config_of_a_deployment() {
    let env = Env::new(FixtureConfig::default()).await;
    let os = env.os().await;
    let id = dict_str(&os.default_deployment().await.unwrap(), "id");
    let bc = os.get_deployment_boot_config(&id, false).await.unwrap();
    let options = dict_str(&bc, "options");
    assert!(options.contains("root=LABEL=root"), "{options}");
    assert!(
        bc.contains_key("linux") && bc.contains_key("title"),
        "{bc:?}"
    );
    assert!(!bool::try_from(&*bc["staged"]).unwrap());
    let same = os.get_deployment_boot_config("", true).await.unwrap();
    assert_eq!(dict_str(&same, "options"), options);
    // The booted deployment is host state: a sysroot that is not running has none (issue 9.1;
    // this used to answer with the merge deployment).
    let err = os.get_deployment_boot_config("", false).await.unwrap_err();
    assert!(
        error_name(&err).1.contains("is not the booted sysroot"),
        "{err}"
    );
    let err = os
        .get_deployment_boot_config("nope", false)
        .await
        .unwrap_err();
    assert!(error_name(&err).1.contains("nope"), "{err}");
}

/// rpm-ostree's experimental interface is on each OS object; a member whose feature Strata
/// does not have answers `NotSupported` naming it, never `UnknownMethod`, and the interface's
/// (empty) properties read as GDBus serves them.
#[tokio::test(flavor = "multi_thread")]
async fn members_strata_lacks_answer_not_supported() {
    let env = Env::new(FixtureConfig::default()).await;
    let os_path = names::os_object_path(DEFAULT_OSNAME);
    let experimental = "org.projectatomic.rpmostree1.OSExperimental";
    let call =
        |iface: &'static str, method: &'static str, body: zbus::zvariant::Structure<'static>| {
            let conn = env.conn.clone();
            let path = os_path.clone();
            async move {
                conn.call_method(
                    Some(names::BUS_NAME),
                    path.as_str(),
                    Some(iface),
                    method,
                    &body,
                )
                .await
                .unwrap_err()
            }
        };
    let opts = std::collections::HashMap::<String, zbus::zvariant::Value<'_>>::new();
    let err = call(
        experimental,
        "LiveFs",
        zbus::zvariant::StructureBuilder::new()
            .add_field(opts.clone())
            .build()
            .unwrap(),
    )
    .await;
    let (name, msg) = error_name(&err);
    assert_eq!(name, "org.freedesktop.DBus.Error.NotSupported");
    assert!(msg.contains("LiveFs"), "{msg}");
    let err = call(
        names::OS_INTERFACE,
        "SetInitramfsState",
        zbus::zvariant::StructureBuilder::new()
            .add_field(true)
            .add_field(Vec::<String>::new())
            .add_field(opts)
            .build()
            .unwrap(),
    )
    .await;
    let (name, msg) = error_name(&err);
    assert_eq!(name, "org.freedesktop.DBus.Error.NotSupported");
    assert!(msg.contains("SetInitramfsState"), "{msg}");

    let props = properties_proxy(&env.conn, &os_path).await;
    let iface = zbus::names::InterfaceName::try_from(experimental).unwrap();
    assert!(props.get_all(iface).await.unwrap().is_empty());
}
