using System.Data.Common;
using Microsoft.Data.Sqlite;
using Procurement.Storage.Sqlite;

namespace Procurement.Storage;

/// <summary>
/// Commands kept prepared on one long-lived connection (the SQLite writer's, or a kept-open reader's),
/// by SQL text. The hot statements of admission, ingestion and authentication run thousands of times
/// a second; preparing each once per connection instead of once per call is most of their cost.
/// Used by one unit of work at a time, like its connection.
/// </summary>
public sealed class PreparedCommands(DbConnection connection) : IDisposable
{
    private readonly Dictionary<string, DbCommand> _commands = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SqliteRawStatement?> _raw = new(StringComparer.Ordinal);

    public DbConnection Connection { get; } = connection;

    internal DbCommand Get(string sql, DbTransaction? transaction)
    {
        if (!_commands.TryGetValue(sql, out var command))
        {
            command = Connection.CreateCommand();
            command.CommandText = sql;
            _commands[sql] = command;
        }

        command.Transaction = transaction;
        return command;
    }

    /// <summary>On SQLite, the statement prepared for SQLite's C API (null for other providers, or SQL that is not one statement).</summary>
    internal SqliteRawStatement? Raw(string sql)
    {
        if (Connection is not SqliteConnection sqlite)
        {
            return null;
        }

        if (!_raw.TryGetValue(sql, out var statement))
        {
            statement = SqliteRawStatement.TryPrepare(sqlite, sql);
            _raw[sql] = statement;
        }

        return statement;
    }

    public void Dispose()
    {
        foreach (var command in _commands.Values)
        {
            command.Dispose();
        }

        foreach (var statement in _raw.Values)
        {
            statement?.Dispose();
        }

        _commands.Clear();
        _raw.Clear();
    }
}

/// <summary>
/// One statement with hand-bound parameters: prepared once per connection where the scope keeps
/// commands (<see cref="DbScope.Commands"/>), otherwise created and disposed with this object.
/// </summary>
public readonly struct Statement : IDisposable
{
    private readonly DbCommand _command;
    private readonly PreparedCommands? _kept;
    private readonly bool _owned;
    private readonly CancellationToken _cancellationToken;

    internal Statement(DbScope db, string sql)
    {
        var text = db.Dialect.Rewrite(sql);
        _owned = db.Commands is null;
        _kept = db.Commands;
        if (db.Commands is { } kept)
        {
            _command = kept.Get(text, db.Transaction);
        }
        else
        {
            _command = db.Connection.CreateCommand();
            _command.CommandText = text;
            _command.Transaction = db.Transaction;
        }

        _cancellationToken = db.CancellationToken;
    }

    /// <summary>Sets a parameter, adding it the first time this command sees its name.</summary>
    public Statement Bind(string name, object? value)
    {
        var parameters = _command.Parameters;
        var i = parameters.IndexOf(name);
        DbParameter p;
        if (i < 0)
        {
            p = _command.CreateParameter();
            p.ParameterName = name;
            parameters.Add(p);
        }
        else
        {
            p = parameters[i];
        }

        p.Value = value ?? DBNull.Value;
        return this;
    }

    /// <summary>Prepares the command for repeated runs; a no-op where it is already kept prepared.</summary>
    public Task PrepareAsync() => _kept is null ? _command.PrepareAsync(_cancellationToken) : Task.CompletedTask;

    public Task<int> ExecuteAsync()
    {
        if (RawStatement() is { } statement)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            return Task.FromResult(statement.Execute(_command.Parameters));
        }

        return _command.ExecuteNonQueryAsync(_cancellationToken);
    }

    public async Task<T?> ScalarAsync<T>()
    {
        object? value;
        if (RawStatement() is { } statement)
        {
            _cancellationToken.ThrowIfCancellationRequested();
            value = statement.Scalar(_command.Parameters);
        }
        else
        {
            value = await _command.ExecuteScalarAsync(_cancellationToken);
        }

        return value is null or DBNull ? default : (T)Convert.ChangeType(value, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    // Kept SQLite statements whose values SQLite's C API takes directly skip ADO.NET's per-call work.
    private SqliteRawStatement? RawStatement() =>
        _kept?.Raw(_command.CommandText) is { } statement && SqliteRawStatement.CanBind(_command.Parameters) ? statement : null;

    /// <summary>The first row mapped by <paramref name="map"/>, or default when there is none.</summary>
    public async Task<T?> FirstOrDefaultAsync<T>(Func<DbDataReader, T> map)
    {
        await using var reader = await _command.ExecuteReaderAsync(_cancellationToken);
        return await reader.ReadAsync(_cancellationToken) ? map(reader) : default;
    }

    public async Task<List<T>> ListAsync<T>(Func<DbDataReader, T> map)
    {
        var result = new List<T>();
        await using var reader = await _command.ExecuteReaderAsync(_cancellationToken);
        while (await reader.ReadAsync(_cancellationToken))
        {
            result.Add(map(reader));
        }

        return result;
    }

    public void Dispose()
    {
        if (_owned)
        {
            _command.Dispose();
        }
    }
}
