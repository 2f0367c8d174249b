//! Mutations: byte-level (flips, inserts, deletes, copies, splices with another seed), and
//! structure-aware ones that keep an input well-formed one level down so that the code behind the
//! parser is reached: a JSON or YAML tree with one node changed, a protobuf message with one field
//! changed (lengths re-encoded).

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

/// SplitMix64: small, fast and reproducible from one seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Numbers at the edges of the types the code converts into.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1e308",
    "-1e308",
    "1e400",
    "0.5",
    "-0.0",
    "1.000000000000000000001",
];

/// Text that parsers and validators treat specially.
const TEXTS: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1e3",
    "0x10",
    "1Ki",
    "1Ei",
    "16Ei",
    "999999999999Ti",
    "1.5Gi",
    "512Mi",
    "-512Mi",
    "*",
    "true",
    "null",
    "~",
    "..",
    "../../etc/passwd",
    "a.b",
    "A",
    "web",
    "akash",
    "uact",
    "uakt",
    "akash1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu",
    "http",
    "TCP",
    "UDP",
    "\u{0}",
    "é",
    "\u{202e}",
    "💥",
    "-----BEGIN CERTIFICATE-----",
    "tm.event='Tx'",
    "tx.height>=1",
];

/// Tokens inserted by the text mutations: YAML and JSON syntax, anchors, tags.
const TOKENS: &[&[u8]] = &[
    b"\n",
    b"\n  ",
    b"  ",
    b"- ",
    b": ",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b"\"",
    b"'",
    b"&a ",
    b"*a",
    b"<<: ",
    b"!!str ",
    b"!!binary ",
    b"!tag ",
    b"? ",
    b"|",
    b">",
    b"#",
    b"---\n",
    b"...\n",
    b"\\u0000",
    b"\\ud800",
    b"null",
    b"true",
    b"-",
    b".",
    b"e9",
    b"0",
    b"9",
    b"\t",
    b"\r\n",
    b"%YAML 1.2\n",
];

/// The length of a "long" string or list: large enough to cross size limits, small enough to
/// keep an execution short.
const LONG: usize = 5_000;

/// The largest input a mutation makes: above every size limit of the code under test (4 MiB).
pub const MAX_INPUT: usize = (4 << 20) + 1024;

/// One to four stacked byte-level mutations of `data`; `other` is a second seed to splice from.
pub fn bytes(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        byte_once(rng, data, other);
    }
}

fn byte_once(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    let len = data.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(&[0u8, 0x7f, 0x80, 0xff, b'0', b'9', b'a', b'"', b'\\']);
        }
        2 => {
            let i = rng.below(len + 1);
            let token = *rng.pick(TOKENS);
            data.splice(i..i, token.iter().copied());
        }
        3 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            data.drain(start..end);
        }
        4 if len > 0 => {
            // Copy a range elsewhere (duplicates lines, keys, list items).
            let start = rng.below(len);
            let end = (start + 1 + rng.below(256)).min(len);
            let chunk = data[start..end].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        5 if !other.is_empty() => {
            // Splice: our head, the other seed's tail.
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        6 if len > 0 => {
            let i = rng.below(len);
            let number = rng.pick(NUMBERS).as_bytes();
            let end = (i + 1 + rng.below(8)).min(len);
            data.splice(i..end, number.iter().copied());
        }
        7 if len > 1 => {
            let i = rng.below(len);
            let j = rng.below(len);
            data.swap(i, j);
        }
        8 if len > 0 => {
            let i = rng.below(len);
            data.truncate(i);
        }
        9 if len > 0 => {
            // Repeat one byte many times (long names, deep nesting).
            let i = rng.below(len);
            let b = data[i];
            let most = if rng.one_in(8) { LONG } else { 64 };
            let n = 1 + rng.below(most);
            data.splice(i..i, std::iter::repeat_n(b, n));
        }
        10 if len > 0 => {
            let i = rng.below(len);
            data[i] = data[i].wrapping_add(rng.below(5) as u8).wrapping_sub(2);
        }
        _ => {
            let i = rng.below(len + 1);
            let b = rng.next_u64() as u8;
            data.insert(i, b);
        }
    }
}

fn number(rng: &mut Rng) -> &'static str {
    NUMBERS[rng.below(NUMBERS.len())]
}

/// An interesting JSON scalar.
fn json_scalar(rng: &mut Rng) -> Json {
    match rng.below(7) {
        0 => serde_json::from_str(number(rng)).unwrap_or(Json::Null),
        1 => Json::String((*rng.pick(TEXTS)).to_owned()),
        2 => Json::String(rng.pick(NUMBERS).to_string()),
        3 => Json::Bool(rng.one_in(2)),
        4 => Json::Null,
        5 => Json::String("x".repeat(1 + rng.below(LONG))),
        _ => Json::Number((rng.next_u64() >> rng.below(64)).into()),
    }
}

