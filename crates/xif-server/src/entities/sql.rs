//! The SQL of record operations, per dialect. Only identifiers from the published definition
//! (the entity's table and its attributes' columns) are ever written into SQL text, quoted for
//! the dialect; every value, and every limit and offset, is a bound parameter. A request's
//! filter and sort keys reach this module only as indexes of the entity's columns
//! ([`super::filter`] looks them up and refuses any other), so no text from a request is
//! ever part of a statement.
//!
//! The statements of reads by identifier and deletes do not depend on the request: a [`Plan`]
//! makes them once per entity and dialect, so that the hot path formats no SQL.

use std::fmt::Write as _;
use std::sync::OnceLock;

use serde_json::Value;
use xif_definition::{DataType, Definition, Entity, RecordDefinition, TypeSpec};

use super::Database;

/// A dialect of SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL: `"identifier"`, `$1`.
    Postgres,
    /// MySQL and MariaDB: `` `identifier` ``, `?`.
    MySql,
    /// SQLite: `"identifier"`, `?`.
    Sqlite,
}

impl Dialect {
    /// The dialect of `database`.
    pub const fn of(database: &Database) -> Self {
        match database {
            Database::Postgres(_) => Dialect::Postgres,
            Database::MySql(_) => Dialect::MySql,
            Database::Sqlite(_) => Dialect::Sqlite,
        }
    }

    const fn index(self) -> usize {
        match self {
            Dialect::Postgres => 0,
            Dialect::MySql => 1,
            Dialect::Sqlite => 2,
        }
    }

    /// Writes `identifier` quoted: in the dialect's quote character, which is doubled inside,
    /// so that no name can end the quoted identifier.
    pub fn quote_into(self, out: &mut String, identifier: &str) {
        let quote = if self == Dialect::MySql { '`' } else { '"' };
        out.push(quote);
        for character in identifier.chars() {
            if character == quote {
                out.push(quote);
            }
            out.push(character);
        }
        out.push(quote);
    }

    /// `identifier` quoted (see [`Dialect::quote_into`]).
    pub fn quote(self, identifier: &str) -> String {
        let mut out = String::with_capacity(identifier.len() + 2);
        self.quote_into(&mut out, identifier);
        out
    }

    /// Writes the placeholder of the `number`th parameter (from 1).
    fn placeholder_into(self, out: &mut String, number: usize) {
        match self {
            // Numbered, so that a parameter's type is inferred from its own place.
            Dialect::Postgres => {
                // Writing to a String cannot fail.
                write!(out, "${number}").ok();
            }
            Dialect::MySql | Dialect::Sqlite => out.push('?'),
        }
    }
}

/// What a column holds, by the attribute's data type (an Entity Identifier by the type of the
/// referenced entity's identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text, Email, Phone Number.
    Text,
    /// Integer (32 bits).
    Integer,
    /// Long Integer (64 bits).
    LongInteger,
    /// Decimal, Currency: exact.
    Decimal,
    /// Boolean.
    Boolean,
    /// Date Time (no time zone).
    DateTime,
    /// Date.
    Date,
    /// Time.
    Time,
    /// Binary Data.
    Binary,
}

impl Kind {
    fn of(definition: &Definition, spec: &TypeSpec) -> Kind {
        match spec.data_type.value {
            DataType::Text | DataType::Email | DataType::PhoneNumber => Kind::Text,
            DataType::Integer => Kind::Integer,
            DataType::LongInteger => Kind::LongInteger,
            DataType::Decimal | DataType::Currency => Kind::Decimal,
            DataType::Boolean => Kind::Boolean,
            DataType::DateTime => Kind::DateTime,
            DataType::Date => Kind::Date,
            DataType::Time => Kind::Time,
            DataType::BinaryData => Kind::Binary,
            DataType::EntityIdentifier => {
                let identifier =
                    spec.record.as_ref().and_then(|record| match definition.record_definition(&record.value) {
                        Some(RecordDefinition::Entity(entity)) => entity.attributes.iter().find(|a| a.is_identifier()),
                        _ => None,
                    });
                // An identifier of an entity that has none (verify refuses it) is numbered.
                match identifier {
                    Some(identifier) if identifier.data_type.data_type.value != DataType::EntityIdentifier => {
                        Kind::of(definition, &identifier.data_type)
                    }
                    _ => Kind::LongInteger,
                }
            }
            // Verify refuses records as entity attributes; were one there, it would travel as text.
            DataType::Record | DataType::RecordList => Kind::Text,
        }
    }

