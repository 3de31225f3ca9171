//! Frame enums that decode with their `type` tag read first.
//!
//! serde's derive for an internally tagged enum (`#[serde(tag = "type")]`) cannot know where the
//! tag is, so it first copies the whole frame into a generic tree and then reads the variant from
//! that tree: about half of a frame's decoding time. Our encoder always writes `type` first, as
//! other well-behaved clients do, so [`tagged_frames!`] gives a frame enum a decoder that reads
//! the tag, then the rest of the object straight into the variant's fields. A frame whose `type`
//! is not first still decodes, through a `serde_json::Value`.
//!
//! The macro takes the enum's definition (every variant has named fields; variant names are
//! written in `snake_case` on the wire) and derives nothing else: `Serialize` stays derived.

/// The first key of a frame: the tag, or another (kept for the slow path).
pub(crate) enum FirstKey {
    Type,
    Other(String),
}

impl<'de> serde::Deserialize<'de> for FirstKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = FirstKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FirstKey, E> {
                Ok(match v {
                    "type" => FirstKey::Type,
                    other => FirstKey::Other(other.to_owned()),
                })
            }
        }
        d.deserialize_identifier(KeyVisitor)
    }
}

/// A frame field that may be a request id: `op` fields are `OperationId` (requests and their
/// answers) or `Option<OperationId>` (an `error`, whose op may be unreadable).
pub(crate) trait OpField {
    fn op(&self) -> Option<crate::model::OperationId>;
}

impl OpField for crate::model::OperationId {
    fn op(&self) -> Option<crate::model::OperationId> {
        Some(*self)
    }
}

impl OpField for Option<crate::model::OperationId> {
    fn op(&self) -> Option<crate::model::OperationId> {
        *self
    }
}

/// Within `tagged_frames!`: takes field `$f` as the frame's op when its name is `op`.
macro_rules! op_field {
    ($acc:ident, op, $f:ident) => {
        $acc = $crate::protocol::tagged::OpField::op($f);
    };
    ($acc:ident, $other:ident, $f:ident) => {
        let _ = $f;
    };
}

/// Defines a frame enum (see the module docs) and its tag-first `Deserialize`.
macro_rules! tagged_frames {
    (
        $(#[$attr:meta])*
        pub enum $name:ident {
            $(
                $(#[$vattr:meta])*
                $variant:ident {
                    $( $(#[$fattr:meta])* $field:ident : $ty:ty ),* $(,)?
                }
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        pub enum $name {
            $(
                $(#[$vattr])*
                $variant {
                    $( $(#[$fattr])* $field: $ty ),*
                }
            ),*
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::{Error as _, MapAccess};

                /// The variant names as they are written.
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "snake_case")]
                enum Tag { $( $variant ),* }

                /// Reads the variant `tag` names from the fields left in `fields`.
                fn body<'de, M: MapAccess<'de>>(tag: Tag, fields: M) -> Result<$name, M::Error> {
                    use serde::de::Error as _;
                    let de = serde::de::value::MapAccessDeserializer::new(fields);
                    match tag {
                        $(
                            Tag::$variant => {
                                #[derive(serde::Deserialize)]
                                #[allow(dead_code)]
                                struct Body {
                                    $( $(#[$fattr])* $field: $ty, )*
                                    /// A second `type` key: refused, as the derive would.
                                    #[serde(rename = "type", default)]
                                    tag_again: Option<serde::de::IgnoredAny>,
                                }
                                let b = <Body as serde::Deserialize>::deserialize(de)?;
                                if b.tag_again.is_some() {
                                    return Err(M::Error::duplicate_field("type"));
                                }
                                Ok($name::$variant { $( $field: b.$field ),* })
                            }
                        )*
                    }
                }

                struct FrameVisitor;
                impl<'de> serde::de::Visitor<'de> for FrameVisitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }
                    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<$name, M::Error> {
                        use $crate::protocol::tagged::FirstKey;
                        match map.next_key::<FirstKey>()? {
                            // The usual case: the tag first, the fields straight after.
                            Some(FirstKey::Type) => {
                                let tag: Tag = map.next_value()?;
                                body(tag, map)
                            }
                            // Anything else: gather the object, then find the tag.
                            first => {
                                let mut fields = serde_json::Map::new();
                                if let Some(FirstKey::Other(key)) = first {
                                    fields.insert(key, map.next_value()?);
                                }
                                while let Some((key, value)) =
                                    map.next_entry::<String, serde_json::Value>()?
                                {
                                    if fields.contains_key(&key) {
                                        return Err(M::Error::custom(format_args!(
                                            "duplicate field `{key}`"
                                        )));
                                    }
                                    fields.insert(key, value);
                                }
                                let tag = fields.remove("type").ok_or_else(|| M::Error::missing_field("type"))?;
                                let tag: Tag = serde::Deserialize::deserialize(tag).map_err(M::Error::custom)?;
                                let fields = serde::de::value::MapDeserializer::new(fields.into_iter());
                                body(tag, fields).map_err(|e: serde_json::Error| M::Error::custom(e))
                            }
                        }
                    }
                }
                d.deserialize_map(FrameVisitor)
            }
        }

        impl $name {
            /// The request id, for frames that carry one (a field named `op`; from the
            /// definition above, so no frame can be left out).
            #[allow(dead_code)]
            pub fn op(&self) -> Option<$crate::model::OperationId> {
                match self {
                    $(
                        $name::$variant { $( $field ),* } => {
                            #[allow(unused_mut, unused_assignments)]
                            let mut op = None;
                            $( op_field!(op, $field, $field); )*
                            op
                        }
                    ),*
                }
            }

            /// This frame's `type` name, as written on the wire (for the metrics).
            #[allow(dead_code)]
            pub fn type_name(&self) -> &'static str {
                #[allow(dead_code)]
                enum Tag { $( $variant ),* }
                let at = match self {
                    $( $name::$variant { .. } => Tag::$variant as usize ),*
                };
                &Self::type_names()[at]
            }

            /// Every frame's `type` name, as written on the wire (from the definition above, so
            /// the decoder and this list cannot disagree). The decoder reads the client's; the
            /// docs test reads both.
            #[allow(dead_code)]
            pub fn type_names() -> &'static [String] {
                static NAMES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
                    #[derive(serde::Serialize)]
                    #[serde(rename_all = "snake_case")]
                    enum Tag { $( $variant ),* }
                    vec![$(
                        match serde_json::to_value(Tag::$variant) {
                            Ok(serde_json::Value::String(name)) => name,
                            _ => unreachable!("a unit variant serializes as its name"),
                        }
                    ),*]
                });
                &NAMES
            }
        }
    };
}