fn json_children(v: &mut Json) -> Vec<&mut Json> {
    match v {
        Json::Array(a) => a.iter_mut().collect(),
        Json::Object(m) => m.values_mut().collect(),
        _ => Vec::new(),
    }
}

/// A random node of the tree (the root included), reached by a random walk.
fn json_node<'a>(rng: &mut Rng, mut v: &'a mut Json) -> &'a mut Json {
    loop {
        if rng.one_in(4) {
            return v;
        }
        let n = json_children(v).len();
        if n == 0 {
            return v;
        }
        let i = rng.below(n);
        v = json_children(v).into_iter().nth(i).expect("a child");
    }
}

fn json_any_node(rng: &mut Rng, v: &Json) -> Json {
    let mut copy = v.clone();
    json_node(rng, &mut copy).clone()
}

/// One structural change to a JSON tree; `donor` lends subtrees.
pub fn json(rng: &mut Rng, root: &mut Json, donor: &Json) {
    let graft = json_any_node(rng, donor);
    let node = json_node(rng, root);
    match rng.below(9) {
        0 | 1 => *node = json_scalar(rng),
        2 => *node = graft,
        3 => match node {
            Json::Array(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            Json::Object(m) if !m.is_empty() => {
                let key = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                m.remove(&key);
            }
            other => *other = Json::Null,
        },
        4 => match node {
            Json::Array(a) if !a.is_empty() => {
                let item = a[rng.below(a.len())].clone();
                let n = if rng.one_in(8) { 1 + rng.below(200) } else { 1 };
                a.extend(std::iter::repeat_n(item, n));
            }
            Json::Object(m) => {
                let key = if rng.one_in(2) || m.is_empty() {
                    (*rng.pick(TEXTS)).to_owned()
                } else {
                    format!(
                        "{}x",
                        m.keys()
                            .nth(rng.below(m.len()))
                            .cloned()
                            .unwrap_or_default()
                    )
                };
                m.insert(key, json_scalar(rng));
            }
            other => *other = Json::Array(vec![other.clone()]),
        },
        5 => {
            // Change the type, keeping the content where it can.
            *node = match node.take() {
                Json::String(s) => {
                    serde_json::from_str(&s).unwrap_or(Json::Array(vec![Json::String(s)]))
                }
                Json::Number(n) => Json::String(n.to_string()),
                Json::Array(a) => a
                    .into_iter()
                    .next()
                    .unwrap_or(Json::Object(Default::default())),
                Json::Object(m) => Json::Array(m.into_iter().map(|(_, v)| v).collect()),
                Json::Bool(b) => Json::String(b.to_string()),
                Json::Null => Json::Object(Default::default()),
            }
        }
        6 => {
            if let Json::String(s) = node {
                let mut b = s.clone().into_bytes();
                bytes(rng, &mut b, &[]);
                *s = String::from_utf8_lossy(&b).into_owned();
            } else {
                *node = json_scalar(rng);
            }
        }
        7 => {
            // Nest deeply.
            let most = if rng.one_in(4) { 200 } else { 8 };
            let depth = 1 + rng.below(most);
            for _ in 0..depth {
                *node = Json::Array(vec![node.take()]);
            }
        }
        _ => {
            if let Json::Object(m) = node
                && !m.is_empty()
            {
                // Rename a key.
                let key = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                if let Some(v) = m.remove(&key) {
                    let mut b = key.into_bytes();
                    bytes(rng, &mut b, &[]);
                    m.insert(String::from_utf8_lossy(&b).into_owned(), v);
                }
            } else {
                *node = json_scalar(rng);
            }
        }
    }
}

fn yaml_scalar(rng: &mut Rng) -> Yaml {
    match rng.below(6) {
        0 => serde_yaml::from_str(number(rng)).unwrap_or(Yaml::Null),
        1 => Yaml::String((*rng.pick(TEXTS)).to_owned()),
        2 => Yaml::String(rng.pick(NUMBERS).to_string()),
        3 => Yaml::Bool(rng.one_in(2)),
        4 => Yaml::Null,
        _ => Yaml::String("x".repeat(1 + rng.below(LONG))),
    }
}

fn yaml_children(v: &mut Yaml) -> Vec<&mut Yaml> {
    match v {
        Yaml::Sequence(a) => a.iter_mut().collect(),
        Yaml::Mapping(m) => m.values_mut().collect(),
        Yaml::Tagged(t) => vec![&mut t.value],
        _ => Vec::new(),
    }
}

fn yaml_node<'a>(rng: &mut Rng, mut v: &'a mut Yaml) -> &'a mut Yaml {
    loop {
        if rng.one_in(4) {
            return v;
        }
        let n = yaml_children(v).len();
        if n == 0 {
            return v;
        }
        let i = rng.below(n);
        v = yaml_children(v).into_iter().nth(i).expect("a child");
    }
}

