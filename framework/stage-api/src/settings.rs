//! One shape for every stage's options: a typed settings struct whose
//! defaults, documentation and checks are declared once, and from which
//! both the [`OptionSpec`]s (what `vigil plugins` prints and the host
//! validates) and the reading in `create` are made.
//!
//! ```
//! use vigil_stage_api::settings::{at_least, positive, Settings};
//! use vigil_stage_api::{choice, complete_options, settings};
//!
//! choice! {
//!     /// How weights are computed.
//!     pub enum Mode {
//!         /// Drop the worst.
//!         Hard = "hard",
//!         /// Keep a mixture.
//!         Mixture = "mixture",
//!     }
//! }
//!
//! settings! {
//!     /// The stage's settings.
//!     pub struct RefinerSettings {
//!         /// weighting scheme
//!         pub mode: Mode = Mode::Mixture,
//!         /// epochs trained before refinement starts
//!         pub warmup_epochs: u32 = 5,
//!         /// moving-average window in frames
//!         pub window: usize = 10 => at_least(1),
//!         /// how much k shrinks per mini-batch
//!         pub shrink_rate: f64 = 0.005 => positive,
//!     }
//! }
//!
//! let specs = RefinerSettings::specs();
//! assert_eq!(specs[0].name.as_str(), "mode");
//! assert_eq!(specs[0].default.as_str(), "\"mixture\"");
//! assert_eq!(specs[2].doc.as_str(), "moving-average window in frames");
//!
//! // The host completes the pipeline's table from the specs; `create` reads it.
//! let given = serde_json::json!({"mode": "hard", "window": 3});
//! let options = complete_options(&specs, given.as_object().unwrap()).unwrap();
//! let settings = RefinerSettings::from_options(&options)?;
//! assert_eq!(settings, RefinerSettings { mode: Mode::Hard, window: 3, ..RefinerSettings::default() });
//!
//! // A check names the option, what it expects and what it found.
//! let given = serde_json::json!({"window": 0});
//! let options = complete_options(&specs, given.as_object().unwrap()).unwrap();
//! let error = RefinerSettings::from_options(&options).unwrap_err();
//! assert_eq!(error.message.as_str(), "option `window`: expected at least 1, found 0");
//! # Ok::<(), vigil_stage_api::StageError>(())
//! ```
//!
//! A field whose type is itself a `settings!` struct contributes all of its
//! options (shared groups, such as the two localizers' motion options).

use crate::{OptionSpec, Options, StageError};
use std::fmt::Display;
use std::path::PathBuf;

/// A settings struct made by [`settings!`](crate::settings!).
pub trait Settings: Default + Sized {
    /// The options, with `defaults` as their defaults.
    fn specs_from(defaults: &Self) -> Vec<OptionSpec>;
    /// The options, with the declared defaults: what `StageInfo` lists.
    fn specs() -> Vec<OptionSpec> {
        Self::specs_from(&Self::default())
    }
    /// Reads validated options (every declared option present) and applies
    /// each field's check; an error names the option.
    fn from_options(options: &Options) -> Result<Self, StageError>;
}

/// A type a settings field can have: one option (a number, a string, a
/// [`choice!`](crate::choice!) enum...) or a group of them (another
/// settings struct).
pub trait SettingsField: Sized {
    /// The option(s) of a field called `name` with default `default`.
    fn field_specs(name: &str, default: &Self, doc: &str) -> Vec<OptionSpec>;
    /// Reads the field called `name`.
    fn read_field(options: &Options, name: &str) -> Result<Self, StageError>;
}

/// A choice enum made by [`choice!`](crate::choice!).
pub trait Choice: Copy + 'static {
    /// Every choice's name, in declaration order.
    const NAMES: &'static [&'static str];
    /// This choice's name, as a pipeline writes it.
    fn name(self) -> &'static str;
    /// The choice called `name`, if any.
    fn parse(name: &str) -> Option<Self>;
}

/// Reads a [`Choice`] option; used by the code [`choice!`](crate::choice!)
/// generates.
pub fn read_choice<C: Choice>(options: &Options, name: &str) -> Result<C, StageError> {
    let text = options.string(name)?;
    C::parse(&text).ok_or_else(|| {
        let names: Vec<String> = C::NAMES.iter().map(|n| format!("\"{n}\"")).collect();
        StageError::invalid(format!("option `{name}`: expected one of {}, found \"{text}\"", names.join(" | ")))
    })
}

