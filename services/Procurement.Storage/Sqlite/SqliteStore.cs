using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Procurement.Storage.Sqlite;

/// <summary>
/// The SQLite provider. Reads run on kept-open, read-only connections, each in a deferred snapshot
/// (a single-statement read needs none), so a read never waits for the writer. Writes go to one
/// writer task that owns the only write connection: it takes the units waiting in its queue, runs
/// them back to back in one <c>BEGIN IMMEDIATE</c> transaction, commits once (one fsync for the group)
/// and only then answers every caller in the group. That is group commit: durability per request, one
/// disk flush per batch. A failing unit leaves no trace: one that failed before changing a row (a
/// refusal) has nothing to undo; one that failed after, or that SQLite rolled the whole group back
/// for (a full disk), has the others run again in a new transaction, since none of them was acknowledged.
/// </summary>
public sealed partial class SqliteStore : IProcurementStore, IAsyncDisposable
{
    /// <summary>Most units committed together; bounds the latency a long batch adds.</summary>
    public const int MaxBatchSize = 256;

    /// <summary>Read connections of each kind kept open between reads (each with its settings applied once).</summary>
    public const int MaxIdleReaders = 32;

    private readonly SqliteDatabase _database;
    private readonly ILogger<SqliteStore> _logger;
    private readonly Channel<WorkItem> _queue = Channel.CreateUnbounded<WorkItem>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private long _commitsStarted;
    private long _commitsFinished;
    // Stacks: lock-free, and the most recently used (warmest) reader goes out first. Snapshot reads may
    // scan a month and run on readers that map the file; single statements (the per-call API key
    // lookup, right after the writer's commits) read a few pages and copy them.
    private readonly ConcurrentStack<PreparedCommands> _readers = new();
    private readonly ConcurrentStack<PreparedCommands> _statementReaders = new();
    private readonly WriterCache _cache = new();
    private readonly CommittedContractVersions _committed = new();
    private volatile bool _disposed;
    private readonly Task _checkpointer;
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _nextCommit = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private readonly StorageInstruments? _instruments;

