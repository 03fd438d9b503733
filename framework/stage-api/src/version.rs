//! Which plugins a host loads: the ABI's own version and its compatibility
//! rule.
//!
//! The stage-api crate is versioned apart from the rest of Vigil, and its
//! version is the ABI's. A host of X.y loads plugins built against X.x for
//! every x ≤ y. Because abi_stable refuses a prefix type with fewer fields
//! than the host's, a minor version may change only this much:
//!
//! - append fields to the root module `VigilPlugin` after its
//!   `#[sabi(last_prefix_field)]`, freezing the previous layout in
//!   `open.rs` so the host can check an older plugin against it;
//! - add functions, constants and types that do not cross the boundary.
//!
//! Anything else reachable from the root module (`StageInfo`, `StageKind`,
//! `StageObject`, the stage traits, `Tensor`, `TensorSpec`, `Batch`,
//! options, errors) keeps its layout until the next major version.
//!
//! History: 1.0 was the ABI of 0.2 (`errors_of` and `reach` included),
//! declared stable; 1.1 appended the root module's `description`; 1.2
//! added the `f16` element type ([`DType::F16`](crate::DType::F16)). 2.0
//! lets a tensor live on a GPU and stages say where they read and put
//! theirs: the device kind [`DeviceKind::Wgpu`](crate::DeviceKind::Wgpu),
//! a tensor's [`DeviceContext`](crate::DeviceContext) (whose library's
//! buffer it is), and [`TensorSpec::devices`](crate::TensorSpec::devices);
//! the root module's `description` joined its fixed prefix. A 2.0 host
//! refuses 1.x plugins, naming the version to rebuild against.

/// The stage-api version of this build: the ABI version a plugin records in
/// its root module and the host checks ([`check_plugin_api`]).
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A `MAJOR.MINOR.PATCH` version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    /// Changes when the ABI breaks.
    pub major: u32,
    /// Changes when the ABI grows.
    pub minor: u32,
    /// Changes when nothing crossing the boundary does.
    pub patch: u32,
}

impl ApiVersion {
    /// Parses `MAJOR.MINOR.PATCH`; `None` for anything else.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
        let version = ApiVersion { major: parts.next()??, minor: parts.next()??, patch: parts.next()?? };
        parts.next().is_none().then_some(version)
    }

    /// This build's [`API_VERSION`].
    pub fn current() -> ApiVersion {
        ApiVersion::parse(API_VERSION).expect("API_VERSION is MAJOR.MINOR.PATCH")
    }

    /// The versions whose plugins this version loads, for messages:
    /// "1.0 to 1.1" (or "0.2" before 1.0, where every minor is a major).
    pub fn loads_range(&self) -> String {
        if self.major == 0 {
            format!("{}.{}", self.major, self.minor)
        } else if self.minor == 0 {
            format!("{}.0", self.major)
        } else {
            format!("{}.0 to {}.{}", self.major, self.major, self.minor)
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Whether a host of stage-api `host` loads a plugin built against
/// `plugin`: the same major version (before 1.0, the same minor, as Cargo
/// reads 0.x), and a minor no newer than the host's, since a newer plugin
/// may rely on what this host does not have. `Err` says why not and what to
/// do, in one sentence.
pub fn check_plugin_api(host: ApiVersion, plugin: &str) -> Result<(), String> {
    let range = host.loads_range();
    let Some(found) = ApiVersion::parse(plugin) else {
        return Err(format!(
            "declares stage-api version `{plugin}`, which is not MAJOR.MINOR.PATCH; this vigil (stage-api {host}) loads plugins built against stage-api {range}"
        ));
    };
    let same_line = found.major == host.major && (host.major != 0 || found.minor == host.minor);
    if !same_line {
        return Err(format!(
            "built against stage-api {found}, but this vigil has stage-api {host} and loads plugins built against {range}; rebuild the plugin against stage-api {}.{}",
            host.major, host.minor
        ));
    }
    if found.minor > host.minor {
        return Err(format!(
            "built against stage-api {found}, newer than this vigil's {host}: the plugin may rely on what this vigil lacks; upgrade vigil, or rebuild the plugin against stage-api {}.{}",
            host.major, host.minor
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ApiVersion {
        ApiVersion::parse(text).unwrap()
    }

    #[test]
    fn versions_parse_only_as_three_numbers() {
        assert_eq!(v("1.12.3"), ApiVersion { major: 1, minor: 12, patch: 3 });
        for bad in ["", "1", "1.2", "1.2.3.4", "1.x.0", "1.2.-3", " 1.2.3"] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_host_loads_its_own_and_older_minors_of_its_major() {
        let host = v("1.3.2");
        for plugin in ["1.0.0", "1.2.9", "1.3.0", "1.3.7"] {
            assert_eq!(check_plugin_api(host, plugin), Ok(()), "{plugin}");
        }
    }

    #[test]
    fn a_host_refuses_another_major_and_says_what_it_loads() {
        let error = check_plugin_api(v("1.3.2"), "2.0.0").unwrap_err();
        assert!(error.contains("built against stage-api 2.0.0"), "{error}");
        assert!(error.contains("loads plugins built against 1.0 to 1.3"), "{error}");
        assert!(error.contains("rebuild the plugin against stage-api 1.3"), "{error}");
        assert!(check_plugin_api(v("1.3.2"), "0.2.0").is_err());
    }

    #[test]
    fn a_host_refuses_a_newer_minor() {
        let error = check_plugin_api(v("1.1.0"), "1.2.0").unwrap_err();
        assert!(error.contains("newer than this vigil's 1.1.0"), "{error}");
    }

    #[test]
    fn before_1_0_every_minor_is_its_own_line() {
        assert_eq!(check_plugin_api(v("0.2.0"), "0.2.5"), Ok(()));
        let error = check_plugin_api(v("0.2.0"), "0.1.0").unwrap_err();
        assert!(error.contains("loads plugins built against 0.2;"), "{error}");
    }

    #[test]
    fn a_malformed_version_is_named() {
        let error = check_plugin_api(v("1.1.0"), "one").unwrap_err();
        assert!(error.contains("`one`"), "{error}");
    }

    #[test]
    fn this_build_loads_its_own_plugins() {
        assert_eq!(check_plugin_api(ApiVersion::current(), API_VERSION), Ok(()));
    }
}
