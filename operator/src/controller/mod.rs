//! The controller kit: what every controller of this crate does the same way.
//! - [`status`]: the one status writer (server-side apply of the status subresource, guarded by
//!   the resource version read where the status was computed from it; a conflict is a requeue);
//! - [`finalizer`]: a reconcile behind a finalizer, its errors mapped to the controller's own;
//! - [`conditions`] and [`events`]: status conditions and Kubernetes events;
//! - [`triggers`]: the objects that wake a reconcile, once the store can be read for them;
//! - [`short_version`]: a manifest version as people read it.

pub(crate) mod conditions;
pub(crate) mod events;
pub(crate) mod finalizer;
pub(crate) mod status;
pub(crate) mod triggers;

/// The first 12 characters of a manifest version (a hex hash): enough to tell versions apart in
/// events, conditions and the command line's output.
pub(crate) fn short_version(version: &str) -> &str {
    &version[..12.min(version.len())]
}

#[cfg(test)]
mod tests {
    use super::short_version;

    #[test]
    fn a_version_is_shortened_to_twelve_characters() {
        assert_eq!(short_version("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_version("abc"), "abc");
        assert_eq!(short_version(""), "");
    }
}