/// One structural change to a YAML tree; `donor` lends subtrees.
pub fn yaml(rng: &mut Rng, root: &mut Yaml, donor: &Yaml) {
    let graft = {
        let mut copy = donor.clone();
        yaml_node(rng, &mut copy).clone()
    };
    let node = yaml_node(rng, root);
    match rng.below(7) {
        0 | 1 => *node = yaml_scalar(rng),
        2 => *node = graft,
        3 => match node {
            Yaml::Sequence(a) if !a.is_empty() => {
                let i = rng.below(a.len());
                a.remove(i);
            }
            Yaml::Mapping(m) if !m.is_empty() => {
                let i = rng.below(m.len());
                if let Some(key) = m.keys().nth(i).cloned() {
                    m.remove(&key);
                }
            }
            other => *other = Yaml::Null,
        },
        4 => match node {
            Yaml::Sequence(a) if !a.is_empty() => {
                let item = a[rng.below(a.len())].clone();
                let n = if rng.one_in(8) { 1 + rng.below(100) } else { 1 };
                a.extend(std::iter::repeat_n(item, n));
            }
            Yaml::Mapping(m) => {
                let key = if rng.one_in(2) || m.is_empty() {
                    Yaml::String((*rng.pick(TEXTS)).to_owned())
                } else {
                    let k = m
                        .keys()
                        .nth(rng.below(m.len()))
                        .cloned()
                        .unwrap_or(Yaml::Null);
                    match k {
                        Yaml::String(s) => Yaml::String(format!("{s}{}", rng.below(10))),
                        other => other,
                    }
                };
                let value = if rng.one_in(2) {
                    yaml_scalar(rng)
                } else {
                    graft
                };
                m.insert(key, value);
            }
            other => *other = Yaml::Sequence(vec![other.clone()]),
        },
        5 => {
            if let Yaml::String(s) = node {
                let mut b = s.clone().into_bytes();
                bytes(rng, &mut b, &[]);
                *s = String::from_utf8_lossy(&b).into_owned();
            } else {
                *node = yaml_scalar(rng);
            }
        }
        _ => {
            *node = match std::mem::replace(node, Yaml::Null) {
                Yaml::String(s) => {
                    serde_yaml::from_str(&s).unwrap_or(Yaml::Sequence(vec![Yaml::String(s)]))
                }
                Yaml::Number(n) => Yaml::String(n.to_string()),
                Yaml::Sequence(a) => a
                    .into_iter()
                    .next()
                    .unwrap_or(Yaml::Mapping(Default::default())),
                Yaml::Mapping(m) => Yaml::Sequence(m.into_iter().map(|(_, v)| v).collect()),
                Yaml::Bool(b) => Yaml::String(b.to_string()),
                Yaml::Null => Yaml::Mapping(Default::default()),
                Yaml::Tagged(t) => t.value,
            }
        }
    }
}

/// One protobuf field as it is on the wire.
#[derive(Debug, Clone)]
enum Field {
    Varint(u32, u64),
    Fixed64(u32, u64),
    Bytes(u32, Vec<u8>),
    Fixed32(u32, u32),
}

fn read_varint(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..70).step_by(7) {
        let b = *data.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The fields of a message, or `None` when `data` is not one.
fn parse_fields(data: &[u8]) -> Option<Vec<Field>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < data.len() {
        let key = read_varint(data, &mut at)?;
        let number = u32::try_from(key >> 3).ok()?;
        if number == 0 {
            return None;
        }
        out.push(match key & 7 {
            0 => Field::Varint(number, read_varint(data, &mut at)?),
            1 => {
                let b = data.get(at..at + 8)?;
                at += 8;
                Field::Fixed64(number, u64::from_le_bytes(b.try_into().ok()?))
            }
            2 => {
                let len = usize::try_from(read_varint(data, &mut at)?).ok()?;
                let b = data.get(at..at.checked_add(len)?)?;
                at += len;
                Field::Bytes(number, b.to_vec())
            }
            5 => {
                let b = data.get(at..at + 4)?;
                at += 4;
                Field::Fixed32(number, u32::from_le_bytes(b.try_into().ok()?))
            }
            _ => return None,
        });
    }
    Some(out)
}

