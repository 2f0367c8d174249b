use futures::{StreamExt, stream};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::Event;

use super::settled;

fn config_map(name: &str, version: &str) -> ConfigMap {
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some(name.into());
    cm.metadata.namespace = Some("ns".into());
    cm.metadata.resource_version = Some(version.into());
    cm
}

/// A list of `a` at version 1, then a relist (after a broken watch) bringing version 2.
fn list_then_relist() -> Vec<Event<ConfigMap>> {
    vec![
        Event::Init,
        Event::InitApply(config_map("a", "1")),
        Event::InitDone,
        Event::Init,
        Event::InitApply(config_map("a", "2")),
        Event::InitDone,
    ]
}

/// For each object a trigger stream yields: its version, and the version the store holds for it
/// at that moment (what a reconcile woken by it would read).
async fn woken_and_read<S>(triggers: S, store: Store<ConfigMap>) -> Vec<(String, Option<String>)>
where
    S: futures::Stream<Item = Result<ConfigMap, kube::runtime::watcher::Error>>,
{
    let mut triggers = std::pin::pin!(triggers);
    let mut seen = Vec::new();
    while let Some(Ok(cm)) = triggers.next().await {
        let read = store
            .get(&ObjectRef::from_obj(&cm))
            .and_then(|s| s.resource_version());
        seen.push((cm.resource_version().unwrap_or_default(), read));
    }
    seen
}

#[tokio::test]
async fn a_relisted_object_wakes_a_reconcile_only_once_the_store_holds_it() {
    let (store, writer) = reflector::store();
    let events = stream::iter(list_then_relist().into_iter().map(Ok)).reflect(writer);
    let seen = woken_and_read(settled(events, false), store).await;
    assert_eq!(
        seen,
        vec![
            ("1".to_owned(), Some("1".to_owned())),
            ("2".to_owned(), Some("2".to_owned()))
        ]
    );
}

/// Why `settled` exists: kube's own decoder wakes the relisted object while the store still
/// holds the copy from before the relist. If kube changes this, `settled` may go.
#[tokio::test]
async fn kube_applied_objects_wakes_a_relisted_object_before_the_store_holds_it() {
    let (store, writer) = reflector::store();
    let events = stream::iter(list_then_relist().into_iter().map(Ok))
        .reflect(writer)
        .applied_objects();
    let seen = woken_and_read(events, store).await;
    assert_eq!(seen[1], ("2".to_owned(), Some("1".to_owned())));
}

#[tokio::test]
async fn applies_pass_at_once_and_deletes_only_when_asked_for() {
    let events = || {
        stream::iter(
            vec![
                Event::Apply(config_map("a", "3")),
                Event::Delete(config_map("b", "4")),
            ]
            .into_iter()
            .map(Ok),
        )
    };
    let versions = |s: Vec<Result<ConfigMap, _>>| -> Vec<String> {
        s.into_iter()
            .map(|r| r.unwrap().resource_version().unwrap_or_default())
            .collect()
    };
    assert_eq!(
        versions(settled(events(), true).collect().await),
        ["3", "4"]
    );
    assert_eq!(versions(settled(events(), false).collect().await), ["3"]);
}

#[tokio::test]
async fn a_list_cut_short_by_a_new_one_wakes_only_the_new_ones_objects() {
    let events = stream::iter(
        vec![
            Event::Init,
            Event::InitApply(config_map("a", "1")),
            // The list failed part way; the watcher starts over.
            Event::Init,
            Event::InitApply(config_map("b", "2")),
            Event::InitDone,
        ]
        .into_iter()
        .map(Ok),
    );
    let names: Vec<String> = settled(events, false)
        .map(|r| r.unwrap().name_any())
        .collect()
        .await;
    assert_eq!(names, ["b"]);
}

#[tokio::test]
async fn a_watch_error_is_passed_on() {
    let events = stream::iter(vec![
        Err(kube::runtime::watcher::Error::NoResourceVersion),
        Ok(Event::Apply(config_map("a", "1"))),
    ]);
    let out: Vec<_> = settled(events, false).collect().await;
    assert!(matches!(
        out[0],
        Err(kube::runtime::watcher::Error::NoResourceVersion)
    ));
    assert!(out[1].is_ok());
}
