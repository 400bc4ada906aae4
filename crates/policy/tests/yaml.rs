//! YAML policies: the same validation and diagnostics as JSON, pointing into
//! the YAML text (line, column, span, expectation and hint).

use ldguard_policy::{check_source, check_str, json, Diagnostic, PolicyFormat};

const GOOD: &str = "\
apiVersion: ldguard.policy/v1
name: web
mode: enforce
defaults: {file: allow, exec: allow, network: allow, syscall: allow}
rules:
  - name: no-shell
    kind: exec
    program: [/usr/sbin/nginx]
    path: [/bin/sh, /usr/bin/*sh]
    action: deny
    severity: high
  - name: metadata
    kind: network
    address: [169.254.169.254/32]
    port: [80, \"443\"]
    action: deny
";

fn errors(text: &str) -> Vec<Diagnostic> {
    let (policy, diags) = check_source(text, "p.yaml", PolicyFormat::Yaml);
    assert!(policy.is_none(), "accepted:\n{text}");
    diags.into_iter().filter(|d| d.is_error()).collect()
}

fn only_error(text: &str) -> Diagnostic {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap()
}

fn spanned<'t>(text: &'t str, d: &Diagnostic) -> &'t str {
    &text[d.span.0..d.span.1]
}

#[test]
fn a_yaml_policy_means_what_its_json_translation_means() {
    let (policy, diags) = check_source(GOOD, "p.yaml", PolicyFormat::Yaml);
    let policy = policy.unwrap_or_else(|| panic!("{}", diags.render(GOOD)));
    assert!(diags.is_empty(), "{}", diags.render(GOOD));
    let root = PolicyFormat::Yaml.parse(GOOD).unwrap();
    let as_json = json::to_string_pretty(&root);
    let (from_json, diags) = check_str(&as_json, "p.json");
    let from_json = from_json.unwrap_or_else(|| panic!("{}\n{as_json}", diags.render(&as_json)));
    assert_eq!(format!("{policy:?}"), format!("{from_json:?}"));
    assert_eq!(policy.rules.len(), 2);
}

#[test]
fn every_shipped_json_policy_reads_the_same_as_yaml() {
    // JSON is YAML 1.2 flow syntax: the YAML reader must agree with the
    // JSON reader on every policy in the repository.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let (a, _) = check_str(&text, "p.json");
        let (b, d) = check_source(&text, "p.yaml", PolicyFormat::Yaml);
        let b = b.unwrap_or_else(|| panic!("{}: {}", path.display(), d.render(&text)));
        assert_eq!(
            format!("{:?}", a.unwrap()),
            format!("{b:?}"),
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} policies found in {dir}");
}

#[test]
fn a_wrong_type_is_reported_at_the_value() {
    let text = GOOD.replace("    severity: high\n", "    severity: [high]\n");
    let d = only_error(&text);
    assert_eq!((d.line, d.col), (11, 15), "{d}");
    assert_eq!(spanned(&text, &d), "[high]");
    assert!(
        d.message
            .contains("`severity` must be a string, found an array"),
        "{d}"
    );
    assert_eq!(d.expected.as_deref(), Some("a string"));
    assert!(d.hint.as_deref().unwrap().contains("single value"), "{d}");

    // A YAML 1.1 boolean is a plain string in YAML 1.2.
    let text = GOOD.replace(
        "    action: deny\n    severity",
        "    enabled: yes\n    action: deny\n    severity",
    );
    let d = only_error(&text);
    assert_eq!((d.line, d.col), (10, 14), "{d}");
    assert!(d.message.contains("boolean"), "{d}");
}

#[test]
fn an_unknown_field_is_reported_at_its_key_with_a_suggestion() {
    let text = GOOD.replace(
        "    action: deny\n    severity",
        "    actoin: deny\n    severity",
    );
    let e = errors(&text);
    let d = e
        .iter()
        .find(|d| d.message.contains("unknown field"))
        .unwrap();
    assert_eq!((d.line, d.col), (10, 5), "{d}");
    assert_eq!(spanned(&text, d), "actoin");
    assert_eq!(d.hint.as_deref(), Some("did you mean `action`?"));
    assert!(d.expected.as_deref().unwrap().contains("`action`"));
    assert!(
        d.headline()
            .starts_with("p.yaml:10:5: unknown field `actoin` in rule"),
        "{}",
        d.headline()
    );
}

#[test]
fn a_duplicate_key_is_reported_at_its_second_use() {
    let text = GOOD.replace("mode: enforce\n", "mode: enforce\nmode: permissive\n");
    let d = only_error(&text);
    assert_eq!((d.line, d.col), (4, 1), "{d}");
    assert_eq!(spanned(&text, &d), "mode");
    assert!(d.message.contains("duplicate field `mode`"), "{d}");
    assert!(
        d.hint.as_deref().unwrap().contains("already set on line 3"),
        "{d}"
    );
}

#[test]
fn a_tab_in_the_indentation_is_reported_at_the_tab() {
    let text = GOOD.replace("    kind: exec\n", "\tkind: exec\n");
    let d = only_error(&text);
    assert_eq!((d.line, d.col), (7, 1), "{d}");
    assert_eq!(spanned(&text, &d), "\t");
    assert!(d.message.contains("tab"), "{d}");
    assert_eq!(d.expected.as_deref(), Some("spaces"));
    assert!(d.hint.as_deref().unwrap().contains("spaces"), "{d}");
}

#[test]
fn a_bad_glob_in_a_plain_scalar_is_underlined_inside_it() {
    let text = GOOD.replace("[/bin/sh, /usr/bin/*sh]", "[/bin/sh, usr/bin/*sh]");
    let d = only_error(&text);
    assert_eq!(d.line, 9, "{d}");
    assert!(d.message.contains("bad glob `usr/bin/*sh`"), "{d}");
    assert!(spanned(&text, &d).len() < "usr/bin/*sh".len() + 1, "{d}");
    let rendered = d.render(&text);
    assert!(
        rendered.contains("9 |     path: [/bin/sh, usr/bin/*sh]"),
        "{rendered}"
    );
    assert!(rendered.contains("^"), "{rendered}");
}

#[test]
fn syntax_errors_name_the_place() {
    let text = "apiVersion: ldguard.policy/v1\nname: [web\n";
    let d = only_error(text);
    assert_eq!(d.line, 3, "{d}");
    assert!(d.message.starts_with("YAML syntax:"), "{d}");
    let d = only_error("apiVersion: ldguard.policy/v1\nname: a: b\n");
    assert_eq!(d.line, 2, "{d}");
    assert!(d.hint.as_deref().unwrap().contains("quoted"), "{d}");
}

#[test]
fn the_preload_library_does_not_depend_on_a_yaml_reader() {
    // The library reads the JSON the builder bakes; YAML is a feature of
    // this crate that only the CLI, the builder and the server turn on.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "-p",
            "ldguard-preload",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.contains("ldguard-policy"), "{tree}");
    assert!(!tree.contains("saphyr"), "{tree}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
    /// Any text, YAML-looking or not: no panic, and every diagnostic's span
    /// lies on character boundaries of the text (so it renders).
    #[test]
    fn any_text_gives_a_result_or_diagnostics_that_render(
        text in "(apiVersion|name|rules|kind|path|- |: |\\[|\\]|\\{|\\}|,|\\t|\\n|  |&a|\\*a|!!str|'|\"|#|é|[a-z0-9/*.]){0,40}"
    ) {
        let (policy, diags) = check_source(&text, "p.yaml", PolicyFormat::Yaml);
        proptest::prop_assert!(policy.is_some() || diags.has_errors());
        for d in diags.iter() {
            proptest::prop_assert!(text.is_char_boundary(d.span.0) && text.is_char_boundary(d.span.1), "{d:?}");
            let _ = d.render(&text);
        }
    }
}
