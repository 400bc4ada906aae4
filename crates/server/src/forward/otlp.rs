//! OTLP/HTTP logs, protobuf encoding: an `ExportLogsServiceRequest`
//! (opentelemetry-proto, `collector/logs/v1`) with one `ResourceLogs` per
//! container. Only the messages and fields ldguard fills are declared;
//! their tags are those of the official `.proto` files, and the forwarding
//! tests decode these bytes with the official generated types.

use super::{image_parts, Forwardable};
use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceLogs {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeLogs {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<LogRecord>,
}

#[derive(Clone, PartialEq, Message)]
pub struct InstrumentationScope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct LogRecord {
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// `SeverityNumber` (an enum, int32 on the wire).
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    #[prost(string, tag = "3")]
    pub severity_text: String,
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(oneof = "Value", tags = "1, 2, 3, 5")]
    pub value: Option<Value>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(string, tag = "1")]
    String(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(message, tag = "5")]
    Array(ArrayValue),
}

#[derive(Clone, PartialEq, Message)]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// The collector's answer (`ExportLogsServiceResponse`): a 2xx may still
/// say that some records were rejected.
#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsServiceResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsPartialSuccess {
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// Records a 2xx answer rejected, with the collector's reason (0 and ""
/// for a full success, or a body that is not a protobuf response).
pub fn rejected(body: &[u8]) -> (u64, String) {
    match ExportLogsServiceResponse::decode(body) {
        Ok(ExportLogsServiceResponse {
            partial_success: Some(p),
        }) => (p.rejected_log_records.max(0) as u64, p.error_message),
        _ => (0, String::new()),
    }
}

fn text(s: &str) -> AnyValue {
    AnyValue {
        value: Some(Value::String(s.to_string())),
    }
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn kv_text(key: &str, value: &str) -> KeyValue {
    kv(key, Value::String(value.to_string()))
}

/// ldguard's severities on OpenTelemetry's `SeverityNumber` scale.
pub fn severity_number(severity: &str) -> i32 {
    match severity {
        "info" => 9,      // INFO
        "low" => 13,      // WARN
        "medium" => 17,   // ERROR
        "high" => 18,     // ERROR2
        "critical" => 21, // FATAL
        _ => 0,           // UNSPECIFIED
    }
}

/// The resource: the container and its image.
fn resource(container: Option<&str>, image: Option<&str>) -> Resource {
    let mut attributes = vec![kv_text(
        "service.name",
        image.map_or("ldguard", |i| image_parts(i).0),
    )];
    if let Some(c) = container {
        attributes.push(kv_text("container.id", c));
    }
    if let Some(i) = image {
        let (name, tag, digest) = image_parts(i);
        attributes.push(kv_text("container.image.name", name));
        if let Some(tag) = tag {
            attributes.push(kv(
                "container.image.tags",
                Value::Array(ArrayValue {
                    values: vec![text(tag)],
                }),
            ));
        }
        if digest.is_some() {
            attributes.push(kv(
                "container.image.repo_digests",
                Value::Array(ArrayValue {
                    values: vec![text(i)],
                }),
            ));
        }
    }
    Resource { attributes }
}

/// One event as a log record: the message is the body; every other field
/// is an attribute (semantic-convention names where one exists).
fn record(f: &Forwardable) -> LogRecord {
    let e = &f.event;
    let mut a = vec![
        kv_text("log.record.uid", &f.uid()),
        kv("process.pid", Value::Int(i64::from(e.pid))),
        kv("process.parent_pid", Value::Int(i64::from(e.ppid))),
        kv("process.user.id", Value::Int(i64::from(e.uid))),
        kv_text("process.executable.path", &e.program),
        kv_text("event.action", &e.action),
        kv_text("ldguard.call", &e.call),
        kv_text("ldguard.kind", &e.kind),
        kv("ldguard.enforced", Value::Bool(e.enforced)),
        kv_text("ldguard.mode", &e.mode),
    ];
    if let Some(t) = &e.target {
        a.push(kv_text("ldguard.target", t));
        if e.kind == "file" || e.kind == "drift" {
            a.push(kv_text("file.path", e.resolved.as_deref().unwrap_or(t)));
        }
        if e.kind == "network" {
            if let Some((address, port)) = t.rsplit_once(':') {
                a.push(kv_text(
                    "destination.address",
                    address.trim_matches(['[', ']']),
                ));
                if let Ok(port) = port.parse::<i64>() {
                    a.push(kv("destination.port", Value::Int(port)));
                }
            }
        }
    }
    if let Some(r) = &e.resolved {
        a.push(kv_text("ldguard.resolved", r));
    }
    if let Some(h) = &e.host {
        a.push(kv_text("destination.domain", h));
    }
    if let Some(x) = &e.access {
        a.push(kv_text("ldguard.access", x));
    }
    if !e.args.is_empty() {
        a.push(kv(
            "process.command_args",
            Value::Array(ArrayValue {
                values: e.args.iter().map(|s| text(s)).collect(),
            }),
        ));
    }
    if let Some(r) = &e.rule {
        a.push(kv_text("rule.name", r));
    }
    if let Some(p) = &e.policy {
        a.push(kv_text("ldguard.policy", p));
    }
    if let Some(n) = e.errno {
        a.push(kv("ldguard.errno", Value::Int(i64::from(n))));
    }
    if let Some(n) = e.dropped {
        a.push(kv("ldguard.dropped", Value::Int(n as i64)));
    }
    if e.behavior {
        a.push(kv("ldguard.behavior", Value::Bool(true)));
    }
    LogRecord {
        time_unix_nano: f.time_ns,
        severity_number: severity_number(&e.severity),
        severity_text: e.severity.clone(),
        body: Some(text(&e.message)),
        attributes: a,
        observed_time_unix_nano: (f.received_us as u64).saturating_mul(1000),
    }
}

/// The request body for `events`: one `ResourceLogs` per (container,
/// image), in the order each first appears.
pub fn encode(events: &[Forwardable]) -> Vec<u8> {
    let mut groups: Vec<ResourceLogs> = Vec::new();
    let mut keys: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    for f in events {
        let key = (f.event.container.as_deref(), f.event.image.as_deref());
        let i = match keys.iter().position(|k| *k == key) {
            Some(i) => i,
            None => {
                keys.push(key);
                groups.push(ResourceLogs {
                    resource: Some(resource(key.0, key.1)),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(InstrumentationScope {
                            name: "ldguard".into(),
                            version: env!("CARGO_PKG_VERSION").into(),
                        }),
                        log_records: Vec::new(),
                    }],
                });
                groups.len() - 1
            }
        };
        groups[i].scope_logs[0].log_records.push(record(f));
    }
    ExportLogsServiceRequest {
        resource_logs: groups,
    }
    .encode_to_vec()
}
