//! Bounds on what a gRPC `SendManifest` request may decode to, checked on its protobuf bytes
//! before anything is decoded.
//!
//! A repeated field costs two bytes on the wire (tag and a zero length) and a whole struct once
//! decoded: a 4 MiB message of empty `Service`s decodes to about a gigabyte. Only repeated fields
//! grow when a message is decoded (a singular field seen twice is merged or replaced), so their
//! elements are what is counted: per parent, with the field's path in the refusal, and in all.

/// The most elements of all repeated fields of one request together. With the per-field limits
/// below this keeps a decoded manifest to some ten megabytes.
pub(crate) const MAX_ELEMENTS: usize = 65_536;

/// A message of the request, as far as its repeated and nested fields go.
struct Message {
    fields: &'static [Field],
}

struct Field {
    number: u32,
    name: &'static str,
    /// At most this many elements in one parent; `None` for a singular field.
    max: Option<usize>,
    /// The field's message type, when it is one whose fields are counted too.
    message: Option<&'static Message>,
}

const fn repeated(number: u32, name: &'static str, max: usize) -> Field {
    Field {
        number,
        name,
        max: Some(max),
        message: None,
    }
}

const fn repeated_of(
    number: u32,
    name: &'static str,
    max: usize,
    message: &'static Message,
) -> Field {
    Field {
        number,
        name,
        max: Some(max),
        message: Some(message),
    }
}

const fn nested(number: u32, name: &'static str, message: &'static Message) -> Field {
    Field {
        number,
        name,
        max: None,
        message: Some(message),
    }
}

/// `akash.base.attributes.v1.Attribute` has no repeated fields.
const LEAF: Message = Message { fields: &[] };

/// `CPU`, `GPU`, `Memory` (attributes = 2) and `Storage` (attributes = 3).
const UNIT_WITH_ATTRIBUTES: Message = Message {
    fields: &[repeated_of(2, "attributes", 64, &LEAF)],
};
const STORAGE: Message = Message {
    fields: &[repeated_of(3, "attributes", 64, &LEAF)],
};
const RESOURCES: Message = Message {
    fields: &[
        nested(2, "cpu", &UNIT_WITH_ATTRIBUTES),
        nested(3, "memory", &UNIT_WITH_ATTRIBUTES),
        repeated_of(4, "storage", 32, &STORAGE),
        nested(5, "gpu", &UNIT_WITH_ATTRIBUTES),
        repeated_of(6, "endpoints", 256, &LEAF),
    ],
};
const HTTP_OPTIONS: Message = Message {
    fields: &[repeated(6, "next_cases", 16)],
};
const EXPOSE: Message = Message {
    fields: &[
        repeated(6, "hosts", 256),
        nested(7, "http_options", &HTTP_OPTIONS),
    ],
};
const PERMISSIONS: Message = Message {
    fields: &[repeated(1, "read", 32)],
};
const PARAMS: Message = Message {
    fields: &[
        repeated_of(1, "storage", 32, &LEAF),
        nested(11, "permissions", &PERMISSIONS),
    ],
};
const SERVICE: Message = Message {
    fields: &[
        repeated(3, "command", 256),
        repeated(4, "args", 256),
        repeated(5, "env", 1024),
        nested(6, "resources", &RESOURCES),
        repeated_of(8, "expose", 256, &EXPOSE),
        nested(9, "params", &PARAMS),
    ],
};
const GROUP: Message = Message {
    fields: &[repeated_of(2, "services", 256, &SERVICE)],
};
/// `akash.provider.lease.v1.SendManifestRequest`.
const SEND_MANIFEST: Message = Message {
    fields: &[repeated_of(2, "manifest", 64, &GROUP)],
};

/// Checks an encoded `SendManifestRequest`: `Err` names the field that has too many elements, or
/// says why the bytes are not protobuf.
pub fn check_send_manifest(bytes: &[u8]) -> Result<(), String> {
    let mut total = 0;
    walk(bytes, &SEND_MANIFEST, "", &mut total)
}

