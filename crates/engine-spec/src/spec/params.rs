//! `params:` declarations, `--param name=value` overrides and `${param}` substitution.

use super::{Arg, Cx, Param};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::ops::ParamType;
use crate::tree::{Node, Value};

const PARAM_KEYS: [&str; 2] = ["type", "default"];

impl Cx {
    pub(super) fn declare_params(
        &mut self,
        node: &Node,
        overrides: &[(String, String)],
    ) -> Vec<Param> {
        let Some(entries) = node.entries() else {
            self.err(
                node.span,
                format!(
                    "`params` must be a mapping of name to default, found {}",
                    node.value.kind()
                ),
            );
            return vec![];
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let name = k.as_str().unwrap_or("").to_string();
            // `name: default` or `name: {type: int, default: 3}`.
            let (ty, default) = match v.get("default").or_else(|| v.get("type").map(|_| v)) {
                Some(_) if v.entries().is_some() => {
                    for (pk, _) in v.entries().unwrap_or_default() {
                        let key = pk.as_str().unwrap_or("");
                        if !PARAM_KEYS.contains(&key) {
                            let d = Diagnostic::new(
                                pk.span,
                                format!("unknown key `{key}` in parameter `{name}`"),
                            );
                            self.diags.push(match did_you_mean(key, PARAM_KEYS) {
                                Some(h) => d.with_help(h),
                                None => d.with_help("a parameter has `type` and `default`"),
                            });
                        }
                    }
                    let ty = match v.get("type").and_then(|t| t.as_str()) {
                        Some("int") => ParamType::Int,
                        Some("float") => ParamType::Float,
                        Some("bool") => ParamType::Bool,
                        Some("string" | "str") => ParamType::Str,
                        Some("path") => ParamType::Path,
                        Some(other) => {
                            let t = v.get("type").map_or(v.span, |t| t.span);
                            let d = Diagnostic::new(t, format!("unknown parameter type `{other}`"));
                            self.diags.push(
                                match did_you_mean(
                                    other,
                                    ["int", "float", "bool", "string", "path"],
                                ) {
                                    Some(h) => d.with_help(h),
                                    None => d.with_help("types are int, float, bool, string, path"),
                                },
                            );
                            continue;
                        }
                        None => infer_type(v.get("default").map_or(&Value::Null, |d| &d.value)),
                    };
                    (ty, v.get("default").cloned())
                }
                _ => (infer_type(&v.value), Some(v.clone())),
            };
            let mut value = match &default {
                Some(d) => self
                    .typed(d, ty, &format!("parameter `{name}`"))
                    .unwrap_or(Arg::Null),
                None => Arg::Null,
            };
            if let Some((_, raw)) = overrides.iter().find(|(n, _)| *n == name) {
                match parse_override(raw, ty) {
                    Some(a) => value = a,
                    None => self.err(
                        k.span,
                        format!("--param {name}={raw}: expected {}", ty.describe()),
                    ),
                }
            }
            self.params.insert(name.clone(), (value.clone(), ty));
            out.push(Param {
                name,
                ty,
                value,
                span: k.span,
            });
        }
        for (n, _) in overrides {
            if !self.params.contains_key(n) {
                let d = Diagnostic::new(node.span, format!("--param {n}: no such parameter"));
                let names: Vec<&str> = out.iter().map(|p| p.name.as_str()).collect();
                self.diags
                    .push(match did_you_mean(n, names.iter().copied()) {
                        Some(h) => d.with_help(h),
                        None => d.with_help(format!("parameters are {}", names.join(", "))),
                    });
            }
        }
        out
    }

    /// `${name}` alone takes the parameter's typed value; inside text it is interpolated.
    pub(super) fn substitute(&mut self, s: &str, span: Span) -> Option<Arg> {
        if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
            && !name.contains("${")
        {
            return self.lookup(name, span).map(|(a, _)| a);
        }
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let Some(j) = rest[i..].find('}') else {
                self.err(span, "unclosed `${` in a parameter reference");
                return None;
            };
            let (a, _) = self.lookup(&rest[i + 2..i + j], span)?;
            out.push_str(&match a {
                Arg::Str(s) => s,
                Arg::Int(i) => i.to_string(),
                Arg::Float(f) => f.to_string(),
                Arg::Bool(b) => b.to_string(),
                Arg::Null => String::new(),
            });
            rest = &rest[i + j + 1..];
        }
        out.push_str(rest);
        Some(Arg::Str(out))
    }

    fn lookup(&mut self, name: &str, span: Span) -> Option<(Arg, ParamType)> {
        match self.params.get(name) {
            Some(v) => Some(v.clone()),
            None => {
                let names: Vec<String> = self.params.keys().cloned().collect();
                let d = Diagnostic::new(span, format!("unknown parameter `{name}`"));
                self.diags
                    .push(match did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(h) => d.with_help(h),
                        None => d.with_help("declare it under `params:`"),
                    });
                None
            }
        }
    }
}

fn infer_type(v: &Value) -> ParamType {
    match v {
        Value::Int(_) => ParamType::Int,
        Value::Float(_) => ParamType::Float,
        Value::Bool(_) => ParamType::Bool,
        _ => ParamType::Str,
    }
}

pub(super) fn parse_override(raw: &str, ty: ParamType) -> Option<Arg> {
    match ty {
        ParamType::Int => raw.replace('_', "").parse().ok().map(Arg::Int),
        ParamType::Float => raw.parse().ok().map(Arg::Float),
        ParamType::Bool => match raw {
            "true" => Some(Arg::Bool(true)),
            "false" => Some(Arg::Bool(false)),
            _ => None,
        },
        ParamType::Str | ParamType::Path | ParamType::Step | ParamType::Names => {
            Some(Arg::Str(raw.to_string()))
        }
        ParamType::Indices => crate::index_expr::parse(raw)
            .is_ok()
            .then(|| Arg::Str(raw.to_string())),
        ParamType::Choice(c) => c.contains(&raw).then(|| Arg::Str(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::tests::GOOD;
    use crate::spec::{Arg, parse_yaml};

    #[test]
    fn params_can_be_overridden() {
        let o = vec![
            ("n_obs".to_string(), "5_000_000".to_string()),
            ("out".to_string(), "/data".to_string()),
        ];
        let spec = parse_yaml("p.yaml", GOOD, &o).unwrap();
        assert_eq!(
            spec.step("data").unwrap().arg("n_obs"),
            &Arg::Int(5_000_000)
        );
        assert_eq!(spec.outputs[0].path, "/data/result.h5ad");
        let bad = vec![("n_obs".to_string(), "many".to_string())];
        let e = parse_yaml("p.yaml", GOOD, &bad).unwrap_err();
        assert_eq!(
            e.items[0].message,
            "--param n_obs=many: expected an integer"
        );
        let unknown = vec![("n_ob".to_string(), "3".to_string())];
        let e = parse_yaml("p.yaml", GOOD, &unknown).unwrap_err();
        assert_eq!(e.items[0].help.as_deref(), Some("did you mean `n_obs`?"));
    }

    #[test]
    fn a_misspelt_key_in_a_typed_parameter_is_reported() {
        let src = "version: 1\nparams:\n  k: {type: int, defualt: 3}\nsteps:\n  - id: data\n    op: synthetic\n";
        let e = parse_yaml("p.yaml", src, &[]).unwrap_err();
        let d = &e.items[0];
        assert_eq!((d.span.line, d.span.col), (3, 18));
        assert_eq!(d.message, "unknown key `defualt` in parameter `k`");
        assert_eq!(d.help.as_deref(), Some("did you mean `default`?"));
    }
}
