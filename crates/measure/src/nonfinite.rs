//! Serde codec for `f64` fields that may hold NaN or ±∞ (a diverged run's loss, an overflowing
//! measurement): JSON has no such numbers and serde_json writes them as `null`, which then does
//! not read back as `f64`. Here a finite value is a plain number and a non-finite one is the
//! string `"NaN"`, `"inf"` or `"-inf"`, so a record reads back exactly as it was written.
//!
//! Use it as `#[serde(with = "measure::nonfinite")]` on an `f64` field, or
//! `#[serde(with = "measure::nonfinite::vec")]` on a `Vec<f64>`.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Writes `value`: a number when finite, else `"NaN"`, `"inf"` or `"-inf"`.
pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.is_finite() {
        serializer.serialize_f64(*value)
    } else if value.is_nan() {
        serializer.serialize_str("NaN")
    } else if *value > 0.0 {
        serializer.serialize_str("inf")
    } else {
        serializer.serialize_str("-inf")
    }
}

/// Reads a number, or one of the strings [`serialize`] writes.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    deserializer.deserialize_any(F64Visitor)
}

struct F64Visitor;

impl Visitor<'_> for F64Visitor {
    type Value = f64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, or \"NaN\", \"inf\" or \"-inf\"")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }
}

/// The same codec for every element of a `Vec<f64>`.
pub mod vec {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Item(#[serde(with = "super")] f64);

    /// Writes each element as [`super::serialize`] does.
    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(values.iter().map(|&v| Item(v)))
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        Ok(Vec::<Item>::deserialize(deserializer)?.into_iter().map(|i| i.0).collect())
    }
}

/// The same codec inside an `Option<f64>`.
pub mod option {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Item(#[serde(with = "super")] f64);

    /// Writes `None` as null and a value as [`super::serialize`] does.
    pub fn serialize<S: Serializer>(value: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
        value.map(Item).serialize(serializer)
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<Item>::deserialize(deserializer)?.map(|i| i.0))
    }
}

/// The same codec for every element of a `Vec<Vec<f64>>` (a grid of values).
pub mod vec2 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Row(#[serde(with = "super::vec")] Vec<f64>);

    /// Writes each row as [`super::vec::serialize`] does.
    pub fn serialize<S: Serializer>(rows: &[Vec<f64>], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(rows.iter().map(|r| Row(r.clone())))
    }

    /// Reads what [`serialize`] writes.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Vec<f64>>, D::Error> {
        Ok(Vec::<Row>::deserialize(deserializer)?.into_iter().map(|r| r.0).collect())
    }
}