    /// Whether `like` filters apply.
    pub const fn is_text(self) -> bool {
        matches!(self, Kind::Text)
    }
}

/// An attribute of an entity, as record operations use it.
#[derive(Debug, Clone)]
pub struct Column {
    /// The attribute's name, as written in the definition: the record's key.
    pub attribute: String,
    /// The table's column.
    pub column: String,
    /// What it holds.
    pub kind: Kind,
    /// Its type as declared, to check values with (as action inputs are checked).
    pub spec: TypeSpec,
    /// Whether a new record must have it.
    pub mandatory: bool,
    /// The value a new record gets when it has none.
    pub default: Option<Value>,
    /// Whether it is the identifier.
    pub identifier: bool,
    /// Whether the database numbers it.
    pub auto_number: bool,
}

/// The statements of one dialect that do not depend on the request.
#[derive(Debug)]
pub struct Statements {
    /// `SELECT columns FROM table`, which lists and reads start with.
    pub select: String,
    /// `SELECT columns FROM table WHERE identifier = $1`.
    pub read: String,
    /// `DELETE FROM table WHERE identifier = $1`.
    pub delete: String,
}

/// An entity made ready for record operations: its columns, and its statements once per
/// dialect.
#[derive(Debug)]
pub struct Plan {
    /// The entity's name, as written in the definition.
    pub entity: String,
    /// Its logical database.
    pub logical: String,
    /// Its table.
    pub table: String,
    /// Its attributes, in the definition's order (the order of the select list).
    pub columns: Vec<Column>,
    /// The index of the identifier among `columns`, if it has one.
    pub identifier: Option<usize>,
    statements: [OnceLock<Statements>; 3],
}

impl Plan {
    /// The plan of `entity` of `definition`.
    pub fn new(definition: &Definition, entity: &Entity) -> Self {
        let columns: Vec<Column> = entity
            .attributes
            .iter()
            .map(|attribute| Column {
                attribute: attribute.name.value.clone(),
                column: attribute.column.as_ref().map_or_else(|| attribute.name.value.clone(), |c| c.value.clone()),
                kind: Kind::of(definition, &attribute.data_type),
                spec: attribute.data_type.clone(),
                mandatory: attribute.is_mandatory(),
                default: attribute.default.as_ref().map(|d| xif_host::default_value(&attribute.data_type, &d.value)),
                identifier: attribute.is_identifier(),
                auto_number: attribute.is_auto_number(),
            })
            .collect();
        let identifier = columns.iter().position(|column| column.identifier);
        Self {
            entity: entity.name.value.clone(),
            logical: entity.database_name().to_owned(),
            table: entity.table.as_ref().map_or_else(|| entity.name.value.clone(), |t| t.value.clone()),
            columns,
            identifier,
            statements: Default::default(),
        }
    }

    /// The column `name` names (as the definition writes it, or in another case), and its index.
    pub fn column(&self, name: &str) -> Option<(usize, &Column)> {
        self.columns.iter().enumerate().find(|(_, column)| column.attribute.eq_ignore_ascii_case(name))
    }

