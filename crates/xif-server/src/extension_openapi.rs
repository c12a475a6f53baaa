//! The typed API of one extension: `GET /api/v1/extensions/{name}/openapi.json`, an OpenAPI
//! 3.0.3 document generated from the definition of the **published** version, for client
//! generators (`openapi-python-client`, `openapi-generator`, …).
//!
//! - Each action is an operation `POST /extensions/{Extension}/actions/{Action}` whose body is
//!   the action's inputs (required: the mandatory ones, no others accepted) and whose answer is
//!   its outputs.
//! - Each structure and entity is a component schema, named as in the definition.
//! - Each entity with an identifier has the record operations of the records API (list with a
//!   filter per attribute and operator, sort, limit and offset; get, create, put, delete); one
//!   without an identifier, list and create.
//! - Errors are the API's envelope, `{"error": {"code", "message"}}` (`xif_api::ErrorBody`).
//!
//! Why 3.0.3 and not 3.1 (which the server's own document uses): generators support 3.0 best,
//! and nothing here needs 3.1. Why `serde_json` values rather than the `openapiv3` or `utoipa`
//! types: the document is small and fixed in shape, its schemas come from the definition at run
//! time (not from Rust types, which is what `utoipa` is for), and `openapiv3` would add a
//! dependency whose types are written out the same way in more lines.
//!
//! The data types, as they travel (`xif-sdk/src/types.rs`):
//!
//! | platform type | schema |
//! |---|---|
//! | Text, Email, Phone Number | `string`, `maxLength` the length |
//! | Integer | `integer`, `int32` |
//! | Long Integer | `integer`, `int64` |
//! | Decimal, Currency | `string` with a decimal `pattern` (exact: never a float) |
//! | Boolean | `boolean` |
//! | Date Time | `string` with a `pattern`: no `format: date-time`, which is RFC 3339 and so has a time zone; xif's has none |
//! | Date | `string`, `format: date` |
//! | Time | `string` with a `pattern` (`format: time` is not in OpenAPI's list and would be read as RFC 3339's, with a zone) |
//! | Binary Data | `string`, `format: byte` (base64) |
//! | Entity Identifier | the schema of the entity's identifier |
//! | Record, Record List | a `$ref` to the structure or entity, an array of them |

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use xif_definition::{Action, Attribute, DataType, Definition, Entity, RecordDefinition, TypeSpec};

/// A decimal number as the server writes it: optional minus, digits, optional fraction.
const DECIMAL_PATTERN: &str = "^-?[0-9]+(\\.[0-9]+)?$";
/// A date and time of day without a time zone, as `2024-01-31T09:30:00`.
const DATE_TIME_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?$";
/// A time of day, as `09:30:00`.
const TIME_PATTERN: &str = "^[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?$";
/// The records a list answers at most, and by default (the records API's).
const MAX_LIMIT: u32 = 1000;
const DEFAULT_LIMIT: u32 = 50;

/// The OpenAPI document of `definition`, the definition of version `published` of its
/// extension.
pub fn document(definition: &Definition, published: i64) -> Value {
    let extension = &definition.extension.name.value;
    let names = SchemaNames::new(definition);
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    for action in &definition.actions {
        let (inputs, outputs) = names.action(&action.name.value);
        schemas.insert(inputs.clone(), parameters_schema(definition, action, true));
        schemas.insert(outputs.clone(), parameters_schema(definition, action, false));
        paths.insert(
            format!("/extensions/{extension}/actions/{}", action.name.value),
            json!({ "post": action_operation(extension, action, &inputs, &outputs) }),
        );
    }
    for structure in &definition.structures {
        schemas.insert(
            structure.name.value.clone(),
            record_schema(definition, &structure.attributes, structure.description.as_ref().map(|d| &d.value), false),
        );
    }
    for entity in &definition.entities {
        schemas.insert(
            entity.name.value.clone(),
            record_schema(definition, &entity.attributes, entity.description.as_ref().map(|d| &d.value), true),
        );
        record_paths(definition, extension, entity, &mut paths);
    }
    let mut description = format!(
        "The typed API of extension `{extension}`, generated from its published version {published} (declared {}). \
         Every operation takes an API token (`Authorization: Bearer TOKEN`); a module token must name `{extension}`.",
        definition.extension.version.value
    );
    if let Some(about) = &definition.extension.description {
        description = format!("{}\n\n{description}", about.value);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": extension,
            "version": format!("{}+{published}", definition.extension.version.value),
            "description": description,
        },
        "servers": [{ "url": xif_api::PREFIX }],
        "security": [{ "token": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "token": { "type": "http", "scheme": "bearer", "description": "an API token of the server (`xif login`, `xif token create`)" }
            },
            "schemas": schemas,
            "responses": shared_responses(),
        },
    })
}

