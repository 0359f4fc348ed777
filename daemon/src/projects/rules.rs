//! The rules of a project, as pure functions: slugs, names, S3 settings, and keeping roots apart.

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;
use kroma_protocol::ErrorCode;

use crate::error::Problem;

/// Where a project's exports go on S3, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub prefix: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub path_style: Option<bool>,
    pub checksum_mode: protocol::project::ChecksumMode,
    pub access_key_secret: Option<String>,
    pub secret_key_secret: Option<String>,
}

impl S3Settings {
    /// Path-style addressing unless the settings say otherwise: on for any endpoint, off for AWS.
    pub fn path_style(&self) -> bool {
        self.path_style.unwrap_or(self.endpoint.is_some())
    }

    /// The names of the two secrets that hold the keys.
    pub fn secret_names(&self) -> (&str, &str) {
        (
            self.access_key_secret
                .as_deref()
                .unwrap_or(protocol::storage::DEFAULT_ACCESS_KEY_SECRET),
            self.secret_key_secret
                .as_deref()
                .unwrap_or(protocol::storage::DEFAULT_SECRET_KEY_SECRET),
        )
    }

    /// As the wire shows it.
    pub fn to_proto(&self) -> protocol::project::S3Settings {
        protocol::project::S3Settings {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            path_style: self.path_style,
            checksum_mode: self.checksum_mode,
            access_key_secret: self.access_key_secret.clone(),
            secret_key_secret: self.secret_key_secret.clone(),
        }
    }
}

const MAX_SLUG_LEN: usize = 64;
const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// Checks a slug given by the user.
pub fn parse_slug(slug: &str) -> Result<String, Problem> {
    let valid = !slug.is_empty()
        && slug.len() <= MAX_SLUG_LEN
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if valid {
        Ok(slug.to_owned())
    } else {
        Err(Problem::validation(
            ErrorCode::InvalidSlug,
            format!(
                "slug `{slug}` is invalid: it must match {}",
                protocol::project::SLUG_RULE
            ),
        )
        .with_hint("use lowercase letters, digits and dashes, starting with a letter or digit"))
    }
}

/// Derives a slug from a project name: `Night Harbor (vol. 2)` becomes `night-harbor-vol-2`.
pub fn derive_slug(name: &str) -> Result<String, Problem> {
    let mut slug = slug::slugify(name);
    slug.truncate(MAX_SLUG_LEN);
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        return Err(Problem::validation(
            ErrorCode::InvalidSlug,
            format!("cannot derive a slug from the name `{name}`"),
        )
        .with_hint("pass a slug explicitly")
        .with_action(protocol::Action::call::<protocol::project::Create>(
            [("name", name.into())],
            &["slug"],
        )));
    }
    parse_slug(&slug)
}

pub fn parse_name(name: &str) -> Result<String, Problem> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Problem::validation(
            ErrorCode::InvalidName,
            format!(
                "project name must be 1 to {MAX_NAME_CHARS} characters without control characters"
            ),
        ));
    }
    Ok(name.to_owned())
}

