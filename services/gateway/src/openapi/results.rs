//! The result payloads of the operation kinds, as the OpenAPI document
//! types them field by field. The workers own these shapes (they are their
//! JSON output, written by `search-worker`, `enrichment-worker` and
//! `research-worker`); the gateway passes results through untouched, so
//! these types exist only to describe them. The stack tests check real
//! results against the document (`dossier_stack::contract`), so a worker
//! that changes a shape without this file fails them.
#![allow(dead_code)] // Read by the schema derive only.

use serde_json::Value;
use utoipa::ToSchema;

use dossier_contracts::api::{Department, Depth, RecordFieldError, Seniority};
use std::collections::BTreeMap;

// ---------------------------------------------------------------- search --

/// `result` of a `search.people` operation: the people found inside the
/// target account, best match first, and how the search went.
#[derive(ToSchema)]
pub(crate) struct SearchResult {
    /// The people, best match first (at most `limit`).
    data: Vec<SearchPerson>,
    /// How the search went.
    meta: SearchMeta,
    /// Present when `data` holds more than one page (see `ResultPage`).
    #[schema(required = false)]
    page: Option<crate::views::PageView>,
}

/// A person found by a search.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct SearchPerson {
    /// The directory's id of the person.
    id: String,
    /// Full name.
    full_name: String,
    /// Current title.
    title: String,
    /// Seniority.
    seniority: Seniority,
    /// Department.
    department: Department,
    /// `City, Region, Country` (the parts known).
    location: String,
    /// Email, when known.
    #[schema(required = false)]
    email: Option<String>,
    /// LinkedIn profile URL, when known.
    #[schema(required = false)]
    linkedin_url: Option<String>,
    /// The current company as the profile states it.
    current_company: String,
    /// How the person was matched to the target account.
    company_match_evidence: CompanyMatchEvidence,
    /// The providers the person came from.
    sources: Vec<String>,
}

/// How a person was matched to the target account. `company_page`: through
/// the LinkedIn company page constraint (their current position links to
/// the account's page); `profile_current_job`: through the profile's
/// current company text, which names the account.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum CompanyMatchEvidence {
    CompanyPage,
    ProfileCurrentJob,
}

/// `result.meta` of a search.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct SearchMeta {
    /// How people were constrained to the account.
    target_account_search_mode: TargetAccountSearchMode,
    /// How the account's LinkedIn company handle was resolved.
    target_account_outcome: TargetAccountOutcome,
    /// Whether the providers produced rows.
    provider_outcome: ProviderOutcome,
    /// A short explanation for a person, on every empty or unavailable
    /// path (absent when people were found).
    #[schema(required = false)]
    message: Option<String>,
    /// The company page searched (`linkedin_company_page` mode).
    #[schema(required = false)]
    linkedin_handle: Option<String>,
    /// The company names compared with profiles
    /// (`profile_current_company` mode).
    #[schema(required = false)]
    matched_company_names: Vec<String>,
    /// The companies the resolution considered.
    candidates: Vec<CompanyCandidate>,
    /// People returned in `data`.
    returned: u64,
    /// People found in the account matching the filters (ranked to pick
    /// `data`), counted up to 1,000 per lookup.
    total: u64,
    /// Whether `total` is exact; false when a lookup reached the 1,000 cap
    /// (there may be more).
    total_is_exact: bool,
    /// Whether `data` holds everyone found: `returned == total`, the count
    /// exact and every provider answered. False when `limit` cut the list
    /// (ask for a larger `limit`, or narrow the filters) or a provider
    /// failed.
    complete: bool,
    /// How each provider fared.
    providers: Vec<ProviderReport>,
}

/// How the search constrained people to the requested account.
/// `linkedin_company_page`: people whose current position links to the
/// account's LinkedIn company page; `profile_current_company`: people whose
/// profile's current company text names the account (no page known);
/// `unavailable`: neither path exists (no page, and no name to compare), so
/// nobody was searched.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum TargetAccountSearchMode {
    LinkedinCompanyPage,
    ProfileCurrentCompany,
    Unavailable,
}

