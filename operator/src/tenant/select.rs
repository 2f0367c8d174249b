//! Choosing the winning bid of an order by the whitepaper's rule: the spec's filters first, then
//! the lowest price, and among equal prices the earliest bid. Pure.

use std::cmp::Ordering;

use super::plan::Filter;

/// An open bid as the tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub provider: String,
    pub bseq: u32,
    pub denom: String,
    /// Price per block in 10^-18 units of `denom` (`LegacyDec` atomics).
    pub price: u128,
    /// The height of the block the bid was placed in.
    pub created_at: i64,
    /// The provider's on-chain attributes.
    pub attributes: Vec<(String, String)>,
}

/// Why a bid was passed over (for the status and the CLI's progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Skipped {
    NotAllowed,
    Dropped,
    MissingAttribute(String),
    OverMaxPrice,
    OtherDenom,
}

/// The winner among `bids`: filters, then the lowest price, then the earliest block; bids of the
/// same price in the same block go to the lower provider address, so the choice is
/// deterministic and a restarted controller makes the same one.
pub(crate) fn choose<'a>(
    bids: &'a [Candidate],
    filter: &Filter,
    dropped: &[String],
) -> Option<&'a Candidate> {
    bids.iter()
        .filter(|b| skipped(b, filter, dropped).is_none())
        .min_by(|a, b| rank(a, b))
}

/// The reason `bid` is not eligible, if any.
pub(crate) fn skipped(bid: &Candidate, filter: &Filter, dropped: &[String]) -> Option<Skipped> {
    if dropped.contains(&bid.provider) {
        return Some(Skipped::Dropped);
    }
    if !filter.allowed_providers.is_empty() && !filter.allowed_providers.contains(&bid.provider) {
        return Some(Skipped::NotAllowed);
    }
    for (key, value) in &filter.required_attributes {
        if !bid.attributes.iter().any(|(k, v)| k == key && v == value) {
            return Some(Skipped::MissingAttribute(format!("{key}={value}")));
        }
    }
    if let Some((denom, max)) = &filter.max_price {
        if *denom != bid.denom {
            return Some(Skipped::OtherDenom);
        }
        if bid.price > *max {
            return Some(Skipped::OverMaxPrice);
        }
    }
    None
}

fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    a.price
        .cmp(&b.price)
        .then(a.created_at.cmp(&b.created_at))
        .then_with(|| a.provider.cmp(&b.provider))
        .then(a.bseq.cmp(&b.bseq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid(provider: &str, price: u128, created_at: i64) -> Candidate {
        Candidate {
            provider: provider.into(),
            bseq: 0,
            denom: "uact".into(),
            price,
            created_at,
            attributes: vec![("region".into(), "eu".into())],
        }
    }

    #[test]
    fn the_lowest_price_wins_whenever_it_came() {
        let bids = [
            bid("akash1a", 30, 10),
            bid("akash1b", 20, 12),
            bid("akash1c", 25, 11),
        ];
        let won = choose(&bids, &Filter::default(), &[]).unwrap();
        assert_eq!(won.provider, "akash1b");
    }

    #[test]
    fn among_equal_prices_the_earliest_bid_wins() {
        let bids = [
            bid("akash1a", 20, 12),
            bid("akash1b", 20, 11),
            bid("akash1c", 20, 13),
        ];
        let won = choose(&bids, &Filter::default(), &[]).unwrap();
        assert_eq!(won.provider, "akash1b");
    }

    #[test]
    fn equal_price_and_block_go_to_the_lower_address_every_time() {
        let bids = [bid("akash1z", 20, 12), bid("akash1m", 20, 12)];
        let reversed = [bids[1].clone(), bids[0].clone()];
        assert_eq!(
            choose(&bids, &Filter::default(), &[]).unwrap().provider,
            "akash1m"
        );
        assert_eq!(
            choose(&reversed, &Filter::default(), &[]).unwrap().provider,
            "akash1m"
        );
    }

    #[test]
    fn filters_apply_before_the_price_rule() {
        let bids = [bid("akash1cheap", 10, 10), bid("akash1dear", 50, 10)];
        let allow = Filter {
            allowed_providers: vec!["akash1dear".into()],
            ..Default::default()
        };
        assert_eq!(choose(&bids, &allow, &[]).unwrap().provider, "akash1dear");

        let attrs = Filter {
            required_attributes: vec![("region".into(), "us".into())],
            ..Default::default()
        };
        assert_eq!(choose(&bids, &attrs, &[]), None);
        assert_eq!(
            skipped(&bids[0], &attrs, &[]),
            Some(Skipped::MissingAttribute("region=us".into()))
        );

        let cap = Filter {
            max_price: Some(("uact".into(), 40)),
            ..Default::default()
        };
        assert_eq!(choose(&bids, &cap, &[]).unwrap().provider, "akash1cheap");
        assert_eq!(skipped(&bids[1], &cap, &[]), Some(Skipped::OverMaxPrice));
    }

    #[test]
    fn a_dropped_provider_is_not_chosen_again() {
        let bids = [bid("akash1failed", 10, 10), bid("akash1other", 50, 11)];
        let won = choose(&bids, &Filter::default(), &["akash1failed".into()]).unwrap();
        assert_eq!(won.provider, "akash1other");
    }
}