/// The names of the component schemas: structures and entities keep theirs; each action's
/// inputs and outputs are `{Action}Inputs` and `{Action}Outputs`, with a number added when a
/// structure or entity has that name already.
struct SchemaNames {
    actions: BTreeMap<String, (String, String)>,
}

impl SchemaNames {
    fn new(definition: &Definition) -> Self {
        let mut taken: HashSet<String> = definition
            .structures
            .iter()
            .map(|structure| &structure.name.value)
            .chain(definition.entities.iter().map(|entity| &entity.name.value))
            .map(|name| name.to_ascii_lowercase())
            .collect();
        taken.insert("error".into());
        let mut free = |wanted: String| {
            let mut name = wanted.clone();
            let mut number = 2;
            while !taken.insert(name.to_ascii_lowercase()) {
                name = format!("{wanted}{number}");
                number += 1;
            }
            name
        };
        let actions = definition
            .actions
            .iter()
            .map(|action| {
                let name = &action.name.value;
                (name.clone(), (free(format!("{name}Inputs")), free(format!("{name}Outputs"))))
            })
            .collect();
        Self { actions }
    }

    /// The inputs' and the outputs' schema names of `action`.
    fn action(&self, action: &str) -> (String, String) {
        self.actions.get(action).cloned().unwrap_or_else(|| (format!("{action}Inputs"), format!("{action}Outputs")))
    }
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `xif_api::ErrorBody`.
fn error_schema() -> Value {
    json!({
        "type": "object",
        "description": "every error answer",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": { "type": "string", "description": "stable, for programs: the codes are listed in the server's own document, /api/v1/openapi.json" },
                    "message": { "type": "string", "description": "for people: what was wrong and how to fix it" },
                },
            },
        },
    })
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": reference("Error") } },
    })
}

