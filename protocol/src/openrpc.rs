//! Builds the OpenRPC 1.3 document of the contract from the method types themselves, so the
//! description cannot drift from what the daemon accepts. Beside the methods, `components` holds
//! the error data with its list of codes (`ErrorData`, `ErrorCode`), the actions errors point to
//! (`Action`), and under `x-events` the `data` schema of every event kind.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

use crate::events::EventData;
use crate::{Action, ErrorData, ErrorKind, Method, Subscription};

/// Everything the document says about one method.
#[derive(Debug, Clone)]
pub struct MethodInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub mutating: bool,
    /// Not bound by the request timeout (see [`Method::UNBOUNDED`]).
    pub unbounded: bool,
    /// Open to connections that called `agent.hello` (see [`Method::FOR_AGENTS`]).
    pub for_agents: bool,
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
                for_agents: <$method as Method>::FOR_AGENTS,
                notification: None,
            },)*
            $(MethodInfo {
                name: <$sub as Subscription>::NAME,
                summary: <$sub as Subscription>::SUMMARY,
                mutating: false,
                unbounded: false,
                // Reading the event log spends and changes nothing.
                for_agents: true,
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
                <$method as Method>::FOR_AGENTS,
                None,
            ),)*
            $(describe::<<$sub as Subscription>::Params, <$sub as Subscription>::Item>(
                &mut generator,
                <$sub as Subscription>::NAME,
                <$sub as Subscription>::SUMMARY,
                false,
                false,
                true,
                Some(<$sub as Subscription>::NOTIFICATION),
            ),)*
        ];
        (generator, methods)
    }};
}

macro_rules! describe_events {
    ($($data:ty),* $(,)?) => {
        /// Each event kind with the schema of its `data`, in declaration order.
        fn describe_events(generator: &mut SchemaGenerator) -> Map<String, Value> {
            let mut events = Map::new();
            $(events.insert(
                <$data as EventData>::KIND.to_owned(),
                generator.subschema_for::<$data>().to_value(),
            );)*
            events
        }
    };
}

crate::events::for_each_event_data!(describe_events);

/// The OpenRPC document of the whole contract, `version` being the daemon's version.
pub fn document(version: &str) -> Value {
    let (mut generator, methods) = crate::for_each_method!(describe_all);
    // Named even where no method's result holds them: every error carries `ErrorData`.
    generator.subschema_for::<ErrorData>();
    generator.subschema_for::<Action>();
    let events = describe_events(&mut generator);
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
                 Every error carries data: {{kind, code, message, hint, action}} (components.schemas.ErrorData; the codes \
                 are components.schemas.ErrorCode, and clients must tolerate codes and action types added later). Every event's data has \
                 the schema its kind names in components.x-events; clients must tolerate kinds added later.",
                crate::PROTOCOL_VERSION
            ),
        },
        "methods": methods,
        "components": {
            "schemas": schemas,
            "errors": errors,
            "x-events": events,
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
    for_agents: bool,
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
    if for_agents {
        // Open to agents' connections; every other method answers them `not_for_agents`.
        method["x-for-agents"] = json!(true);
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
    fn every_event_kind_and_error_code_is_described() {
        let document = document("0.0.0-test");
        let events = document["components"]["x-events"].as_object().unwrap();
        let mut kinds: Vec<&str> = events.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        let mut listed = crate::events::kind::ALL.to_vec();
        listed.sort_unstable();
        assert_eq!(kinds, listed);
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for (kind, schema) in events {
            let name = schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
            // schemars numbers a second type of the same name; an event's must be its own.
            assert!(
                !name.ends_with(|c: char| c.is_ascii_digit()),
                "{kind}: {name}"
            );
            assert!(schemas.contains_key(name), "{kind}: {name}");
        }
        let codes: Vec<&str> = schemas["ErrorCode"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|code| code["const"].as_str().unwrap())
            .collect();
        let all: Vec<&str> = crate::ErrorCode::ALL
            .iter()
            .map(|code| code.as_str())
            .collect();
        assert_eq!(codes, all);
        assert!(schemas.contains_key("Action"));
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
