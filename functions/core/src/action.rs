//! Running an action: checked parameters → vendor request → the connection's API (fresh token,
//! one renewal on an expired-token answer, bounded retries; see [`crate::vendor_client`]) → an answer for
//! the caller.

use serde_json::Value;

use crate::answer::AnswerContext;
use crate::config::Action;
use crate::error::ActionError;
use crate::params::{ParamError, Params, as_text};
use crate::services::Services;
use crate::template::RequestTemplate;
use crate::vendor::{VendorBody, VendorRequest, path_segment};
use crate::vendor_client::VendorClient;

/// What the caller gets back after the vendor answered 2xx.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    /// The vendor's HTTP status.
    pub vendor_status: u16,
    /// Short text answer (for phone shortcuts).
    pub answer: String,
    /// The vendor's JSON answer, or a code step's structured result: what the answer template
    /// saw as `data`.
    pub data: Option<Value>,
}

/// Renders the vendor request of `action` with checked `params`. A value placed in the path
/// must be a real segment: empty, `.` and `..` are refused. A query or form field, or a JSON
/// member, filled only by an optional parameter the caller left out is left out too.
pub fn render_request(action: &Action, params: &Params) -> Result<VendorRequest, ParamError> {
    for name in action.path.params() {
        let text = params.get(name).map(as_text).unwrap_or_default();
        if matches!(text.as_str(), "" | "." | "..") {
            return Err(ParamError::Invalid {
                name: name.to_string(),
                problem: "this value cannot be used in a URL path".into(),
            });
        }
    }
    let path = action.path.render(|name| {
        params
            .get(name)
            .map(|v| path_segment(&as_text(v)))
            .unwrap_or_default()
    });
    let fields = |pairs: &[(String, RequestTemplate)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .filter(|(_, t)| t.params().all(|p| params.contains_key(p)))
            .map(|(k, t)| (k.clone(), t.render(|name| fill_param(name, params))))
            .collect()
    };
    let body = if let Some(body) = &action.body {
        VendorBody::Json(render_json(body, params).unwrap_or(Value::Null))
    } else if !action.form.is_empty() {
        VendorBody::Form(fields(&action.form))
    } else {
        VendorBody::Empty
    };
    Ok(VendorRequest {
        method: action.method.clone(),
        path,
        query: fields(&action.query),
        body,
    })
}

fn fill_param(name: &str, params: &Params) -> String {
    params.get(name).map(as_text).unwrap_or_default()
}

/// Fills string templates inside a JSON body. A string that is exactly one `{param}` takes the
/// parameter's JSON value (numbers stay numbers); values are inserted as JSON values, never
/// spliced into JSON text, so a parameter cannot add fields. `None`: a member to leave out.
fn render_json(value: &Value, params: &Params) -> Option<Value> {
    Some(match value {
        Value::String(s) => match RequestTemplate::parse(s) {
            Ok(t) if t.params().any(|p| !params.contains_key(p)) => return None,
            Ok(t) => match t.sole_param().and_then(|p| params.get(p)) {
                Some(v) => v.clone(),
                None => Value::String(t.render(|name| fill_param(name, params))),
            },
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter_map(|v| render_json(v, params))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), render_json(v, params)?)))
                .collect(),
        ),
        other => other.clone(),
    })
}

/// The spoken answer: the action's `answer` template rendered with its parameters and `data`,
/// or "OK" when it has none, renders nothing, or fails (logged with the action's name only:
/// the vendor's values stay out of logs).
pub fn render_answer(
    action: &Action,
    connection_label: &str,
    params: &Params,
    data: Option<&Value>,
) -> String {
    let Some(template) = &action.answer else {
        return "OK".into();
    };
    let context = AnswerContext {
        action: &action.name,
        connection: connection_label,
        params,
        data,
    };
    match template.render(&context) {
        Ok(text) if !text.is_empty() => text,
        Ok(_) => "OK".into(),
        Err(e) => {
            tracing::warn!(
                action = %action.name,
                problem = %e.kind(),
                line = e.line().unwrap_or_default(),
                "the answer template failed; answered OK"
            );
            "OK".into()
        }
    }
}

