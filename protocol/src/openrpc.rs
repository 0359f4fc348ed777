//! Builds the OpenRPC 1.3 document of the contract from the method types themselves, so the
//! description cannot drift from what the daemon accepts.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::{ErrorKind, Method, Subscription};

/// Everything the document says about one method.
#[derive(Debug, Clone)]
pub struct MethodInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub mutating: bool,
    /// Not bound by the request timeout (see [`Method::UNBOUNDED`]).
    pub unbounded: bool,
    /// For subscriptions, the notification method that carries the items.
    pub notification: Option<&'static str>,
}

macro_rules! collect_infos {
    (methods: [$($method:ty),* $(,)?], subscriptions: [$($sub:ty),* $(,)?] $(,)?) => {
        vec![
            $(MethodInfo {
                name: <$method as Method>::NAME,
                summary: <$method as Method>::SUMMARY,
                mutating: <$method as Method>::MUTATING,
                unbounded: <$method as Method>::UNBOUNDED,
                notification: None,
            },)*
            $(MethodInfo {
                name: <$sub as Subscription>::NAME,
                summary: <$sub as Subscription>::SUMMARY,
                mutating: false,
                unbounded: false,
                notification: Some(<$sub as Subscription>::NOTIFICATION),
            },)*
        ]
    };
}

/// Every method and subscription of the contract, in declaration order.
pub fn method_infos() -> Vec<MethodInfo> {
    crate::for_each_method!(collect_infos)
}

macro_rules! describe_all {
    (methods: [$($method:ty),* $(,)?], subscriptions: [$($sub:ty),* $(,)?] $(,)?) => {{
        let mut generator = generator();
        let methods = vec![
            $(describe::<<$method as Method>::Params, <$method as Method>::Output>(
                &mut generator,
                <$method as Method>::NAME,
                <$method as Method>::SUMMARY,
                <$method as Method>::MUTATING,
                <$method as Method>::UNBOUNDED,
                None,
            ),)*
            $(describe::<<$sub as Subscription>::Params, <$sub as Subscription>::Item>(
                &mut generator,
                <$sub as Subscription>::NAME,
                <$sub as Subscription>::SUMMARY,
                false,
                false,
                Some(<$sub as Subscription>::NOTIFICATION),
            ),)*
        ];
        (generator, methods)
    }};
}

/// The OpenRPC document of the whole contract, `version` being the daemon's version.
pub fn document(version: &str) -> Value {
    let (mut generator, methods) = crate::for_each_method!(describe_all);
    let schemas = generator.take_definitions(true);
    let errors: Vec<Value> = ErrorKind::ALL
        .iter()
        .map(|kind| json!({ "code": kind.code(), "message": kind.as_str() }))
        .collect();
    json!({
        "openrpc": "1.3.2",
        "info": {
            "title": "kromad",
            "version": version,
            "description": format!(
                "Kroma daemon JSON-RPC 2.0 API, protocol version {}. Newline-delimited frames over a local socket. \
                 Every error carries data: {{kind, code, message, hint}}.",
                crate::PROTOCOL_VERSION
            ),
        },
        "methods": methods,
        "components": {
            "schemas": schemas,
            "errors": errors,
        },
    })
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12()
        .with(|settings| settings.definitions_path = "#/components/schemas/".into())
        .into_generator()
}

fn describe<P: JsonSchema, O: JsonSchema>(
    generator: &mut SchemaGenerator,
    name: &str,
    summary: &str,
    mutating: bool,
    unbounded: bool,
    notification: Option<&str>,
) -> Value {
    let params_schema = generator.subschema_for::<P>();
    let params = by_name_params(generator, &params_schema);
    let result_schema = generator.subschema_for::<O>();
    let mut method = json!({
        "name": name,
        "summary": summary,
        "paramStructure": "by-name",
        "params": params,
        "result": { "name": if notification.is_some() { "item" } else { "result" }, "schema": result_schema },
        "x-mutating": mutating,
    });
    if unbounded {
        // Not bound by the request timeout; stops when the caller disconnects.
        method["x-unbounded"] = json!(true);
    }
    if let Some(notification) = notification {
        method["x-subscription"] = json!({ "notification": notification });
    }
    method
}

/// Turns the schema of a params struct into OpenRPC's list of named params.
fn by_name_params(generator: &SchemaGenerator, schema: &Schema) -> Vec<Value> {
    let resolved = resolve(generator, schema);
    let required: Vec<&str> = resolved
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(properties) = resolved.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .map(|(name, property)| {
            let mut param = Map::new();
            param.insert("name".into(), json!(name));
            if let Some(description) = property.get("description") {
                param.insert("description".into(), description.clone());
            }
            param.insert("required".into(), json!(required.contains(&name.as_str())));
            param.insert("schema".into(), property.clone());
            Value::Object(param)
        })
        .collect()
}

fn resolve(generator: &SchemaGenerator, schema: &Schema) -> Value {
    let value = schema.as_value();
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or(reference);
            generator
                .definitions()
                .get(name)
                .cloned()
                .unwrap_or(Value::Null)
        }
        None => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrpc_document_matches_snapshot() {
        insta::assert_json_snapshot!(document("0.0.0-test"));
    }

    #[test]
    fn method_names_are_unique_and_namespaced() {
        let infos = method_infos();
        let mut names: Vec<&str> = infos.iter().map(|info| info.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), infos.len());
        for name in names {
            let (namespace, verb) = name.split_once('.').expect("namespace.verb");
            assert!(!namespace.is_empty() && !verb.is_empty(), "{name}");
        }
    }
}