fn shared(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// Responses every operation can answer.
fn shared_responses() -> Value {
    json!({
        "Unauthenticated": error_response("`unauthenticated` (no `Authorization: Bearer TOKEN`), `invalid_token` (unknown or revoked), `token_expired`"),
        "Forbidden": error_response("`out_of_scope`: a module token that does not name this extension"),
        "Internal": error_response("`internal`: the server failed; the detail is in its log, never in the answer"),
        "InvalidBody": error_response("`invalid_request`: the body is not a JSON object; `invalid_input`: a value does not fit its type (the message says which and why)"),
        "PayloadTooLarge": error_response("`payload_too_large`: the JSON body is over the server's limit"),
        "UnsupportedMediaType": error_response("`unsupported_media_type`: the body is not sent as `Content-Type: application/json`"),
        "RecordsUnavailable": {
            "description": "`database_unavailable`: the database of the entity's connection does not answer now (retry after `Retry-After` seconds); `storage_unavailable`: the server's own storage does not",
            "headers": { "Retry-After": { "schema": { "type": "integer" }, "description": "seconds to wait before retrying" } },
            "content": { "application/json": { "schema": reference("Error") } },
        },
    })
}

/// The schema of one value of `spec`.
fn type_schema(definition: &Definition, spec: &TypeSpec) -> Value {
    let data_type = spec.data_type.value;
    let mut schema = match data_type {
        DataType::Text | DataType::Email | DataType::PhoneNumber => {
            let mut schema = json!({ "type": "string" });
            if let Some(length) = &spec.length {
                schema["maxLength"] = json!(length.value);
            }
            schema
        }
        DataType::Integer => json!({ "type": "integer", "format": "int32" }),
        DataType::LongInteger => json!({ "type": "integer", "format": "int64" }),
        DataType::Decimal | DataType::Currency => {
            let mut schema = json!({ "type": "string", "pattern": DECIMAL_PATTERN });
            let digits = match (&spec.length, &spec.decimals) {
                (Some(length), Some(decimals)) => {
                    format!(", {} digits, {} after the point", length.value, decimals.value)
                }
                (Some(length), None) => format!(", {} digits", length.value),
                _ => String::new(),
            };
            schema["description"] = json!(format!(
                "an exact decimal number as text, like \"12.50\"{digits} (a JSON number is taken in inputs too)"
            ));
            schema
        }
        DataType::Boolean => json!({ "type": "boolean" }),
        DataType::DateTime => json!({
            "type": "string",
            "pattern": DATE_TIME_PATTERN,
            "description": "a date and time of day without a time zone, like \"2024-01-31T09:30:00\"",
        }),
        DataType::Date => json!({ "type": "string", "format": "date" }),
        DataType::Time => {
            json!({ "type": "string", "pattern": TIME_PATTERN, "description": "a time of day, like \"09:30:00\"" })
        }
        DataType::BinaryData => json!({ "type": "string", "format": "byte", "description": "bytes, as base64" }),
        DataType::EntityIdentifier => {
            let identifier =
                spec.record.as_ref().and_then(|record| match definition.record_definition(&record.value) {
                    Some(RecordDefinition::Entity(entity)) => identifier(entity),
                    _ => None,
                });
            match identifier {
                // An identifier is never itself an Entity Identifier of another entity's: the
                // definition's checks refuse that, and this does not recurse into one.
                Some(attribute) if attribute.data_type.data_type.value != DataType::EntityIdentifier => {
                    let mut schema = type_schema(definition, &attribute.data_type);
                    let entity = spec.record.as_ref().map_or("", |record| record.value.as_str());
                    schema["description"] =
                        json!(format!("the identifier of {} `{entity}` record", xif_definition::article(entity)));
                    schema
                }
                _ => json!({ "description": "the identifier of a record" }),
            }
        }
        DataType::Record => {
            return spec.record.as_ref().map_or_else(|| json!({ "type": "object" }), |record| reference(&record.value));
        }
        DataType::RecordList => {
            let item =
                spec.record.as_ref().map_or_else(|| json!({ "type": "object" }), |record| reference(&record.value));
            return json!({ "type": "array", "items": item });
        }
    };
    schema["x-xif-type"] = json!(data_type.name());
    schema
}

/// The schema of a value with its own description, if it has one. A `$ref` stands alone (in
/// OpenAPI 3.0 what is beside it is ignored), so a described record is wrapped in `allOf`.
fn described(schema: Value, description: Option<&String>) -> Value {
    let Some(description) = description else { return schema };
    if schema.get("$ref").is_some() {
        return json!({ "allOf": [schema], "description": description });
    }
    let mut schema = schema;
    let said = match schema.get("description").and_then(Value::as_str) {
        Some(type_said) => format!("{description} ({type_said})"),
        None => description.clone(),
    };
    schema["description"] = json!(said);
    schema
}

/// The identifier attribute of `entity`, if it has one.
fn identifier(entity: &Entity) -> Option<&Attribute> {
    entity.attributes.iter().find(|attribute| attribute.is_identifier())
}

/// A structure's or entity's schema. For an entity, an auto-number identifier is not required
/// (the database assigns it on create), and attributes that are not mandatory are nullable
/// (their columns can hold NULL).
fn record_schema(
    definition: &Definition,
    attributes: &[Attribute],
    description: Option<&String>,
    entity: bool,
) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for attribute in attributes {
        let mut schema = type_schema(definition, &attribute.data_type);
        if entity && !attribute.is_mandatory() && schema.get("$ref").is_none() {
            schema["nullable"] = json!(true);
        }
        properties.insert(
            attribute.name.value.clone(),
            described(schema, attribute.description.as_ref().map(|description| &description.value)),
        );
        if attribute.is_mandatory() && !(entity && attribute.is_auto_number()) {
            required.push(attribute.name.value.clone());
        }
    }
    let mut schema = json!({ "type": "object", "properties": properties });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    if let Some(description) = description {
        schema["description"] = json!(description);
    }
    schema
}

