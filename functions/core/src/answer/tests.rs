use serde_json::json;

use super::*;

fn compile(source: &str) -> Result<AnswerTemplate, String> {
    AnswerTemplate::compile(source, ["mode", "temp", "name"])
}

fn render_with(source: &str, params: serde_json::Value, data: Option<serde_json::Value>) -> String {
    let params: Params = params
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    compile(source)
        .unwrap_or_else(|e| panic!("{source}: {e}"))
        .render(&AnswerContext {
            action: "heating",
            connection: "Home & Garden",
            params: &params,
            data: data.as_ref(),
        })
        .unwrap_or_else(|e| panic!("{source}: {e}"))
}

fn station() -> serde_json::Value {
    json!({"status": "ok", "body": {"devices": [{"module_name": "Living room",
        "dashboard_data": {"Temperature": 21.4, "Humidity": 48, "Pressure": 1013.0}}]}})
}

#[test]
fn parameters_by_name_and_under_params_with_action_and_connection() {
    assert_eq!(
        render_with(
            "Heating set to {{ mode }} ({{ params.mode }}), {{ action }} on {{ connection }}",
            json!({"mode": "away"}),
            None
        ),
        "Heating set to away (away), heating on Home & Garden",
        "plain text: nothing is HTML-escaped"
    );
}

#[test]
fn data_paths_read_the_vendor_answer() {
    assert_eq!(
        render_with(
            "{{ data.body.devices[0].module_name }} {{ data.body.devices[0].dashboard_data.Temperature }} °C, \
             {{ data.body.devices[0].dashboard_data['Humidity'] }} %, {{ data.body.devices[0].dashboard_data.Pressure }} mbar",
            json!({}),
            Some(station())
        ),
        "Living room 21.4 °C, 48 %, 1013 mbar",
        "a whole float says 1013, not 1013.0"
    );
}

#[test]
fn missing_values_render_empty_and_default_fills_them() {
    for data in [None, Some(station()), Some(json!({"body": null}))] {
        assert_eq!(
            render_with(
                "[{{ data.body.x.y }}|{{ params.nothing }}|{{ data.body.devices[5].module_name }}]",
                json!({}),
                data.clone()
            ),
            "[||]",
            "{data:?}"
        );
        assert_eq!(
            render_with(
                "{{ data.body.home.name | default('Home') }} {{ name | default('Room') }}",
                json!({}),
                data
            ),
            "Home Room"
        );
    }
    assert_eq!(
        render_with(
            "[{{ data.a }}] {{ data.a | default('unknown') }} {{ data.b | default('none', true) }} {{ data.c | d('?') }}",
            json!({}),
            Some(json!({"a": null, "b": "", "c": 0}))
        ),
        "[] unknown none 0",
        "JSON null is neither spoken as none nor kept by default"
    );
    assert_eq!(
        render_with(
            "{{ name or 'Room' }} set to {{ temp }} °C",
            json!({"temp": 21}),
            None
        ),
        "Room set to 21 °C"
    );
}

#[test]
fn round_gives_one_decimal_and_leaves_missing_values_alone() {
    let data = Some(
        json!({"t": 21.4567, "whole": 21.04, "n": 48, "s": "warm", "half": 7.25, "cold": -2.45}),
    );
    assert_eq!(
        render_with(
            "{{ data.t | round(1) }} {{ data.whole | round(1) }} {{ data.n | round(1) }} {{ data.t | round }} \
             [{{ data.gone | round(1) }}] {{ data.s | round }} {{ data.half | round(1) }} {{ data.cold | round(1) }}",
            json!({}),
            data
        ),
        "21.5 21 48 21 [] warm 7.3 -2.5"
    );
}

#[test]
fn conditionals_choose_the_sentence() {
    let template = "{% if data.security_level == 'armed' %}The alarm is armed\
        {% elif data.security_level == 'partial' %}The alarm is partially armed\
        {% else %}The alarm is {{ data.security_level | default('in an unknown state') }}{% endif %}";
    for (level, said) in [
        (json!("armed"), "The alarm is armed"),
        (json!("partial"), "The alarm is partially armed"),
        (json!("disarmed"), "The alarm is disarmed"),
        (json!(null), "The alarm is in an unknown state"),
    ] {
        assert_eq!(
            render_with(template, json!({}), Some(json!({"security_level": level}))),
            said
        );
    }
}

