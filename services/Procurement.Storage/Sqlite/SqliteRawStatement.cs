using System.Data.Common;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Procurement.Storage.Sqlite;

/// <summary>
/// A single SQL statement prepared once on a kept-open SQLite connection and run straight through
/// SQLite's C API. Microsoft.Data.Sqlite looks every parameter up by name and builds a data reader on
/// each execution, even for an insert; on the writer, which runs every decision of the service one
/// after another, that was a tenth of its time. Values come from the command's ADO.NET parameters, so
/// callers bind exactly as before; parameter positions are resolved once per parameter list.
/// </summary>
internal sealed class SqliteRawStatement : IDisposable
{
    // sqlite3.h's SQLITE_STMTSTATUS_RUN, which SQLitePCL.raw does not name.
    private const int StatementStatusRun = 6;

    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _stmt;
    private readonly int _parameterCount;
    private readonly bool _readOnly;
    // SQLite's 1-based position of each ADO.NET parameter, in the collection's order.
    private int[] _positions = [];

    private SqliteRawStatement(sqlite3 db, sqlite3_stmt stmt)
    {
        _db = db;
        _stmt = stmt;
        _parameterCount = raw.sqlite3_bind_parameter_count(stmt);
        _readOnly = raw.sqlite3_stmt_readonly(stmt) != 0;
    }

    /// <summary>How many times SQLite has run this statement to a reset (its own counter, SQLITE_STMTSTATUS_RUN).</summary>
    public int Runs => raw.sqlite3_stmt_status(_stmt, StatementStatusRun, 0);

    /// <summary>The prepared statement, or null when <paramref name="sql"/> is not exactly one valid statement
    /// (the ADO.NET path then runs it and reports any error the usual way).</summary>
    public static SqliteRawStatement? TryPrepare(SqliteConnection connection, string sql)
    {
        var db = connection.Handle!;
        if (raw.sqlite3_prepare_v3(db, sql, raw.SQLITE_PREPARE_PERSISTENT, out var stmt, out string tail) != raw.SQLITE_OK || stmt.IsInvalid)
        {
            stmt.Dispose();
            return null;
        }

        if (!string.IsNullOrWhiteSpace(tail))
        {
            stmt.Dispose();
            return null;
        }

        return new SqliteRawStatement(db, stmt);
    }

    /// <summary>
    /// Runs the statement to its end: the rows it changed, or -1 for a statement that changes none.
    /// False, without running it, when a value is of a type only ADO.NET binds (the caller runs it there).
    /// </summary>
    public bool TryExecute(DbParameterCollection parameters, out int changed)
    {
        changed = 0;
        if (!TryBind(parameters))
        {
            return false;
        }

        try
        {
            int rc;
            while ((rc = raw.sqlite3_step(_stmt)) == raw.SQLITE_ROW)
            {
            }

            Check(rc);
            changed = _readOnly ? -1 : raw.sqlite3_changes(_db);
            return true;
        }
        finally
        {
            raw.sqlite3_reset(_stmt);
        }
    }

    /// <summary>The first column of the first row, as Microsoft.Data.Sqlite would return it, or null; false as for <see cref="TryExecute"/>.</summary>
    public bool TryScalar(DbParameterCollection parameters, out object? value)
    {
        value = null;
        if (!TryBind(parameters))
        {
            return false;
        }

        try
        {
            var rc = raw.sqlite3_step(_stmt);
            if (rc != raw.SQLITE_DONE)
            {
                Check(rc);
                value = raw.sqlite3_column_type(_stmt, 0) switch
                {
                    raw.SQLITE_INTEGER => raw.sqlite3_column_int64(_stmt, 0),
                    raw.SQLITE_FLOAT => raw.sqlite3_column_double(_stmt, 0),
                    raw.SQLITE_TEXT => raw.sqlite3_column_text(_stmt, 0).utf8_to_string(),
                    raw.SQLITE_BLOB => raw.sqlite3_column_blob(_stmt, 0).ToArray(),
                    _ => null,
                };
            }

            return true;
        }
        finally
        {
            raw.sqlite3_reset(_stmt);
        }
    }

    // Binds every value as Microsoft.Data.Sqlite would; false at the first value of another type.
    private bool TryBind(DbParameterCollection parameters)
    {
        // The command's parameter list only grows (names are added, never removed), so an unchanged
        // count means the same names in the same order.
        if (_positions.Length != parameters.Count)
        {
            Resolve(parameters);
        }

        for (var i = 0; i < _positions.Length; i++)
        {
            var position = _positions[i];
            if (position == 0)
            {
                continue;
            }

            int rc;
            switch (parameters[i].Value)
            {
                case null or DBNull: rc = raw.sqlite3_bind_null(_stmt, position); break;
                case string s: rc = raw.sqlite3_bind_text16(_stmt, position, s); break;
                case long l: rc = raw.sqlite3_bind_int64(_stmt, position, l); break;
                case int n: rc = raw.sqlite3_bind_int64(_stmt, position, n); break;
                case short n: rc = raw.sqlite3_bind_int64(_stmt, position, n); break;
                case bool b: rc = raw.sqlite3_bind_int64(_stmt, position, b ? 1 : 0); break;
                case double d: rc = raw.sqlite3_bind_double(_stmt, position, d); break;
                case byte[] bytes: rc = raw.sqlite3_bind_blob(_stmt, position, bytes); break;
                default: return false;
            }

            Check(rc);
        }

        return true;
    }

    private void Resolve(DbParameterCollection parameters)
    {
        var positions = new int[parameters.Count];
        var bound = new bool[_parameterCount + 1];
        for (var i = 0; i < positions.Length; i++)
        {
            // A parameter the statement does not use is ignored, as Microsoft.Data.Sqlite does.
            positions[i] = raw.sqlite3_bind_parameter_index(_stmt, parameters[i].ParameterName);
            bound[positions[i]] = true;
        }

        for (var p = 1; p <= _parameterCount; p++)
        {
            if (!bound[p])
            {
                throw new InvalidOperationException($"Must add values for the following parameters: {raw.sqlite3_bind_parameter_name(_stmt, p).utf8_to_string()}");
            }
        }

        _positions = positions;
    }

    private void Check(int rc)
    {
        if (rc is not (raw.SQLITE_OK or raw.SQLITE_DONE or raw.SQLITE_ROW))
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
    }

    public void Dispose() => _stmt.Dispose();
}