/// One line of option documentation from a field's doc comment lines.
pub fn doc_line(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Applies a field's check; used by the code [`settings!`](crate::settings!)
/// generates.
pub fn apply_check<T>(name: &str, value: &T, check: impl Fn(&T) -> Result<(), String>) -> Result<(), StageError> {
    check(value).map_err(|expected| StageError::invalid(format!("option `{name}`: {expected}")))
}

/// Check: the value is at least `min`.
pub fn at_least<T: PartialOrd + Display>(min: T) -> impl Fn(&T) -> Result<(), String> {
    move |v| if *v >= min { Ok(()) } else { Err(format!("expected at least {min}, found {v}")) }
}

/// Check: a finite number.
pub fn finite<T: Into<f64> + Copy + Display>(v: &T) -> Result<(), String> {
    if (*v).into().is_finite() {
        Ok(())
    } else {
        Err(format!("expected a finite number, found {v}"))
    }
}

/// Check: a finite number above 0 (or a whole number above 0).
pub fn positive<T: Into<f64> + Copy + Display>(v: &T) -> Result<(), String> {
    let x: f64 = (*v).into();
    if x.is_finite() && x > 0.0 {
        Ok(())
    } else {
        Err(format!("expected a number above 0, found {v}"))
    }
}

/// Check: the value is in `lo..=hi` (a NaN is not).
pub fn within<T: PartialOrd + Display>(lo: T, hi: T) -> impl Fn(&T) -> Result<(), String> {
    move |v| if *v >= lo && *v <= hi { Ok(()) } else { Err(format!("expected a value from {lo} to {hi}, found {v}")) }
}

fn one(spec: OptionSpec) -> Vec<OptionSpec> {
    vec![spec]
}

impl SettingsField for bool {
    fn field_specs(name: &str, default: &bool, doc: &str) -> Vec<OptionSpec> {
        one(OptionSpec::bool(name, *default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<bool, StageError> {
        options.bool(name)
    }
}

impl SettingsField for f64 {
    fn field_specs(name: &str, default: &f64, doc: &str) -> Vec<OptionSpec> {
        one(OptionSpec::float(name, *default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<f64, StageError> {
        options.float(name)
    }
}

/// Declared and validated as a float; read as the nearest `f32`. The
/// default is declared as the shortest decimal that reads back as it (0.2,
/// not 0.20000000298023224), as a user would write it.
impl SettingsField for f32 {
    fn field_specs(name: &str, default: &f32, doc: &str) -> Vec<OptionSpec> {
        let decimal = default.to_string().parse::<f64>().unwrap_or(f64::from(*default));
        one(OptionSpec::float(name, decimal, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<f32, StageError> {
        options.float(name).map(|v| v as f32)
    }
}

/// Whole-number fields: declared as ints; a value outside the type's range
/// (a negative count, say) is an error naming the option.
macro_rules! int_fields {
    ($($t:ty),*) => {$(
        impl SettingsField for $t {
            fn field_specs(name: &str, default: &$t, doc: &str) -> Vec<OptionSpec> {
                one(OptionSpec::int(name, i64::try_from(*default).unwrap_or(i64::MAX), doc))
            }
            fn read_field(options: &Options, name: &str) -> Result<$t, StageError> {
                let v = options.int(name)?;
                <$t>::try_from(v).map_err(|_| {
                    // An int option holds an i64, so a type as wide has no upper limit to name.
                    let expected = if i128::from(<$t>::MAX as i64) == <$t>::MAX as i128 {
                        format!("an int from {} to {}", <$t>::MIN, <$t>::MAX)
                    } else {
                        format!("an int >= {}", <$t>::MIN)
                    };
                    StageError::invalid(format!("option `{name}`: expected {expected}, found {v}"))
                })
            }
        }
    )*};
}
int_fields!(i64, i32, u8, u32, u64, usize);

impl SettingsField for String {
    fn field_specs(name: &str, default: &String, doc: &str) -> Vec<OptionSpec> {
        one(OptionSpec::string(name, default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<String, StageError> {
        options.string(name)
    }
}

/// A file or folder, resolved by the host against the pipeline file. An
/// empty default makes the option required.
impl SettingsField for PathBuf {
    fn field_specs(name: &str, default: &PathBuf, doc: &str) -> Vec<OptionSpec> {
        let default = default.to_str().filter(|d| !d.is_empty());
        one(OptionSpec::path(name, default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<PathBuf, StageError> {
        options.string(name).map(PathBuf::from)
    }
}

/// A file or folder that may be left out: empty, the default, reads as none.
impl SettingsField for Option<PathBuf> {
    fn field_specs(name: &str, default: &Option<PathBuf>, doc: &str) -> Vec<OptionSpec> {
        let default = default.as_ref().map_or(Some(""), |d| d.to_str());
        one(OptionSpec::path(name, default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<Option<PathBuf>, StageError> {
        options.string(name).map(|text| (!text.is_empty()).then(|| PathBuf::from(text)))
    }
}

impl SettingsField for Vec<String> {
    fn field_specs(name: &str, default: &Vec<String>, doc: &str) -> Vec<OptionSpec> {
        let default: Vec<&str> = default.iter().map(String::as_str).collect();
        one(OptionSpec::string_list(name, &default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<Vec<String>, StageError> {
        options.string_list(name)
    }
}

impl SettingsField for Vec<i64> {
    fn field_specs(name: &str, default: &Vec<i64>, doc: &str) -> Vec<OptionSpec> {
        one(OptionSpec::int_list(name, default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<Vec<i64>, StageError> {
        options.int_list(name)
    }
}

/// A table of name = number, in the pipeline's order.
impl SettingsField for Vec<(String, f64)> {
    fn field_specs(name: &str, default: &Vec<(String, f64)>, doc: &str) -> Vec<OptionSpec> {
        let default: Vec<(&str, f64)> = default.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        one(OptionSpec::float_table(name, &default, doc))
    }
    fn read_field(options: &Options, name: &str) -> Result<Vec<(String, f64)>, StageError> {
        options.float_table(name)
    }
}

/// Declares a stage's settings struct: each field's type, default,
/// documentation (its doc comment, which `vigil plugins NAME` prints) and,
/// after `=>`, an optional check (`fn(&T) -> Result<(), String>`, the
/// error saying what was expected and found). Generates the struct, its
/// `Default`, and [`Settings`](crate::settings::Settings) (`specs()`,
/// `from_options`). See [`crate::settings`] for an example.
#[macro_export]
macro_rules! settings {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $fvis:vis $field:ident : $ty:ty = $default:expr $(=> $check:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq)]
        $vis struct $name {
            $( $(#[doc = $doc])* $fvis $field: $ty, )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $crate::settings::Settings for $name {
            fn specs_from(defaults: &Self) -> ::std::vec::Vec<$crate::OptionSpec> {
                let mut specs = ::std::vec::Vec::new();
                $(
                    specs.extend(<$ty as $crate::settings::SettingsField>::field_specs(
                        stringify!($field),
                        &defaults.$field,
                        &$crate::settings::doc_line(&[$($doc),*]),
                    ));
                )*
                specs
            }

            fn from_options(options: &$crate::Options) -> ::std::result::Result<Self, $crate::StageError> {
                ::std::result::Result::Ok($name {
                    $( $field: {
                        let value = <$ty as $crate::settings::SettingsField>::read_field(options, stringify!($field))?;
                        $( $crate::settings::apply_check(stringify!($field), &value, $check)?; )?
                        value
                    }, )*
                })
            }
        }

        /// A group of options: its fields' options, its field name unused.
        impl $crate::settings::SettingsField for $name {
            fn field_specs(_: &str, default: &Self, _: &str) -> ::std::vec::Vec<$crate::OptionSpec> {
                <Self as $crate::settings::Settings>::specs_from(default)
            }
            fn read_field(options: &$crate::Options, _: &str) -> ::std::result::Result<Self, $crate::StageError> {
                <Self as $crate::settings::Settings>::from_options(options)
            }
        }
    };
}

/// Declares an enum whose variants a pipeline names with strings: the
/// enum, [`Choice`](crate::settings::Choice) (names, parsing) and
/// `Display`, and a settings field of type
/// [`OptionType::Choice`](crate::OptionType::Choice). See
/// [`crate::settings`] for an example.
#[macro_export]
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $crate::settings::Choice for $name {
            const NAMES: &'static [&'static str] = &[$($text),+];
            fn name(self) -> &'static str {
                match self { $( $name::$variant => $text, )+ }
            }
            fn parse(name: &str) -> ::std::option::Option<Self> {
                match name { $( $text => ::std::option::Option::Some($name::$variant), )+ _ => ::std::option::Option::None }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.pad($crate::settings::Choice::name(*self))
            }
        }

        impl $crate::settings::SettingsField for $name {
            fn field_specs(name: &str, default: &Self, doc: &str) -> ::std::vec::Vec<$crate::OptionSpec> {
                let names = <Self as $crate::settings::Choice>::NAMES;
                ::std::vec![$crate::OptionSpec::choice(name, names, $crate::settings::Choice::name(*default), doc)]
            }
            fn read_field(options: &$crate::Options, name: &str) -> ::std::result::Result<Self, $crate::StageError> {
                $crate::settings::read_choice(options, name)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{complete_options, OptionType};
    use serde_json::json;

    crate::choice! {
        enum Shade {
            Light = "light",
            Dark = "dark",
        }
    }

    crate::settings! {
        struct Inner {
            /// a threshold
            threshold: f32 = 0.2 => within(0.0, 1.0),
        }
    }

    crate::settings! {
        struct Outer {
            /// the model file,
            /// on two lines
            model: PathBuf = PathBuf::new(),
            /// shade
            shade: Shade = Shade::Dark,
            /// classes kept
            classes: Vec<i64> = vec![0],
            /// frames held
            queue: usize = 100 => at_least(1),
            /// a library, if any
            library: Option<PathBuf> = None,
            inner: Inner = Inner { threshold: 0.3 },
        }
    }

    fn read(given: serde_json::Value) -> Result<Outer, String> {
        let options = complete_options(&Outer::specs(), given.as_object().unwrap())
            .map_err(|p| p.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; "))?;
        Outer::from_options(&options).map_err(|e| e.message.to_string())
    }

    #[test]
    fn specs_carry_types_defaults_and_docs_once() {
        let specs = Outer::specs();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["model", "shade", "classes", "queue", "library", "threshold"]);
        assert!(specs[0].is_required(), "an empty default path is required");
        assert_eq!(specs[0].doc.as_str(), "the model file, on two lines");
        assert_eq!(specs[1].ty, OptionType::Choice(vec!["light".into(), "dark".into()].into()));
        assert_eq!(specs[1].default.as_str(), "\"dark\"");
        assert_eq!(specs[3].default.as_str(), "100");
        assert!(!specs[4].is_required(), "an optional path is not required");
        assert_eq!((specs[4].ty.clone(), specs[4].default.as_str()), (OptionType::Path, "\"\""));
        // The outer struct's default for the group wins over the group's own.
        assert_eq!(specs[5].default.as_str(), "0.3", "as written, not 0.30000001192092896");
        assert_eq!(Inner::specs()[0].default.as_str(), "0.2");
    }

    #[test]
    fn reading_gives_typed_values_and_named_errors() {
        let settings = read(json!({"model": "m.onnx", "shade": "light", "threshold": 1})).unwrap();
        assert_eq!(settings.model, PathBuf::from("m.onnx"));
        assert_eq!(settings.shade, Shade::Light);
        assert_eq!(settings.classes, [0]);
        assert_eq!(settings.inner.threshold, 1.0);
        assert_eq!(settings.library, None, "left out");
        assert_eq!(read(json!({"model": "m", "library": "lib.so"})).unwrap().library, Some(PathBuf::from("lib.so")));
        assert_eq!(read(json!({"model": "m", "queue": -1})).unwrap_err(), "option `queue`: expected an int >= 0, found -1");
        assert_eq!(read(json!({"model": "m", "queue": 0})).unwrap_err(), "option `queue`: expected at least 1, found 0");
        assert_eq!(read(json!({"model": "m", "threshold": 2})).unwrap_err(), "option `threshold`: expected a value from 0 to 1, found 2");
        assert!(read(json!({})).unwrap_err().contains("missing required option `model`"));
    }

    #[test]
    fn a_choice_reads_its_names_and_refuses_others() {
        assert_eq!(Shade::parse("dark"), Some(Shade::Dark));
        assert_eq!(Shade::Light.to_string(), "light");
        let options = Options::from_json(r#"{"shade": "grey"}"#).unwrap();
        let error = read_choice::<Shade>(&options, "shade").unwrap_err();
        assert_eq!(error.message.as_str(), "option `shade`: expected one of \"light\" | \"dark\", found \"grey\"");
    }

    #[test]
    fn checks_say_what_they_expected() {
        assert_eq!(positive(&0.0f64), Err("expected a number above 0, found 0".into()));
        assert_eq!(positive(&f64::NAN), Err("expected a number above 0, found NaN".into()));
        assert!(positive(&3u32).is_ok());
        assert_eq!(finite(&f64::INFINITY), Err("expected a finite number, found inf".into()));
        assert_eq!(doc_line(&[" a", "", " b "]), "a b");
    }
}