    /// The statements of `dialect`, made on first use.
    pub fn statements(&self, dialect: Dialect) -> &Statements {
        self.statements[dialect.index()].get_or_init(|| {
            let mut select = String::from("SELECT ");
            for (index, column) in self.columns.iter().enumerate() {
                if index > 0 {
                    select.push_str(", ");
                }
                dialect.quote_into(&mut select, &column.column);
            }
            select.push_str(" FROM ");
            dialect.quote_into(&mut select, &self.table);
            let mut read = select.clone();
            let mut delete = String::from("DELETE FROM ");
            dialect.quote_into(&mut delete, &self.table);
            if let Some(identifier) = self.identifier {
                for statement in [&mut read, &mut delete] {
                    statement.push_str(" WHERE ");
                    dialect.quote_into(statement, &self.columns[identifier].column);
                    statement.push_str(" = ");
                    dialect.placeholder_into(statement, 1);
                }
            }
            Statements { select, read, delete }
        })
    }

    /// `INSERT INTO table (columns…) VALUES (…)` of the columns at `indexes`, returning the whole
    /// record where the dialect can (PostgreSQL, SQLite).
    pub fn insert(&self, dialect: Dialect, indexes: &[usize]) -> String {
        let mut sql = String::from("INSERT INTO ");
        dialect.quote_into(&mut sql, &self.table);
        sql.push_str(" (");
        for (place, &index) in indexes.iter().enumerate() {
            if place > 0 {
                sql.push_str(", ");
            }
            dialect.quote_into(&mut sql, &self.columns[index].column);
        }
        sql.push_str(") VALUES (");
        for place in 0..indexes.len() {
            if place > 0 {
                sql.push_str(", ");
            }
            dialect.placeholder_into(&mut sql, place + 1);
        }
        sql.push(')');
        if matches!(dialect, Dialect::Postgres | Dialect::Sqlite) {
            sql.push_str(" RETURNING ");
            self.column_list_into(dialect, &mut sql);
        }
        sql
    }

    /// `UPDATE table SET column = $1, … WHERE identifier = $N` of the columns at `indexes`, the
    /// identifier's value bound last.
    pub fn update(&self, dialect: Dialect, indexes: &[usize], identifier: usize) -> String {
        let mut sql = String::from("UPDATE ");
        dialect.quote_into(&mut sql, &self.table);
        sql.push_str(" SET ");
        for (place, &index) in indexes.iter().enumerate() {
            if place > 0 {
                sql.push_str(", ");
            }
            dialect.quote_into(&mut sql, &self.columns[index].column);
            sql.push_str(" = ");
            dialect.placeholder_into(&mut sql, place + 1);
        }
        sql.push_str(" WHERE ");
        dialect.quote_into(&mut sql, &self.columns[identifier].column);
        sql.push_str(" = ");
        dialect.placeholder_into(&mut sql, indexes.len() + 1);
        sql
    }

    fn column_list_into(&self, dialect: Dialect, sql: &mut String) {
        for (index, column) in self.columns.iter().enumerate() {
            if index > 0 {
                sql.push_str(", ");
            }
            dialect.quote_into(sql, &column.column);
        }
    }

    /// The statement of a list: the select, `conditions` (each a column's index, an operator,
    /// one bound value each, in order), the order (each a column's index and whether
    /// descending; the identifier last, so that pages do not overlap), then `LIMIT` and `OFFSET`
    /// bound after the conditions' values.
    pub fn list(&self, dialect: Dialect, conditions: &[(usize, Operator)], order: &[(usize, bool)]) -> String {
        let mut sql = self.statements(dialect).select.clone();
        let mut number = 0;
        for (place, (index, operator)) in conditions.iter().enumerate() {
            sql.push_str(if place == 0 { " WHERE " } else { " AND " });
            dialect.quote_into(&mut sql, &self.columns[*index].column);
            sql.push(' ');
            sql.push_str(operator.sql());
            sql.push(' ');
            number += 1;
            dialect.placeholder_into(&mut sql, number);
        }
        let mut order: Vec<(usize, bool)> = order.to_vec();
        if let Some(identifier) = self.identifier
            && !order.iter().any(|(index, _)| *index == identifier)
        {
            order.push((identifier, false));
        }
        for (place, (index, descending)) in order.iter().enumerate() {
            sql.push_str(if place == 0 { " ORDER BY " } else { ", " });
            dialect.quote_into(&mut sql, &self.columns[*index].column);
            if *descending {
                sql.push_str(" DESC");
            }
        }
        sql.push_str(" LIMIT ");
        dialect.placeholder_into(&mut sql, number + 1);
        sql.push_str(" OFFSET ");
        dialect.placeholder_into(&mut sql, number + 2);
        sql
    }
}

