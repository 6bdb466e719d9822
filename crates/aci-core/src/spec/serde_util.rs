//! Serde helpers for ACI's lenient input: case-insensitive enums and numbers given as strings.
//!
//! ARM accepts `"protocol": "tcp"` for `TCP` and `"port": "80"` for `80`; so do we. Output is
//! always canonical (ACI's casing, numbers as numbers).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// Declares a string enum that serializes in ACI's casing and deserializes case-insensitively.
macro_rules! ci_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident default $default:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $crate::spec::serde_util::ci_enum! {
            $(#[$meta])*
            pub enum $name { $( $(#[$vmeta])* $variant => $text ),+ }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::$default
            }
        }
    };
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every accepted spelling, in ACI's casing.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value as ACI writes it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text ),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::spec::serde_util::UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $( if s.eq_ignore_ascii_case($text) { return Ok(Self::$variant); } )+
                Err($crate::spec::serde_util::UnknownVariant {
                    value: s.to_owned(),
                    expected: Self::NAMES,
                })
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use ci_enum;

/// A string that matches none of an enum's values (compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value `{value}`, expected one of {}", expected.join(", "))]
pub struct UnknownVariant {
    /// The value given.
    pub value: String,
    /// The accepted values.
    pub expected: &'static [&'static str],
}

/// Accepts an integer, an integral float or a string holding one; checks it fits `T`.
struct IntVisitor<T>(std::marker::PhantomData<T>);

impl<T: TryFrom<i128>> IntVisitor<T> {
    fn fit<E: de::Error>(v: i128) -> Result<T, E> {
        T::try_from(v).map_err(|_| E::custom(format!("number {v} is out of range")))
    }
}

impl<T: TryFrom<i128>> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer (or a string holding one)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        Self::fit(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Self::fit(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v.fract() == 0.0 && v.abs() < 1e18 {
            #[allow(clippy::cast_possible_truncation)] // integral and in range: checked above
            Self::fit(v as i128)
        } else {
            Err(E::custom(format!("expected an integer, found {v}")))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        let n: i128 =
            v.trim().parse().map_err(|_| E::custom(format!("expected an integer, found \"{v}\"")))?;
        Self::fit(n)
    }
}

/// Accepts a number or a string holding one.
struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number (or a string holding one)")
    }

    #[allow(clippy::cast_precision_loss)] // resource amounts are small
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    #[allow(clippy::cast_precision_loss)] // resource amounts are small
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        v.trim().parse().map_err(|_| E::custom(format!("expected a number, found \"{v}\"")))
    }
}

/// Accepts a boolean or the strings `true`/`false` (any case).
struct BoolVisitor;

impl Visitor<'_> for BoolVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match v.trim() {
            t if t.eq_ignore_ascii_case("true") => Ok(true),
            t if t.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(E::custom(format!("expected a boolean, found \"{v}\""))),
        }
    }
}

/// An integer read through [`IntVisitor`].
struct FlexInt<T>(T);

impl<'de, T: TryFrom<i128>> serde::Deserialize<'de> for FlexInt<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor(std::marker::PhantomData)).map(FlexInt)
    }
}

/// A number read through [`FloatVisitor`].
struct FlexFloat(f64);

impl<'de> serde::Deserialize<'de> for FlexFloat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FloatVisitor).map(FlexFloat)
    }
}

/// A boolean read through [`BoolVisitor`].
struct FlexBool(bool);

impl<'de> serde::Deserialize<'de> for FlexBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BoolVisitor).map(FlexBool)
    }
}

/// Deserializes an integer that may be written as a string (`"80"`).
pub(crate) fn int<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    FlexInt::deserialize(d).map(|v| v.0)
}

/// Like [`int`], for an optional field (use with `#[serde(default)]`); `null` is `None`.
pub(crate) fn opt_int<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128>,
{
    Option::<FlexInt<T>>::deserialize(d).map(|v| v.map(|v| v.0))
}

/// Deserializes a number that may be written as a string (`"1.5"`).
pub(crate) fn float<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    FlexFloat::deserialize(d).map(|v| v.0)
}

/// Like [`float`], for an optional field (use with `#[serde(default)]`); `null` is `None`.
pub(crate) fn opt_float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<FlexFloat>::deserialize(d).map(|v| v.map(|v| v.0))
}

/// An optional boolean that also accepts `"true"`/`"false"`; `null` is `None`.
pub(crate) fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Option::<FlexBool>::deserialize(d).map(|v| v.map(|v| v.0))
}
