//! A room's shared state and talk: call properties (all or nothing, host rules) and messages
//! (group, numbered by the room; one-to-one, not), from a member or from the server API.

use crate::model::{
    MAX_MESSAGE_LEN, MAX_PROPERTY_KEY_LEN, MAX_PROPERTY_KEYS, MAX_PROPERTY_VALUE_LEN, MessageScope,
    PropertyChanges, PropertyUpdate, Role, Text, UserId,
};
use crate::protocol::{ErrorCode, ServerFrame};

use super::io::{Emit, Refusal, SessionId, refuse};
use super::room::Room;

/// Longest screen-share stream id, in bytes.
const MAX_STREAM_ID_LEN: usize = 64;

impl Room {
    /// Changes call properties, all or nothing.
    pub(crate) fn set_properties(
        &mut self,
        conn: SessionId,
        update: PropertyUpdate,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let sender = &self.member(conn).participant;
        let is_host = sender.role == Role::Host;
        let by = sender.user_id.clone();
        self.set_properties_as(by, is_host, update, out)
    }

    /// Changes call properties as `by` (with a host's rights if `is_host`), all or nothing.
    pub(super) fn set_properties_as(
        &mut self,
        by: UserId,
        is_host: bool,
        update: PropertyUpdate,
        out: &mut Vec<Emit>,
    ) -> Result<(), Refusal> {
        let mut next = self.properties.clone();
        match update.screen_share {
            None => {}
            Some(Some(share)) => {
                if share.user_id != by && !is_host {
                    return refuse(
                        ErrorCode::PermissionDenied,
                        "only a host may name another member as screen sharer",
                    );
                }
                self.index_of_user(&share.user_id)?;
                if share.stream_id.len() > MAX_STREAM_ID_LEN {
                    return refuse(ErrorCode::InvalidParam, "stream_id is longer than 64 bytes");
                }
                if let Some(current) = &next.screen_share
                    && current.user_id != share.user_id
                {
                    return refuse(
                        ErrorCode::ScreenShareBusy,
                        format!("`{}` is sharing their screen", current.user_id),
                    );
                }
                next.screen_share = Some(share);
            }
            Some(None) => {
                if let Some(current) = &next.screen_share
                    && current.user_id != by
                    && !is_host
                {
                    return refuse(
                        ErrorCode::PermissionDenied,
                        "only the sharer or a host may stop a screen share",
                    );
                }
                next.screen_share = None;
            }
        }
        if update.recording.is_some() && !is_host {
            return refuse(ErrorCode::PermissionDenied, "only a host may record");
        }
        if !update.custom.is_empty() && !is_host {
            return refuse(
                ErrorCode::PermissionDenied,
                "only a host may set custom properties",
            );
        }
        let mut custom_changed = Vec::new();
        for (key, value) in update.custom {
            if key.is_empty() || key.len() > MAX_PROPERTY_KEY_LEN {
                return refuse(ErrorCode::InvalidParam, "property keys are 1 to 64 bytes");
            }
            let changed = match value {
                Some(v) if v.len() > MAX_PROPERTY_VALUE_LEN => {
                    return refuse(ErrorCode::InvalidParam, "property values are at most 1 KiB");
                }
                Some(v) => next.custom.insert(key.clone(), v.clone()).as_ref() != Some(&v),
                None => next.custom.remove(&key).is_some(),
            };
            if changed {
                custom_changed.push(key);
            }
        }
        if next.custom.len() > MAX_PROPERTY_KEYS {
            return refuse(
                ErrorCode::InvalidParam,
                "a room holds at most 64 custom properties",
            );
        }
        let changes = PropertyChanges {
            screen_share: next.screen_share != self.properties.screen_share,
            recording: next.recording != self.properties.recording,
            custom: custom_changed,
        };
        if !changes.is_empty() {
            self.properties = next;
            self.emit_properties(changes, by, out);
        }
        Ok(())
    }

    /// Sends a message; returns the room sequence number a group message used.
    pub(crate) fn message(
        &mut self,
        conn: SessionId,
        to: Option<&UserId>,
        content_type: Text,
        content: Text,
        out: &mut Vec<Emit>,
    ) -> Result<Option<u64>, Refusal> {
        let from = self.member(conn).participant.user_id.clone();
        self.message_from(from, Some(conn), to, content_type, content, out)
    }

    /// Sends a message from `from` (a member, whose connection `sender` is, or the server
    /// API's backend); returns the room sequence number a group message used.
    pub(super) fn message_from(
        &mut self,
        from: UserId,
        sender: Option<SessionId>,
        to: Option<&UserId>,
        content_type: Text,
        content: Text,
        out: &mut Vec<Emit>,
    ) -> Result<Option<u64>, Refusal> {
        if content.len() > MAX_MESSAGE_LEN {
            return refuse(
                ErrorCode::MessageTooLarge,
                format!("{} bytes; the limit is {MAX_MESSAGE_LEN}", content.len()),
            );
        }
        if content_type.len() > crate::model::MAX_CONTENT_TYPE_LEN {
            return refuse(
                ErrorCode::InvalidParam,
                "content_type is longer than 128 bytes",
            );
        }
        match to {
            Some(user) => {
                let i = self.index_of_user(user)?;
                if Some(self.members[i].conn) == sender {
                    return refuse(ErrorCode::InvalidParam, "a message to oneself");
                }
                out.push(Emit::Send {
                    to: self.members[i].conn,
                    frame: ServerFrame::Message {
                        room: self.id.clone(),
                        seq: None,
                        from,
                        scope: MessageScope::OneToOne,
                        content_type,
                        content,
                    },
                });
                Ok(None)
            }
            None => {
                let seq = self.next_seq();
                let frame = ServerFrame::Message {
                    room: self.id.clone(),
                    seq: Some(seq),
                    from,
                    scope: MessageScope::Group,
                    content_type,
                    content,
                };
                let to = match sender {
                    Some(conn) => self.conns_except(conn),
                    None => self.conns(),
                };
                self.broadcast(to, frame, out);
                Ok(Some(seq))
            }
        }
    }
}
