//! CometBFT's event query language, the part clients use: conditions joined by `AND`, each
//! `key = 'text'`, `key = 5`, `key < 5` (also `<=`, `>`, `>=`), `key CONTAINS 'text'` or
//! `key EXISTS`. Keys are composite event keys (`tm.event`, `tx.height`, `message.sender`, …).
//!
//! An event (a block, a transaction) is the map CometBFT matches against: each attribute under
//! `{event type}.{attribute key}` plus the reserved keys (`tm.event`, `tx.hash`, `tx.height`). A
//! condition holds when one of the key's values satisfies it; a query when all of its conditions do.

use std::collections::BTreeMap;

use crate::events::Event;

/// The composite keys of an event and their values, in emission order.
pub type EventMap = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Text(String),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Eq(Operand),
    Lt(f64),
    Le(f64),
    Gt(f64),
    Ge(f64),
    Contains(String),
    Exists,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub key: String,
    pub op: Op,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub conditions: Vec<Condition>,
}

fn is_key_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '=' | '<' | '>' | '\'')
}

impl Query {
    /// Parses `text`; the error says what was expected, as CometBFT's parser does.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut conditions = Vec::new();
        let mut rest = text.trim_start();
        loop {
            let key_len = rest.find(|c| !is_key_char(c)).unwrap_or(rest.len());
            if key_len == 0 {
                return Err(format!("expected a key at {rest:?} in {text:?}"));
            }
            let key = rest[..key_len].to_owned();
            rest = rest[key_len..].trim_start();
            let word = |w: &str| {
                rest.get(..w.len())
                    .is_some_and(|s| s.eq_ignore_ascii_case(w))
            };
            let op = if word("EXISTS") {
                rest = &rest[6..];
                Op::Exists
            } else if word("CONTAINS") {
                rest = rest[8..].trim_start();
                let (s, r) = quoted(rest, text)?;
                rest = r;
                Op::Contains(s)
            } else {
                let (sym, r) = ["<=", ">=", "=", "<", ">"]
                    .iter()
                    .find_map(|s| rest.strip_prefix(s).map(|r| (*s, r)))
                    .ok_or_else(|| format!("expected an operator at {rest:?} in {text:?}"))?;
                rest = r.trim_start();
                let operand = if rest.starts_with('\'') {
                    let (s, r) = quoted(rest, text)?;
                    rest = r;
                    Operand::Text(s)
                } else {
                    let len = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    let n: f64 = rest[..len]
                        .parse()
                        .map_err(|_| format!("expected a number or 'text' at {rest:?}"))?;
                    rest = &rest[len..];
                    Operand::Number(n)
                };
                let number = |o: Operand| match o {
                    Operand::Number(n) => Ok(n),
                    Operand::Text(t) => t
                        .parse::<f64>()
                        .map_err(|_| format!("{sym} needs a number, not {t:?}")),
                };
                match sym {
                    "=" => Op::Eq(operand),
                    "<" => Op::Lt(number(operand)?),
                    "<=" => Op::Le(number(operand)?),
                    ">" => Op::Gt(number(operand)?),
                    _ => Op::Ge(number(operand)?),
                }
            };
            conditions.push(Condition { key, op });
            rest = rest.trim_start();
            if rest.is_empty() {
                return Ok(Self { conditions });
            }
            match rest.get(..3) {
                Some(and) if and.eq_ignore_ascii_case("AND") => rest = rest[3..].trim_start(),
                _ => return Err(format!("expected AND at {rest:?} in {text:?}")),
            }
        }
    }

    /// Whether `events` satisfies every condition.
    pub fn matches(&self, events: &EventMap) -> bool {
        self.conditions.iter().all(|c| {
            let Some(values) = events.get(&c.key) else {
                return false;
            };
            values.iter().any(|v| c.op.holds(v))
        })
    }

    /// The value of a `key = …` condition, if the query has one.
    pub fn equal_to(&self, key: &str) -> Option<&Operand> {
        self.conditions.iter().find_map(|c| match &c.op {
            Op::Eq(o) if c.key == key => Some(o),
            _ => None,
        })
    }
}