/// How the account's LinkedIn company handle was resolved.
/// `provided_linkedin_handle`: the request gave it;
/// `verified_linkedin_handle`: exactly one candidate, confirmed by the
/// domain; `unverified_or_conflicting_linkedin_candidates`: candidates
/// exist but none is confirmed or they disagree (the profile text is used);
/// `unresolved`: no candidate.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum TargetAccountOutcome {
    ProvidedLinkedinHandle,
    VerifiedLinkedinHandle,
    UnverifiedOrConflictingLinkedinCandidates,
    Unresolved,
}

/// Whether the providers produced rows. `hit`: usable rows;
/// `empty_clean`: no rows, and every provider answered (nobody matches);
/// `empty_partial_failure`: no rows, and at least one provider failed (the
/// answer may be incomplete: try again later).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum ProviderOutcome {
    Hit,
    EmptyClean,
    EmptyPartialFailure,
}

/// A company the target-account resolution considered.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct CompanyCandidate {
    /// Its name.
    name: String,
    /// Its domain, when known.
    domain: Option<String>,
    /// Its LinkedIn company handle, when known.
    linkedin_handle: Option<String>,
}

/// How one provider fared over the whole search.
#[derive(ToSchema)]
pub(crate) struct ProviderReport {
    /// The provider's name.
    name: String,
    /// The worst of its lookups.
    status: ProviderStatus,
    /// What failed (a failed or timed-out lookup).
    #[schema(required = false)]
    error: Option<String>,
}

/// How a provider fared, the worst of its lookups: `ok`: answered every
/// lookup; `failed`: failed a lookup; `timed_out`: did not answer one in
/// time.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum ProviderStatus {
    Ok,
    Failed,
    TimedOut,
}

// ------------------------------------------------------------ enrichment --

/// `result` of an `enrichment.batch` operation: one `EnrichedRecord` per
/// input record, in input order, and the counts per status.
#[derive(ToSchema)]
pub(crate) struct EnrichmentResult {
    /// The records' answers (the first page of them when `page` is
    /// present).
    data: Vec<EnrichedRecord>,
    /// Counts.
    meta: EnrichmentMeta,
    /// Present when the answers fill more than one page.
    #[schema(required = false)]
    page: Option<crate::views::PageView>,
}

/// `result.meta` of a batch.
#[derive(ToSchema)]
pub(crate) struct EnrichmentMeta {
    /// Records in the batch as sent (invalid ones included).
    total: u64,
    /// Records answered (less than `total` only when cancelled).
    processed: u64,
    /// Whether every record was answered.
    complete: bool,
    /// Answers per status.
    counts: EnrichmentCounts,
}

/// Answers per `EnrichedRecord.status`.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct EnrichmentCounts {
    /// `matched`.
    matched: u64,
    /// `not_found`.
    not_found: u64,
    /// `error`.
    error: u64,
    /// `invalid` (only under `onInvalidRecord: skip`).
    invalid: u64,
}

/// One record's answer. Fields that do not apply to its `status` are
/// omitted.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct EnrichedRecord {
    /// Position in the batch as sent (batch results only).
    #[schema(required = false)]
    index: Option<u64>,
    /// The record's `externalId`, echoed.
    #[schema(required = false)]
    external_id: Option<String>,
    /// The outcome.
    status: RecordStatus,
    /// `matched`: the identifier that decided.
    #[schema(required = false)]
    matched_by: Option<MatchedBy>,
    /// `matched`: how sure the match is, 0-1.
    #[schema(required = false, minimum = 0, maximum = 1)]
    confidence: Option<f64>,
    /// `matched`: the person.
    #[schema(required = false)]
    person: Option<DirectoryPerson>,
    /// `matched`: the person's current company, when the directory knows
    /// it.
    #[schema(required = false)]
    company: Option<DirectoryCompany>,
    /// `matched`, with `company`: how the current company was found.
    #[schema(required = false)]
    company_evidence: Option<CompanyEvidence>,
    /// `not_found`: why.
    #[schema(required = false)]
    reason: Option<NotFoundReason>,
    /// `not_found`: how many different people matched some identifier.
    #[schema(required = false)]
    candidates: Option<u64>,
    /// `error`: the provider failure (`providers_unavailable`).
    #[schema(required = false)]
    error: Option<RecordError>,
    /// `invalid`: what is wrong with the record, by field.
    #[schema(required = false)]
    errors: Vec<RecordFieldError>,
}