/// The schema of an action's inputs (`inputs`) or outputs.
fn parameters_schema(definition: &Definition, action: &Action, inputs: bool) -> Value {
    let parameters = if inputs { &action.inputs } else { &action.outputs };
    let mut properties = Map::new();
    let mut required = Vec::new();
    for parameter in parameters {
        properties.insert(
            parameter.name.value.clone(),
            described(
                type_schema(definition, &parameter.data_type),
                parameter.description.as_ref().map(|description| &description.value),
            ),
        );
        // The caller must give the mandatory inputs; every output is returned.
        if !inputs || parameter.is_mandatory() {
            required.push(parameter.name.value.clone());
        }
    }
    let what = if inputs { "inputs" } else { "outputs" };
    let mut schema = json!({
        "type": "object",
        "description": format!("the {what} of action `{}`", action.name.value),
        "properties": properties,
    });
    // The server refuses inputs the action does not have.
    if inputs {
        schema["additionalProperties"] = json!(false);
    }
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn action_operation(extension: &str, action: &Action, inputs: &str, outputs: &str) -> Value {
    let summary = action.description.as_ref().map_or_else(
        || format!("Calls action `{}` of `{extension}`", action.name.value),
        |description| description.value.clone(),
    );
    json!({
        "operationId": format!("call{}", action.name.value),
        "summary": summary,
        "tags": ["actions"],
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": reference(inputs) } },
        },
        "responses": {
            "200": { "description": "the outputs", "content": { "application/json": { "schema": reference(outputs) } } },
            "400": shared("InvalidBody"),
            "401": shared("Unauthenticated"),
            "403": shared("Forbidden"),
            "404": error_response("`extension_not_running`: no version of the extension runs; `unknown_action`: the published version has no such action"),
            "413": shared("PayloadTooLarge"),
            "415": shared("UnsupportedMediaType"),
            "422": error_response("`action_failed`: the action's own error"),
            "500": shared("Internal"),
            "502": error_response("`extension_crashed`, `extension_protocol_error`"),
            "503": error_response("`extension_failed`: the extension crashed repeatedly and was stopped; `storage_unavailable`"),
            "504": error_response("`action_timeout`"),
        },
    })
}

/// Whether values of `data_type` can be compared by order in a filter.
const fn ordered(data_type: DataType) -> bool {
    !matches!(data_type, DataType::Boolean | DataType::BinaryData | DataType::Record | DataType::RecordList)
}

/// The attributes a list can filter and sort on: those of scalar types but Binary Data.
fn filterable(entity: &Entity) -> impl Iterator<Item = &Attribute> {
    entity.attributes.iter().filter(|attribute| {
        !matches!(attribute.data_type.data_type.value, DataType::BinaryData | DataType::Record | DataType::RecordList)
    })
}

fn record_errors(operation: &mut Map<String, Value>, entity: &str, extra: &[(&str, Value)]) {
    let mut responses = Map::new();
    responses.insert("401".into(), shared("Unauthenticated"));
    responses.insert("403".into(), shared("Forbidden"));
    responses.insert(
        "404".into(),
        error_response(&format!(
            "`record_not_found`: no `{entity}` record has that identifier; `unknown_entity`: the running version has no such entity; `extension_not_running`: no version of the extension runs"
        )),
    );
    responses.insert(
        "409".into(),
        error_response(
            "`missing_configuration`: the entity's logical database is mapped to no database connection (`xif admin connection map`); `record_conflict`: a unique value is taken already, or a foreign key of the database refuses the change",
        ),
    );
    responses.insert("500".into(), shared("Internal"));
    responses.insert(
        "502".into(),
        error_response(
            "`invalid_stored_value`: the database holds a value its attribute's type cannot take; the message names the record and the attribute",
        ),
    );
    responses.insert("503".into(), shared("RecordsUnavailable"));
    for (status, response) in extra {
        responses.insert((*status).to_owned(), response.clone());
    }
    let answered = operation.entry("responses").or_insert_with(|| json!({}));
    if let Value::Object(answered) = answered {
        for (status, response) in responses {
            answered.entry(status).or_insert(response);
        }
    }
}

