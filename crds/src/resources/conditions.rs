//! The names written into status conditions, as types: the condition types of every resource and
//! the reasons each controller gives. On the wire they stay the strings they always were
//! (`as_str()`, `Display`, and `FromStr` for reading them back), so a reader and a writer can no
//! longer disagree on a spelling.

use super::common::Condition;

/// Defines a string-valued enum: `as_str()`, `Display`, `FromStr` (the exact strings) and `ALL`.
macro_rules! wire_names {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The string written on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(UnknownName(other.to_owned())),
                }
            }
        }
    };
}

/// A string that names no value of the enum it was read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);

wire_names! {
    /// The `type` of a status condition.
    ConditionType {
        /// `Lease`: the workloads run and are ready; `Manifest`: the deployment runs.
        Ready => "Ready",
        /// `Lease`: the manifest was applied to the cluster.
        Deployed => "Deployed",
        /// `Manifest`: the spec is valid.
        Valid => "Valid",
        /// `Tunnel`: the tunnel is up.
        Established => "Established",
        /// `Provider`: the provider and its certificate are on chain.
        Registered => "Registered",
    }
}

wire_names! {
    /// The `status` of a status condition.
    ConditionStatus {
        True => "True",
        False => "False",
        Unknown => "Unknown",
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

wire_names! {
    /// Reasons of the `Lease` conditions (and of the workload reconciler's events).
    LeaseReason {
        ManifestInvalid => "ManifestInvalid",
        Applied => "Applied",
        Active => "Active",
        Degraded => "Degraded",
        Deploying => "Deploying",
        Pending => "Pending",
        Closing => "Closing",
        Closed => "Closed",
    }
}

wire_names! {
    /// Reasons of the `Manifest` conditions (besides the chain flow's error reasons).
    ManifestReason {
        InvalidSpec => "InvalidSpec",
        Valid => "Valid",
        KeyUnavailable => "KeyUnavailable",
        Running => "Running",
        Degraded => "Degraded",
        Bidding => "Bidding",
        Deploying => "Deploying",
        ClosedOnChain => "ClosedOnChain",
        Creating => "Creating",
    }
}

wire_names! {
    /// Reasons of the `Tunnel` condition.
    TunnelReason {
        Connected => "Connected",
        NotConnected => "NotConnected",
    }
}

wire_names! {
    /// Reasons of the `Provider` condition (besides the registration's error reasons).
    ProviderReason {
        OnChain => "OnChain",
    }
}

impl Condition {
    /// Whether this is the condition `type_` with status `status`.
    pub fn is(&self, type_: ConditionType, status: ConditionStatus) -> bool {
        self.type_ == type_.as_str() && self.status == status.as_str()
    }
}

/// The condition `type_` in `conditions`, if there is one.
pub fn find_condition(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T], expected: &[&str])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::fmt::Display + std::str::FromStr,
        T::Err: std::fmt::Debug,
    {
        let written: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(written, expected);
        for (value, text) in all.iter().zip(expected) {
            assert_eq!(text.parse::<T>().unwrap(), *value);
        }
    }

    #[test]
    fn names_are_the_strings_on_the_wire_and_read_back() {
        round_trips(
            ConditionType::ALL,
            &["Ready", "Deployed", "Valid", "Established", "Registered"],
        );
        round_trips(ConditionStatus::ALL, &["True", "False", "Unknown"]);
        round_trips(
            LeaseReason::ALL,
            &[
                "ManifestInvalid",
                "Applied",
                "Active",
                "Degraded",
                "Deploying",
                "Pending",
                "Closing",
                "Closed",
            ],
        );
        round_trips(
            ManifestReason::ALL,
            &[
                "InvalidSpec",
                "Valid",
                "KeyUnavailable",
                "Running",
                "Degraded",
                "Bidding",
                "Deploying",
                "ClosedOnChain",
                "Creating",
            ],
        );
        round_trips(TunnelReason::ALL, &["Connected", "NotConnected"]);
        round_trips(ProviderReason::ALL, &["OnChain"]);
        assert_eq!(
            "ready".parse::<ConditionType>(),
            Err(UnknownName("ready".into()))
        );
        assert_eq!(ConditionStatus::from(true), ConditionStatus::True);
        assert_eq!(ConditionStatus::from(false), ConditionStatus::False);
    }

    #[test]
    fn a_condition_is_found_and_matched_by_its_typed_names() {
        let conditions = vec![Condition {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "Deploying".into(),
            message: String::new(),
            last_transition_time: None,
            observed_generation: None,
        }];
        let ready = find_condition(&conditions, ConditionType::Ready).unwrap();
        assert!(ready.is(ConditionType::Ready, ConditionStatus::False));
        assert!(!ready.is(ConditionType::Ready, ConditionStatus::True));
        assert!(find_condition(&conditions, ConditionType::Valid).is_none());
    }
}
