//! ARM templates: find the `containerGroups` resource and resolve the few template expressions
//! that need no Azure: `[variables('x')]`, `[parameters('x')]` (a value given in
//! [`LoadOptions`] or the parameter's `defaultValue`) and `[resourceGroup().location]`.
//! Any other expression is an error naming the field that holds it.

use serde_json::Value;

use super::group::RESOURCE_TYPE;
use super::load::{LoadError, LoadOptions};

/// How deep variables and parameter defaults may refer to each other.
const MAX_DEPTH: usize = 16;

/// Whether a parsed file is an ARM deployment template rather than a single resource.
pub(crate) fn is_template(doc: &Value) -> bool {
    doc.get("resources").is_some() || doc.get("$schema").is_some()
}

/// The container group resource of `template` with its expressions resolved, and the path
/// prefix (`resources[0]`) that error paths inside it need.
pub(crate) fn container_group_resource(
    template: &Value,
    options: &LoadOptions,
) -> Result<(String, Value), LoadError> {
    let resources: Vec<(String, &Value)> = match template.get("resources") {
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, r)| (format!("resources[{i}]"), r)).collect()
        }
        // languageVersion 2.0 templates key resources by symbolic name.
        Some(Value::Object(items)) => items.iter().map(|(k, r)| (format!("resources.{k}"), r)).collect(),
        _ => return Err(LoadError::NoContainerGroup),
    };
    let mut groups = resources.into_iter().filter(|(_, r)| {
        r.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(RESOURCE_TYPE))
    });
    let (prefix, resource) = groups.next().ok_or(LoadError::NoContainerGroup)?;
    let others: Vec<String> = groups.map(|(path, _)| path).collect();
    if !others.is_empty() {
        let mut paths = vec![prefix];
        paths.extend(others);
        return Err(LoadError::SeveralContainerGroups { paths });
    }

    let mut resource = resource.clone();
    if let Value::Object(fields) = &mut resource {
        // Deployment ordering and remarks: meaningful to ARM only.
        fields.remove("dependsOn");
        fields.remove("comments");
    }
    let resolver = Resolver { template, options };
    resolver.resolve(&mut resource, &prefix, 0)?;
    Ok((prefix, resource))
}

/// Resolves expressions against one template.
struct Resolver<'a> {
    template: &'a Value,
    options: &'a LoadOptions,
}

impl Resolver<'_> {
    /// Replaces, in place, every expression string under `value`.
    fn resolve(&self, value: &mut Value, path: &str, depth: usize) -> Result<(), LoadError> {
        match value {
            Value::String(text) => {
                if let Some(resolved) = self.string(text, path, depth)? {
                    *value = resolved;
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.resolve(item, &format!("{path}[{i}]"), depth)?;
                }
            }
            Value::Object(fields) => {
                for (key, item) in fields.iter_mut() {
                    self.resolve(item, &join(path, key), depth)?;
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }

    /// The value of a string that is an expression (or an escaped `[[` literal); `None` for a
    /// plain string.
    fn string(&self, text: &str, path: &str, depth: usize) -> Result<Option<Value>, LoadError> {
        if let Some(literal) = text.strip_prefix("[[") {
            return Ok(Some(Value::String(format!("[{literal}"))));
        }
        let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
            return Ok(None);
        };
        let fail = |reason: String| LoadError::Expression {
            path: path.to_owned(),
            expression: text.to_owned(),
            reason,
        };
        if depth >= MAX_DEPTH {
            return Err(fail("variables or parameters refer to each other too deeply (a cycle?)".into()));
        }
        let call = Call::parse(inner).ok_or_else(|| fail(UNSUPPORTED.into()))?;
        let (mut value, origin) = match (call.function.to_ascii_lowercase().as_str(), call.arg, call.rest) {
            ("variables", Some(name), "") => {
                let found = self.template.get("variables").and_then(|v| v.get(&name));
                let value = found.ok_or_else(|| fail(format!("the template has no variable '{name}'")))?;
                (value.clone(), format!("variables.{name}"))
            }
            ("parameters", Some(name), "") => {
                if let Some(given) = self.options.parameters.get(&name) {
                    return Ok(Some(given.clone()));
                }
                let declared = self.template.get("parameters").and_then(|p| p.get(&name));
                let declared =
                    declared.ok_or_else(|| fail(format!("the template has no parameter '{name}'")))?;
                let default = declared.get("defaultValue").ok_or_else(|| {
                    fail(format!(
                        "parameter '{name}' has no defaultValue; give its value with LoadOptions::parameter"
                    ))
                })?;
                (default.clone(), format!("parameters.{name}.defaultValue"))
            }
            ("resourcegroup", None, rest) if rest.eq_ignore_ascii_case(".location") => {
                return Ok(Some(Value::String(self.options.resource_group_location.clone())));
            }
            _ => return Err(fail(UNSUPPORTED.into())),
        };
        // A variable or default may itself hold expressions.
        self.resolve(&mut value, &origin, depth + 1)?;
        Ok(Some(value))
    }
}

const UNSUPPORTED: &str = "aci evaluates only [variables('name')], [parameters('name')] (a value given in \
     LoadOptions or the parameter's defaultValue) and [resourceGroup().location]; write the value itself";

/// `function('arg')rest`, the only call shape aci evaluates.
struct Call<'a> {
    function: &'a str,
    arg: Option<String>,
    rest: &'a str,
}

impl<'a> Call<'a> {
    fn parse(expr: &'a str) -> Option<Self> {
        let expr = expr.trim();
        let open = expr.find('(')?;
        let function = expr[..open].trim();
        if function.is_empty() || !function.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let after = expr[open + 1..].trim_start();
        let (arg, after) = match after.strip_prefix('\'') {
            Some(quoted) => {
                let end = quoted.find('\'')?;
                (Some(quoted[..end].to_owned()), quoted[end + 1..].trim_start())
            }
            None => (None, after),
        };
        let rest = after.strip_prefix(')')?.trim();
        Some(Self { function, arg, rest })
    }
}

/// `path.key`, or `key` at the root.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Adds `prefix` in front of an error path from inside the resource.
pub(crate) fn prefixed(prefix: &str, path: &str) -> String {
    if path.is_empty() || path == "." {
        prefix.to_owned()
    } else {
        format!("{prefix}.{path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn parses_the_supported_call_shapes() {
        let call = Call::parse(" variables( 'a-b' ) ").map(|c| (c.function, c.arg, c.rest));
        assert_eq!(call, Some(("variables", Some("a-b".to_owned()), "")));
        let call = Call::parse("resourceGroup().location").map(|c| (c.function, c.arg, c.rest));
        assert_eq!(call, Some(("resourceGroup", None, ".location")));
        assert!(Call::parse("concat('a', 'b')").is_none());
        assert!(Call::parse("not a call").is_none());
    }

    #[test]
    fn escaped_brackets_are_literals() {
        let template = Value::Object(Map::new());
        let options = LoadOptions::default();
        let resolver = Resolver { template: &template, options: &options };
        let got = resolver.string("[[not an expression]", "x", 0).ok().flatten();
        assert_eq!(got, Some(Value::String("[not an expression]".into())));
    }
}
