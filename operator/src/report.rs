//! What the controllers report on their resources: status conditions and Kubernetes events,
//! written the same way for `Lease` (the workload reconciler) and `Manifest` (the tenant).

use crds::resources::Condition;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder};

/// Sets the condition `type_` in `conditions`, keeping its transition time when its status did
/// not change; the list stays sorted by type.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
) {
    let previous = conditions.iter().find(|c| c.type_ == type_).cloned();
    let condition = Condition {
        type_: type_.into(),
        status: value.into(),
        reason: reason.into(),
        message: message.chars().take(2000).collect(),
        last_transition_time: match &previous {
            Some(p) if p.status == value => p.last_transition_time.clone(),
            _ => Some(jiff::Timestamp::now().to_string()),
        },
        observed_generation: generation,
    };
    conditions.retain(|c| c.type_ != type_);
    conditions.push(condition);
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// Publishes an event about `object`; a failure is only logged (events are best effort).
pub async fn publish<K>(recorder: &Recorder, object: &K, type_: EventType, reason: &str, note: &str)
where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing an event failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, Some(1), "Ready", "False", "Bidding", "a");
        let first = conditions[0].last_transition_time.clone();
        set_condition(&mut conditions, Some(2), "Ready", "False", "Deploying", "b");
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, first);
        assert_eq!(conditions[0].reason, "Deploying");
        set_condition(&mut conditions, Some(2), "Valid", "True", "Valid", "");
        assert_eq!(
            conditions
                .iter()
                .map(|c| c.type_.as_str())
                .collect::<Vec<_>>(),
            ["Ready", "Valid"]
        );
    }
}
