//! An error and its sources as one line: each level's message, outermost first, joined by
//! `": "`, never `Debug`. The AWS SDK's own `DisplayErrorContext` ends with the whole
//! error's `Debug` structure, which is what a person must not have to read.

use std::error::Error;
use std::fmt;

/// Displays an error followed by its sources (`outer: inner: root`). A level whose message
/// the previous one already contains is left out: many errors repeat their source.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = self.0.to_string();
        f.write_str(&previous)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            let text = e.to_string();
            if !text.is_empty() && !previous.contains(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            source = e.source();
        }
        Ok(())
    }
}

/// The innermost error of the chain: the concrete cause (`Connection refused (os error
/// 111)`), without the layers that only say where it happened.
pub fn root_cause(e: &(dyn Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// The first error of the chain (the error itself included) of type `T`.
pub fn find<'a, T: Error + 'static>(e: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut current = Some(e);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{text}")]
    struct Level {
        text: &'static str,
        #[source]
        source: Option<Box<Level>>,
    }

    fn level(text: &'static str, source: Option<Level>) -> Level {
        Level {
            text,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn chain_joins_every_level_without_debug() {
        let e = level(
            "dispatch failure",
            Some(level(
                "the credential provider was not enabled",
                Some(level("no providers in chain provided credentials", None)),
            )),
        );
        assert_eq!(
            Chain(&e).to_string(),
            "dispatch failure: the credential provider was not enabled: no providers in \
             chain provided credentials"
        );
        assert_eq!(root_cause(&e), "no providers in chain provided credentials");
    }

    #[test]
    fn a_level_repeating_its_source_is_shown_once() {
        let e = level(
            "error trying to connect: Connection refused",
            Some(level("Connection refused", None)),
        );
        assert_eq!(
            Chain(&e).to_string(),
            "error trying to connect: Connection refused"
        );
    }

    #[test]
    fn find_reaches_a_source_by_type() {
        let e = level("outer", Some(level("inner", None)));
        assert_eq!(find::<Level>(&e).map(|l| l.text), Some("outer"));
        assert!(find::<std::io::Error>(&e).is_none());
    }
}
