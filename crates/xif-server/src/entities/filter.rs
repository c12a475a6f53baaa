//! The query of a list of records: filters named after attributes (`Name=Ann`, `Age.gt=3`,
//! `Name.like=An%`), `sort=Name,-Age`, `limit` and `offset`. Every key is looked up among the
//! entity's attributes and turned into a column's index; anything else is refused naming the
//! query parameter, so that no text of the request reaches the SQL ([`super::sql`]).

use super::records::{Bound, RecordError};
use super::sql::{Operator, Plan};

/// How many records a page has when `limit` is not given.
pub const LIMIT_DEFAULT: u32 = 50;
/// The most records a page may have.
pub const LIMIT_MAX: u32 = 1000;

/// A list's query, checked against the entity.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Each condition: a column's index, the comparison, and the value, bound.
    pub conditions: Vec<(usize, Operator, Bound)>,
    /// The order: a column's index and whether descending.
    pub order: Vec<(usize, bool)>,
    /// How many records, at most.
    pub limit: u32,
    /// How many records to skip.
    pub offset: u64,
}

fn invalid(parameter: &str, problem: impl Into<String>) -> RecordError {
    RecordError::InvalidFilter { parameter: shown(parameter), problem: problem.into() }
}

/// `text` as a message shows it: at most 64 characters.
fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(64).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    shown
}

impl ListQuery {
    /// The query `query` (the URL's query string, undecoded) asks for, on the entity of `plan`.
    pub fn parse(plan: &Plan, query: &str) -> Result<Self, RecordError> {
        let mut list = ListQuery { conditions: Vec::new(), order: Vec::new(), limit: LIMIT_DEFAULT, offset: 0 };
        let (mut limit_seen, mut offset_seen, mut sort_seen) = (false, false, false);
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "limit" | "offset" | "sort" => {
                    let seen = match &*key {
                        "limit" => &mut limit_seen,
                        "offset" => &mut offset_seen,
                        _ => &mut sort_seen,
                    };
                    if std::mem::replace(seen, true) {
                        return Err(invalid(&key, "is given twice; give it once"));
                    }
                }
                _ => {}
            }
            match &*key {
                "limit" => {
                    list.limit = value
                        .parse()
                        .ok()
                        .filter(|limit| (1..=LIMIT_MAX).contains(limit))
                        .ok_or_else(|| invalid("limit", format!("must be a whole number from 1 to {LIMIT_MAX}")))?;
                }
                "offset" => {
                    list.offset = value
                        .parse()
                        .ok()
                        .filter(|offset| i64::try_from(*offset).is_ok())
                        .ok_or_else(|| invalid("offset", "must be a whole number from 0"))?;
                }
                "sort" => {
                    for part in value.split(',') {
                        let (name, descending) = match part.strip_prefix('-') {
                            Some(name) => (name, true),
                            None => (part, false),
                        };
                        let Some((index, column)) = plan.column(name) else {
                            return Err(invalid(
                                "sort",
                                format!(
                                    "names `{}`, which is not an attribute of `{}`; sort by {}",
                                    shown(name),
                                    plan.entity,
                                    attribute_list(plan)
                                ),
                            ));
                        };
                        if column.kind == super::sql::Kind::Binary {
                            return Err(invalid(
                                "sort",
                                format!("names `{}`, which is Binary Data and has no order", column.attribute),
                            ));
                        }
                        if list.order.iter().any(|(seen, _)| *seen == index) {
                            return Err(invalid("sort", format!("names `{}` twice", column.attribute)));
                        }
                        list.order.push((index, descending));
                    }
                }
                _ => {
                    let (name, operator) = match key.rsplit_once('.') {
                        Some((name, suffix)) => {
                            let operator = Operator::from_suffix(suffix).ok_or_else(|| {
                                invalid(
                                    &key,
"ends in a suffix that is not a comparison; use `.eq`, `.ne`, `.gt`, `.ge`, `.lt`, `.le` \
                                     or `.like`",
                                )
                            })?;
                            (name, operator)
                        }
                        None => (&*key, Operator::Equal),
                    };
                    let Some((index, column)) = plan.column(name) else {
                        return Err(invalid(
                            &key,
                            format!(
                                "{} not an attribute of `{}`; filter on {}, or use `sort`, `limit`, `offset`",
                                if name == &*key {
                                    "is".to_owned()
                                } else {
                                    format!("names `{}`, which is", shown(name))
                                },
                                plan.entity,
                                attribute_list(plan)
                            ),
                        ));
                    };
                    if operator == Operator::Like && !column.kind.is_text() {
                        return Err(invalid(
                            &key,
                            format!(
                                "compares with `.like`, which takes text attributes only, and `{}` is not text",
                                column.attribute
                            ),
                        ));
                    }
                    if column.kind == super::sql::Kind::Binary {
                        return Err(invalid(
                            &key,
                            format!("names `{}`, which is Binary Data: filters cannot compare it", column.attribute),
                        ));
                    }
                    let bound = Bound::from_text(column.kind, &value).map_err(|problem| invalid(&key, problem))?;
                    list.conditions.push((index, operator, bound));
                }
            }
        }
        Ok(list)
    }
}

