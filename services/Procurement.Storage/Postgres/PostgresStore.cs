using System.Diagnostics;
using System.Threading.Channels;
using Dapper;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Procurement.Storage.Postgres;

/// <summary>
/// The PostgreSQL provider, for several stateless replicas on one database. Each replica has one
/// writer that group-commits like SQLite's: it takes the units waiting in its queue, runs them back
/// to back in one READ COMMITTED transaction, commits once and only then answers them. Units hold the
/// pools they decide about for the group (<see cref="PostgresWriteGroup"/>: locked once, in id order,
/// so replicas serialize per pool for one group and never deadlock on pools). A unit that fails before
/// writing leaves the group alone; one that fails after writing, or with a database error (which
/// aborts the transaction), has the group rolled back and the others run again in a new one. A unit
/// that lost a race (a serialization failure, a deadlock, a row changed underneath, the same request
/// id committed by another replica) or that must wait for the next group runs again from the start.
/// </summary>
public sealed partial class PostgresStore : IProcurementStore, IAsyncDisposable
{
    /// <summary>Runs of one unit that lost a race before it is answered UNAVAILABLE.</summary>
    public const int MaxAttempts = 10;

    /// <summary>Times one unit may wait for a later group (it runs first in the next one, so this is a safety bound).</summary>
    public const int MaxDeferrals = 1000;

