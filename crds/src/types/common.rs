//! Types shared by several Istio APIs (`istio.type.v1beta1`, durations, percentages).

use std::{collections::BTreeMap, fmt, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `istio.type.v1beta1.WorkloadSelector`: pods whose labels contain all of `matchLabels`.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

impl WorkloadSelector {
    /// True when every selector label is present with the same value in `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// `istio.type.v1beta1.PolicyTargetReference` (Gateway API style attachment).
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// A `google.protobuf.Duration` as Istio's CRDs accept it: a Go duration string such as
/// `1s`, `0.5s`, `100ms`, `1m30s` or `2h`. Kept as a `std::time::Duration`; written back in the
/// shortest unit that is exact, so values round-trip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

impl Duration {
    /// The wrapped `std::time::Duration`.
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self(d)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    /// Go's `time.ParseDuration` grammar without the sign: one or more `<decimal><unit>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| DurationError { input: s.to_string(), reason };
        if s.is_empty() {
            return Err(err("empty"));
        }
        if s == "0" {
            return Ok(Self(std::time::Duration::ZERO));
        }
        if s.starts_with('-') {
            return Err(err("negative durations are not allowed"));
        }
        let mut rest = s.strip_prefix('+').unwrap_or(s);
        let mut total: u128 = 0; // nanoseconds
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            if num_len == 0 {
                return Err(err("expected a number"));
            }
            let (num, after) = rest.split_at(num_len);
            let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_len);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "" => return Err(err("missing unit (use ns, us, ms, s, m or h)")),
                _ => return Err(err("unknown unit (use ns, us, ms, s, m or h)")),
            };
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
                return Err(err("malformed number"));
            }
            let int: u128 =
                if int.is_empty() { 0 } else { int.parse().map_err(|_| err("number too large"))? };
            let mut frac_nanos: u128 = 0;
            let mut div: u128 = 1;
            for d in frac.bytes().take(18) {
                frac_nanos = frac_nanos * 10 + u128::from(d - b'0');
                div *= 10;
            }
            total = int
                .checked_mul(scale)
                .and_then(|v| v.checked_add(frac_nanos * scale / div))
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| err("number too large"))?;
            rest = after;
        }
        let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err("number too large"))?;
        Ok(Self(std::time::Duration::new(secs, (total % 1_000_000_000) as u32)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, scale) in [
            ("h", 3_600_000_000_000u128),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
            ("ms", 1_000_000),
            ("us", 1_000),
        ] {
            if nanos.is_multiple_of(scale) {
                return write!(f, "{}{unit}", nanos / scale);
            }
        }
        write!(f, "{nanos}ns")
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as 1s, 100ms or 1m30s."
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// `istio.networking.v1alpha3.Percent`: a percentage in [0, 100].
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Percent {
    #[serde(default)]
    #[cfg_attr(test, arbitrary(with = |u: &mut arbitrary::Unstructured| Ok(f64::from(u.int_in_range(0..=100_000u32)?) / 1000.0)))]
    pub value: f64,
}

/// A finite `Option<f64>` (NaN would make round-trip equality fail for no real reason).
#[cfg(test)]
pub(crate) fn arbitrary_finite_f64(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Option<f64>> {
    Ok(if u.arbitrary()? { Some(f64::from(u.int_in_range(0..=100_000u32)?) / 1000.0) } else { None })
}

#[cfg(test)]
impl<'a> arbitrary::Arbitrary<'a> for Duration {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Self(std::time::Duration::new(u.int_in_range(0..=100_000_000)?, u.int_in_range(0..=999_999_999)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        let ms = |n| Duration(std::time::Duration::from_millis(n));
        for (input, want) in [
            ("1s", ms(1000)),
            ("0.5s", ms(500)),
            (".5s", ms(500)),
            ("100ms", ms(100)),
            ("1m30s", ms(90_000)),
            ("2h", ms(7_200_000)),
            ("3m", ms(180_000)),
            ("0", ms(0)),
            ("1.5h", ms(5_400_000)),
        ] {
            assert_eq!(input.parse::<Duration>(), Ok(want), "{input}");
        }
        for bad in ["", "1", "s", "-1s", "1x", "1..5s", "abc"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn durations_display_round_trips() {
        for s in ["1s", "500ms", "90s", "2h", "3m", "1500us", "7ns", "0s"] {
            let d: Duration = s.parse().expect(s);
            assert_eq!(d.to_string().parse::<Duration>().expect(s), d);
        }
        assert_eq!("1m30s".parse::<Duration>().map(|d| d.to_string()), Ok("90s".to_string()));
    }
}