impl Op {
    fn holds(&self, value: &str) -> bool {
        let number = || value.trim().parse::<f64>().ok();
        match self {
            Self::Eq(Operand::Text(t)) => value == t,
            Self::Eq(Operand::Number(n)) => number() == Some(*n),
            Self::Lt(n) => number().is_some_and(|v| v < *n),
            Self::Le(n) => number().is_some_and(|v| v <= *n),
            Self::Gt(n) => number().is_some_and(|v| v > *n),
            Self::Ge(n) => number().is_some_and(|v| v >= *n),
            Self::Contains(t) => value.contains(t.as_str()),
            Self::Exists => true,
        }
    }
}

impl Operand {
    /// The operand as text (a number as written without a fraction when whole).
    pub fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Number(n) => n.to_string(),
        }
    }
}

fn quoted<'a>(s: &'a str, text: &str) -> Result<(String, &'a str), String> {
    let inner = s
        .strip_prefix('\'')
        .ok_or_else(|| format!("expected 'text' at {s:?} in {text:?}"))?;
    let end = inner
        .find('\'')
        .ok_or_else(|| format!("unterminated 'text' in {text:?}"))?;
    Ok((inner[..end].to_owned(), &inner[end + 1..]))
}

/// Adds each attribute of `events` under `{type}.{key}` (empty types and keys skipped).
pub fn add_events(map: &mut EventMap, events: &[Event]) {
    for e in events.iter().filter(|e| !e.kind.is_empty()) {
        for a in e.attributes.iter().filter(|a| !a.key.is_empty()) {
            map.entry(format!("{}.{}", e.kind, a.key))
                .or_default()
                .push(a.value.clone());
        }
    }
}

/// The map a transaction is matched with: its events, `tm.event = 'Tx'`, `tx.hash`, `tx.height`.
pub fn tx_event_map(events: &[Event], hash: &str, height: u64) -> EventMap {
    let mut map = EventMap::new();
    add_events(&mut map, events);
    map.entry("tm.event".into()).or_default().push("Tx".into());
    map.entry("tx.hash".into())
        .or_default()
        .push(hash.to_owned());
    map.entry("tx.height".into())
        .or_default()
        .push(height.to_string());
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> EventMap {
        let mut m = EventMap::new();
        for (k, v) in pairs {
            m.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        m
    }

    #[test]
    fn parses_and_matches_the_usual_queries() {
        let q = Query::parse("tm.event='Tx' AND tx.height=5").unwrap();
        assert_eq!(q.conditions.len(), 2);
        let tx = map(&[("tm.event", "Tx"), ("tx.height", "5"), ("tx.hash", "AB")]);
        assert!(q.matches(&tx));
        assert!(!q.matches(&map(&[("tm.event", "Tx"), ("tx.height", "6")])));
        assert!(!q.matches(&map(&[("tm.event", "NewBlock")])));

        let q = Query::parse("tm.event = 'Tx' AND message.sender = 'akash1x'").unwrap();
        let mut m = tx.clone();
        m.insert(
            "message.sender".into(),
            vec!["akash1y".into(), "akash1x".into()],
        );
        assert!(q.matches(&m));
        assert!(!q.matches(&tx));

        let q = Query::parse("tx.height >= 3 and tx.height<6 AND tx.hash EXISTS").unwrap();
        assert!(q.matches(&tx));
        assert!(
            Query::parse("a.b CONTAINS 'x y'")
                .unwrap()
                .matches(&map(&[("a.b", "ax yb")]))
        );
        assert_eq!(
            Query::parse("tx.hash='AB'").unwrap().equal_to("tx.hash"),
            Some(&Operand::Text("AB".into()))
        );
    }

    #[test]
    fn rejects_malformed_queries() {
        for bad in [
            "",
            "tm.event",
            "tm.event='Tx' OR a=1",
            "a='x",
            "a=x",
            "a<'x'",
        ] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
    }
}
