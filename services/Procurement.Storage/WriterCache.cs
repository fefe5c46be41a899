namespace Procurement.Storage;

/// <summary>
/// Rows a writer has read or written, kept so that a decision does not read back
/// what the writer already knows: pools, contracts, each pool's ACTIVE and PENDING allocations, and
/// the next allocation sequence number.
/// It mirrors exactly what the writer's own connection would read, committed or not yet committed
/// in the current group.
/// </summary>
/// <remarks>
/// Sound while no other writer can change what it holds: on SQLite, one writer makes every change to
/// these tables (other processes write only API keys); on PostgreSQL, a replica's writer clears it at
/// each group and at each new pool lock, so it holds rows read under the group's locks. Each unit of work starts with <see cref="BeginUnit"/>; an entry the unit changed,
/// or loaded after changing it, is dropped if the unit fails, and everything is dropped if the group's
/// transaction is rolled back (its commit failed, or a unit failed after writing). Used by one unit at
/// a time, so it needs no locks.
/// </remarks>
public sealed class WriterCache
{
    private readonly List<ICacheTable> _tables = [];
    private readonly Dictionary<Type, ICacheTable> _views = [];

    public WriterCache()
    {
        Pools = Add(new CacheTable<Domain.Pools.Pool>());
        Contracts = Add(new CacheTable<Repositories.ContractSnapshot>());
        OpenAllocations = Add(new CacheTable<List<Domain.Allocations.Allocation>>());
        NextSeqs = Add(new CacheTable<System.Runtime.CompilerServices.StrongBox<long>>());
    }

    /// <summary>Pools by id.</summary>
    public CacheTable<Domain.Pools.Pool> Pools { get; }

    /// <summary>Contracts by id, as row data and versions: a fresh aggregate for each change, one shared read-only one for admission.</summary>
    public CacheTable<Repositories.ContractSnapshot> Contracts { get; }

    /// <summary>A pool's allocations in one open state, ordered by seq, keyed by <see cref="OpenKey"/>.</summary>
    public CacheTable<List<Domain.Allocations.Allocation>> OpenAllocations { get; }

    /// <summary>The next sequence number of a table, by table name: the writer counts on from what it read or wrote.</summary>
    public CacheTable<System.Runtime.CompilerServices.StrongBox<long>> NextSeqs { get; }

    /// <summary>
    /// What a caller derives about pools and keeps between units (admission's ledger), by pool id: any
    /// write to the pool's open allocations drops it (<see cref="InvalidateViews"/>), and the caller
    /// puts back a view it brought up to date with its own writes.
    /// </summary>
    public CacheTable<TView> Views<TView>() where TView : class
    {
        if (!_views.TryGetValue(typeof(TView), out var table))
        {
            table = Add(new CacheTable<TView>());
            _views[typeof(TView)] = table;
        }

        return (CacheTable<TView>)table;
    }

    /// <summary>A write to the pool's open allocations: every view of it is built again.</summary>
    public void InvalidateViews(string poolId)
    {
        foreach (var table in _views.Values)
        {
            table.Invalidate(poolId);
        }
    }

    public static string OpenKey(string poolId, Domain.Allocations.AllocationState state) => $"{poolId}\n{state}";

    public void BeginUnit()
    {
        foreach (var t in _tables)
        {
            t.BeginUnit();
        }
    }

    /// <summary>The unit failed: forget what it changed.</summary>
    public void UnitFailed()
    {
        foreach (var t in _tables)
        {
            t.UnitFailed();
        }
    }

    /// <summary>The group's transaction was rolled back (or never began): forget everything.</summary>
    public void Clear()
    {
        foreach (var t in _tables)
        {
            t.Clear();
        }
    }

    private T Add<T>(T table) where T : ICacheTable
    {
        _tables.Add(table);
        return table;
    }

    private interface ICacheTable
    {
        void Invalidate(string key);

        void BeginUnit();

        void UnitFailed();

        void Clear();
    }

    public sealed class CacheTable<TValue> : ICacheTable where TValue : class
    {
        private readonly Dictionary<string, TValue> _entries = new(StringComparer.Ordinal);
        private readonly HashSet<string> _changedInUnit = new(StringComparer.Ordinal);

        public bool TryGet(string key, out TValue value) => _entries.TryGetValue(key, out value!);

        /// <summary>Whether the unit running now changed <paramref name="key"/>.</summary>
        public bool ChangedInUnit(string key) => _changedInUnit.Contains(key);

        /// <summary>Whether the unit running now changed any entry.</summary>
        public bool AnyChangedInUnit => _changedInUnit.Count > 0;

        /// <summary>Counts the writes to this table (<see cref="Invalidate"/>, <see cref="MarkChanged"/>): state derived from its entries is current while the count is.</summary>
        public long Changes { get; private set; }

        /// <summary>Remembers what the writer's connection returned for <paramref name="key"/>.</summary>
        public void Put(string key, TValue value) => _entries[key] = value;

        /// <summary>The unit is about to change <paramref name="key"/>: it is read again next time.</summary>
        public void Invalidate(string key)
        {
            _entries.Remove(key);
            _changedInUnit.Add(key);
            Changes++;
        }

        /// <summary>Forgets an entry that no longer holds (nothing was written: the unit is not marked as changing it).</summary>
        public void Forget(string key) => _entries.Remove(key);

        /// <summary>The unit changes the entry in place (it stays cached while the unit succeeds).</summary>
        public void MarkChanged(string key)
        {
            _changedInUnit.Add(key);
            Changes++;
        }

        void ICacheTable.BeginUnit() => _changedInUnit.Clear();

        void ICacheTable.UnitFailed()
        {
            foreach (var key in _changedInUnit)
            {
                _entries.Remove(key);
            }

            _changedInUnit.Clear();
        }

        void ICacheTable.Clear()
        {
            _entries.Clear();
            _changedInUnit.Clear();
        }
    }
}