/// The outcome for one record. `matched`: one person was identified
/// (`person`, `confidence`); `not_found`: nobody, or nobody with enough
/// confidence (`reason`) — a clean answer, not an error; `error`: a
/// directory provider failed, so the record has no clean answer (retry
/// it); `invalid`: the record is not valid and was not looked up (a batch
/// sent with `onInvalidRecord: skip`; `errors` says why).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum RecordStatus {
    Matched,
    NotFound,
    Error,
    Invalid,
}

/// The identifier that decided a match: `email` (exact, case-insensitive),
/// `linkedin_url` (the profile handle), `name_and_company` (the full name
/// with the company name or domain).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum MatchedBy {
    Email,
    LinkedinUrl,
    NameAndCompany,
}

/// How the current company was found: `email_domain` (the work email's
/// domain, which wins over a stale profile), `company_page` (the profile's
/// company page), `profile_text` (its company text).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum CompanyEvidence {
    EmailDomain,
    CompanyPage,
    ProfileText,
}

/// Why a record is `not_found`: `no_match` (nobody matches any
/// identifier), `ambiguous` (several people match and none is clearly
/// best: never a coin toss).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum NotFoundReason {
    NoMatch,
    Ambiguous,
}

/// A record's provider failure.
#[derive(ToSchema)]
pub(crate) struct RecordError {
    /// `providers_unavailable`.
    code: String,
    /// For a person.
    message: String,
}

/// A person as the directory describes them.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[schema(as = Person)]
pub(crate) struct DirectoryPerson {
    /// The directory's id.
    id: String,
    /// Full name.
    full_name: String,
    /// Current title.
    title: String,
    /// Seniority.
    seniority: Seniority,
    /// Department.
    department: Department,
    /// Where they are.
    location: Place,
    /// Email, when known.
    email: Option<String>,
    /// LinkedIn profile URL, when known.
    linkedin_url: Option<String>,
    /// The current company as the profile states it.
    current_company_text: String,
    /// The LinkedIn company handle of the current position, when linked.
    current_company_linkedin_handle: Option<String>,
    /// Profile headline.
    headline: String,
    /// Skills.
    skills: Vec<String>,
    /// Earlier positions.
    past_positions: Vec<Value>,
}

/// A company as the directory describes it.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[schema(as = Company)]
pub(crate) struct DirectoryCompany {
    /// The directory's id.
    id: String,
    /// Name.
    name: String,
    /// Other names.
    aliases: Vec<String>,
    /// Web domain.
    domain: Option<String>,
    /// LinkedIn company handle.
    linkedin_handle: Option<String>,
    /// Industry.
    industry: String,
    /// Head-count band (`51-200`).
    size_band: String,
    /// Headquarters.
    headquarters: Place,
}

/// A place.
#[derive(ToSchema)]
pub(crate) struct Place {
    /// City.
    city: String,
    /// Region.
    region: String,
    /// Country.
    country: String,
}

// -------------------------------------------------------------- research --