/// A filter's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `=` (`Name=Ann`).
    Equal,
    /// `<>` (`.ne`).
    NotEqual,
    /// `>` (`.gt`).
    Greater,
    /// `>=` (`.ge`).
    GreaterOrEqual,
    /// `<` (`.lt`).
    Less,
    /// `<=` (`.le`).
    LessOrEqual,
    /// `LIKE` (`.like`), text only.
    Like,
}

impl Operator {
    /// The operator of a query parameter's suffix (`gt`), if it is one.
    pub fn from_suffix(suffix: &str) -> Option<Self> {
        Some(match suffix {
            "eq" => Operator::Equal,
            "ne" => Operator::NotEqual,
            "gt" => Operator::Greater,
            "ge" => Operator::GreaterOrEqual,
            "lt" => Operator::Less,
            "le" => Operator::LessOrEqual,
            "like" => Operator::Like,
            _ => return None,
        })
    }

    const fn sql(self) -> &'static str {
        match self {
            Operator::Equal => "=",
            Operator::NotEqual => "<>",
            Operator::Greater => ">",
            Operator::GreaterOrEqual => ">=",
            Operator::Less => "<",
            Operator::LessOrEqual => "<=",
            Operator::Like => "LIKE",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_the_quote_doubled() {
        assert_eq!(Dialect::Postgres.quote("Na\"me; DROP"), "\"Na\"\"me; DROP\"");
        assert_eq!(Dialect::MySql.quote("a`b"), "`a``b`");
        assert_eq!(Dialect::Sqlite.quote("plain"), "\"plain\"");
    }

    #[test]
    fn statements_bind_every_value() {
        let text = "[extension]\nname = \"Shop\"\nversion = \"1.0.0\"\ndescription = \"d\"\n\n\
                    [[entities]]\nname = \"Customer\"\ntable = \"customer\"\nattributes = [\n\
                    { name = \"Id\", type = \"Long Integer\", identifier = true, auto_number = true, column = \"id\" },\n\
                    { name = \"Name\", type = \"Text\", column = \"name\" },\n]\n";
        let definition = xif_definition::parse(text).expect("the definition parses");
        let entity = &definition.entities[0];
        let plan = Plan::new(&definition, entity);
        assert_eq!(
            plan.statements(Dialect::Postgres).read,
            "SELECT \"id\", \"name\" FROM \"customer\" WHERE \"id\" = $1"
        );
        assert_eq!(plan.statements(Dialect::MySql).delete, "DELETE FROM `customer` WHERE `id` = ?");
        assert_eq!(
            plan.list(Dialect::Postgres, &[(1, Operator::Like)], &[(1, true)]),
            "SELECT \"id\", \"name\" FROM \"customer\" WHERE \"name\" LIKE $1 ORDER BY \"name\" DESC, \"id\" LIMIT $2 OFFSET $3"
        );
        assert_eq!(plan.insert(Dialect::MySql, &[1]), "INSERT INTO `customer` (`name`) VALUES (?)");
        assert_eq!(plan.update(Dialect::Sqlite, &[1], 0), "UPDATE \"customer\" SET \"name\" = ? WHERE \"id\" = ?");
    }
}
