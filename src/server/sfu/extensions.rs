//! A forwarded packet's RTP header extensions, as its leg negotiated them (RFC 8285): each
//! extension the leg carries gets the subscriber's id, every other one is dropped, and the
//! header's form (one-byte or two-byte ids) and padding are made to fit what is left. Pure:
//! the forwarding reader calls it once per packet and leg.

use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, EXTENSION_PROFILE_TWO_BYTE, Extension, Header};

use crate::server::hub::io::ExtensionMap;

/// Rewrites `header`'s extensions by `map` (see the module docs).
pub(crate) fn rewrite(header: &mut Header, map: &ExtensionMap) {
    if !header.extension && header.extensions.is_empty() {
        return;
    }
    let kept: Vec<Extension> = std::mem::take(&mut header.extensions)
        .into_iter()
        .filter_map(|e| {
            Some(Extension {
                id: map.get(e.id)?,
                payload: e.payload,
            })
        })
        .collect();
    set(header, kept);
}

/// Puts `extensions` in `header` in the smallest form that holds them: one-byte ids when every
/// id is 1–14 and every value 1–16 bytes, two-byte ids otherwise; none at all when empty.
fn set(header: &mut Header, extensions: Vec<Extension>) {
    if extensions.is_empty() {
        header.extension = false;
        header.extension_profile = 0;
        header.extensions_padding = 0;
        header.extensions = extensions;
        return;
    }
    let one_byte = extensions
        .iter()
        .all(|e| (1..=14).contains(&e.id) && (1..=16).contains(&e.payload.len()));
    let (profile, per_extension) = if one_byte {
        (EXTENSION_PROFILE_ONE_BYTE, 1)
    } else {
        (EXTENSION_PROFILE_TWO_BYTE, 2)
    };
    let length: usize = extensions
        .iter()
        .map(|e| e.payload.len() + per_extension)
        .sum();
    header.extension = true;
    header.extension_profile = profile;
    header.extensions_padding = (4 - length % 4) % 4;
    header.extensions = extensions;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use rtc::shared::marshal::{Marshal, Unmarshal};

    fn extension(id: u8, payload: &[u8]) -> Extension {
        Extension {
            id,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn with(extensions: Vec<Extension>) -> Header {
        let mut header = Header {
            version: 2,
            payload_type: 96,
            sequence_number: 7,
            timestamp: 9,
            ssrc: 0x1234,
            ..Default::default()
        };
        for e in extensions {
            header
                .set_extension(e.id, e.payload)
                .expect("a valid extension");
        }
        header
    }

    fn read_back(header: &Header) -> Header {
        let bytes = header.marshal().expect("marshals");
        Header::unmarshal(&mut bytes.clone()).expect("reads back")
    }

    #[test]
    fn ids_are_rewritten_and_unmapped_extensions_dropped() {
        // Publisher: audio level at 1, mid at 4, transport-cc at 3. Subscriber: audio level at 10.
        let mut header = with(vec![
            extension(1, &[0x85]),
            extension(4, b"0"),
            extension(3, &[0, 1]),
        ]);
        rewrite(&mut header, &ExtensionMap(vec![(1, 10)]));
        let back = read_back(&header);
        assert_eq!(back.get_extension_ids(), [10]);
        assert_eq!(back.get_extension(10).as_deref(), Some(&[0x85][..]));
        assert_eq!(back.ssrc, 0x1234);
    }

    #[test]
    fn nothing_mapped_leaves_no_extension_block() {
        let mut header = with(vec![extension(4, b"1"), extension(5, &[1, 2, 3])]);
        rewrite(&mut header, &ExtensionMap::default());
        assert!(!header.extension);
        let back = read_back(&header);
        assert!(!back.extension);
        assert_eq!(header.marshal().unwrap().len(), 12);
    }

    #[test]
    fn an_id_above_14_takes_the_two_byte_form() {
        let mut header = with(vec![extension(2, &[7, 7])]);
        rewrite(&mut header, &ExtensionMap(vec![(2, 20)]));
        assert_eq!(header.extension_profile, EXTENSION_PROFILE_TWO_BYTE);
        assert_eq!(
            read_back(&header).get_extension(20).as_deref(),
            Some(&[7, 7][..])
        );
    }

    proptest! {
        /// Whatever the publisher's extensions and the map, the packet marshals, reads back,
        /// and carries exactly the mapped extensions under the subscriber's ids.
        #[test]
        fn rewritten_headers_read_back(
            ids in proptest::collection::btree_set(1u8..=14, 0..6),
            sizes in proptest::collection::vec(1usize..=16, 6),
            targets in proptest::collection::vec(proptest::option::of(1u8..=30), 6),
        ) {
            let extensions: Vec<Extension> = ids
                .iter()
                .zip(&sizes)
                .map(|(id, n)| extension(*id, &vec![*id; *n]))
                .collect();
            let mut seen = std::collections::BTreeSet::new();
            let map = ExtensionMap(
                ids.iter()
                    .zip(&targets)
                    .filter_map(|(id, to)| Some((*id, (*to)?)))
                    .filter(|(_, to)| seen.insert(*to))
                    .collect(),
            );
            let mut header = with(extensions.clone());
            rewrite(&mut header, &map);
            let back = read_back(&header);
            let mut expected: Vec<(u8, Vec<u8>)> = extensions
                .iter()
                .filter_map(|e| Some((map.get(e.id)?, e.payload.to_vec())))
                .collect();
            expected.sort();
            let mut got: Vec<(u8, Vec<u8>)> = back
                .get_extension_ids()
                .into_iter()
                .map(|id| (id, back.get_extension(id).unwrap().to_vec()))
                .collect();
            got.sort();
            prop_assert_eq!(got, expected);
        }
    }
}
