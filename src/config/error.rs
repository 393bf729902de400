//! A setting with a bad value: the error names the setting (environment variable and flag,
//! or event field) and the value as given.

/// A setting with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value could not be parsed or is out of range.
    #[error("{field}: invalid value {value:?}: {reason}")]
    Invalid {
        /// The setting, e.g. `REAPER_CONCURRENCY (--concurrency)` or `event.dryRun`.
        field: String,
        /// The value as given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A required setting is missing or empty.
    #[error("{field}: {reason}")]
    Missing {
        /// The setting.
        field: String,
        /// What is missing.
        reason: String,
    },
}

impl ConfigError {
    /// Builds [`ConfigError::Invalid`].
    pub fn invalid(field: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_owned(),
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// The setting the error is about.
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Invalid { field, .. } | ConfigError::Missing { field, .. } => field,
        }
    }
}