#[test]
fn the_former_syntax_is_refused_with_its_rewrite() {
    let e = compile("Heating set to {mode}").expect_err("old syntax");
    assert_eq!(
        e,
        "answers are minijinja templates now: write \"Heating set to {{ mode }}\""
    );
    let e = compile("Living room {/body/devices/0/dashboard_data/Temperature} °C")
        .expect_err("old pointer");
    assert!(
        e.ends_with(
            "write \"Living room {{ data.body.devices[0].dashboard_data.Temperature }} °C\""
        ),
        "{e}"
    );
    // Braces that were never placeholders stay text, in both syntaxes.
    assert_eq!(render_with("Set {a b} {}", json!({}), None), "Set {a b} {}");
    assert_eq!(
        render_with("{{ mode }} {x}", json!({"mode": "away"}), None),
        "away {x}"
    );
}

#[test]
fn syntax_errors_say_what_and_which_line() {
    let e = compile("{% if mode %}on").expect_err("unclosed if");
    assert!(
        e.starts_with("syntax error: unexpected end of input") && e.ends_with("(line 1)"),
        "{e}"
    );
    let e = compile("Line one\n{{ mode ~ }}").expect_err("bad expression");
    assert!(
        e.starts_with("syntax error") && e.ends_with("(line 2)"),
        "{e}"
    );
}

#[test]
fn unknown_names_and_filters_are_refused_at_load() {
    let e = compile("Heating {{ mdoe }}").expect_err("typo");
    assert!(
        e.contains("\"mdoe\" is not a parameter of this action (it has: mode, name, temp)"),
        "{e}"
    );
    let e = compile("{{ mode | rond(1) }}").expect_err("unknown filter");
    assert!(e.starts_with("unknown filter"), "{e}");
    // Names a template sets itself, and minijinja's own functions, are fine.
    assert!(compile("{% set n = 2 %}{% for i in range(n) %}{{ loop.index }}{% endfor %}").is_ok());
}

#[test]
fn the_answer_is_bounded_and_a_runaway_template_stops() {
    let long = render_with("{% for i in range(5000) %}ab{% endfor %}", json!({}), None);
    assert_eq!(long.chars().count(), MAX_ANSWER_CHARS);
    let spin = compile(
        "{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}",
    )
    .expect("compiles");
    let params = Params::new();
    let started = std::time::Instant::now();
    let result = spin.render(&AnswerContext {
        action: "a",
        connection: "c",
        params: &params,
        data: None,
    });
    assert!(result.is_err(), "out of fuel");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn config_errors_name_the_answer_field() {
    let parse = |answer: &str| {
        crate::config::Config::parse(
            &format!(
                "[connections.c]\nprovider = \"netatmo\"\n[actions.heat]\nconnection = \"c\"\npath = \"/api/setthermmode\"\nquery = {{ mode = \"{{mode}}\" }}\nparams.mode = {{ type = \"enum\", values = [\"away\", \"schedule\"] }}\nkey_hash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\nanswer = '''{answer}'''\n"
            ),
            "homehook.toml",
            None,
        )
    };
    let e = parse("Heating {% if mode == 'away' %}off").expect_err("unclosed if");
    assert_eq!(e.field, "actions.heat.answer");
    assert!(
        e.problem.starts_with("syntax error") && e.problem.ends_with("(line 1)"),
        "{e}"
    );
    let e = parse("Heating set to {mode}").expect_err("old syntax");
    assert_eq!(e.field, "actions.heat.answer");
    assert!(
        e.problem.contains("write \"Heating set to {{ mode }}\""),
        "{e}"
    );
    let ok = parse("Heating {{ 'off' if mode == 'away' else 'on' }}").expect("valid");
    assert!(ok.actions["heat"].answer.is_some());
}

#[test]
fn a_failing_template_answers_ok() {
    let config = crate::config::Config::parse(
        "[connections.c]\nprovider = \"netatmo\"\n[actions.a]\nconnection = \"c\"\npath = \"/x\"\nkey_hash = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\"\nanswer = \"{{ data.items | join(1, 2, 3) }}{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\"\n",
        "t.toml",
        None,
    )
    .expect("config");
    let answer = crate::action::render_answer(
        &config.actions["a"],
        "Home",
        &Params::new(),
        Some(&json!({"items": ["secret-looking value"]})),
    );
    assert_eq!(answer, "OK");
}