/// Runs `action` with checked `params`: one request (or the vendor's code step) through the
/// connection's [`VendorClient`], then the spoken answer.
pub async fn run(
    services: &Services,
    action: &Action,
    params: &Params,
) -> Result<ActionOutcome, ActionError> {
    let client = VendorClient::new(services, &action.connection)?;
    let request = render_request(action, params)?;
    let (vendor_status, data) = if let Some(step) = &action.run {
        let step = client.run_step(step, &request).await?;
        (step.vendor_status, Some(step.data))
    } else {
        let response = client.act(&request).await?;
        (response.status, response.json)
    };
    Ok(ActionOutcome {
        vendor_status,
        answer: render_answer(action, &client.connection().label, params, data.as_ref()),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::test_support::{FIRST_ACCESS_TOKEN, Reply, T0, setup};
    use serde_json::json;
    use std::collections::BTreeMap;

    const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn parameters_cannot_escape_their_place() {
        let config = Config::parse(
            &format!(
                r#"
                [connections.c]
                provider = "netatmo"
                [actions.a]
                connection = "c"
                path = "/device/{{dev}}/set"
                query = {{ note = "{{dev}}" }}
                body = {{ home = {{ id = "h1", temp = "{{temp}}", label = "t={{dev}}" }} }}
                params.dev = {{ type = "string" }}
                params.temp = {{ type = "number" }}
                key_hash = "{HASH}"
                "#
            ),
            "t.toml",
            None,
        )
        .expect("config");
        let action = &config.actions["a"];
        let params = crate::params::check(
            &action.params,
            [
                ("dev".to_string(), json!("../x?y#\"z")),
                ("temp".to_string(), json!(19.5)),
            ]
            .into_iter()
            .collect(),
            crate::clock::UnixTime(0),
        )
        .expect("params");
        let r = render_request(action, &params).expect("renders");
        assert_eq!(r.path, "/device/..%2Fx%3Fy%23%22z/set");
        assert_eq!(r.query, [("note".to_string(), "../x?y#\"z".to_string())]);
        assert_eq!(
            r.body,
            VendorBody::Json(json!({"home": {"id": "h1", "temp": 19.5, "label": "t=../x?y#\"z"}}))
        );
    }

    fn builtin_config() -> Config {
        Config::parse(
            &format!(
                r#"
                [connections.home]
                provider = "netatmo"
                [actions.away]
                connection = "home"
                builtin = "therm_mode"
                with = {{ home_id = "h1", mode = "away" }}
                key_hash = "{HASH}"
                [actions.lamp]
                connection = "home"
                builtin = "light_on"
                with = {{ home_id = "h1", module_id = "m1" }}
                key_hash = "{HASH}"
                "#
            ),
            "t.toml",
            None,
        )
        .expect("config")
    }

    #[test]
    fn a_builtin_fixes_its_setup_and_leaves_out_what_the_caller_left_out() {
        let config = builtin_config();
        let away = &config.actions["away"];
        let now = crate::clock::UnixTime(1_000);
        let check = |body: Value| {
            crate::params::check(
                &away.params,
                body.as_object()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                now,
            )
        };
        let form = |params: &Params| match render_request(away, params).expect("renders").body {
            VendorBody::Form(pairs) => pairs,
            other => panic!("{other:?}"),
        };
        let without = check(json!({})).expect("minutes are optional");
        assert_eq!(
            form(&without),
            [
                ("home_id".to_string(), "h1".to_string()),
                ("mode".to_string(), "away".to_string())
            ]
        );
        assert!(matches!(
            check(json!({"minutes": 1_000_000_000_000_i64})),
            Err(ParamError::Invalid { .. })
        ));
        let with = check(json!({"minutes": 60})).expect("minutes");
        assert!(form(&with).contains(&("endtime".to_string(), "4600".to_string())));
        // Values fixed by config cannot be changed by a caller.
        assert!(matches!(
            check(json!({"home_id": "other"})),
            Err(ParamError::Unknown { .. })
        ));
        assert!(matches!(
            check(json!({"mode": "schedule"})),
            Err(ParamError::Unknown { .. })
        ));

        let lamp = &config.actions["lamp"];
        let params = crate::params::check(&lamp.params, BTreeMap::new(), now).expect("no params");
        assert_eq!(
            render_request(lamp, &params).expect("renders").body,
            VendorBody::Json(json!({"home": {"id": "h1", "modules": [{"id": "m1", "on": true}]}}))
        );
        assert_eq!(lamp.methods, [http::Method::POST]);
    }

    const HEAT: &str = r#"
        [actions.heat]
        connection = "conn"
        method = "PUT"
        path = "/rooms/{room}/target"
        body = { target = { temp = "{temp}", unit = "C" } }
        params.room = { type = "string" }
        params.temp = { type = "number", min = 5, max = 30 }
        answer = "{{ room }} heats to {{ data.target }} °C"
        key_hash = "{key_hash}"
    "#;

    fn heat_params(action: &Action) -> Params {
        crate::params::check(
            &action.params,
            [
                ("room".to_string(), json!("kitchen")),
                ("temp".to_string(), json!(21.5)),
            ]
            .into(),
            T0,
        )
        .expect("params")
    }

    #[tokio::test]
    async fn run_sends_the_rendered_request_and_answers_with_the_vendors_data() {
        let s = setup(HEAT).await;
        s.vendor.queue(
            "/rooms/kitchen/target",
            [Reply::json(200, json!({"target": 21.5}))],
        );
        let action = &s.services.config.actions["heat"];
        let outcome = run(&s.services, action, &heat_params(action))
            .await
            .expect("runs");
        assert_eq!(outcome.vendor_status, 200);
        assert_eq!(outcome.data, Some(json!({"target": 21.5})));
        assert_eq!(outcome.answer, "kitchen heats to 21.5 °C");
        let sent = s.vendor.requests_to("/rooms/kitchen/target");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "PUT");
        assert_eq!(
            sent[0].authorization,
            Some(format!("Bearer {FIRST_ACCESS_TOKEN}"))
        );
        let body: Value = serde_json::from_str(&sent[0].body).expect("a JSON body");
        assert_eq!(body, json!({"target": {"temp": 21.5, "unit": "C"}}));
    }

    #[tokio::test]
    async fn a_vendor_refusal_is_vendor_rejected_with_its_status() {
        let s = setup(HEAT).await;
        s.vendor.queue(
            "/rooms/kitchen/target",
            [Reply::json(
                404,
                json!({"error": {"message": "no such room"}}),
            )],
        );
        let action = &s.services.config.actions["heat"];
        let e = run(&s.services, action, &heat_params(action))
            .await
            .expect_err("refused");
        match e {
            ActionError::VendorRejected { status, reason } => {
                assert_eq!(status, 404);
                assert_eq!(reason.as_deref(), Some("no such room"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.vendor.requests_to("/rooms/kitchen/target").len(), 1);
    }
}
