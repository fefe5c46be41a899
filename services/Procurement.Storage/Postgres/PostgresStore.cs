using System.Diagnostics;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Procurement.Storage.Postgres;

/// <summary>
/// The PostgreSQL provider, for several stateless replicas on one database. Each unit of work runs in
/// its own READ COMMITTED transaction; units that decide about a pool lock its row first
/// (<see cref="IStoreSession.LockPoolsAsync"/>), so replicas serialize per pool and pools proceed in
/// parallel. A unit that loses a race (serialization failure, deadlock, a row changed underneath, or
/// the same request id committed by another replica) is rolled back and run again from the start.
/// </summary>
public sealed partial class PostgresStore : IProcurementStore, IAsyncDisposable
{
    public const int MaxAttempts = 10;
    private const string Channel = "procurement_commits";

    /// <summary>
    /// Each wait for a notification is bounded, so a cancellation Npgsql loses as a wait begins
    /// (npgsql#2507) costs at most this long when the store stops.
    /// </summary>
    internal static readonly TimeSpan ListenWaitLimit = TimeSpan.FromSeconds(1);

    private readonly NpgsqlDataSource _dataSource;
    private readonly ILogger<PostgresStore> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _listener;
    private readonly CommittedContractVersions _committed = new();
    private TaskCompletionSource _nextCommit = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly StorageInstruments? _instruments;

    public PostgresStore(string connectionString, ILogger<PostgresStore> logger, ILoggerFactory? loggerFactory = null, StorageInstruments? instruments = null)
    {
        _logger = logger;
        _instruments = instruments;
        // Npgsql logs through the host's logging and reports its spans to the "Npgsql" activity source.
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        if (loggerFactory is not null)
        {
            builder.UseLoggerFactory(loggerFactory);
        }

        _dataSource = builder.Build();
        _listener = Task.Run(ListenAsync);
    }

    public Task NextCommit => Volatile.Read(ref _nextCommit).Task;

    /// <summary>Applies pending migrations under an advisory lock, so replicas starting together apply each once.</summary>
    public void Initialize(TimeProvider time)
    {
        using var connection = _dataSource.OpenConnection();
        using var tx = connection.BeginTransaction();
        connection.Execute("SELECT pg_advisory_xact_lock(727274)", transaction: tx);
        connection.Execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version       BIGINT NOT NULL PRIMARY KEY,
                name          TEXT   NOT NULL,
                applied_at_ms BIGINT NOT NULL
            )
            """, transaction: tx);
        var applied = connection.Query<long>("SELECT version FROM schema_migrations", transaction: tx).ToHashSet();
        foreach (var (version, name, sql) in MigrationScripts.Load("Postgres").Where(m => !applied.Contains(m.Version)))
        {
            connection.Execute(sql, transaction: tx);
            connection.Execute("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (@version, @name, @now)",
                new { version, name, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, tx);
        }

        tx.Commit();
    }

    public async Task<T> ReadAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            // One snapshot for every query of the read.
            await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
            var result = await read(new StoreSession(new DbScope(connection, tx, cancellationToken, PostgresDialect.Instance, Committed: _committed)));
            await tx.CommitAsync(cancellationToken);
            return result;
        }
        catch (NpgsqlException e) when (e.IsTransient)
        {
            throw new StorageUnavailableException(e);
        }
    }

    /// <summary>A pooled connection; failing to get one at all means the database cannot be reached.</summary>
    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await _dataSource.OpenConnectionAsync(cancellationToken);
        }
        catch (NpgsqlException e)
        {
            // Refused, unreachable, or the database not accepting connections (being shut down, or
            // closed to them by an operator): no transaction started.
            throw new StorageUnavailableException(e);
        }
    }

    public async Task<T> WriteAsync<T>(Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken)
    {
        try
        {
            return await RunUnitAsync(unitOfWork, cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException { IsTransient: true } or ConcurrentWriteException)
        {
            // Before the commit was asked for (a failed commit is CommitFailedException), or a race lost
            // on every attempt (a serialization failure, a deadlock, a row changed under the unit): the
            // transaction was rolled back, so the unit wrote nothing. A unique violation on every
            // attempt is not treated so: ten in a row are no longer a race but a unit that cannot succeed.
            throw new StorageUnavailableException(e);
        }
    }

    private async Task<T> RunUnitAsync<T>(Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken)
    {
        var queued = Stopwatch.GetTimestamp();
        for (var attempt = 1; ; attempt++)
        {
            await using var connection = await OpenAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, cancellationToken);
            _instruments?.UnitWaited(Stopwatch.GetElapsedTime(queued));
            try
            {
                // Once a unit starts writing it finishes: the caller's cancellation does not cut it in half.
                var session = new StoreSession(new DbScope(connection, tx, CancellationToken.None, PostgresDialect.Instance), _instruments);
                T result;
                using (StorageInstruments.Activities.StartActivity("procurement.unit_of_work"))
                {
                    result = await unitOfWork(session);
                }

                await connection.ExecuteAsync($"NOTIFY {Channel}", transaction: tx);
                var commitStarted = Stopwatch.GetTimestamp();
                try
                {
                    using var commit = StorageInstruments.Activities.StartActivity("procurement.commit");
                    await tx.CommitAsync(CancellationToken.None);
                }
                catch (Exception e)
                {
                    // Refused (a deferred check) or cut off (the connection: then it may have committed).
                    // Either way the caller is not acknowledged, and a retry with the request id is safe.
                    throw new CommitFailedException(e);
                }

                _instruments?.GroupCommitted(1, Stopwatch.GetElapsedTime(commitStarted));
                StoreSession.RunCommitted(session.TakeCommitted());
                Signal();
                return result;
            }
            catch (Exception e) when (attempt < MaxAttempts && IsRace(e))
            {
                await tx.RollbackAsync(CancellationToken.None);
                Log.Retrying(_logger, e, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 10 * attempt)), cancellationToken);
            }
        }
    }

    /// <summary>Another transaction got there first; running the unit again sees its result.</summary>
    private static bool IsRace(Exception e) => e switch
    {
        ConcurrentWriteException => true,
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected } => true,
        // The same request id (or the same new row) committed meanwhile by another replica.
        PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } => true,
        _ => false,
    };

    private void Signal() =>
        Interlocked.Exchange(ref _nextCommit, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Commits of other replicas wake this replica's watchers through LISTEN/NOTIFY.</summary>
    private async Task ListenAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(_stopping.Token);
                connection.Notification += (_, _) => Signal();
                await connection.ExecuteAsync($"LISTEN {Channel}");
                while (!_stopping.IsCancellationRequested)
                {
                    await connection.WaitAsync(ListenWaitLimit, _stopping.Token);
                }
            }
            catch (Exception) when (_stopping.IsCancellationRequested)
            {
                // Shutting down: Npgsql may answer the cancelled wait with an error of its own rather
                // than a cancellation, and that is no failure to log or reconnect after.
                return;
            }
            catch (Exception e)
            {
                Log.ListenFailed(_logger, e);
                await Task.Delay(1000, _stopping.Token).ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        try
        {
            await _listener;
        }
        catch (OperationCanceledException)
        {
        }

        await _dataSource.DisposeAsync();
        _stopping.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1101, Level = LogLevel.Debug, Message = "Unit of work lost a race (attempt {Attempt}); running it again")]
        public static partial void Retrying(ILogger logger, Exception exception, int attempt);

        [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "LISTEN connection failed; reconnecting")]
        public static partial void ListenFailed(ILogger logger, Exception exception);
    }
}
