//! Parsers for command-line values: sizes (`4096`, `4KiB`, `1MiB`), counts,
//! octal modes and durations (`500ms`, `5s`). Each error quotes the input and
//! shows what would have been accepted; clap prefixes it with the flag.

use std::time::Duration;

/// Parses a size in bytes: a whole number with an optional unit. `K`, `KiB`,
/// `M`, `MiB`, `G`, `GiB` are powers of 1024; `kB`, `MB`, `GB` are powers of
/// 1000 (as in dd); `B` is bytes. Units are case-insensitive, except that
/// `KB`/`kB` means 1000 and `K`/`KiB` means 1024. A space may precede the unit.
pub fn size(s: &str) -> Result<u64, String> {
    let hint = "use a number of bytes, optionally with a unit, e.g. 4096, 4KiB, 1MiB";
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return Err(format!("invalid size {s:?}: no number ({hint})"));
    }
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("invalid size {s:?}: number too large ({hint})"))?;
    let unit = unit.trim_start();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {unit:?} ({hint})"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("invalid size {s:?}: too large ({hint})"))
}

/// Parses a whole number (underscores allowed: `1_000`).
pub fn count(s: &str) -> Result<u64, String> {
    let digits: String = s.trim().chars().filter(|&c| c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "invalid number {s:?}: expected a whole number such as 1024"
        ));
    }
    digits
        .parse()
        .map_err(|_| format!("invalid number {s:?}: too large"))
}

/// Parses a whole number of at least 1.
pub fn positive_count(s: &str) -> Result<u64, String> {
    match count(s)? {
        0 => Err(format!("invalid number {s:?}: must be at least 1")),
        n => Ok(n),
    }
}

/// Parses octal permission bits: `600`, `0600`, `0o660`.
pub fn mode(s: &str) -> Result<u32, String> {
    let hint = "expected octal permission bits such as 600 (only you), 660 (your group too) or 666 (everyone)";
    let t = s.trim();
    let t = t.strip_prefix("0o").unwrap_or(t);
    if t.is_empty() || !t.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!("invalid mode {s:?}: {hint}"));
    }
    match u32::from_str_radix(t, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!("invalid mode {s:?}: {hint}")),
    }
}

/// Parses a duration with humantime: `500ms`, `5s`, `2m`, `1h 30m`. A bare
/// number is taken as seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return seconds(t);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration {s:?}: {e} (use e.g. 500ms, 5s, 2m)"))
}

/// Parses a number of seconds, possibly fractional: `3`, `0.5`.
pub fn seconds(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("invalid number of seconds {s:?}: expected e.g. 3 or 0.5"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("4KiB"), Ok(4096));
        assert_eq!(size("4 KiB"), Ok(4096));
        assert_eq!(size("4k"), Ok(4096));
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("1M"), Ok(1 << 20));
        assert_eq!(size("2GiB"), Ok(2 << 30));
        assert_eq!(size("1kB"), Ok(1000));
        assert_eq!(size("1MB"), Ok(1_000_000));
        assert_eq!(size("10B"), Ok(10));
        assert_eq!(size("1_000"), Ok(1000));
        for bad in [
            "",
            "KiB",
            "4XB",
            "-1",
            "1.5KiB",
            "99999999999999999999",
            "17179869184GiB",
        ] {
            let e = size(bad).unwrap_err();
            assert!(e.contains("invalid size"), "{bad}: {e}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(mode("600"), Ok(0o600));
        assert_eq!(mode("0600"), Ok(0o600));
        assert_eq!(mode("0o660"), Ok(0o660));
        assert!(mode("800").is_err());
        assert!(mode("1777").is_err());
        assert!(mode("rw").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("0.25"), Ok(Duration::from_millis(250)));
        assert!(
            duration("5 parsecs")
                .unwrap_err()
                .contains("invalid duration")
        );
        assert!(duration("").is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(count("1_024"), Ok(1024));
        assert!(count("ten").is_err());
        assert!(positive_count("0").is_err());
    }
}
