use super::*;

fn reference(name: &str, uid: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("akash.network/v1".into()),
        kind: Some("Lease".into()),
        namespace: Some("akash-provider".into()),
        name: Some(name.into()),
        uid: Some(uid.into()),
        ..Default::default()
    }
}

#[test]
fn the_same_event_again_within_the_window_counts_on_the_first() {
    let mut recent = Recent::new(8, Duration::from_secs(360));
    let t0 = Instant::now();
    let key = event_key(
        &reference("a", "1"),
        EventType::Warning,
        "BackOff",
        "pull failed",
    );
    assert_eq!(recent.repeat(key, t0), None, "nothing published yet");
    recent.remember(key, "a.17".into(), t0);
    for count in 2..=4 {
        assert_eq!(
            recent.repeat(key, t0 + Duration::from_secs(60)),
            Some(Repeat {
                name: "a.17".into(),
                count
            })
        );
    }
}

#[test]
fn an_event_after_the_window_is_published_anew() {
    let mut recent = Recent::new(8, Duration::from_secs(360));
    let t0 = Instant::now();
    let key = event_key(&reference("a", "1"), EventType::Normal, "Active", "ready");
    recent.remember(key, "a.17".into(), t0);
    assert_eq!(recent.repeat(key, t0 + Duration::from_secs(360)), None);
    assert_eq!(
        recent.repeat(key, t0 + Duration::from_secs(361)),
        None,
        "the expired entry is gone, not counted on later"
    );
}

#[test]
fn another_object_type_reason_or_note_is_another_event() {
    let base = event_key(&reference("a", "1"), EventType::Normal, "Active", "ready");
    let others = [
        event_key(&reference("b", "1"), EventType::Normal, "Active", "ready"),
        event_key(&reference("a", "2"), EventType::Normal, "Active", "ready"),
        event_key(&reference("a", "1"), EventType::Warning, "Active", "ready"),
        event_key(&reference("a", "1"), EventType::Normal, "Degraded", "ready"),
        event_key(
            &reference("a", "1"),
            EventType::Normal,
            "Active",
            "1/2 ready",
        ),
    ];
    for other in others {
        assert_ne!(base, other);
    }
    assert_eq!(
        base,
        event_key(&reference("a", "1"), EventType::Normal, "Active", "ready"),
        "the key is a function of the event alone"
    );
}

#[test]
fn the_table_stays_within_its_capacity_forgetting_the_oldest_first() {
    let capacity = 16;
    let mut recent = Recent::new(capacity, Duration::from_secs(360));
    let t0 = Instant::now();
    let keys: Vec<u64> = (0..10_000)
        .map(|i| {
            event_key(
                &reference(&format!("l{i}"), "u"),
                EventType::Normal,
                "Active",
                "x",
            )
        })
        .collect();
    for (i, key) in keys.iter().enumerate() {
        recent.remember(*key, format!("l{i}"), t0 + Duration::from_millis(i as u64));
        assert!(recent.seen.len() <= capacity);
    }
    let now = t0 + Duration::from_secs(10);
    assert_eq!(recent.repeat(keys[0], now), None, "the oldest is forgotten");
    assert_eq!(
        recent.repeat(keys[keys.len() - 1], now),
        Some(Repeat {
            name: "l9999".into(),
            count: 2
        }),
        "the newest is remembered"
    );
}

#[test]
fn expired_events_make_room_before_live_ones_are_forgotten() {
    let mut recent = Recent::new(2, Duration::from_secs(360));
    let t0 = Instant::now();
    let [old, live, new] =
        ["a", "b", "c"].map(|n| event_key(&reference(n, "u"), EventType::Normal, "Active", "x"));
    recent.remember(old, "a.1".into(), t0);
    recent.remember(live, "b.1".into(), t0 + Duration::from_secs(300));
    recent.remember(new, "c.1".into(), t0 + Duration::from_secs(400));
    let now = t0 + Duration::from_secs(401);
    assert!(recent.repeat(live, now).is_some(), "the live event stays");
    assert!(recent.repeat(new, now).is_some());
    assert_eq!(recent.seen.len(), 2);
}
