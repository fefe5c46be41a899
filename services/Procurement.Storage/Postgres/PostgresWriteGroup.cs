using Npgsql;

namespace Procurement.Storage.Postgres;

/// <summary>
/// One replica's group transaction on PostgreSQL. Pools are locked in ascending id order across the
/// whole group (a unit that needs one sorting before a held pool waits for the next group), so two
/// replicas can never deadlock on pools. Event positions are <c>(transaction id &lt;&lt; 20) | ordinal</c>;
/// readers read below the oldest running transaction (<see cref="PostgresDialect.EventHorizon"/>), and
/// a pool last locked by a newer transaction than this one is not written here, so each pool's events
/// are in the order their groups committed.
/// </summary>
/// <remarks>
/// One-row writes of a unit (the allocation, its event, the idempotency and audit records) are held and
/// sent together in one round trip (an Npgsql batch) before the unit's next statement or at its end.
/// </remarks>
public sealed class PostgresWriteGroup(NpgsqlConnection connection, NpgsqlTransaction transaction) : WriteGroup
{
    /// <summary>Bits of a position taken by the ordinal of an event within its transaction.</summary>
    public const int OrdinalBits = 20;

    // Locks the pools in id order and marks them as last locked by this transaction (unless a newer
    // one already did), all in one round trip; the transaction's id is taken here, at its first lock.
    private const string LockSql = """
        WITH me AS (SELECT pg_current_xact_id()::text::bigint AS xid),
        locked AS (SELECT id, event_xid FROM pools WHERE id = ANY(@ids) ORDER BY id FOR UPDATE),
        marked AS (UPDATE pools p SET event_xid = me.xid FROM locked l, me WHERE p.id = l.id AND l.event_xid <= me.xid RETURNING p.id)
        SELECT l.id, l.event_xid, me.xid FROM locked l, me
        """;

    private readonly NpgsqlConnection _connection = connection;
    private readonly NpgsqlTransaction _transaction = transaction;
    private readonly List<(NpgsqlBatchCommand Command, Func<Exception> Mismatch)> _pending = [];
    private readonly SortedSet<string> _held = new(StringComparer.Ordinal);
    private readonly HashSet<string> _newer = new(StringComparer.Ordinal);
    private long _xid;
    private int _ordinal;

    /// <summary>Pools this group holds, in lock order.</summary>
    public IReadOnlyCollection<string> Held => _held;

    public override bool Defer(System.Data.Common.DbCommand command, Func<Exception> mismatch)
    {
        var held = new NpgsqlBatchCommand(command.CommandText);
        foreach (NpgsqlParameter p in command.Parameters)
        {
            held.Parameters.Add(p.Clone());
        }

        _pending.Add((held, mismatch));
        return true;
    }

    public override async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_pending.Count == 0)
        {
            return;
        }

        var pending = _pending.ToList();
        _pending.Clear();
        await using var batch = new NpgsqlBatch(_connection, _transaction);
        foreach (var (command, _) in pending)
        {
            batch.BatchCommands.Add(command);
        }

        await batch.ExecuteNonQueryAsync(cancellationToken);
        Check(pending);
    }

    public override void Flush()
    {
        if (_pending.Count == 0)
        {
            return;
        }

        var pending = _pending.ToList();
        _pending.Clear();
        using var batch = new NpgsqlBatch(_connection, _transaction);
        foreach (var (command, _) in pending)
        {
            batch.BatchCommands.Add(command);
        }

        batch.ExecuteNonQuery();
        Check(pending);
    }

    private static void Check(List<(NpgsqlBatchCommand Command, Func<Exception> Mismatch)> sent)
    {
        foreach (var (command, mismatch) in sent)
        {
            if (command.RecordsAffected != 1)
            {
                throw mismatch();
            }
        }
    }

    /// <summary>A new unit starts: what a failed one held back is dropped with it.</summary>
    public void StartUnit()
    {
        _pending.Clear();
        BeginUnit();
    }

    public override async Task<bool> LockPoolsAsync(DbScope db, IReadOnlyCollection<string> poolIds)
    {
        await FlushAsync(db.CancellationToken);
        List<string>? wanted = null;
        foreach (var id in poolIds)
        {
            if (_newer.Contains(id))
            {
                throw new DeferredUnitException($"Pool '{id}' was last written by a newer transaction than this group's.");
            }

            if (!_held.Contains(id))
            {
                (wanted ??= []).Add(id);
            }
        }

        if (wanted is null)
        {
            return false;
        }

        wanted.Sort(StringComparer.Ordinal);
        if (_held.Count > 0 && StringComparer.Ordinal.Compare(wanted[0], _held.Max) < 0)
        {
            throw new DeferredUnitException($"Pool '{wanted[0]}' sorts before a pool this group already holds.");
        }

        await using var command = new NpgsqlCommand(LockSql, (NpgsqlConnection)db.Connection, (NpgsqlTransaction?)db.Transaction);
        command.Parameters.AddWithValue("ids", wanted.Distinct(StringComparer.Ordinal).ToArray());
        await using (var reader = await command.ExecuteReaderAsync(db.CancellationToken))
        {
            while (await reader.ReadAsync(db.CancellationToken))
            {
                var (id, lastXid, xid) = (reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2));
                _xid = xid;
                if (lastXid > xid)
                {
                    _newer.Add(id);
                }

                _held.Add(id);
            }
        }

        foreach (var id in wanted)
        {
            if (_newer.Contains(id))
            {
                throw new DeferredUnitException($"Pool '{id}' was last written by a newer transaction than this group's.");
            }
        }

        return true;
    }

    public override long? NextEventPosition(string poolId)
    {
        if (!_held.Contains(poolId) || _newer.Contains(poolId))
        {
            throw new InvalidOperationException($"An event of pool '{poolId}' is written only by a unit that holds the pool.");
        }

        if (++_ordinal >= 1 << OrdinalBits)
        {
            throw new InvalidOperationException("A group writes fewer than 2^20 events.");
        }

        return (_xid << OrdinalBits) | (long)_ordinal;
    }
}
