//! Query-string parsing for the list and result-page routes: every bad
//! parameter is reported by name, repeated and unknown names included.

use std::collections::HashSet;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use dossier_contracts::{Kind, Status};

use crate::error::{ApiError, Issue};

/// Default page size of `GET /api/operations`.
const DEFAULT_LIST_LIMIT: u32 = 20;
/// Largest page size of `GET /api/operations`.
const MAX_LIST_LIMIT: u32 = 100;
/// Longest accepted list cursor.
const MAX_CURSOR_LEN: usize = 1024;
/// Default page size of `GET /api/operations/{id}/results`.
pub(crate) const DEFAULT_RESULTS_LIMIT: u32 = 100;
/// Largest page size of `GET /api/operations/{id}/results`.
const MAX_RESULTS_LIMIT: u32 = 1_000;

/// The query's name/value pairs, or a 400 when the query string does not
/// parse at all.
pub(crate) fn query_pairs(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, ApiError> {
    query.map(|Query(pairs)| pairs).map_err(|rejection| {
        ApiError::invalid_request(format!(
            "The query string is invalid: {}.",
            rejection.body_text()
        ))
    })
}

/// The validated query of `GET /api/operations/{id}/results`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ResultsQuery {
    pub(crate) cursor: Option<String>,
    pub(crate) limit: Option<u32>,
}

/// A `limit` query parameter from 1 to `max`, or an issue naming it.
fn parse_limit(value: &str, max: u32, errors: &mut Vec<Issue>) -> Option<u32> {
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Some(n),
        _ => {
            errors.push(Issue::parameter(
                "limit",
                format!("must be an integer from 1 to {max}"),
            ));
            None
        }
    }
}

/// A `cursor` query parameter (opaque, but bounded and printable), or an
/// issue naming it; `source` says where clients get cursors from. An empty
/// cursor is the first page: a client that starts from "the cursor so far"
/// (`cursor=` with nothing yet) is asking for the start, and the document
/// allows the empty string.
fn parse_cursor(value: &str, source: &str, errors: &mut Vec<Issue>) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    let valid = value.len() <= MAX_CURSOR_LEN && value.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        let detail = format!("must be a cursor from a previous page's {source}");
        errors.push(Issue::parameter("cursor", detail));
        return None;
    }
    Some(value.to_owned())
}

pub(crate) fn parse_results_query(pairs: &[(String, String)]) -> Result<ResultsQuery, ApiError> {
    parse_query(
        pairs,
        ResultsQuery::default(),
        "cursor or limit",
        |query, name, value, errors| {
            match name {
                "limit" => query.limit = parse_limit(value, MAX_RESULTS_LIMIT, errors),
                "cursor" => query.cursor = parse_cursor(value, "nextCursor", errors),
                _ => return false,
            }
            true
        },
    )
}

