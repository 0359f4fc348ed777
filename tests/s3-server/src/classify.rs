//! What an incoming request is, told from its method, path and query alone (path-style only:
//! `/bucket/key`), before s3s or the signature check sees it. Pure: no I/O, no state.

use hyper::Method;

use crate::Request;

/// What one request is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) request: Request,
    /// The bucket and the decoded key, when the path names an object.
    pub(crate) object: Option<(String, String)>,
    /// The `partNumber` of an [`Request::UploadPart`], when it is a number.
    pub(crate) part_number: Option<u32>,
}

/// Classifies a request. `path` is the URI path as sent (percent-encoded), `query` the URI query
/// without the `?`. Anything unexpected is [`Request::Other`], never an error.
pub(crate) fn classify(method: &Method, path: &str, query: Option<&str>) -> Target {
    let params: Vec<(&str, &str)> = query
        .unwrap_or("")
        .split('&')
        .filter(|param| !param.is_empty())
        .map(|param| param.split_once('=').unwrap_or((param, "")))
        .collect();
    let has = |name: &str| params.iter().any(|(param, _)| *param == name);
    let plain_object = params.iter().all(|(name, _)| tunes_object(name));
    let plain_listing = params.iter().all(|(name, _)| tunes_listing(name));

    let request = match (place(path), method.as_str()) {
        (Place::Object, "PUT") if has("partNumber") && has("uploadId") => Request::UploadPart,
        (Place::Object, "PUT") if plain_object => Request::PutObject,
        (Place::Object, "POST") if has("uploads") => Request::CreateMultipartUpload,
        (Place::Object, "POST") if has("uploadId") => Request::CompleteMultipartUpload,
        (Place::Object, "DELETE") if has("uploadId") => Request::AbortMultipartUpload,
        (Place::Object, "DELETE") if plain_object => Request::DeleteObject,
        (Place::Object, "GET") if plain_object => Request::GetObject,
        (Place::Object, "HEAD") => Request::HeadObject,
        (Place::Bucket, "POST") if has("delete") => Request::DeleteObjects,
        (Place::Bucket, "GET") if plain_listing => Request::ListObjects,
        (Place::Bucket, "HEAD") => Request::HeadBucket,
        _ => Request::Other,
    };

    let part_number = if request == Request::UploadPart {
        params
            .iter()
            .find(|(name, _)| *name == "partNumber")
            .and_then(|(_, value)| value.parse().ok())
    } else {
        None
    };
    Target {
        request,
        object: object(path),
        part_number,
    }
}

/// What a path-style path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// `/`, or a path that does not start with `/`.
    Root,
    /// `/bucket` or `/bucket/`.
    Bucket,
    /// `/bucket/key`.
    Object,
}

fn place(path: &str) -> Place {
    let Some(rest) = path.strip_prefix('/') else {
        return Place::Root;
    };
    match rest.split_once('/') {
        _ if rest.is_empty() => Place::Root,
        None | Some((_, "")) => Place::Bucket,
        Some(_) => Place::Object,
    }
}

/// Query parameters that only tune an object request. Any other names a subresource (`?tagging`,
/// `?acl`, `?uploadId`, `?attributes`...) and so another operation. The AWS SDKs add `x-id`.
fn tunes_object(name: &str) -> bool {
    matches!(name, "x-id" | "versionId" | "partNumber") || name.starts_with("response-")
}

/// Query parameters of ListObjects (v1 and v2).
fn tunes_listing(name: &str) -> bool {
    matches!(
        name,
        "x-id"
            | "list-type"
            | "prefix"
            | "delimiter"
            | "max-keys"
            | "marker"
            | "continuation-token"
            | "start-after"
            | "encoding-type"
            | "fetch-owner"
    )
}

