//! The two SQL dialects, and the rewrite that lets one statement text serve both.

/// Which backend a shared statement is written out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The condition "is one of the ids in parameter `$n`": a list of ids is one parameter, JSON
    /// text on SQLite (see [`super::rows::json_ids`]), an array on PostgreSQL.
    pub fn one_of(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("IN (SELECT value FROM json_each(${n}))"),
            Dialect::Postgres => format!("= ANY(${n})"),
        }
    }

    /// A statement written once, with PostgreSQL's numbered `$n` parameters and their `::TYPE`
    /// casts (which PostgreSQL needs to type a parameter compared with NULL), in this dialect.
    /// SQLite reads `$n` as a named parameter bound by order of appearance, so it gets `?n`, and
    /// it takes no casts.
    pub fn statement(self, sql: &str) -> String {
        if self == Dialect::Postgres {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            out.push('?');
            rest = &rest[at + 1..];
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            out.push_str(&rest[..digits]);
            rest = &rest[digits..];
            if digits > 0 {
                if let Some(cast) = rest.strip_prefix("::") {
                    let name =
                        cast.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '[' || c == ']'));
                    rest = &cast[name.unwrap_or(cast.len())..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn sqlite_numbers_parameters_and_drops_their_casts() {
        let sql = "SELECT a FROM t WHERE x = $1 AND ($3::TEXT IS NULL OR y = $3) AND z = ANY($12::BIGINT[]) LIMIT $2";
        assert_eq!(
            Dialect::Sqlite.statement(sql),
            "SELECT a FROM t WHERE x = ?1 AND (?3 IS NULL OR y = ?3) AND z = ANY(?12) LIMIT ?2"
        );
        assert_eq!(Dialect::Postgres.statement(sql), sql);
        assert_eq!(
            Dialect::Sqlite.statement("SELECT CAST(a AS BIGINT), 'x::y'"),
            "SELECT CAST(a AS BIGINT), 'x::y'"
        );
    }
}
