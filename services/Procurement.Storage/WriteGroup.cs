namespace Procurement.Storage;

/// <summary>
/// The transaction a group of units runs in, as the units see it: which pools it holds, and where
/// the events it writes go in the log. A provider's writer makes one per group and tells it when
/// each unit starts.
/// </summary>
public abstract class WriteGroup
{
    /// <summary>Whether the running unit has sent a statement that changes rows (its failure then needs the group rolled back).</summary>
    public bool UnitWrote { get; private set; }

    public void BeginUnit() => UnitWrote = false;

    /// <summary>False where the writer learns what a unit changed from the database itself.</summary>
    protected virtual bool TracksWrites => true;

    /// <summary>Told of every statement the unit sends.</summary>
    internal void Executing(string sql)
    {
        if (TracksWrites && !UnitWrote && SqlText.Writes(sql))
        {
            UnitWrote = true;
        }
    }

    /// <summary>
    /// Takes a one-row write to send later with others (true), or declines (false: run it now). A
    /// taken write is sent before the unit's next statement and at its end (<see cref="FlushAsync"/>),
    /// and <paramref name="mismatch"/> is thrown there if it did not change exactly one row.
    /// </summary>
    public virtual bool Defer(System.Data.Common.DbCommand command, Func<Exception> mismatch) => false;

    /// <summary>Sends the writes held so far; a failure is the running unit's.</summary>
    public virtual Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Sends the writes held so far, blocking (before a statement that cannot wait for them asynchronously).</summary>
    public virtual void Flush()
    {
    }

    /// <summary>
    /// Holds <paramref name="poolIds"/> until the group commits: no other writer decides about them
    /// meanwhile. Returns true when rows the unit read before may have changed since (then it reads
    /// them again), false when nothing can have (a single writer, or pools already held).
    /// </summary>
    public abstract Task<bool> LockPoolsAsync(DbScope db, IReadOnlyCollection<string> poolIds);

    /// <summary>The log position of a new event of <paramref name="poolId"/>, or null where the log numbers events itself.</summary>
    public abstract long? NextEventPosition(string poolId);
}

/// <summary>SQLite's single writer: every write is serial already, and the log numbers events by rowid in commit order.</summary>
public sealed class SerialWriteGroup : WriteGroup
{
    public static SerialWriteGroup Instance { get; } = new();

    private static readonly Task<bool> Held = Task.FromResult(false);

    protected override bool TracksWrites => false;

    public override Task<bool> LockPoolsAsync(DbScope db, IReadOnlyCollection<string> poolIds) => Held;

    public override long? NextEventPosition(string poolId) => null;
}

/// <summary>
/// A unit that cannot run in this group without breaking its order (a pool it needs sorts before one
/// the group already holds, or the pool was last written by a newer transaction): it runs again in the
/// next group, which starts with it.
/// </summary>
public sealed class DeferredUnitException(string reason) : Exception(reason);

internal static class SqlText
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Known = new(StringComparer.Ordinal);

    private static readonly System.Text.RegularExpressions.Regex Write = new(@"(?<!\bFOR\s+)\b(INSERT|UPDATE|DELETE)\b",
        System.Text.RegularExpressions.RegexOptions.Compiled | System.Text.RegularExpressions.RegexOptions.IgnoreCase);

    /// <summary>Whether a statement may change rows (a row lock, <c>FOR UPDATE</c>, does not count).</summary>
    public static bool Writes(string sql) => Known.GetOrAdd(sql, s => Write.IsMatch(s));
}
