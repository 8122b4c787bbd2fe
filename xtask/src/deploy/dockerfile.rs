//! Check 2: `deploy/Dockerfile`, parsed into what the other checks need
//! (BuildKit's own parser validates it, see [`super::tools`]).

use std::collections::BTreeMap;

/// Dockerfile stages that are not a service image.
const BUILD_STAGES: &[&str] = &["chef", "planner", "builder", "runtime"];

/// What the checks need from deploy/Dockerfile: each stage's name, its
/// environment (inherited from a stage it is built on), exposed ports and
/// healthcheck command.
#[derive(Default)]
pub(super) struct Dockerfile {
    stages: Vec<Stage>,
}

#[derive(Default, Clone)]
pub(super) struct Stage {
    pub(super) name: String,
    pub(super) env: BTreeMap<String, String>,
    pub(super) expose: Vec<u16>,
    pub(super) healthcheck: Vec<String>,
}

impl Dockerfile {
    pub(super) fn parse(text: &str) -> Dockerfile {
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = trimmed.strip_suffix('\\') {
                current.push_str(rest);
                current.push(' ');
            } else {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
        let mut file = Dockerfile::default();
        for line in logical {
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let rest = rest.trim();
            match keyword.to_ascii_uppercase().as_str() {
                "FROM" => {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let from = words.first().copied().unwrap_or_default().to_owned();
                    let name = match words.as_slice() {
                        [_, as_, name] if as_.eq_ignore_ascii_case("as") => (*name).to_owned(),
                        _ => String::new(),
                    };
                    let env = file
                        .stages
                        .iter()
                        .find(|s| s.name == from)
                        .map(|s| s.env.clone())
                        .unwrap_or_default();
                    file.stages.push(Stage {
                        name,
                        env,
                        ..Stage::default()
                    });
                }
                "ENV" => {
                    if let Some(stage) = file.stages.last_mut() {
                        for pair in rest.split_whitespace() {
                            if let Some((k, v)) = pair.split_once('=') {
                                stage
                                    .env
                                    .insert(k.to_owned(), v.trim_matches('"').to_owned());
                            }
                        }
                    }
                }
                "EXPOSE" => {
                    if let Some(stage) = file.stages.last_mut() {
                        stage.expose.extend(
                            rest.split_whitespace()
                                .filter_map(|p| p.split('/').next()?.parse::<u16>().ok()),
                        );
                    }
                }
                "HEALTHCHECK" => {
                    if let Some(stage) = file.stages.last_mut()
                        && let Some((_, cmd)) = rest.split_once("CMD")
                    {
                        stage.healthcheck = serde_json::from_str(cmd.trim()).unwrap_or_default();
                    }
                }
                _ => {}
            }
        }
        file
    }

    /// The service images: every named stage that is not a build stage.
    pub(super) fn service_stages(&self) -> impl Iterator<Item = &Stage> {
        self.stages
            .iter()
            .filter(|s| !s.name.is_empty() && !BUILD_STAGES.contains(&s.name.as_str()))
    }

    pub(super) fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_stages_inherit_env() {
        let file = Dockerfile::parse(
            "FROM rust AS builder\nRUN x \\\n  y\nFROM base AS runtime\nENV A=1\nFROM runtime AS gateway\nENV B=2 \\\n    C=3\nEXPOSE 8080 9090/tcp\nHEALTHCHECK --interval=1s \\\n  CMD [\"/p\", \"http\", \"127.0.0.1:8080\", \"/readyz\"]\n",
        );
        let gateway = file.stage("gateway").unwrap();
        assert_eq!(gateway.env.len(), 3);
        assert_eq!(gateway.expose, [8080, 9090]);
        assert_eq!(gateway.healthcheck[2], "127.0.0.1:8080");
        let names: Vec<&str> = file.service_stages().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["gateway"]);
    }
}