    /// <summary>Most units committed together; bounds the latency a long group adds.</summary>
    public const int MaxBatchSize = 256;

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
    private readonly Task _writer;
    private readonly Channel<WorkItem> _queue = System.Threading.Channels.Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleReader = true });
    private readonly WriterCache _cache = new();
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

        // The writer and readers run the same few statements all day: prepared once per connection.
        if (builder.ConnectionStringBuilder.MaxAutoPrepare == 0)
        {
            builder.ConnectionStringBuilder.MaxAutoPrepare = 64;
        }

        _dataSource = builder.Build();
        _listener = Task.Run(ListenAsync);
        _writer = Task.Factory.StartNew(WriteLoopAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
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

    /// <summary>One statement is consistent by itself: it runs outside a transaction, in one round trip (the per-call API key lookup).</summary>
    public async Task<T> ReadStatementAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await OpenAsync(cancellationToken);
            return await read(new StoreSession(new DbScope(connection, null, cancellationToken, PostgresDialect.Instance)));
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

    public Task<T> WriteAsync<T>(Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var item = new WorkItem<T>(unitOfWork, cancellationToken) { Enqueued = Stopwatch.GetTimestamp(), Trace = Activity.Current?.Context ?? default };
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(PostgresStore), "The store is shutting down.");
        }

        return item.Task;
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        // Units to run again: deferred ones and those rolled back with a failed group go first in the
        // next group (its first unit can always take its pools); one that lost a race waits one group
        // more, so the others commit without it before it meets what it raced with again.
        var carried = new List<WorkItem>();
        var later = new List<WorkItem>();
        while (carried.Count > 0 || later.Count > 0 || await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var batch = carried;
            while (batch.Count < MaxBatchSize && reader.TryRead(out var item))
            {
                // A caller that gave up before its unit started gets nothing written.
                if (item.CancellationToken.IsCancellationRequested)
                {
                    item.Cancel();
                }
                else
                {
                    batch.Add(item);
                }
            }

            carried = later;
            later = [];
            if (batch.Count == 0)
            {
                continue;
            }

            try
            {
                var (again, lost) = await RunGroupAsync(batch).ConfigureAwait(false);
                carried = [.. again, .. carried];
                later = lost;
            }
            catch (Exception ex)
            {
                // Not expected (the group's own failures are answered inside), but a writer that stopped
                // here would leave every later write waiting for ever.
                Log.GroupAbandoned(_logger, ex, batch.Count);
                _cache.Clear();
                WorkItem.FailAll(batch, new CommitFailedException(ex));
            }
        }
    }

    /// <summary>
    /// Runs one group; returns the units to run again in the next one and those that lost a race (to
    /// run in the one after), none of them acknowledged.
    /// </summary>
    private async Task<(List<WorkItem> Again, List<WorkItem> Lost)> RunGroupAsync(List<WorkItem> batch)
    {
        var started = Stopwatch.GetTimestamp();
        NpgsqlConnection connection;
        NpgsqlTransaction tx;
        try
        {
            connection = await OpenAsync(CancellationToken.None).ConfigureAwait(false);
            try
            {
                tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.ReadCommitted, CancellationToken.None).ConfigureAwait(false);
            }
            catch
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        catch (Exception ex)
        {
            WorkItem.FailAll(batch, ex as StorageUnavailableException ?? new StorageUnavailableException(ex));

            return ([], []);
        }

        await using (connection)
        await using (tx)
        {
            // What the cache held rested on locks of an earlier group: read again under this one's.
            _cache.Clear();
            var group = new PostgresWriteGroup(connection, tx);
            var session = new StoreSession(new DbScope(connection, tx, CancellationToken.None, PostgresDialect.Instance, _cache, Group: group), _instruments);
            var succeeded = new List<WorkItem>(batch.Count);
            var deferred = new List<WorkItem>();
            var lost = new List<WorkItem>();
            foreach (var item in batch)
            {
                _instruments?.UnitWaited(Stopwatch.GetElapsedTime(item.Enqueued, started));
            }

            for (var i = 0; i < batch.Count; i++)
            {
                var item = batch[i];
                _cache.BeginUnit();
                group.StartUnit();
                session.TakeCommitted();
                using var unitSpan = StorageInstruments.Activities.StartActivity("procurement.unit_of_work", ActivityKind.Internal, item.Trace);
                try
                {
                    await item.RunAsync(session).ConfigureAwait(false);
                    // The writes it held back are its own: a failure here is the unit's.
                    await group.FlushAsync(CancellationToken.None).ConfigureAwait(false);
                    item.Committed = session.TakeCommitted();
                    succeeded.Add(item);
                    continue;
                }
                catch (Exception ex)
                {
                    _cache.UnitFailed();
                    if (ex is DeferredUnitException && ++item.Deferrals < MaxDeferrals)
                    {
                        deferred.Add(item);
                    }
                    else if (IsRace(ex) && ++item.Attempts < MaxAttempts)
                    {
                        Log.Retrying(_logger, ex, item.Attempts);
                        lost.Add(item);
                    }
                    else
                    {
                        item.Fail(Classify(ex));
                    }

                    // A database error aborts the whole transaction; a unit that wrote cannot be undone alone.
                    if (ex is NpgsqlException || group.UnitWrote)
                    {
                        await RollBackAsync(tx).ConfigureAwait(false);
                        _cache.Clear();
                        if (succeeded.Count + batch.Count - i - 1 > 0)
                        {
                            Log.GroupRunAgain(_logger, ex, i + 1, ex is NpgsqlException ? "a database error aborted the group's transaction" : "it had changed rows, so the group was rolled back",
                                succeeded.Count + batch.Count - i - 1);
                        }

                        return ([.. deferred, .. succeeded, .. batch[(i + 1)..]], lost);
                    }
                }
            }

            if (succeeded.Count == 0)
            {
                await RollBackAsync(tx).ConfigureAwait(false);
                return (deferred, lost);
            }

            var ran = Stopwatch.GetTimestamp();
            var commitStart = StorageInstruments.Activities.HasListeners() ? TimeProvider.System.GetUtcNow() : default;
            try
            {
                // Watchers on every replica hear of the commit (delivered only if it commits).
                await using var notify = new NpgsqlCommand($"NOTIFY {Channel}", connection, tx);
                await notify.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Nothing was committed: the group is answered as unable to write, and may be retried.
                _cache.Clear();
                Exception failed = ex is NpgsqlException { IsTransient: true } ? new StorageUnavailableException(ex) : new CommitFailedException(ex);
                WorkItem.FailAll(succeeded, failed);

                return (deferred, lost);
            }

            try
            {
                await tx.CommitAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Refused (a deferred check) or cut off (the connection: then it may have committed).
                // Either way the callers are not acknowledged, and a retry with the request id is safe.
                Log.CommitFailed(_logger, ex, succeeded.Count);
                _cache.Clear();
                WorkItem.FailAll(succeeded, new CommitFailedException(ex));

                return (deferred, lost);
            }

            var commit = Stopwatch.GetElapsedTime(ran);
            _instruments?.GroupCommitted(succeeded.Count, commit);
            if (StorageInstruments.Activities.HasListeners())
            {
                var commitEnd = TimeProvider.System.GetUtcNow();
                foreach (var item in succeeded)
                {
                    using var span = StorageInstruments.Activities.StartActivity("procurement.commit", ActivityKind.Internal, item.Trace, startTime: commitStart);
                    span?.SetTag("procurement.group.units", succeeded.Count);
                    span?.SetEndTime(commitEnd.UtcDateTime);
                }
            }

            Signal();
            WorkItem.Answer(succeeded);
            return (deferred, lost);
        }
    }

    private static async Task RollBackAsync(NpgsqlTransaction tx)
    {
        try
        {
            await tx.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // A broken connection rolls back by itself; the next group opens another.
        }
    }

    /// <summary>
    /// A database that could not take the unit (unreachable, shutting down), or a race lost on every
    /// attempt: nothing was written and a retry is safe. A unique violation on every attempt is not
    /// treated so: ten in a row are no longer a race but a unit that cannot succeed.
    /// </summary>
    private static Exception Classify(Exception ex) => ex switch
    {
        NpgsqlException { IsTransient: true } or ConcurrentWriteException or DeferredUnitException => new StorageUnavailableException(ex),
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected } => new StorageUnavailableException(ex),
        NpgsqlException and not PostgresException => new StorageUnavailableException(ex),
        _ => ex,
    };

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

    /// <summary>Finishes every queued unit, then stops listening and closes the connections.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
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

        [LoggerMessage(EventId = 1103, Level = LogLevel.Error, Message = "Commit of {Count} units failed; none of them is acknowledged")]
        public static partial void CommitFailed(ILogger logger, Exception exception, int count);

        // The same event as SQLite's writer logs: operators see one message for one thing.
        [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Unit {Position} of a group failed and {Why}; its {Count} other units run again in a new transaction")]
        public static partial void GroupRunAgain(ILogger logger, Exception exception, int position, string why, int count);

        [LoggerMessage(EventId = 1105, Level = LogLevel.Critical, Message = "The writer abandoned a group of {Count} units after an unexpected error; none still waiting is acknowledged")]
        public static partial void GroupAbandoned(ILogger logger, Exception exception, int count);
    }
}
