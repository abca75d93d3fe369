//! The rules of huidiao as plain types and functions: no HTTP, no SQL, testable on their own.

/// The string form of a domain enum, once: `ALL`, `as_str`, `FromStr`, `Display` and `parse_field`
/// (the one parser of a client's value, whose error lists the valid names) from one table of
/// variants and the names the API and storage use for them.
macro_rules! string_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $text),+ }
            }

            /// Every name, comma-separated, for messages that list them.
            pub fn names() -> String {
                [$($text),+].join(", ")
            }

            /// Parses the value a client gave for `field`; an unknown one is refused with the
            /// valid names.
            pub fn parse_field(field: &str, raw: &str) -> Result<Self, crate::domain::error::DomainError> {
                raw.parse().map_err(|()| {
                    crate::domain::error::DomainError::invalid(format!(
                        "{field} must be one of {}; got {raw:?}",
                        Self::names()
                    ))
                })
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok(<$ty>::$variant),)+ _ => Err(()) }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod apps;
pub mod attempts;
pub mod callback_url;
pub mod delivery;
pub mod eligibility;
pub mod error;
pub mod event_types;
pub mod events;
pub mod fanout;
pub mod idempotency;
pub mod notifications;
pub mod paging;
pub mod pausing;
pub mod reviews;
pub mod stats;
pub mod tenancy;
pub mod test_events;
pub mod text;
pub mod tokens;