    public SqliteStore(SqliteDatabase database, ILogger<SqliteStore> logger, TimeProvider? time = null, StorageInstruments? instruments = null)
    {
        _database = database;
        _logger = logger;
        _instruments = instruments;
        Stats = new WriterStats(time ?? TimeProvider.System);
        _writer = Task.Factory.StartNew(WriteLoopAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
        _checkpointer = Task.Factory.StartNew(CheckpointLoopAsync, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>How often the WAL is copied into the database file, off the writer, when something was committed.</summary>
    public static readonly TimeSpan CheckpointInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// WAL pages past which the writer checkpoints by itself, inside a commit: only if the background
    /// checkpointer has fallen that far behind (a reader holding an old snapshot), as a bound on the WAL's size.
    /// </summary>
    public const int WriterCheckpointBoundPages = 65_536;

    public Task NextCommit => Volatile.Read(ref _nextCommit).Task;

    /// <summary>What the writer has done since the store opened.</summary>
    public WriterStats Stats { get; }

    public long? StableCommitCount
    {
        get
        {
            // Finished first, then started: equal means no commit was in flight in between.
            var finished = Volatile.Read(ref _commitsFinished);
            return Volatile.Read(ref _commitsStarted) == finished ? finished : null;
        }
    }

    public Task<T> ReadAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken) =>
        ReadOnReaderAsync(read, snapshot: true, cancellationToken);

    public Task<T> ReadStatementAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken) =>
        ReadOnReaderAsync(read, snapshot: false, cancellationToken);

    private async Task<T> ReadOnReaderAsync<T>(Func<IStoreSession, Task<T>> read, bool snapshot, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var readers = snapshot ? _readers : _statementReaders;
        PreparedCommands? reader = null;
        try
        {
            reader = readers.TryPop(out var idle) ? idle : new PreparedCommands(_database.OpenReader(mapped: snapshot));
            T result;
            var scope = new DbScope((SqliteConnection)reader.Connection, null, cancellationToken, SqliteDialect.Instance, Commands: reader, Committed: snapshot ? _committed : null);
            if (snapshot)
            {
                // A deferred BEGIN, so a read never takes the write lock (an IMMEDIATE one would queue
                // behind the writer); its first query fixes one snapshot of the WAL for every query of
                // the read. Run as prepared statements: this is on every read's path.
                await RunAsync(scope, "BEGIN DEFERRED");
                result = await read(new StoreSession(scope));
                await RunAsync(scope, "COMMIT");
            }
            else
            {
                result = await read(new StoreSession(scope));
            }

            ReturnReader(readers, reader);
            return result;
        }
        catch (Exception ex)
        {
            // A read that failed part-way may leave its connection in any state; it is not reused.
            if (reader is not null)
            {
                Close(reader);
            }

            if (IsUnavailable(ex))
            {
                throw new StorageUnavailableException(ex);
            }

            throw;
        }
    }

    private void ReturnReader(ConcurrentStack<PreparedCommands> readers, PreparedCommands reader)
    {
        if (_disposed || readers.Count >= MaxIdleReaders)
        {
            Close(reader);
        }
        else
        {
            readers.Push(reader);
        }
    }

    private static void Close(PreparedCommands reader)
    {
        reader.Dispose();
        reader.Connection.Dispose();
    }

    public Task<T> WriteAsync<T>(Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var item = new WorkItem<T>(unitOfWork, cancellationToken) { Enqueued = Stats.Timestamp(), Trace = Activity.Current?.Context ?? default };
        if (!_queue.Writer.TryWrite(item))
        {
            throw new ObjectDisposedException(nameof(SqliteStore), "The store is shutting down.");
        }

        return item.Task;
    }

    /// <summary>Finishes every queued unit, then closes the write connection.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
        await _stopping.CancelAsync();
        await _checkpointer.ConfigureAwait(false);
        _stopping.Dispose();
        _disposed = true;
        foreach (var readers in (ConcurrentStack<PreparedCommands>[])[_readers, _statementReaders])
        {
            while (readers.TryPop(out var reader))
            {
                Close(reader);
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        await using var connection = _database.Open();
        using (var settings = connection.CreateCommand())
        {
            // An 8 MiB page cache holds the pages every group touches; a larger one makes a commit after a
            // B-tree split walk the whole cache. Statement journals stay in memory. The WAL is copied into
            // the database file by the background checkpointer, not inside a commit (which stalled the
            // writer's group behind the copy and its fsync); the writer checkpoints only past a bound.
            settings.CommandText = $"PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WriterCheckpointBoundPages}; " +
                "PRAGMA journal_size_limit = 67108864;";
            settings.ExecuteNonQuery();
        }

        using var commands = new PreparedCommands(connection);
        var batch = new List<WorkItem>(MaxBatchSize);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
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

            if (batch.Count > 0)
            {
                try
                {
                    await RunBatchAsync(connection, commands, batch).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    // Not expected (the group's own failures are answered inside), but a writer that
                    // stopped here would leave every later write waiting for ever: answer whatever the
                    // group left unanswered, end its transaction if one is open, forget what was kept.
                    Log.GroupAbandoned(_logger, ex, batch.Count);
                    _cache.Clear();
                    if (SQLitePCL.raw.sqlite3_get_autocommit(connection.Handle) == 0)
                    {
                        SQLitePCL.raw.sqlite3_exec(connection.Handle, "ROLLBACK");
                    }

                    WorkItem.FailAll(batch, new CommitFailedException(ex));
                }
            }
        }
    }

    /// <summary>
    /// Copies committed WAL frames into the database file on a connection of its own, every
    /// <see cref="CheckpointInterval"/> when something was committed. A PASSIVE checkpoint takes no
    /// lock the writer or the readers wait for; frames a reader still needs are copied next time. Once
    /// every frame is copied, the writer's next transaction starts the WAL over, so it stays small.
    /// </summary>
    private async Task CheckpointLoopAsync()
    {
        long copied = -1;
        SqliteConnection? connection = null;
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                await Task.Delay(CheckpointInterval, _stopping.Token).ConfigureAwait(false);
                var committed = Volatile.Read(ref _commitsFinished);
                if (committed == copied)
                {
                    continue;
                }

                try
                {
                    connection ??= _database.Open();
                    using var checkpoint = connection.CreateCommand();
                    checkpoint.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
                    var started = Stats.Timestamp();
                    checkpoint.ExecuteNonQuery();
                    Stats.Checkpoint(Stats.Timestamp() - started);
                    copied = committed;
                }
                catch (SqliteException ex)
                {
                    // The file is gone or unwritable: the writer reports that to callers; try again later.
                    Log.CheckpointFailed(_logger, ex);
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            connection?.Dispose();
        }
    }

    private async Task RunBatchAsync(SqliteConnection connection, PreparedCommands commands, List<WorkItem> batch)
    {
        var started = Stats.Timestamp();
        SqliteTransaction tx;
        try
        {
            tx = connection.BeginTransaction(deferred: false);
        }
        catch (Exception ex)
        {
            _cache.Clear();
            Log.BeginFailed(_logger, ex, batch.Count);
            WorkItem.FailAll(batch, new CommitFailedException(ex));

            return;
        }

        var succeeded = new List<WorkItem>(batch.Count);
        List<WorkItem>? again = null; // units this transaction could not keep, to run in a new one
        using (tx)
        {
            var handle = connection.Handle;
            var changesBefore = SQLitePCL.raw.sqlite3_total_changes(handle);
            var scope = new DbScope(connection, tx, CancellationToken.None, SqliteDialect.Instance, _cache, commands, Group: SerialWriteGroup.Instance);
            var session = new StoreSession(scope, _instruments);
            for (var i = 0; i < batch.Count; i++)
            {
                var item = batch[i];
                var changesBeforeUnit = SQLitePCL.raw.sqlite3_total_changes(handle);
                _cache.BeginUnit();
                session.TakeCommitted();
                using var unitSpan = StorageInstruments.Activities.StartActivity("procurement.unit_of_work", ActivityKind.Internal, item.Trace);
                try
                {
                    await item.RunAsync(session).ConfigureAwait(false);
                    item.Committed = session.TakeCommitted();
                    succeeded.Add(item);
                }
                catch (Exception ex)
                {
                    _cache.UnitFailed();
                    item.Fail(Classify(ex));
                    var rolledBack = SQLitePCL.raw.sqlite3_get_autocommit(handle) != 0;
                    if (rolledBack || SQLitePCL.raw.sqlite3_total_changes(handle) != changesBeforeUnit)
                    {
                        // SQLite rolled the group back itself (a full disk, an I/O error), or the unit changed
                        // rows before failing and only a savepoint per unit could undo them alone (too dear
                        // on the hot path). The other units, none acknowledged, run again in a new transaction.
                        if (!rolledBack)
                        {
                            tx.Rollback();
                        }

                        _cache.Clear();
                        again = [.. succeeded, .. batch[(i + 1)..]];
                        succeeded.Clear();
                        if (again.Count > 0)
                        {
                            Log.GroupRunAgain(_logger, ex, i + 1, rolledBack ? "SQLite rolled the group back" : "it had changed rows, so the group was rolled back", again.Count);
                        }

                        break;
                    }

                    // A refusal, or any failure before the unit's first change: there is nothing to undo
                    // (a statement that fails is undone by SQLite itself).
                }
            }

            var ran = Stats.Timestamp();
            var commitStart = StorageInstruments.Activities.HasListeners() ? TimeProvider.System.GetUtcNow() : default;
            var committed = again is null && TryCommit(connection, tx, succeeded, changesBefore);
            var finished = again is null ? Stats.Timestamp() : ran;
            if (committed && StorageInstruments.Activities.HasListeners())
            {
                // One commit serves the whole group: each unit's trace gets a span of it.
                var commitEnd = TimeProvider.System.GetUtcNow();
                foreach (var item in succeeded)
                {
                    using var span = StorageInstruments.Activities.StartActivity("procurement.commit", ActivityKind.Internal, item.Trace, startTime: commitStart);
                    span?.SetTag("procurement.group.units", succeeded.Count);
                    span?.SetEndTime(commitEnd.UtcDateTime);
                }
            }

            Count(batch, started, ran, finished);
            if (committed && succeeded.Count > 0)
            {
                _instruments?.GroupCommitted(succeeded.Count, Stats.Elapsed(ran, finished));
            }

            if (again is null && !committed)
            {
                return;
            }
        }

        if (again is not null)
        {
            if (again.Count > 0)
            {
                await RunBatchAsync(connection, commands, again).ConfigureAwait(false);
            }

            return;
        }

        if (succeeded.Count > 0)
        {
            Interlocked.Exchange(ref _nextCommit, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }

        WorkItem.Answer(succeeded);
    }

    private void Count(List<WorkItem> batch, long started, long ran, long finished)
    {
        long queued = 0;
        foreach (var item in batch)
        {
            queued += started - item.Enqueued;
            _instruments?.UnitWaited(Stats.Elapsed(item.Enqueued, started));
        }

        Stats.Group(batch.Count, queued, ran - started, finished - ran);
    }

    /// <summary>Commits the group (or rolls back one in which no unit succeeded); false when the commit failed.</summary>
    private bool TryCommit(SqliteConnection connection, SqliteTransaction tx, List<WorkItem> succeeded, int changesBefore)
    {
        try
        {
            if (succeeded.Count == 0)
            {
                tx.Rollback();
                return true;
            }

            // A group that changed no row (an idle sweep) leaves every earlier read exact.
            var changed = SQLitePCL.raw.sqlite3_total_changes(connection.Handle) != changesBefore;
            if (changed)
            {
                Interlocked.Increment(ref _commitsStarted);
            }

            try
            {
                tx.Commit();
            }
            finally
            {
                if (changed)
                {
                    Interlocked.Increment(ref _commitsFinished);
                }
            }

            return true;
        }
        catch (Exception ex)
        {
            // The group rolls back as a whole (the transaction is disposed by the caller): every unit
            // that had succeeded is refused.
            Log.CommitFailed(_logger, ex, succeeded.Count);
            LoseGroup(succeeded, ex);
            return false;
        }
    }

    /// <summary>
    /// The group's writes are gone: nothing the writer keeps in memory may rest on them, and the units
    /// that had succeeded are not acknowledged (a retry with their request ids is safe).
    /// </summary>
    private void LoseGroup(List<WorkItem> succeeded, Exception cause)
    {
        _cache.Clear();
        WorkItem.FailAll(succeeded, new CommitFailedException(cause));

        succeeded.Clear();
    }

    /// <summary>
    /// A unit or read that failed because the file could not be opened, read or written (gone, full, an
    /// I/O error) is retryable and wrote nothing: clients are told UNAVAILABLE, not INTERNAL.
    /// </summary>
    private static bool IsUnavailable(Exception ex) =>
        ex is SqliteException { SqliteErrorCode: SQLitePCL.raw.SQLITE_FULL or SQLitePCL.raw.SQLITE_IOERR or SQLitePCL.raw.SQLITE_CANTOPEN };

    private static Exception Classify(Exception ex) => IsUnavailable(ex) ? new StorageUnavailableException(ex) : ex;

    private static async Task RunAsync(DbScope scope, string sql)
    {
        using var statement = scope.Statement(sql);
        await statement.ExecuteAsync().ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Error, Message = "Could not begin a write transaction for {Count} units")]
        public static partial void BeginFailed(ILogger logger, Exception exception, int count);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Commit of {Count} units failed; none of them is acknowledged")]
        public static partial void CommitFailed(ILogger logger, Exception exception, int count);

        [LoggerMessage(EventId = 1005, Level = LogLevel.Information, Message = "Unit {Position} of a group failed and {Why}; its {Count} other units run again in a new transaction")]
        public static partial void GroupRunAgain(ILogger logger, Exception exception, int position, string why, int count);

        [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "The background WAL checkpoint failed; it is tried again")]
        public static partial void CheckpointFailed(ILogger logger, Exception exception);

        [LoggerMessage(EventId = 1004, Level = LogLevel.Critical, Message = "The writer abandoned a group of {Count} units after an unexpected error; none still waiting is acknowledged")]
        public static partial void GroupAbandoned(ILogger logger, Exception exception, int count);
    }
}
