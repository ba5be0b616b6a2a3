//! The plugin's own configuration: the `[config]` table of its `plugin.toml`.
//!
//! Values come as written in the manifest: strings as they are, numbers and booleans as
//! TOML text (`3.5`, `true`).

use std::fmt::Display;
use std::str::FromStr;

use crate::Error;
use crate::sys;

/// One value, or `None` if the key is not set.
pub fn get(key: &str) -> Option<String> {
    sys::config::get(key)
}

/// One value parsed as `T`.
///
/// A missing key is [`Error::NotFound`]; a value that does not parse is
/// [`Error::Invalid`].
///
/// ```
/// # let _host = yiwang_sdk::mock::MockHost::new().config("threshold", "3.5").install();
/// let threshold: f64 = yiwang_sdk::config::get_parsed("threshold")?;
/// # assert_eq!(threshold, 3.5);
/// # Ok::<(), yiwang_sdk::Error>(())
/// ```
pub fn get_parsed<T>(key: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    let value =
        get(key).ok_or_else(|| Error::NotFound(format!("config key `{key}` is not set")))?;
    parse(key, &value)
}

/// One value parsed as `T`, or `default` if the key is not set. A value that is set but
/// does not parse is still [`Error::Invalid`].
pub fn get_or<T>(key: &str, default: T) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    match get(key) {
        Some(value) => parse(key, &value),
        None => Ok(default),
    }
}

/// Every key and value.
pub fn all() -> Vec<(String, String)> {
    sys::config::all()
}

fn parse<T>(key: &str, value: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    value.trim().parse().map_err(|err| {
        Error::Invalid(format!(
            "config key `{key}`: `{value}` does not parse: {err}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natively_the_config_is_empty() {
        assert_eq!(
            get_parsed::<f64>("threshold"),
            Err(Error::NotFound("config key `threshold` is not set".into()))
        );
        assert_eq!(get_or("threshold", 2.5), Ok(2.5));
        assert!(matches!(
            parse::<f64>("threshold", "high"),
            Err(Error::Invalid(_))
        ));
        assert_eq!(parse::<f64>("threshold", "3.5"), Ok(3.5));
    }
}
