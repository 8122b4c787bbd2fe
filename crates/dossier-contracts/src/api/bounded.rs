//! Reading a request body into a [`Value`] without letting the input decide
//! how much memory that takes.
//!
//! A plain `serde_json::from_slice::<Value>` turns 8 MiB of `1,1,1,…` into
//! four million 32-byte values before anything can look at them. Here every
//! value stored spends one unit of a budget sized for the largest valid body;
//! once it is spent the rest of the body is still read (it must be
//! well-formed, and the lengths of the arrays being read are still counted)
//! but nothing more is kept. No valid body needs more than the budget, so a
//! body that ran out is refused, and the true lengths let a list that is far
//! over its limit be reported as exactly that.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::parse::push_token;

/// A body read within a budget of values.
#[derive(Debug)]
pub(crate) struct Document {
    /// What was kept: the whole body, unless the budget ran out.
    pub(crate) value: Value,
    /// Arrays not kept whole: their pointer and how many items they had.
    cut: Vec<(String, usize)>,
    /// Where the budget ran out: the pointer of the first value not kept.
    pub(crate) exhausted_at: Option<String>,
}

impl Document {
    /// Reads `bytes` as one JSON value, keeping at most `budget` values
    /// (every scalar, array and object counts one). Fails only on malformed
    /// JSON, nesting deeper than serde_json's limit of 128 included.
    pub(crate) fn read(bytes: &[u8], budget: usize) -> Result<Document, serde_json::Error> {
        let mut reader = Reader {
            // The root itself is one value.
            budget: budget.saturating_sub(1),
            path: Vec::new(),
            cut: Vec::new(),
            exhausted_at: None,
        };
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = Seed(&mut reader).deserialize(&mut de)?;
        de.end()?;
        Ok(Document {
            value,
            cut: reader.cut,
            exhausted_at: reader.exhausted_at,
        })
    }

    /// The number of items of the array at `pointer` as sent, also when only
    /// some of them were kept; `None` when there is no array there.
    pub(crate) fn array_len(&self, pointer: &str) -> Option<usize> {
        self.cut
            .iter()
            .find(|(at, _)| at == pointer)
            .map(|(_, len)| *len)
            .or_else(|| self.value.pointer(pointer)?.as_array().map(Vec::len))
    }
}

/// One step of the path from the root to the value being read.
enum Token {
    Key(String),
    Index(usize),
}

struct Reader {
    /// Values that may still be kept.
    budget: usize,
    /// Kept only to name arrays that are cut and where the budget ran out.
    path: Vec<Token>,
    cut: Vec<(String, usize)>,
    exhausted_at: Option<String>,
}

impl Reader {
    /// Spends one value of the budget for a child about to be read; false
    /// (and the place noted) when none is left.
    fn spend(&mut self) -> bool {
        if self.budget == 0 {
            self.note_exhausted();
            return false;
        }
        self.budget -= 1;
        true
    }

    /// Notes the current path as where the budget ran out, the first time.
    fn note_exhausted(&mut self) {
        if self.exhausted_at.is_none() {
            self.exhausted_at = Some(self.pointer());
        }
    }

    fn pointer(&self) -> String {
        let mut pointer = String::new();
        for token in &self.path {
            match token {
                Token::Key(key) => push_token(&mut pointer, key),
                Token::Index(i) => push_token(&mut pointer, &i.to_string()),
            }
        }
        pointer
    }
}

/// Reads one value whose budget unit is already spent.
struct Seed<'r>(&'r mut Reader);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so this is always a number.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let reader = self.0;
        let mut items = Vec::new();
        let mut len = 0;
        loop {
            reader.path.push(Token::Index(len));
            let more = if reader.budget > 0 {
                // Spent before the item is read, so its own items come after it.
                reader.budget -= 1;
                match seq.next_element_seed(Seed(&mut *reader))? {
                    Some(item) => {
                        items.push(item);
                        true
                    }
                    None => {
                        reader.budget += 1;
                        false
                    }
                }
            } else {
                let more = seq.next_element::<IgnoredAny>()?.is_some();
                if more {
                    reader.note_exhausted();
                }
                more
            };
            reader.path.pop();
            if !more {
                break;
            }
            len += 1;
        }
        if items.len() < len {
            reader.cut.push((reader.pointer(), len));
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let reader = self.0;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            reader.path.push(Token::Key(key));
            if reader.spend() {
                let value = map.next_value_seed(Seed(&mut *reader))?;
                if let Some(Token::Key(key)) = reader.path.pop() {
                    object.insert(key, value);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
                reader.path.pop();
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_within_the_budget_is_kept_whole() {
        let body = br#"{"a":[1,"x",null,true,{"b":-2.5}],"c":{}}"#;
        let doc = Document::read(body, 100).unwrap();
        assert_eq!(
            doc.value,
            serde_json::from_slice::<Value>(body).unwrap(),
            "the same value serde_json reads"
        );
        assert_eq!(doc.exhausted_at, None);
        assert_eq!(doc.array_len("/a"), Some(5));
        assert_eq!(doc.array_len("/c"), None);
        // Exactly the budget: root, a, its 5 items, b, c.
        assert_eq!(Document::read(body, 9).unwrap().exhausted_at, None);
        assert!(Document::read(body, 8).unwrap().exhausted_at.is_some());
    }

    #[test]
    fn past_the_budget_arrays_are_counted_not_kept() {
        let mut body = br#"{"x":{"list":["#.to_vec();
        body.extend(std::iter::repeat_n(&b"[1,2],"[..], 99_999).flatten());
        body.extend_from_slice(br#"[1,2]],"after":[1]}}"#);
        let doc = Document::read(&body, 1_000).unwrap();
        assert_eq!(doc.array_len("/x/list"), Some(100_000));
        assert!(doc.value["x"]["list"].as_array().unwrap().len() < 1_000);
        assert_eq!(doc.exhausted_at.as_deref(), Some("/x/list/332/0"));
        // Nothing after the budget ran out is kept.
        assert!(doc.value["x"].get("after").is_none());
    }

    #[test]
    fn malformed_and_too_deep_bodies_fail() {
        assert!(Document::read(b"{\"a\":", 10).is_err());
        assert!(Document::read(b"{} x", 10).is_err());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(Document::read(deep.as_bytes(), 1_000).is_err());
        // Past the budget nothing nests on the stack (serde_json skips
        // values iteratively): deep input is read safely and refused for
        // its size.
        let doc = Document::read(deep.as_bytes(), 10).unwrap();
        assert!(doc.exhausted_at.is_some());
    }
}
