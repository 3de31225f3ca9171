//! The wire frames: decoding, encoding, errors, and the docs covering every frame.

use super::*;
use crate::model::{
    CallProperties, MessageScope, OperationId, Participant, Publication, Reason, Role, TrackSource,
};

#[test]
fn every_frame_type_is_documented_in_protocol_md() {
    let doc = include_str!("../../docs/protocol.md");
    for name in ClientFrame::type_names()
        .iter()
        .chain(ServerFrame::type_names())
    {
        let quoted = format!("`{name}`");
        assert!(
            doc.lines()
                .any(|l| l.starts_with("### ") && l.contains(&quoted)),
            "docs/protocol.md has no section for `{name}`"
        );
    }
}

#[test]
fn decode_tells_errors_apart() {
    assert_eq!(
        decode_client("{").unwrap_err().refusal.code,
        ErrorCode::BadJson
    );
    assert_eq!(
        decode_client("[1]").unwrap_err().refusal.code,
        ErrorCode::InvalidFrame
    );
    let e = decode_client(r#"{"type":"fly","op":7}"#).unwrap_err();
    assert_eq!(
        (e.refusal.code, e.op),
        (ErrorCode::UnknownType, Some(OperationId(7)))
    );
    let e = decode_client(r#"{"type":"kick","op":8}"#).unwrap_err();
    assert_eq!(
        (e.refusal.code, e.op),
        (ErrorCode::InvalidFrame, Some(OperationId(8)))
    );
    let big = format!(
        r#"{{"type":"leave","op":1,"pad":"{}"}}"#,
        "x".repeat(MAX_FRAME_LEN)
    );
    assert_eq!(
        decode_client(&big).unwrap_err().refusal.code,
        ErrorCode::FrameTooLarge
    );
}

#[test]
fn frames_round_trip() {
    let f = decode_client(r#"{"type":"set_properties","op":3,"custom":{"topic":"q3","old":null}}"#)
        .unwrap();
    let ClientFrame::SetProperties { op, update } = &f else {
        panic!("{f:?}")
    };
    assert_eq!(*op, OperationId(3));
    assert_eq!(update.custom.get("old"), Some(&None));
    assert_eq!(decode_client(&encode(&f)).unwrap(), f);
    let e = ServerFrame::Error {
        op: None,
        code: ErrorCode::BadJson,
        message: "x".into(),
    };
    assert_eq!(serde_json::from_str::<ServerFrame>(&encode(&e)).unwrap(), e);
}

#[test]
fn unknown_error_codes_decode() {
    let f: ServerFrame =
        serde_json::from_str(r#"{"type":"error","op":null,"code":"new_thing","message":""}"#)
            .unwrap();
    assert!(matches!(
        f,
        ServerFrame::Error {
            code: ErrorCode::Unknown,
            ..
        }
    ));
}

#[test]
fn the_tag_may_come_anywhere_and_only_once() {
    let first = decode_client(r#"{"type":"kick","op":5,"user_id":"bob"}"#).unwrap();
    let last = decode_client(r#"{"op":5,"user_id":"bob","type":"kick"}"#).unwrap();
    let middle: ClientFrame =
        serde_json::from_str(r#"{"op":5,"type":"kick","user_id":"bob","extra":[1,{"a":2}]}"#)
            .unwrap();
    assert_eq!(first, last);
    assert_eq!(first, middle);
    // Unknown fields are skipped either way; a flattened field still works with the tag later.
    let update: ClientFrame =
        serde_json::from_str(r#"{"op":2,"display_name":"Al","new":true,"type":"update"}"#).unwrap();
    assert!(
        matches!(&update, ClientFrame::Update { update, .. } if update.display_name.as_deref() == Some("Al")),
        "{update:?}"
    );
    for text in [
        r#"{"type":"leave","op":1,"type":"end"}"#,
        r#"{"op":1,"type":"leave","type":"end"}"#,
    ] {
        let err = serde_json::from_str::<ClientFrame>(text).unwrap_err();
        assert!(err.to_string().contains("duplicate field `type`"), "{err}");
        // The server's decoder then reads it as JSON does: the last value counts.
        assert_eq!(
            decode_client(text).unwrap(),
            ClientFrame::End { op: OperationId(1) }
        );
    }
    for (text, says) in [
        (r#"{"op":1}"#, "missing field `type`"),
        (r#"{"type":"fly","op":1}"#, "unknown variant `fly`"),
        (r#"{"op":1,"type":"fly"}"#, "unknown variant `fly`"),
        (r#"{"type":"kick","op":1}"#, "missing field `user_id`"),
        (r#"{"type":7}"#, ""),
        (r#"[1]"#, "invalid type"),
    ] {
        let err = serde_json::from_str::<ClientFrame>(text).unwrap_err();
        assert!(err.to_string().contains(says), "{text}: {err}");
    }
}

#[test]
fn every_server_frame_decodes_as_it_was_encoded() {
    let participant = Participant {
        user_id: "bob".into(),
        display_name: "Bob".into(),
        role: Role::Guest,
        audio: true,
        video: false,
        state: "{}".into(),
        connection: Default::default(),
        volume: Default::default(),
        net: Default::default(),
        streams: Vec::new(),
    };
    let frames = [
        ServerFrame::Welcome {
            version: 1,
            user_id: "bob".into(),
            session: 9,
            resume_key: "00ab.9".into(),
            expires_at: 1_800_000_000,
        },
        ServerFrame::Refreshed {
            op: OperationId(4),
            expires_at: 1_800_000_600,
        },
        ServerFrame::Bans {
            op: OperationId(5),
            room: "r".into(),
            bans: vec![crate::model::Ban {
                user_id: "mallory".into(),
                until_ms: Some(1_800_000_000_000),
                by: "hana".into(),
            }],
        },
        ServerFrame::Resumed {
            session: 9,
            replayed: 0,
            resync: Some(Box::new(crate::protocol::Resync {
                missed: 3,
                n: 7,
                room: None,
                invitations: vec![],
                sent_invitations: vec![],
            })),
        },
        ServerFrame::Pong {},
        ServerFrame::Joined {
            op: OperationId(1),
            room: "r".into(),
            seq: 3,
            participants: vec![participant.clone()],
            properties: CallProperties::default(),
            publications: vec![Publication::new("bob".into(), TrackSource::Camera)],
        },
        ServerFrame::Done {
            op: OperationId(2),
            seq: None,
        },
        ServerFrame::ParticipantJoined {
            room: "r".into(),
            seq: 4,
            participant,
        },
        ServerFrame::Message {
            room: "r".into(),
            seq: Some(5),
            from: "bob".into(),
            scope: MessageScope::Group,
            content_type: "text/plain".into(),
            content: "a \"quoted\" line\nand é".into(),
        },
        ServerFrame::Goodbye {
            reason: Reason::Timeout,
            reconnect: true,
        },
    ];
    for frame in frames {
        let text = encode(&frame);
        assert!(text.starts_with(r#"{"type":"#), "{text}");
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
        // Through a `Value` (another decoder, key order not kept) it reads the same.
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The generated op accessor reads the frame's `op` field, whatever its type.
        assert_eq!(
            frame.op().map(|op| op.0),
            value.get("op").and_then(|op| op.as_u64()),
            "{text}"
        );
        assert_eq!(serde_json::from_value::<ServerFrame>(value).unwrap(), frame);
    }
}

#[test]
fn the_op_of_every_client_frame_is_its_op_field() {
    let frames = [
        r#"{"type":"hello","version":1,"token":"t"}"#,
        r#"{"type":"join","op":1,"room":"r"}"#,
        r#"{"type":"leave","op":2}"#,
        r#"{"type":"publish_offer","op":3,"sdp":"v=0","source":"camera"}"#,
        r#"{"type":"subscribe_answer","op":4,"negotiation":1,"sdp":"v=0"}"#,
        r#"{"type":"ice_candidate","connection":"publish","candidate":{"candidate":"c"}}"#,
        r#"{"type":"unsubscribe","op":5,"publication":"a/camera"}"#,
    ];
    for text in frames {
        let frame = decode_client(text).unwrap();
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            frame.op().map(|op| op.0),
            value.get("op").and_then(|op| op.as_u64()),
            "{text}"
        );
    }
}

#[test]
fn nesting_is_measured_outside_strings() {
    assert!(nesting_below(r#"{"a":[[1]]}"#, 4));
    assert!(!nesting_below(r#"{"a":[[[1]]]}"#, 4));
    assert!(nesting_below(r#"{"a":"[[[[[[\"[[[["}"#, 2));
    let deep = format!(
        r#"{{"type":"leave","op":1,"x":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    assert_eq!(
        decode_client(&deep).unwrap_err().refusal.code,
        ErrorCode::BadJson
    );
}

#[test]
fn a_personal_number_is_written_last_and_read_back() {
    let frame = ServerFrame::Done {
        op: OperationId(2),
        seq: None,
    };
    let text = crate::protocol::with_number(encode(&frame), 41);
    assert_eq!(text, r#"{"type":"done","op":2,"n":41}"#);
    assert_eq!(crate::protocol::frame_number(&text), Some(41));
    assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), frame);
    // Frames without one, and look-alikes inside strings or nested objects, have none.
    assert_eq!(crate::protocol::frame_number(&encode(&frame)), None);
    assert_eq!(
        crate::protocol::frame_number(r#"{"type":"x","s":",\"n\":5}"}"#),
        None
    );
    assert_eq!(
        crate::protocol::frame_number(r#"{"type":"x","o":{"n":5}}"#),
        None
    );
    assert_eq!(crate::protocol::with_number("{}".into(), 1), r#"{"n":1}"#);
}