fn attribute_list(plan: &Plan) -> String {
    plan.columns.iter().map(|column| format!("`{}`", column.attribute)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::sql::Operator;

    fn plan() -> Plan {
        let text = "[extension]\nname = \"Shop\"\nversion = \"1.0.0\"\ndescription = \"d\"\n\n\
                    [[entities]]\nname = \"Customer\"\nattributes = [\n\
                    { name = \"Id\", type = \"Long Integer\", identifier = true },\n\
                    { name = \"Name\", type = \"Text\" },\n\
                    { name = \"Age\", type = \"Integer\" },\n\
                    { name = \"Photo\", type = \"Binary Data\" },\n]\n";
        let definition = xif_definition::parse(text).expect("the definition parses");
        Plan::new(&definition, &definition.entities[0])
    }

    /// What a query parses to: the conditions (column, operator), the order, the limit and the
    /// offset.
    type Parsed = (Vec<(usize, Operator)>, Vec<(usize, bool)>, u32, u64);

    /// `query` parses to `expected`: `Ok` with what it parses to, or `Err` with the query
    /// parameter the refusal names.
    fn check(query: &str, expected: Result<Parsed, &str>) {
        let parsed = ListQuery::parse(&plan(), query);
        match (parsed, expected) {
            (Ok(list), Ok((conditions, order, limit, offset))) => {
                let found: Vec<(usize, Operator)> =
                    list.conditions.iter().map(|(index, op, _)| (*index, *op)).collect();
                assert_eq!((found, list.order, list.limit, list.offset), (conditions, order, limit, offset), "{query}");
            }
            (Err(RecordError::InvalidFilter { parameter, .. }), Err(expected)) => {
                assert_eq!(parameter, expected, "{query}");
            }
            (parsed, expected) => panic!("{query}: {parsed:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn queries_become_column_indexes_or_are_refused_naming_the_parameter() {
        check("", Ok((vec![], vec![], LIMIT_DEFAULT, 0)));
        check("name=Ann", Ok((vec![(1, Operator::Equal)], vec![], LIMIT_DEFAULT, 0)));
        check("Age.gt=3&Age.le=9", Ok((vec![(2, Operator::Greater), (2, Operator::LessOrEqual)], vec![], 50, 0)));
        check("Name.like=An%25", Ok((vec![(1, Operator::Like)], vec![], 50, 0)));
        check("sort=Name,-Age&limit=1000&offset=20", Ok((vec![], vec![(1, false), (2, true)], 1000, 20)));
        check("Nom=Ann", Err("Nom"));
        check("Name%3B--=x", Err("Name;--"));
        check("Age.between=1", Err("Age.between"));
        check("Age.like=1", Err("Age.like"));
        check("Age=old", Err("Age"));
        check("Age=99999999999", Err("Age"));
        check("Photo=AA==", Err("Photo"));
        check("sort=Name;DROP", Err("sort"));
        check("sort=Name,Name", Err("sort"));
        check("sort=-Photo", Err("sort"));
        check("sort=Name&sort=Age", Err("sort"));
        check("limit=0", Err("limit"));
        check("limit=1001", Err("limit"));
        check("limit=ten", Err("limit"));
        check("offset=-1", Err("offset"));
        check("offset=9223372036854775808", Err("offset"));
    }

    /// Each message names the query parameter once and says what is wrong once.
    #[test]
    fn messages_say_the_parameter_once() {
        let message = |query: &str| match ListQuery::parse(&plan(), query) {
            Err(error) => error.to_string(),
            Ok(_) => panic!("{query} was accepted"),
        };
        let nope = message("Nope=1");
        assert!(nope.starts_with("query parameter `Nope` is not an attribute of `Customer`;"), "{nope}");
        assert_eq!(nope.matches("Nope").count(), 1, "{nope}");
        let bogus = message("Name.bogus=1");
        assert!(
            bogus.starts_with("query parameter `Name.bogus` ends in a suffix that is not a comparison;"),
            "{bogus}"
        );
        assert_eq!(bogus.matches("bogus").count(), 1, "{bogus}");
        let unknown = message("Nope.gt=1");
        assert!(unknown.starts_with("query parameter `Nope.gt` names `Nope`, which is not an attribute"), "{unknown}");
        let sort = message("sort=Nope");
        assert!(sort.starts_with("query parameter `sort` names `Nope`, which is not an attribute"), "{sort}");
    }
}