/// The record operations of `entity`, added to `paths`.
fn record_paths(definition: &Definition, extension: &str, entity: &Entity, paths: &mut Map<String, Value>) {
    let name = &entity.name.value;
    let schema = reference(name);
    let collection = format!("/extensions/{extension}/entities/{name}/records");
    let body = json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    let json_answer = |description: &str| json!({ "description": description, "content": { "application/json": { "schema": schema } } });
    let body_errors =
        [("400", shared("InvalidBody")), ("413", shared("PayloadTooLarge")), ("415", shared("UnsupportedMediaType"))];

    let mut parameters = Vec::new();
    let mut sort_keys = Vec::new();
    for attribute in filterable(entity) {
        let attribute_name = &attribute.name.value;
        let data_type = attribute.data_type.data_type.value;
        let value = type_schema(definition, &attribute.data_type);
        let mut operators = vec![("", "equals"), ("ne", "differs from")];
        if ordered(data_type) {
            operators.extend([
                ("gt", "is greater than"),
                ("ge", "is at least"),
                ("lt", "is less than"),
                ("le", "is at most"),
            ]);
        }
        if data_type.is_text() {
            operators.push(("like", "matches the SQL LIKE pattern (`%` any characters, `_` one)"));
        }
        for (operator, meaning) in operators {
            let parameter =
                if operator.is_empty() { attribute_name.clone() } else { format!("{attribute_name}.{operator}") };
            let schema = if operator == "like" { json!({ "type": "string" }) } else { value.clone() };
            parameters.push(json!({
                "name": parameter,
                "in": "query",
                "required": false,
                "description": format!("records whose `{attribute_name}` {meaning} this value"),
                "schema": schema,
            }));
        }
        sort_keys.push(attribute_name.clone());
    }
    if !sort_keys.is_empty() {
        let key = format!("-?({})", sort_keys.join("|"));
        parameters.push(json!({
            "name": "sort",
            "in": "query",
            "required": false,
            "description": format!(
                "the attributes to sort by, separated by commas, each descending when it starts with `-`: {}",
                sort_keys.iter().map(|key| format!("`{key}`")).collect::<Vec<_>>().join(", ")
            ),
            "schema": { "type": "string", "pattern": format!("^{key}(,{key})*$") },
        }));
    }
    parameters.push(json!({
        "name": "limit", "in": "query", "required": false,
        "description": format!("the most records to answer, {DEFAULT_LIMIT} by default"),
        "schema": { "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT },
    }));
    parameters.push(json!({
        "name": "offset", "in": "query", "required": false,
        "description": "how many records to skip, 0 by default",
        "schema": { "type": "integer", "minimum": 0, "default": 0 },
    }));

    let mut list = json!({
        "operationId": format!("list{name}Records"),
        "summary": format!("Lists `{name}` records, filtered and sorted"),
        "tags": ["records"],
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "a page of records; a `Link` header with `rel=\"next\"` when the page is full",
                "headers": { "Link": { "schema": { "type": "string" }, "description": "the next page, when there may be one" } },
                "content": { "application/json": { "schema": { "type": "array", "items": schema } } },
            },
            "400": error_response("`invalid_filter`: an unknown attribute, operator or sort key, or a value that does not fit its attribute (the message names the query parameter)"),
        },
    });
    let mut create = json!({
        "operationId": format!("create{name}Record"),
        "summary": format!("Creates {} `{name}` record{}", xif_definition::article(name), if identifier(entity).is_some_and(Attribute::is_auto_number) { "; the database numbers its identifier: leave it out (given, it is refused with 400)" } else { "" }),
        "tags": ["records"],
        "requestBody": body,
        "responses": {
            "201": {
                "description": "the stored record",
                "headers": { "Location": { "schema": { "type": "string" }, "description": "the record's address" } },
                "content": { "application/json": { "schema": schema } },
            },
        },
    });
    if let Value::Object(list) = &mut list {
        record_errors(list, name, &[]);
    }
    if let Value::Object(create) = &mut create {
        record_errors(create, name, &body_errors);
    }
    paths.insert(collection.clone(), json!({ "get": list, "post": create }));

    let Some(identifier) = identifier(entity) else { return };
    let id = json!({
        "name": "id",
        "in": "path",
        "required": true,
        "description": format!("the record's `{}`", identifier.name.value),
        "schema": type_schema(definition, &identifier.data_type),
    });
    let id_errors =
        [("400", error_response("`invalid_path`, `invalid_filter`: the identifier does not fit its attribute's type"))];
    let mut get = json!({
        "operationId": format!("get{name}Record"),
        "summary": format!("Reads {} `{name}` record", xif_definition::article(name)),
        "tags": ["records"],
        "responses": { "200": json_answer("the record") },
    });
    // An auto-numbered identifier is the database's: PUT updates only, records are created by POST.
    let put = if identifier.is_auto_number() {
        json!({
            "operationId": format!("put{name}Record"),
            "summary": format!("Updates {} `{name}` record; records are created with POST, which numbers them (PUT on a missing one answers 404)", xif_definition::article(name)),
            "tags": ["records"],
            "requestBody": body,
            "responses": { "200": json_answer("updated: the stored record") },
        })
    } else {
        json!({
            "operationId": format!("put{name}Record"),
            "summary": format!("Updates {} `{name}` record, or creates it with that identifier", xif_definition::article(name)),
            "tags": ["records"],
            "requestBody": body,
            "responses": { "200": json_answer("updated: the stored record"), "201": json_answer("created: the stored record") },
        })
    };
    let mut put = put;
    let mut delete = json!({
        "operationId": format!("delete{name}Record"),
        "summary": format!("Deletes {} `{name}` record", xif_definition::article(name)),
        "tags": ["records"],
        "responses": { "204": { "description": "deleted" } },
    });
    for (operation, extra) in [(&mut get, &id_errors[..]), (&mut delete, &id_errors[..])] {
        if let Value::Object(operation) = operation {
            record_errors(operation, name, extra);
        }
    }
    if let Value::Object(put) = &mut put {
        // A body error and a path error are both 400: one description names both.
        let both = error_response(
            "`invalid_request`: the body is not a JSON object; `invalid_input`: a value does not fit its type; `invalid_path`, `invalid_filter`: the identifier does not fit its attribute's type",
        );
        record_errors(put, name, &[("400", both), body_errors[1].clone(), body_errors[2].clone()]);
    }
    paths.insert(
        format!("{collection}/{{id}}"),
        json!({ "parameters": [id], "get": get, "put": put, "delete": delete }),
    );
}

