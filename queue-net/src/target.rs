//! The one place that tells a local queue name from a remote queue URL
//! (`nats://HOST:PORT/NAME`), and the naming of a queue's JetStream objects.

use crate::error::NetError;

/// URL scheme of a remote queue.
pub const SCHEME: &str = "nats://";

/// Where a queue lives: a name in the local queue directory, or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A local queue name (`jobs`), opened in the queue directory.
    Local(String),
    /// A remote queue (`nats://127.0.0.1:4222/jobs`).
    Remote(RemoteUrl),
}

impl Target {
    /// Parses `jobs` or `nats://HOST:PORT/jobs`. Local names are checked by
    /// queue-core when opened; URLs are checked here.
    pub fn parse(s: &str) -> Result<Target, NetError> {
        if is_url(s) {
            let url = RemoteUrl::parse(s)?;
            if url.name.is_none() {
                return Err(NetError::InvalidUrl {
                    input: s.to_owned(),
                    reason: "it names no queue".into(),
                });
            }
            Ok(Target::Remote(url))
        } else {
            Ok(Target::Local(s.to_owned()))
        }
    }

    /// The text the target was given as (name or URL).
    pub fn display(&self) -> String {
        match self {
            Target::Local(name) => name.clone(),
            Target::Remote(url) => url.to_string(),
        }
    }
}

/// Whether `s` is meant as a URL (it has a scheme) rather than a queue name.
pub fn is_url(s: &str) -> bool {
    s.contains("://")
}

/// A parsed `nats://HOST:PORT[/NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteUrl {
    /// `HOST:PORT` (the port defaults to 4222).
    pub host_port: String,
    /// The queue name, if the URL has a path.
    pub name: Option<String>,
}

impl RemoteUrl {
    /// Parses `nats://HOST[:PORT][/NAME]`; the name must be a valid queue name.
    pub fn parse(s: &str) -> Result<RemoteUrl, NetError> {
        let bad = |reason: &str| NetError::InvalidUrl {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = s
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("the only scheme understood is nats://"))?;
        let (host_port, path) = match rest.split_once('/') {
            Some((h, p)) => (h, p),
            None => (rest, ""),
        };
        if host_port.is_empty() {
            return Err(bad("it has no host"));
        }
        if host_port.contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        let host_port = match host_port.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host_port.starts_with('[') => {
                if host.is_empty() {
                    return Err(bad("it has no host"));
                }
                port.parse::<u16>()
                    .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
                host_port.to_owned()
            }
            _ => format!("{host_port}:4222"),
        };
        let name = if path.is_empty() {
            None
        } else {
            queue_core::validate_name(path).map_err(|reason| NetError::InvalidName {
                name: path.to_owned(),
                reason,
            })?;
            Some(path.to_owned())
        };
        Ok(RemoteUrl { host_port, name })
    }

    /// `nats://HOST:PORT`, the server part.
    pub fn server(&self) -> String {
        format!("{SCHEME}{}", self.host_port)
    }

    /// The same server with another queue name.
    pub fn with_name(&self, name: &str) -> RemoteUrl {
        RemoteUrl {
            host_port: self.host_port.clone(),
            name: Some(name.to_owned()),
        }
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{SCHEME}{}/{n}", self.host_port),
            None => write!(f, "{SCHEME}{}", self.host_port),
        }
    }
}

/// Prefix of the JetStream stream that holds queue `NAME`.
pub(crate) const STREAM_PREFIX: &str = "mq-";

/// Stream name of queue `name`. Queue names allow `.`, stream names do not,
/// so the name is escaped injectively: `_` -> `__`, `.` -> `_d`.
pub(crate) fn stream_name(name: &str) -> String {
    let mut s = String::with_capacity(STREAM_PREFIX.len() + name.len());
    s.push_str(STREAM_PREFIX);
    for c in name.chars() {
        match c {
            '_' => s.push_str("__"),
            '.' => s.push_str("_d"),
            c => s.push(c),
        }
    }
    s
}

/// The subject puts publish to while the queue is open.
pub(crate) fn open_subject(name: &str) -> String {
    format!("mq.q.{}", &stream_name(name)[STREAM_PREFIX.len()..])
}

/// The subject the stream listens on once closed: only the close marker is
/// published there, so puts to `open_subject` find no stream.
pub(crate) fn closed_subject(name: &str) -> String {
    format!("mq.closed.{}", &stream_name(name)[STREAM_PREFIX.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names_are_told_apart() {
        assert_eq!(Target::parse("jobs").unwrap(), Target::Local("jobs".into()));
        let t = Target::parse("nats://127.0.0.1:4333/jobs").unwrap();
        assert_eq!(
            t,
            Target::Remote(RemoteUrl {
                host_port: "127.0.0.1:4333".into(),
                name: Some("jobs".into())
            })
        );
        assert_eq!(t.display(), "nats://127.0.0.1:4333/jobs");
        let u = RemoteUrl::parse("nats://hub").unwrap();
        assert_eq!(u.server(), "nats://hub:4222");
        assert!(Target::parse("nats://hub:4222").is_err());
        assert!(Target::parse("http://hub/jobs").is_err());
        assert!(Target::parse("nats://hub:99999/jobs").is_err());
        assert!(Target::parse("nats://hub/a/b").is_err());
        assert!(Target::parse("nats:///jobs").is_err());
    }

    #[test]
    fn stream_names_are_injective() {
        assert_eq!(stream_name("a.b"), "mq-a_db");
        assert_ne!(stream_name("a.b"), stream_name("a_b"));
        assert_ne!(stream_name("a_db"), stream_name("a.b"));
        assert_eq!(open_subject("a.b"), "mq.q.a_db");
        assert_eq!(closed_subject("x"), "mq.closed.x");
    }
}