/// `result` of a `research.deep` operation: a report. Every `[n]` in
/// `markdown` and every `source` / `sources` id below is the `id` of an
/// entry of `sources`: a directory lookup or a web page that was really
/// read. Sections whose step did not produce them are absent.
#[derive(ToSchema)]
pub(crate) struct ResearchResult {
    /// What was researched.
    subject: ResearchSubjectReport,
    /// `standard` or `deep`.
    depth: Depth,
    /// The report, Markdown, with numbered citations `[n]`.
    markdown: String,
    /// The report's content, structured.
    sections: ResearchSections,
    /// Every source cited.
    sources: Vec<ResearchSource>,
    /// Every step in order; a `failed` one makes the operation
    /// `partial_success`.
    steps: Vec<ResearchStep>,
}

/// Who or what was researched.
#[derive(ToSchema)]
pub(crate) struct ResearchSubjectReport {
    /// `company` or `person`.
    #[schema(rename = "type")]
    kind: SubjectKind,
    /// The company's or the person's name.
    name: String,
    /// A company's `targetAccountOutcome` (e.g. `verified_linkedin_handle`),
    /// or `matched_by_<email|linkedin_url|name_and_company>` for a person.
    resolution: String,
    /// 0-1, how sure the resolution is.
    #[schema(minimum = 0, maximum = 1)]
    confidence: f64,
    /// The person, for a person subject.
    #[schema(required = false)]
    person: Option<ResearchPerson>,
}

/// What a research is about: `company` or `person`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum SubjectKind {
    Company,
    Person,
}

/// A person, briefly.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchPerson {
    /// Name.
    name: String,
    /// Title.
    title: String,
    /// Seniority.
    seniority: String,
    /// Department.
    department: String,
    /// `City, Region, Country`.
    location: String,
    /// LinkedIn profile URL, when known.
    #[schema(required = false)]
    linkedin_url: Option<String>,
    /// The source it came from.
    source: u64,
}

/// The structured sections.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchSections {
    /// The company profile.
    #[schema(required = false)]
    profile: Option<ResearchProfile>,
    /// Leadership, buying committee and org shape.
    #[schema(required = false)]
    leadership: Option<ResearchLeadership>,
    /// Similar companies.
    #[schema(required = false)]
    look_alikes: Option<Vec<ResearchLookAlike>>,
    /// What the company's own site says.
    #[schema(required = false)]
    web: Option<ResearchWeb>,
    /// Answers to the questions, in the order asked.
    answers: Vec<ResearchAnswer>,
}

/// The company profile.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchProfile {
    /// Name.
    name: String,
    /// Other names.
    aliases: Vec<String>,
    /// Web domain.
    #[schema(required = false)]
    domain: Option<String>,
    /// LinkedIn company handle.
    #[schema(required = false)]
    linkedin_handle: Option<String>,
    /// Industry.
    industry: String,
    /// Head-count band (`51-200`).
    size_band: String,
    /// Headquarters (`City, Region, Country`).
    headquarters: String,
    /// 0-1, how sure we are that this is the company meant.
    #[schema(minimum = 0, maximum = 1)]
    confidence: f64,
    /// The source of the profile.
    source: u64,
}

/// Leadership.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchLeadership {
    /// People found at the company.
    people_found: u64,
    /// Owners, C-suite, VPs and directors, most senior first.
    buying_committee: Vec<ResearchPerson>,
    /// Head count per department and per seniority.
    org_shape: OrgShape,
    /// The source.
    source: u64,
}

/// Head count per department and per seniority.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct OrgShape {
    /// People per department.
    by_department: BTreeMap<String, u64>,
    /// People per seniority.
    by_seniority: BTreeMap<String, u64>,
}

/// A similar company.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchLookAlike {
    /// Name.
    name: String,
    /// Web domain.
    #[schema(required = false)]
    domain: Option<String>,
    /// Industry.
    industry: String,
    /// Head-count band.
    size_band: String,
    /// Headquarters.
    headquarters: String,
    /// The source.
    source: u64,
}