fn walk(mut bytes: &[u8], message: &Message, path: &str, total: &mut usize) -> Result<(), String> {
    let mut counts = vec![0usize; message.fields.len()];
    while !bytes.is_empty() {
        let key = varint(&mut bytes).ok_or_else(|| malformed(path))?;
        let (number, wire_type) = ((key >> 3) as u32, key & 7);
        let value = skip(&mut bytes, wire_type).ok_or_else(|| malformed(path))?;
        let Some(index) = message.fields.iter().position(|f| f.number == number) else {
            continue;
        };
        let field = &message.fields[index];
        let here = match field.max {
            Some(max) => {
                counts[index] += 1;
                *total += 1;
                if counts[index] > max {
                    return Err(format!(
                        "{}: more than {max} entries",
                        join(path, field.name)
                    ));
                }
                if *total > MAX_ELEMENTS {
                    return Err(format!(
                        "the manifest has more than {MAX_ELEMENTS} list entries in all"
                    ));
                }
                format!("{}[{}]", join(path, field.name), counts[index] - 1)
            }
            None => join(path, field.name),
        };
        if let (Some(inner), Some(value)) = (field.message, value) {
            walk(value, inner, &here, total)?;
        }
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn malformed(path: &str) -> String {
    if path.is_empty() {
        "the request is not a valid protobuf SendManifestRequest".into()
    } else {
        format!("{path}: not valid protobuf")
    }
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Passes over one value of `wire_type`; the bytes of a length-delimited one.
fn skip<'a>(bytes: &mut &'a [u8], wire_type: u64) -> Option<Option<&'a [u8]>> {
    let take = |bytes: &mut &'a [u8], n: usize| {
        let (value, rest) = bytes.split_at_checked(n)?;
        *bytes = rest;
        Some(value)
    };
    match wire_type {
        0 => varint(bytes).map(|_| None),
        1 => take(bytes, 8).map(|_| None),
        2 => {
            let len = usize::try_from(varint(bytes)?).ok()?;
            take(bytes, len).map(Some)
        }
        5 => take(bytes, 4).map(|_| None),
        // Groups (3, 4) are not proto3; anything else is not protobuf.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chain_client::akash::manifest::v2beta3 as mv;
    use chain_client::akash::provider::lease::v1::SendManifestRequest;
    use prost::Message as _;

    use super::*;

    fn service(env: usize) -> mv::Service {
        mv::Service {
            name: "web".into(),
            image: "nginx".into(),
            env: vec!["A=1".into(); env],
            expose: vec![mv::ServiceExpose {
                port: 80,
                hosts: vec!["example.com".into()],
                http_options: Some(mv::ServiceExposeHttpOptions {
                    next_cases: vec!["error".into()],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn request(groups: usize, services: usize, env: usize) -> Vec<u8> {
        SendManifestRequest {
            lease_id: None,
            manifest: (0..groups)
                .map(|i| mv::Group {
                    name: format!("g{i}"),
                    services: (0..services).map(|_| service(env)).collect(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    #[test]
    fn an_ordinary_manifest_passes() {
        check_send_manifest(&request(2, 64, 4)).expect("within every limit");
        check_send_manifest(&[]).expect("an empty request decodes to nothing");
    }

    #[test]
    fn too_many_entries_of_a_list_are_refused_with_its_path() {
        let e = check_send_manifest(&request(65, 1, 0)).unwrap_err();
        assert_eq!(e, "manifest: more than 64 entries");
        let e = check_send_manifest(&request(1, 257, 0)).unwrap_err();
        assert_eq!(e, "manifest[0].services: more than 256 entries");
        let e = check_send_manifest(&request(2, 1, 1025)).unwrap_err();
        assert_eq!(e, "manifest[0].services[0].env: more than 1024 entries");
    }

    #[test]
    fn empty_repeated_messages_cannot_add_up_past_the_total() {
        // Two groups of 64 services with 1,024 empty env entries each: under every list's limit,
        // not under the total, at two bytes per entry on the wire.
        let heavy = mv::Service {
            env: vec![String::new(); 1024],
            ..Default::default()
        };
        let bytes = SendManifestRequest {
            lease_id: None,
            manifest: vec![
                mv::Group {
                    name: String::new(),
                    services: vec![heavy; 64],
                };
                2
            ],
        }
        .encode_to_vec();
        assert!(bytes.len() < 300 << 10, "{} bytes", bytes.len());
        let e = check_send_manifest(&bytes).unwrap_err();
        assert!(e.contains("more than 65536 list entries in all"), "{e}");
    }

    #[test]
    fn bytes_that_are_not_protobuf_are_refused() {
        let e = check_send_manifest(&[0x12, 0x05, 0x0a]).unwrap_err();
        assert!(e.contains("not a valid protobuf"), "{e}");
        // A group whose service is cut short.
        let mut bytes = request(1, 1, 1);
        bytes.truncate(bytes.len() - 3);
        assert!(check_send_manifest(&bytes).is_err());
        // Wire type 7 does not exist.
        assert!(check_send_manifest(&[0x0f]).is_err());
    }

    #[test]
    fn a_request_the_checks_pass_decodes() {
        let bytes = request(3, 10, 10);
        check_send_manifest(&bytes).unwrap();
        let decoded = SendManifestRequest::decode(bytes.as_slice()).unwrap();
        assert_eq!(decoded.manifest.len(), 3);
    }
}
