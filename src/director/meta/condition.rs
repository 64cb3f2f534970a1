//! A write's condition on the key's current version (`If-None-Match: *`, `If-Match` on a
//! PUT or a copy). It is checked twice: before the body is read (to refuse early), and in
//! the index's validation of the record, which runs when the record is applied, in log
//! order, on every director alike. The second check is the one that counts: two writers
//! racing through two directors (or two threads of one) both pass the first, and only
//! the record applied first may take effect. So the condition travels with the record,
//! as its `"if"` field (FORMAT.md). The check itself is the index's (`index.rs`).

use crate::director::error::{DirectorError, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The journal field of a conditional record.
pub const CONDITION_FIELD: &str = "if";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WriteCondition {
    #[default]
    Any,
    /// The key must not exist.
    Absent,
    /// The key must exist with one of these ETags (unquoted; "*" matches any).
    EtagIs(Vec<String>),
}

impl WriteCondition {
    /// Adds the condition to a record's journal form (nothing for `Any`).
    pub fn insert_into(&self, m: &mut Map<String, Value>) -> Result<()> {
        if *self != WriteCondition::Any {
            let v = serde_json::to_value(self)
                .map_err(|e| DirectorError::Internal(format!("cannot encode a condition: {e}")))?;
            m.insert(CONDITION_FIELD.into(), v);
        }
        Ok(())
    }

    /// Takes the condition out of a record's journal form (`Any` when it has none), so
    /// that what is left reads as a plain record.
    pub fn take_from(m: &mut Map<String, Value>) -> std::result::Result<WriteCondition, String> {
        match m.remove(CONDITION_FIELD) {
            None => Ok(WriteCondition::Any),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| format!("a record's \"{CONDITION_FIELD}\" field: {e}")),
        }
    }
}

pub fn precondition_failed(why: &str) -> DirectorError {
    DirectorError::S3(
        412,
        "PreconditionFailed",
        format!("at least one of the preconditions did not hold ({why}); nothing was changed"),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn a_condition_round_trips_through_the_journal_form() {
        for c in [
            WriteCondition::Any,
            WriteCondition::Absent,
            WriteCondition::EtagIs(vec!["abc".into(), "*".into()]),
        ] {
            let mut m = Map::new();
            m.insert("type".into(), "object_put".into());
            c.insert_into(&mut m).unwrap();
            assert_eq!(m.contains_key(CONDITION_FIELD), c != WriteCondition::Any);
            assert_eq!(WriteCondition::take_from(&mut m).unwrap(), c);
            assert!(!m.contains_key(CONDITION_FIELD));
        }
        let mut m = Map::new();
        m.insert(CONDITION_FIELD.into(), "sometimes".into());
        assert!(WriteCondition::take_from(&mut m).is_err());
        let mut m = Map::new();
        m.insert(CONDITION_FIELD.into(), "absent".into());
        assert_eq!(
            WriteCondition::take_from(&mut m).unwrap(),
            WriteCondition::Absent
        );
    }
}