fn encode_fields(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in fields {
        match f {
            Field::Varint(n, v) => {
                write_varint(&mut out, u64::from(*n) << 3);
                write_varint(&mut out, *v);
            }
            Field::Fixed64(n, v) => {
                write_varint(&mut out, (u64::from(*n) << 3) | 1);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Bytes(n, b) => {
                write_varint(&mut out, (u64::from(*n) << 3) | 2);
                write_varint(&mut out, b.len() as u64);
                out.extend_from_slice(b);
            }
            Field::Fixed32(n, v) => {
                write_varint(&mut out, (u64::from(*n) << 3) | 5);
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    out
}

const VARINTS: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    0x7f,
    0x80,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
    (-1i64) as u64,
];

/// One change to a protobuf message that keeps it decodable as protobuf (down to the changed
/// field), recursing into nested messages; falls back to byte mutations for anything else.
pub fn proto(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    match parse_fields(data) {
        Some(mut fields) if !fields.is_empty() && !rng.one_in(6) => {
            proto_fields(rng, &mut fields, other, 0);
            *data = encode_fields(&fields);
        }
        _ => bytes(rng, data, other),
    }
}

fn proto_fields(rng: &mut Rng, fields: &mut Vec<Field>, other: &[u8], depth: usize) {
    let i = rng.below(fields.len());
    match rng.below(8) {
        0 => {
            fields.remove(i);
        }
        1 => {
            let f = fields[i].clone();
            let n = if rng.one_in(8) {
                1 + rng.below(LONG)
            } else {
                1
            };
            // Copies up to about MAX_INPUT bytes: stacked duplications would otherwise multiply.
            let size = encode_fields(std::slice::from_ref(&f)).len().max(1);
            fields.extend(std::iter::repeat_n(f, n.min(MAX_INPUT / size).max(1)));
        }
        2 => {
            // The same value under another field number or wire type.
            let number = match &fields[i] {
                Field::Varint(n, _)
                | Field::Fixed64(n, _)
                | Field::Bytes(n, _)
                | Field::Fixed32(n, _) => *n,
            };
            let number = if rng.one_in(2) {
                number
            } else {
                1 + rng.below(20) as u32
            };
            fields[i] = match rng.below(4) {
                0 => Field::Varint(number, *rng.pick(VARINTS)),
                1 => Field::Fixed64(number, rng.next_u64()),
                2 => Field::Fixed32(number, rng.next_u64() as u32),
                _ => Field::Bytes(
                    number,
                    other
                        .get(..rng.below(other.len() + 1))
                        .unwrap_or_default()
                        .to_vec(),
                ),
            };
        }
        3 => {
            let j = rng.below(fields.len());
            fields.swap(i, j);
        }
        _ => match &mut fields[i] {
            Field::Varint(_, v) => {
                *v = if rng.one_in(2) {
                    *rng.pick(VARINTS)
                } else {
                    v.wrapping_add(rng.below(5) as u64).wrapping_sub(2)
                };
            }
            Field::Fixed64(_, v) => *v = *rng.pick(VARINTS),
            Field::Fixed32(_, v) => *v = *rng.pick(VARINTS) as u32,
            Field::Bytes(_, b) => match parse_fields(b) {
                Some(mut inner) if !inner.is_empty() && depth < 12 && !rng.one_in(4) => {
                    proto_fields(rng, &mut inner, other, depth + 1);
                    *b = encode_fields(&inner);
                }
                _ => {
                    if rng.one_in(3) {
                        *b = rng.pick(TEXTS).as_bytes().to_vec();
                    } else if rng.one_in(3) {
                        *b = rng.pick(NUMBERS).as_bytes().to_vec();
                    } else {
                        bytes(rng, b, other);
                    }
                }
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_fields_read_back_to_the_same_bytes() {
        let _serial = crate::alloc::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        use prost::Message;
        let msg = chain_client::akash::cert::v1::MsgCreateCertificate {
            owner: "akash1x".into(),
            cert: vec![7; 300],
            pubkey: b"key".to_vec(),
        };
        let bytes = msg.encode_to_vec();
        let fields = parse_fields(&bytes).expect("a message");
        assert_eq!(fields.len(), 3);
        assert_eq!(encode_fields(&fields), bytes);
    }

    #[test]
    fn the_same_seed_gives_the_same_mutations() {
        let _serial = crate::alloc::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut data = b"{\"a\": [1, 2, {\"b\": \"c\"}]}".to_vec();
            for _ in 0..50 {
                bytes(&mut rng, &mut data, b"other");
            }
            data
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