/// Parses query parameters into `query`, reporting every bad one by name:
/// repeated names, names `field` does not know (it returns false; `expected`
/// lists the known ones), and the values `field` rejects into `errors`.
fn parse_query<Q>(
    pairs: &[(String, String)],
    mut query: Q,
    expected: &str,
    mut field: impl FnMut(&mut Q, &str, &str, &mut Vec<Issue>) -> bool,
) -> Result<Q, ApiError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (name, value) in pairs {
        if !seen.insert(name.as_str()) {
            errors.push(Issue::parameter(name, "must be given at most once"));
        } else if !field(&mut query, name, value, &mut errors) {
            errors.push(Issue::parameter(
                name,
                format!("unknown parameter; expected {expected}"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(ApiError::invalid_parameters(errors))
    }
}

/// Parses the query of `GET /api/operations/{id}/events`: the optional
/// `lastEventId` (for clients that cannot send `Last-Event-ID`).
pub(crate) fn parse_events_query(
    pairs: &[(String, String)],
) -> Result<Option<crate::watch::EventId>, ApiError> {
    parse_query(pairs, None, "lastEventId", |last, name, value, errors| {
        if name != "lastEventId" {
            return false;
        }
        *last = crate::watch::parse_event_id(value);
        if last.is_none() {
            errors.push(Issue::parameter(
                name,
                "must be the id of an event of this operation's stream",
            ));
        }
        true
    })
}

/// The validated query of `GET /api/operations`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ListQuery {
    pub(crate) status: Option<Status>,
    pub(crate) kind: Option<Kind>,
    pub(crate) limit: u32,
    pub(crate) cursor: Option<String>,
}

fn one_of<T: std::fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses the list query, reporting every bad parameter by name: unknown
/// names, repeated ones, and values out of their domain.
pub(crate) fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, ApiError> {
    let query = ListQuery {
        limit: DEFAULT_LIST_LIMIT,
        ..ListQuery::default()
    };
    parse_query(
        pairs,
        query,
        "status, kind, limit or cursor",
        |query, name, value, errors| {
            match name {
                "status" => match value.parse::<Status>() {
                    Ok(s) => query.status = Some(s),
                    Err(_) => errors.push(Issue::parameter(
                        "status",
                        format!("must be one of {}", one_of(&Status::ALL)),
                    )),
                },
                "kind" => match value.parse::<Kind>() {
                    Ok(k) => query.kind = Some(k),
                    Err(_) => errors.push(Issue::parameter(
                        "kind",
                        format!("must be one of {}", one_of(&Kind::ALL)),
                    )),
                },
                "limit" => {
                    if let Some(n) = parse_limit(value, MAX_LIST_LIMIT, errors) {
                        query.limit = n;
                    }
                }
                "cursor" => query.cursor = parse_cursor(value, "meta.nextCursor", errors),
                _ => return false,
            }
            true
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parameters(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation { errors, .. } => errors
                .into_iter()
                .map(|i| match i.location {
                    crate::error::Location::Parameter(p) => p,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_query_defaults_and_values() {
        assert_eq!(
            parse_list_query(&[]).unwrap(),
            ListQuery {
                limit: 20,
                ..ListQuery::default()
            }
        );
        let q = parse_list_query(&pairs(&[
            ("status", "partial_success"),
            ("kind", "search.people"),
            ("limit", "100"),
            ("cursor", "abc"),
        ]))
        .unwrap();
        assert_eq!(q.status, Some(Status::PartialSuccess));
        assert_eq!(q.kind, Some(Kind::SearchPeople));
        assert_eq!(q.limit, 100);
        assert_eq!(q.cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn list_query_names_every_bad_parameter() {
        let err = parse_list_query(&pairs(&[
            ("status", "done"),
            ("kind", "search"),
            ("limit", "0"),
            ("cursor", "a b"),
            ("color", "red"),
        ]))
        .unwrap_err();
        assert_eq!(
            parameters(err),
            ["status", "kind", "limit", "cursor", "color"]
        );
        let first = parse_list_query(&pairs(&[("cursor", "")])).unwrap();
        assert_eq!(first.cursor, None, "an empty cursor is the first page");
        for limit in ["101", "-1", "ten", ""] {
            let err = parse_list_query(&pairs(&[("limit", limit)])).unwrap_err();
            assert_eq!(parameters(err), ["limit"], "{limit}");
        }
        let err = parse_list_query(&pairs(&[("limit", "5"), ("limit", "6")])).unwrap_err();
        assert_eq!(parameters(err), ["limit"]);
    }
}

/// The validated query of `GET /api/webhooks/{id}/deliveries`.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct DeliveriesQuery {
    pub(crate) cursor: Option<String>,
    pub(crate) limit: Option<u32>,
}

/// Parses the query of `GET /api/webhooks/{id}/deliveries`.
pub(crate) fn parse_deliveries_query(
    pairs: &[(String, String)],
) -> Result<DeliveriesQuery, ApiError> {
    parse_query(
        pairs,
        DeliveriesQuery::default(),
        "cursor or limit",
        |query, name, value, errors| {
            match name {
                "limit" => query.limit = parse_limit(value, MAX_LIST_LIMIT, errors),
                "cursor" => query.cursor = parse_cursor(value, "meta.nextCursor", errors),
                _ => return false,
            }
            true
        },
    )
}