/// The bucket and decoded key of an object path (`/bucket/key`), as s3s reads it: the whole
/// path is percent-decoded first, then split at its first `/`. `None` for `/`, `/bucket`,
/// `/bucket/` and a path that does not decode to UTF-8.
fn object(path: &str) -> Option<(String, String)> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let (bucket, key) = decoded.strip_prefix('/')?.split_once('/')?;
    if bucket.is_empty() || key.is_empty() {
        return None;
    }
    Some((bucket.to_owned(), key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, path_and_query: &str, expected: Request) {
        let (path, query) = match path_and_query.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (path_and_query, None),
        };
        let target = classify(&method, path, query);
        assert_eq!(target.request, expected, "{method} {path_and_query}");
    }

    #[test]
    fn requests_are_told_apart_by_method_path_and_query() {
        use Request::*;
        let cases = [
            (Method::PUT, "/b1/k?x-id=PutObject", PutObject),
            (Method::PUT, "/b1/dir/k.png", PutObject),
            (
                Method::PUT,
                "/b1/k?partNumber=2&uploadId=u&x-id=UploadPart",
                UploadPart,
            ),
            (Method::PUT, "/b1/k?tagging", Other),
            (Method::PUT, "/b1", Other),
            (Method::POST, "/b1/k?uploads", CreateMultipartUpload),
            (
                Method::POST,
                "/b1/k?uploads=&x-id=CreateMultipartUpload",
                CreateMultipartUpload,
            ),
            (Method::POST, "/b1/k?uploadId=u", CompleteMultipartUpload),
            (
                Method::DELETE,
                "/b1/k?uploadId=u&x-id=AbortMultipartUpload",
                AbortMultipartUpload,
            ),
            (Method::DELETE, "/b1/k?x-id=DeleteObject", DeleteObject),
            (Method::DELETE, "/b1/k?tagging", Other),
            (Method::DELETE, "/b1", Other),
            (Method::POST, "/b1?delete", DeleteObjects),
            (
                Method::POST,
                "/b1/?delete=&x-id=DeleteObjects",
                DeleteObjects,
            ),
            (Method::GET, "/b1/k?x-id=GetObject", GetObject),
            (
                Method::GET,
                "/b1/k?partNumber=1&response-content-type=a",
                GetObject,
            ),
            (Method::GET, "/b1/k?uploadId=u", Other),
            (Method::GET, "/b1/k?attributes", Other),
            (Method::HEAD, "/b1/k", HeadObject),
            (
                Method::GET,
                "/b1?list-type=2&prefix=a%2F&max-keys=10",
                ListObjects,
            ),
            (Method::GET, "/b1/", ListObjects),
            (Method::GET, "/b1?location", Other),
            (Method::GET, "/b1?uploads", Other),
            (Method::HEAD, "/b1", HeadBucket),
            (Method::GET, "/", Other),
            (Method::GET, "", Other),
            (Method::PATCH, "/b1/k", Other),
            (Method::GET, "/b1/%FF", GetObject),
        ];
        for (method, path_and_query, expected) in cases {
            check(method, path_and_query, expected);
        }
    }

    #[test]
    fn the_object_is_the_decoded_path() {
        let target = classify(&Method::GET, "/b1/a%20b/c%2Fd.png", None);
        assert_eq!(
            target.object,
            Some(("b1".to_owned(), "a b/c/d.png".to_owned()))
        );
        assert_eq!(classify(&Method::GET, "/b1", None).object, None);
        assert_eq!(classify(&Method::GET, "/b1/", None).object, None);
    }

    #[test]
    fn only_an_upload_part_carries_a_part_number() {
        let part = classify(&Method::PUT, "/b1/k", Some("partNumber=7&uploadId=u"));
        assert_eq!(part.part_number, Some(7));
        let odd = classify(&Method::PUT, "/b1/k", Some("partNumber=x&uploadId=u"));
        assert_eq!((odd.request, odd.part_number), (Request::UploadPart, None));
        let get = classify(&Method::GET, "/b1/k", Some("partNumber=7"));
        assert_eq!(get.part_number, None);
    }
}
