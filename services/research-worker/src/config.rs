//! The research settings: time budgets per depth, the web fetcher's limits,
//! site overrides for tests and demos, and the optional synthesis provider.
//! Every variable is named once here, as a constant.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::Url;
use secrecy::SecretString;

/// `DOSSIER_RESEARCH_STANDARD_BUDGET`: total time budget of a `standard` research.
pub const ENV_RESEARCH_STANDARD_BUDGET: &str = "DOSSIER_RESEARCH_STANDARD_BUDGET";
/// `DOSSIER_RESEARCH_DEEP_BUDGET`: total time budget of a `deep` research.
pub const ENV_RESEARCH_DEEP_BUDGET: &str = "DOSSIER_RESEARCH_DEEP_BUDGET";
/// `DOSSIER_RESEARCH_PAGE_TIMEOUT`: most time one web page (or robots.txt) may take.
pub const ENV_RESEARCH_PAGE_TIMEOUT: &str = "DOSSIER_RESEARCH_PAGE_TIMEOUT";
/// `DOSSIER_RESEARCH_PAGE_MAX_BYTES`: most bytes of one page body read; the rest is dropped.
pub const ENV_RESEARCH_PAGE_MAX_BYTES: &str = "DOSSIER_RESEARCH_PAGE_MAX_BYTES";
/// `DOSSIER_RESEARCH_MAX_REDIRECTS`: redirects followed per page (same site only).
pub const ENV_RESEARCH_MAX_REDIRECTS: &str = "DOSSIER_RESEARCH_MAX_REDIRECTS";
/// `DOSSIER_RESEARCH_USER_AGENT`: the user agent sent, and matched in robots.txt.
pub const ENV_RESEARCH_USER_AGENT: &str = "DOSSIER_RESEARCH_USER_AGENT";
/// `DOSSIER_RESEARCH_SITE_OVERRIDES`: `domain=base-url` pairs, comma separated;
/// the site of `domain` is fetched from `base-url` instead of `https://domain/`.
pub const ENV_RESEARCH_SITE_OVERRIDES: &str = "DOSSIER_RESEARCH_SITE_OVERRIDES";
/// `DOSSIER_RESEARCH_ALLOW_PRIVATE_NETWORKS`: networks (CIDR, comma separated) the
/// web step may connect to although they are not public; tests and local sites only.
pub const ENV_RESEARCH_ALLOW_PRIVATE_NETWORKS: &str = "DOSSIER_RESEARCH_ALLOW_PRIVATE_NETWORKS";
/// `DOSSIER_RESEARCH_SYNTHESIS_URL`: an OpenAI-compatible chat-completions URL; off when unset.
pub const ENV_RESEARCH_SYNTHESIS_URL: &str = "DOSSIER_RESEARCH_SYNTHESIS_URL";
/// `DOSSIER_RESEARCH_SYNTHESIS_API_KEY`: bearer token of the synthesis provider (never logged).
pub const ENV_RESEARCH_SYNTHESIS_API_KEY: &str = "DOSSIER_RESEARCH_SYNTHESIS_API_KEY";
/// `DOSSIER_RESEARCH_SYNTHESIS_MODEL`: the model named in synthesis requests.
pub const ENV_RESEARCH_SYNTHESIS_MODEL: &str = "DOSSIER_RESEARCH_SYNTHESIS_MODEL";
/// `DOSSIER_RESEARCH_SYNTHESIS_TIMEOUT`: most time one synthesis request may take.
pub const ENV_RESEARCH_SYNTHESIS_TIMEOUT: &str = "DOSSIER_RESEARCH_SYNTHESIS_TIMEOUT";

