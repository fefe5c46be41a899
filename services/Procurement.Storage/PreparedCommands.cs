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
    private readonly Dictionary<string, KeptCommand> _commands = new(StringComparer.Ordinal);

    public DbConnection Connection { get; } = connection;

    internal KeptCommand Get(string sql, DbTransaction? transaction)
    {
        if (!_commands.TryGetValue(sql, out var kept))
        {
            var command = Connection.CreateCommand();
            command.CommandText = sql;
            kept = new KeptCommand(command);
            _commands[sql] = kept;
        }

        kept.Command.Transaction = transaction;
        return kept;
    }

    public void Dispose()
    {
        foreach (var kept in _commands.Values)
        {
            kept.Dispose();
        }

        _commands.Clear();
    }
}

/// <summary>A kept command and, on SQLite, the same statement prepared for SQLite's C API when first run that way.</summary>
internal sealed class KeptCommand(DbCommand command) : IDisposable
{
    private SqliteRawStatement? _raw;
    private bool _rawTried;

    public DbCommand Command { get; } = command;

    /// <summary>Null for other providers, or SQL that is not exactly one statement.</summary>
    public SqliteRawStatement? Raw
    {
        get
        {
            if (!_rawTried)
            {
                _rawTried = true;
                _raw = Command.Connection is SqliteConnection sqlite ? SqliteRawStatement.TryPrepare(sqlite, Command.CommandText) : null;
            }

            return _raw;
        }
    }

    public void Dispose()
    {
        _raw?.Dispose();
        Command.Dispose();
    }
}

/// <summary>
/// One statement with hand-bound parameters: prepared once per connection where the scope keeps
/// commands (<see cref="DbScope.Commands"/>), otherwise created and disposed with this object.
/// </summary>
public readonly struct Statement : IDisposable
{
    private readonly DbCommand _command;
    private readonly KeptCommand? _kept;
    private readonly CancellationToken _cancellationToken;
    private readonly WriteGroup? _group;

    internal Statement(DbScope db, string sql)
    {
        _group = db.Group;
        var text = db.Dialect.Rewrite(sql);
        _kept = db.Commands?.Get(text, db.Transaction);
        if (_kept is not null)
        {
            _command = _kept.Command;
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

    // Kept SQLite statements whose values SQLite's C API takes directly skip ADO.NET's per-call work.
    public async Task<int> ExecuteAsync()
    {
        _cancellationToken.ThrowIfCancellationRequested();
        await FlushAsync();
        return _kept?.Raw is { } raw && raw.TryExecute(_command.Parameters, out var changed)
            ? changed
            : await _command.ExecuteNonQueryAsync(_cancellationToken);
    }

    /// <summary>
    /// A write whose only result is that it changed exactly one row (else <paramref name="mismatch"/> is
    /// thrown). A write group that sends writes in batches holds it until the unit's next read or its end.
    /// </summary>
    public async Task ExecuteOneRowAsync(Func<Exception> mismatch)
    {
        if (_group?.Defer(_command, mismatch) == true)
        {
            return;
        }

        if (await ExecuteAsync() != 1)
        {
            throw mismatch();
        }
    }

    private Task FlushAsync() => _group?.FlushAsync(_cancellationToken) ?? Task.CompletedTask;

    public async Task<T?> ScalarAsync<T>()
    {
        _cancellationToken.ThrowIfCancellationRequested();
        await FlushAsync();
        if (!(_kept?.Raw is { } raw && raw.TryScalar(_command.Parameters, out var value)))
        {
            value = await _command.ExecuteScalarAsync(_cancellationToken);
        }

        return value is null or DBNull ? default : (T)Convert.ChangeType(value, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The first row mapped by <paramref name="map"/>, or default when there is none.</summary>
    public async Task<T?> FirstOrDefaultAsync<T>(Func<DbDataReader, T> map)
    {
        await FlushAsync();
        await using var reader = await _command.ExecuteReaderAsync(_cancellationToken);
        return await reader.ReadAsync(_cancellationToken) ? map(reader) : default;
    }

    public async Task<List<T>> ListAsync<T>(Func<DbDataReader, T> map)
    {
        await FlushAsync();
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
        if (_kept is null)
        {
            _command.Dispose();
        }
    }
}