/// `GET /extensions/{name}/openapi.json`: the document of the published version, for any
/// signed-in user, and for a module token scoped to the extension. 404 `unknown_extension` when no version of it is published.
pub async fn handler(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    caller: crate::auth::Caller,
    crate::error::ApiPath(name): crate::error::ApiPath<crate::names::ExtensionName>,
) -> Result<axum::Json<Value>, crate::error::ApiError> {
    use crate::error::ApiError;
    use xif_api::ErrorCode;
    caller.allow_extension(&name)?;
    let unpublished = || {
        ApiError::new(
            ErrorCode::UnknownExtension,
            format!(
                "extension `{name}` has no published version, so it has no API yet; publish one with `xif publish`"
            ),
        )
    };
    let extension = state.metadata.extension(&name).await?.ok_or_else(unpublished)?;
    let published = extension.published.ok_or_else(unpublished)?;
    let definition = published_definition(&state, &extension.name, published).await?;
    Ok(axum::Json(document(&definition, published)))
}

/// The definition of version `number` of `extension`: the running one's when it runs (no
/// archive to read), else read from its archive.
pub(crate) async fn published_definition(
    state: &crate::AppState,
    extension: &str,
    number: i64,
) -> Result<Arc<Definition>, crate::error::ApiError> {
    use crate::error::ApiError;
    if let Some(definition) = state.runtime.definition_of_version(extension, number).await {
        return Ok(definition);
    }
    let version = state.metadata.version(extension, number).await?.ok_or_else(|| {
        ApiError::internal(format!("the published version {number} of `{extension}` is not recorded"))
    })?;
    let blob = crate::store::fetch_to_temp(state.blobs.as_ref(), &version.sha256, state.runtime.root())
        .await?
        .ok_or_else(|| ApiError::internal(format!("the archive of `{extension}` version {number} is missing")))?;
    let definition = tokio::task::spawn_blocking(move || crate::handlers::read_definition(&blob))
        .await
        .map_err(ApiError::internal)??;
    Ok(Arc::new(definition))
}