/// Research settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ResearchConfig {
    /// Total time budget of a `standard` research, shared by its steps.
    #[arg(long = "research-standard-budget", env = ENV_RESEARCH_STANDARD_BUDGET,
          default_value = "30s", value_parser = humantime::parse_duration)]
    pub standard_budget: Duration,
    /// Total time budget of a `deep` research, shared by its steps.
    #[arg(long = "research-deep-budget", env = ENV_RESEARCH_DEEP_BUDGET,
          default_value = "90s", value_parser = humantime::parse_duration)]
    pub deep_budget: Duration,
    /// Most time one web page (or robots.txt) may take, body included.
    #[arg(long = "research-page-timeout", env = ENV_RESEARCH_PAGE_TIMEOUT,
          default_value = "5s", value_parser = humantime::parse_duration)]
    pub page_timeout: Duration,
    /// Most bytes of one page body read; a larger page is cut there.
    #[arg(long = "research-page-max-bytes", env = ENV_RESEARCH_PAGE_MAX_BYTES,
          default_value_t = 512 * 1024)]
    pub page_max_bytes: usize,
    /// Redirects followed per page; a redirect off the site is refused.
    #[arg(long = "research-max-redirects", env = ENV_RESEARCH_MAX_REDIRECTS, default_value_t = 3)]
    pub max_redirects: usize,
    /// The user agent sent, and the one robots.txt rules are matched for.
    #[arg(long = "research-user-agent", env = ENV_RESEARCH_USER_AGENT,
          default_value = "DossierResearch/0.1")]
    pub user_agent: String,
    /// `domain=base-url` pairs, comma separated (tests, demos): the site of
    /// `domain` is fetched from `base-url`. Plain `http` is allowed only here;
    /// a non-public `base-url` also needs the private-network allowance.
    #[arg(long = "research-site-overrides", env = ENV_RESEARCH_SITE_OVERRIDES,
          value_delimiter = ',')]
    pub site_overrides: Vec<SiteOverride>,
    /// Networks (CIDR, or single addresses; comma separated) the web step
    /// may connect to although they are not public internet addresses. For
    /// tests and local sites only: leave it empty in production, where
    /// loopback, private, link-local, CGNAT, multicast and other non-public
    /// addresses are refused. The synthesis provider is not affected.
    #[arg(long = "research-allow-private-networks", env = ENV_RESEARCH_ALLOW_PRIVATE_NETWORKS,
          value_delimiter = ',', value_parser = dossier_netguard::parse_network)]
    pub allow_private_networks: Vec<IpNet>,
    /// An OpenAI-compatible chat-completions URL that writes the answers'
    /// prose; off when unset.
    #[arg(long = "research-synthesis-url", env = ENV_RESEARCH_SYNTHESIS_URL)]
    pub synthesis_url: Option<String>,
    /// Bearer token of the synthesis provider.
    #[arg(long = "research-synthesis-api-key", env = ENV_RESEARCH_SYNTHESIS_API_KEY,
          hide_env_values = true, value_parser = parse_secret)]
    pub synthesis_api_key: Option<SecretString>,
    /// The model named in synthesis requests.
    #[arg(long = "research-synthesis-model", env = ENV_RESEARCH_SYNTHESIS_MODEL,
          default_value = "gpt-4o-mini")]
    pub synthesis_model: String,
    /// Most time one synthesis request may take.
    #[arg(long = "research-synthesis-timeout", env = ENV_RESEARCH_SYNTHESIS_TIMEOUT,
          default_value = "20s", value_parser = humantime::parse_duration)]
    pub synthesis_timeout: Duration,
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// Where one domain's site is really fetched from (`acme.com=http://127.0.0.1:8081`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteOverride {
    /// The company domain, normalised (`acme.com`).
    pub domain: String,
    /// The base URL its pages are fetched from; always ends in `/`.
    pub base: Url,
}

/// A `domain=base-url` pair that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid site override `{0}`: expected domain=http(s)://host[:port][/path]")]
pub struct SiteOverrideError(String);

impl FromStr for SiteOverride {
    type Err = SiteOverrideError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SiteOverrideError(s.to_owned());
        let (domain, base) = s.split_once('=').ok_or_else(bad)?;
        let domain = dossier_contracts::api::normalize_domain(domain).ok_or_else(bad)?;
        let mut base = Url::parse(base.trim()).map_err(|_| bad())?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(bad());
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        base.set_query(None);
        base.set_fragment(None);
        Ok(SiteOverride { domain, base })
    }
}

impl fmt::Display for SiteOverride {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.domain, self.base)
    }
}

impl ResearchConfig {
    /// Checks the settings that clap cannot (fail fast at start).
    pub fn validate(&self) -> Result<(), String> {
        if self.page_max_bytes == 0 {
            return Err(format!("{ENV_RESEARCH_PAGE_MAX_BYTES} must be positive"));
        }
        if self.page_timeout.is_zero()
            || self.standard_budget.is_zero()
            || self.deep_budget.is_zero()
        {
            return Err(format!(
                "{ENV_RESEARCH_PAGE_TIMEOUT}, {ENV_RESEARCH_STANDARD_BUDGET} and \
                 {ENV_RESEARCH_DEEP_BUDGET} must be positive"
            ));
        }
        if let Some(url) = &self.synthesis_url {
            let parsed = Url::parse(url)
                .map_err(|e| format!("{ENV_RESEARCH_SYNTHESIS_URL} is not a URL: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(format!("{ENV_RESEARCH_SYNTHESIS_URL} must be http(s)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_overrides_parse_and_normalise() {
        let o: SiteOverride = "ACME.com=http://127.0.0.1:8081".parse().unwrap();
        assert_eq!(o.domain, "acme.com");
        assert_eq!(o.base.as_str(), "http://127.0.0.1:8081/");
        let o: SiteOverride = "acme.com=https://mirror.test/acme?x=1".parse().unwrap();
        assert_eq!(o.base.as_str(), "https://mirror.test/acme/");
        for bad in [
            "acme.com",
            "=http://x",
            "acme.com=ftp://x",
            "acme.com=not a url",
        ] {
            assert!(bad.parse::<SiteOverride>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_private_network_allowance_is_empty_by_default_and_takes_cidrs_or_addresses() {
        use clap::Parser as _;
        let config = crate::Config::parse_from(["research-worker"]).research;
        assert!(config.allow_private_networks.is_empty());
        let config = crate::Config::parse_from([
            "research-worker",
            "--research-allow-private-networks",
            "127.0.0.0/8, ::1,10.1.0.0/16",
        ])
        .research;
        let nets: Vec<String> = config
            .allow_private_networks
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["127.0.0.0/8", "::1/128", "10.1.0.0/16"]);
        assert!(
            crate::Config::try_parse_from([
                "research-worker",
                "--research-allow-private-networks",
                "localhost",
            ])
            .is_err()
        );
    }
}
