//! Status conditions, written the same way by every controller: one condition per type, the
//! list sorted by type, the transition time kept while the status does not change.

use crds::resources::{Condition, ConditionStatus, ConditionType};

/// Sets the condition `type_` in `conditions`, keeping its transition time when its status did
/// not change; the list stays sorted by type. `reason` is a CamelCase word (one of the reason
/// enums of `crds::resources`, or an error's reason).
pub(crate) fn set_condition(
    conditions: &mut Vec<Condition>,
    generation: Option<i64>,
    type_: ConditionType,
    status: ConditionStatus,
    reason: &str,
    message: &str,
) {
    let (type_, value) = (type_.as_str(), status.as_str());
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

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionStatus::{False, True};
    use ConditionType::{Ready, Valid};

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, Some(1), Ready, False, "Bidding", "a");
        let first = conditions[0].last_transition_time.clone();
        set_condition(&mut conditions, Some(2), Ready, False, "Deploying", "b");
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].last_transition_time, first);
        assert_eq!(conditions[0].reason, "Deploying");
        set_condition(&mut conditions, Some(2), Valid, True, "Valid", "");
        assert_eq!(
            conditions
                .iter()
                .map(|c| c.type_.as_str())
                .collect::<Vec<_>>(),
            ["Ready", "Valid"]
        );
    }
}