pub fn parse_description(description: &str) -> Result<String, Problem> {
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Problem::validation(
            ErrorCode::InvalidDescription,
            format!("description is longer than {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    Ok(description.to_owned())
}

/// The root folder of a new project: the one asked for (absolute), else under the data dir.
pub fn parse_root(
    requested: Option<&str>,
    data_dir: &Path,
    slug: &str,
) -> Result<PathBuf, Problem> {
    match requested {
        None => Ok(data_dir.join("projects").join(slug)),
        Some(root) => {
            let root = PathBuf::from(root);
            if root
                .components()
                .any(|part| part == std::path::Component::ParentDir)
            {
                return Err(Problem::validation(
                    ErrorCode::InvalidRoot,
                    format!("project root `{}` contains `..`", root.display()),
                )
                .with_hint("name the folder by its plain absolute path"));
            }
            if !root.is_absolute() {
                return Err(Problem::validation(
                    ErrorCode::InvalidRoot,
                    format!("project root `{}` is not an absolute path", root.display()),
                )
                .with_hint("name the root by its absolute path: kromad does not share the caller's working directory"));
            }
            Ok(root)
        }
    }
}

/// Validates S3 settings before they are stored.
pub fn parse_s3(s3: &protocol::project::S3Settings) -> Result<S3Settings, Problem> {
    let invalid = |what: String| {
        Problem::validation(ErrorCode::InvalidS3Settings, what)
            .with_hint("rpc.discover describes each S3 setting (the `s3` param)")
            .with_action(protocol::Action::call::<protocol::rpc::Discover>([], &[]))
    };
    let bucket = &s3.bucket;
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !bucket.contains("..")
        && bucket.parse::<std::net::Ipv4Addr>().is_err();
    if !bucket_ok {
        return Err(invalid(format!(
            "S3 bucket `{bucket}` is invalid: 3 to 63 characters of a-z, 0-9, `.` and `-`, starting and ending with a letter or digit"
        )));
    }
    let prefix = s3.prefix.trim_end_matches('/');
    if prefix.starts_with('/') || prefix.len() > 1024 || prefix.chars().any(char::is_control) {
        return Err(invalid(format!(
            "S3 prefix `{}` is invalid: no leading `/`, at most 1024 bytes, no control characters",
            s3.prefix
        )));
    }
    if let Some(region) = &s3.region {
        let region_ok = (1..=32).contains(&region.len())
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(invalid(format!(
                "S3 region `{region}` is invalid: expected something like `eu-west-1`"
            )));
        }
    }
    if let Some(endpoint) = &s3.endpoint {
        let url = url::Url::parse(endpoint)
            .map_err(|err| invalid(format!("S3 endpoint `{endpoint}` is not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid(format!(
                "S3 endpoint `{endpoint}` must be an http:// or https:// URL with a host"
            )));
        }
    }
    for name in [&s3.access_key_secret, &s3.secret_key_secret]
        .into_iter()
        .flatten()
    {
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !name_ok {
            return Err(invalid(format!(
                "S3 secret name `{name}` is invalid: it must match {}",
                protocol::secret::NAME_RULE
            )));
        }
    }
    Ok(S3Settings {
        bucket: bucket.clone(),
        prefix: prefix.to_owned(),
        region: s3.region.clone(),
        endpoint: s3.endpoint.clone(),
        path_style: s3.path_style,
        checksum_mode: s3.checksum_mode,
        access_key_secret: s3.access_key_secret.clone(),
        secret_key_secret: s3.secret_key_secret.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_derive(name: &str, expected: Result<&str, ErrorCode>) {
        let actual = derive_slug(name);
        assert_eq!(
            actual.as_deref().map_err(|err| err.code),
            expected,
            "{name}"
        );
    }

    #[test]
    fn slugs_are_derived_from_names() {
        check_derive("Night Harbor", Ok("night-harbor"));
        check_derive("  Night   Harbor (vol. 2) ", Ok("night-harbor-vol-2"));
        check_derive("Éclair à Paris", Ok("eclair-a-paris"));
        check_derive("---", Err(ErrorCode::InvalidSlug));
        check_derive("!!!", Err(ErrorCode::InvalidSlug));
        let long = "a".repeat(100);
        assert_eq!(derive_slug(&long).unwrap().len(), 64);
        let long_words = format!("{} b", "a".repeat(63));
        assert_eq!(derive_slug(&long_words).unwrap(), "a".repeat(63));
    }

    #[test]
    fn explicit_slugs_follow_the_rule() {
        for good in ["a", "0", "night-harbor", "a-", &"x".repeat(64)] {
            assert!(parse_slug(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", "A", "a_b", "a b", "é", &"x".repeat(65)] {
            assert_eq!(
                parse_slug(bad).unwrap_err().code,
                ErrorCode::InvalidSlug,
                "{bad}"
            );
        }
    }

    fn s3(
        bucket: &str,
        prefix: &str,
        region: Option<&str>,
        endpoint: Option<&str>,
    ) -> protocol::project::S3Settings {
        protocol::project::S3Settings {
            prefix: prefix.into(),
            region: region.map(Into::into),
            endpoint: endpoint.map(Into::into),
            ..protocol::project::S3Settings::bucket(bucket)
        }
    }

    #[test]
    fn s3_settings_are_validated() {
        let ok = parse_s3(&s3(
            "comics",
            "night-harbor/",
            Some("eu-west-1"),
            Some("http://127.0.0.1:9000"),
        ))
        .unwrap();
        assert_eq!(ok.prefix, "night-harbor");
        for bad in [
            s3("ab", "", None, None),
            s3("Comics", "", None, None),
            s3("-comics", "", None, None),
            s3("a..b", "", None, None),
            s3("192.168.1.1", "", None, None),
            s3("comics", "/abs", None, None),
            s3("comics", "", Some("EU WEST"), None),
            s3("comics", "", None, Some("ftp://host")),
            s3("comics", "", None, Some("not a url")),
        ] {
            assert_eq!(
                parse_s3(&bad).unwrap_err().code,
                ErrorCode::InvalidS3Settings,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn roots_must_be_absolute() {
        let data = Path::new("/data");
        assert_eq!(
            parse_root(None, data, "x").unwrap(),
            Path::new("/data/projects/x")
        );
        assert_eq!(
            parse_root(Some("/srv/x"), data, "x").unwrap(),
            Path::new("/srv/x")
        );
        assert_eq!(
            parse_root(Some("rel/x"), data, "x").unwrap_err().code,
            ErrorCode::InvalidRoot
        );
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(parse_name("  Night Harbor ").unwrap(), "Night Harbor");
        assert!(parse_name("   ").is_err());
        assert!(parse_name("a\u{0}b").is_err());
        assert!(parse_name(&"n".repeat(201)).is_err());
    }
}

/// A root must not hold, or sit inside, another project's root, nor hold or share the data dir
/// (its `projects/` folder holds the default roots): purging one project would otherwise delete
/// another's files. Pure: the caller passes every path with its links resolved.
pub fn check_root_apart<P: AsRef<Path>>(
    root: &Path,
    data_dir: &Path,
    other_roots: &[P],
) -> Result<(), Problem> {
    let other_roots: Vec<&Path> = other_roots.iter().map(AsRef::as_ref).collect();
    let overlap = |other: &Path| root.starts_with(other) || other.starts_with(root);
    let projects_dir = data_dir.join("projects");
    if data_dir.starts_with(root)
        || (root.starts_with(data_dir) && !root.starts_with(&projects_dir))
        || root == projects_dir
    {
        return Err(Problem::new(
            protocol::ErrorKind::Conflict,
            ErrorCode::RootOverlaps,
            format!(
                "project root {} would share kromad's data dir ({})",
                root.display(),
                data_dir.display()
            ),
        )
        .with_hint("pick a folder of its own for the project"));
    }
    if let Some(other) = other_roots.iter().find(|other| overlap(other)) {
        return Err(Problem::new(
            protocol::ErrorKind::Conflict,
            ErrorCode::RootOverlaps,
            format!(
                "project root {} overlaps the root of another project, {}",
                root.display(),
                other.display()
            ),
        )
        .with_hint("pick a folder outside every other project's root"));
    }
    Ok(())
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn roots_stay_apart() {
        let data = Path::new("/data");
        let others = [Path::new("/comics/a")];
        assert!(check_root_apart(Path::new("/comics/b"), data, &others).is_ok());
        for bad in ["/comics/a/exports", "/comics", "/"] {
            assert_eq!(
                check_root_apart(Path::new(bad), data, &others)
                    .unwrap_err()
                    .code,
                ErrorCode::RootOverlaps,
                "{bad}"
            );
        }
        assert!(check_root_apart(Path::new("/data/projects/x"), data, &[] as &[&Path]).is_ok());
        for bad in ["/data/logs/x", "/data/projects", "/data"] {
            assert_eq!(
                check_root_apart(Path::new(bad), data, &[] as &[&Path])
                    .unwrap_err()
                    .code,
                ErrorCode::RootOverlaps,
                "{bad}"
            );
        }
    }
}
