//! A secret parameter (a password): read like a string, never shown by `Debug`, so a module's
//! parameters can be logged without it.

use serde::Deserialize;

use pgdeploy_core::secrets::MASK;

/// Deserializing one records its value ([`pgdeploy_core::secrets::record`]): a parameter typed as a
/// secret is masked in all output whatever the variable it came from is called.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub(crate) struct Secret(String);

impl From<String> for Secret {
    fn from(s: String) -> Self {
        pgdeploy_core::secrets::record_from("given to a secret module parameter", &s);
        Secret(s)
    }
}

impl Secret {
    pub(crate) fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The value, for the file or command that needs it; never for a message.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
    /// `text` with every occurrence of the value replaced by the mask.
    pub(crate) fn mask_in(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, MASK)
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_debug_printed() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), MASK);
        assert_eq!(s.mask_in("pass hunter2 x"), format!("pass {MASK} x"));
    }

    #[test]
    fn read_from_parameters_is_recorded_as_a_secret() {
        let s: Secret = serde_json::from_value(serde_json::json!("Secret-Param-Read-1")).unwrap();
        assert_eq!(s.expose(), "Secret-Param-Read-1");
        assert!(pgdeploy_core::secrets::recorded()
            .iter()
            .any(|v| v == "Secret-Param-Read-1"));
    }
}
