//! The rules of huidiao as plain types and functions: no HTTP, no SQL, testable on their own.

/// The string form of a domain enum, once: `ALL`, `as_str`, `FromStr` and `Display` from one
/// table of variants and the names the API and storage use for them.
macro_rules! string_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub const ALL: &'static [$ty] = &[$(<$ty>::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(<$ty>::$variant => $text),+ }
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
pub mod callback_url;
pub mod delivery;
pub mod event_types;
pub mod events;
pub mod paging;
pub mod tenancy;
pub mod tokens;