/// What the company's own site says.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchWeb {
    /// The site read (null: no site known).
    #[schema(required = true, format = "uri")]
    site: Option<String>,
    /// robots.txt could not be read, so nothing was fetched (every page is
    /// `failed` with this reason). A fixed reason, never an address or a
    /// port: `robots.txt could not be read: connection failed`, `…: timed
    /// out after 5s`, `…: HTTP 503`, `…: redirect off the site`, `…:
    /// refused: not a public address`.
    #[schema(required = false)]
    robots_error: Option<String>,
    /// The pages, read or not.
    pages: Vec<WebPage>,
    /// Sentences taken from the pages.
    facts: Vec<WebFact>,
}

/// One page of the company's site.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct WebPage {
    /// Its URL.
    #[schema(format = "uri")]
    url: String,
    /// Whether it was read.
    status: WebPageStatus,
    /// Bytes read.
    bytes: u64,
    /// The body was cut at the byte cap.
    truncated: bool,
    /// How long it took.
    duration_ms: u64,
    /// A fixed reason, never an address or a port: e.g. `HTTP 404`, `timed
    /// out after 5s`, `connection failed`, `refused: not a public address`,
    /// `redirect off the site`, `not an HTML page`, `robots.txt could not
    /// be read: connection failed`.
    #[schema(required = false)]
    error: Option<String>,
    /// The source, when it was read.
    #[schema(required = false)]
    source: Option<u64>,
}

/// Whether a page was read. `fetched`: read (maybe `truncated`);
/// `disallowed`: a robots.txt that was read forbids it (never requested);
/// `failed`: it could not be read, or was not requested because robots.txt
/// could not be read (`error` says which); `skipped`: the step's time ran
/// out. Only public internet addresses are ever connected to.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum WebPageStatus {
    Fetched,
    Disallowed,
    Failed,
    Skipped,
}

/// A sentence taken from a page.
#[derive(ToSchema)]
pub(crate) struct WebFact {
    /// The sentence.
    text: String,
    /// The page's source.
    source: u64,
}

/// The answer to one question.
#[derive(ToSchema)]
pub(crate) struct ResearchAnswer {
    /// The question, as asked.
    question: String,
    /// With `[n]` citations, or `Not found in the sources.`
    answer: String,
    /// Whether the sources answer it.
    found: bool,
    /// The sources cited.
    sources: Vec<u64>,
    /// How it was answered.
    method: AnswerMethod,
}

/// How a question was answered. `structured`: looked up in the sections by
/// what the question asks (a person by function and rank, a count, a
/// company attribute, look-alikes, a person's history); `retrieval`:
/// sentences of the evidence; `synthesis`: a deterministic answer reworded
/// by the synthesis provider, adding no fact.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum AnswerMethod {
    Structured,
    Retrieval,
    Synthesis,
}

/// One source of the report.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchSource {
    /// Its number in the citations (`[1]`), from 1.
    #[schema(minimum = 1)]
    id: u64,
    /// Where it came from.
    kind: SourceKind,
    /// The page's URL, or a `directory:` URI naming the lookup (square
    /// brackets percent-encoded, as are those of every URL in `markdown`).
    url: String,
    /// A title for people.
    title: String,
    /// When it was read.
    #[schema(format = DateTime)]
    fetched_at: String,
}

/// Where a source came from: `directory` (a directory lookup) or `web` (a
/// page that was read).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum SourceKind {
    Directory,
    Web,
}

/// One step of a research.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct ResearchStep {
    /// Which step.
    name: StepName,
    /// How it went.
    status: StepStatus,
    /// How long it took.
    duration_ms: u64,
    /// Why it failed or was skipped.
    #[schema(required = false)]
    error: Option<String>,
}

/// The steps of a research, in order: `resolve` (identify the subject),
/// `profile`, `leadership`, `look_alikes`, `web_evidence` (read the
/// company's site), `answers`, `report`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum StepName {
    Resolve,
    Profile,
    Leadership,
    LookAlikes,
    WebEvidence,
    Answers,
    Report,
}

/// How a step went: `succeeded`; `failed` (its section is absent and the
/// operation ends `partial_success`); `skipped` (not needed for this
/// subject, or its budget ran out).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
}
