using System.Data.Common;
using Procurement.Storage.Repositories;

namespace Procurement.Storage;

/// <summary>
/// The storage seam. Every write is one unit of work: the service hands it a function that reads
/// state, decides with pure domain code and writes the change with its idempotency and audit records.
/// The caller is answered only after its unit is durably committed.
/// </summary>
/// <remarks>
/// Both providers run units the same way: a writer takes the units that arrive together and runs them
/// back to back in one transaction, commits once, and only then answers them (group commit). A unit
/// that fails before writing leaves the others alone; one that fails after writing has the group
/// rolled back and the others run again. SQLite has one writer for the file; on PostgreSQL each
/// replica has its own, holding the pools its units touch for one group
/// (<see cref="IStoreSession.LockPoolsAsync"/>).
/// </remarks>
public interface IProcurementStore
{
    /// <summary>Runs <paramref name="read"/> against a consistent snapshot.</summary>
    Task<T> ReadAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken);

    /// <summary>
    /// Runs a read made of a single statement, which is consistent by itself, so a provider may skip
    /// opening a snapshot for it (the per-call API key lookup).
    /// </summary>
    Task<T> ReadStatementAsync<T>(Func<IStoreSession, Task<T>> read, CancellationToken cancellationToken) => ReadAsync(read, cancellationToken);

    /// <summary>
    /// Runs <paramref name="unitOfWork"/> in a write transaction. If it throws, none of its writes
    /// remain and the exception reaches the caller (as <see cref="StorageUnavailableException"/> when
    /// the database could not take the work); otherwise its result is returned after commit.
    /// A commit the database refuses or does not confirm throws <see cref="CommitFailedException"/> instead.
    /// </summary>
    Task<T> WriteAsync<T>(Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken);

    /// <summary>
    /// Completes when the next write unit commits. Take it before reading, then await it, and no
    /// commit can slip between the read and the wait. Only commits of this process are signalled.
    /// </summary>
    Task NextCommit { get; }

    /// <summary>
    /// The number of commits that changed something this process has made, when this process makes every change to pools,
    /// contracts and allocations and no commit is in flight; otherwise null. Equal values read at two
    /// moments mean nothing changed in between, so a result computed after the first is still exact.
    /// </summary>
    long? StableCommitCount => null;
}

public static class ProcurementStoreExtensions
{
    /// <summary>
    /// Runs <paramref name="unitOfWork"/> exactly as a write would run, then rolls it back: the result
    /// says what the write would do (a dry run), and nothing changes.
    /// </summary>
    public static async Task<T> SimulateAsync<T>(this IProcurementStore store, Func<IStoreSession, Task<T>> unitOfWork, CancellationToken cancellationToken)
    {
        try
        {
            await store.WriteAsync<bool>(async s => throw new SimulationResult(await unitOfWork(s)), cancellationToken);
        }
        catch (SimulationResult result)
        {
            return (T)result.Value!;
        }

        throw new InvalidOperationException("A simulation always rolls back.");
    }

    private sealed class SimulationResult(object? value) : Exception("Rolled back on purpose.")
    {
        public object? Value { get; } = value;
    }
}

/// <summary>A connection and transaction, with the repositories bound to them.</summary>
public interface IStoreSession
{
    PoolRepository Pools { get; }

    ContractRepository Contracts { get; }

    ApiKeyRepository ApiKeys { get; }

    IdempotencyRepository Idempotency { get; }

    AuditRepository Audit { get; }

    AllocationRepository Allocations { get; }

    AllocationEventRepository AllocationEvents { get; }

    UsageRepository Usage { get; }

    IndexValueRepository IndexValues { get; }

    IncidentRepository Incidents { get; }

    CapacityBlockRepository Blocks { get; }

    BillingRepository Billing { get; }

    UsageTotalsRepository Totals { get; }

    /// <summary>
    /// Holds <paramref name="poolIds"/> for this unit: no other writer decides about them until it
    /// commits. Returns true when rows the unit read before the call may have changed since (read
    /// them again); false when they cannot have.
    /// </summary>
    Task<bool> LockPoolsAsync(IReadOnlyCollection<string> poolIds);

    /// <summary>
    /// Runs <paramref name="action"/> once this unit is durably committed, and never if it is not (a
    /// failed or rolled-back unit, a dry run): what is counted or announced then matches what happened.
    /// Actions must be quick and must not throw.
    /// </summary>
    void OnCommitted(Action action);

    /// <summary>
    /// Views of pools a writer keeps between units while they hold (<see cref="KeptPoolViews{TView}"/>);
    /// null on a read.
    /// </summary>
    KeptPoolViews<TView>? PoolViews<TView>() where TView : class;
}

/// <summary>
/// What admission keeps about a pool between units of one writer, so a decision does not rebuild it
/// from every open allocation of the pool. A kept view is dropped by any write to the pool's open
/// allocations (the owner puts back a view it updated with its own writes), by a failed unit when it
/// may rest on that unit's writes, and whenever the writer can no longer vouch for what it read (a
/// failed commit; on a shared database, the end of the group, or a new pool lock); it is stale once a
/// contract or a pool has been written since it was built (<see cref="Stamp"/>).
/// </summary>
public sealed class KeptPoolViews<TView>(WriterCache cache) where TView : class
{
    private readonly WriterCache.CacheTable<TView> _views = cache.Views<TView>();

    public TView? Find(string poolId) => _views.TryGet(poolId, out var view) ? view : null;

    /// <summary>
    /// Keeps (or puts back) a view. One that may rest on what the running unit wrote (the pool's open
    /// allocations, any contract or pool) goes if the unit fails; one built from committed rows alone
    /// stays, so a refused request does not cost the next decision a rebuild.
    /// </summary>
    public void Keep(string poolId, TView view)
    {
        // Every write to the pool's open allocations marks the pool changed in the unit.
        var restsOnThisUnit = cache.OpenAllocations.ChangedInUnit(WriterCache.OpenKey(poolId, Domain.Allocations.AllocationState.Active))
            || cache.OpenAllocations.ChangedInUnit(WriterCache.OpenKey(poolId, Domain.Allocations.AllocationState.Pending))
            || cache.Contracts.AnyChangedInUnit || cache.Pools.AnyChangedInUnit;
        _views.Put(poolId, view);
        if (restsOnThisUnit)
        {
            _views.MarkChanged(poolId);
        }
    }

    /// <summary>Forgets a view that no longer holds (stale, or past its span); nothing was written.</summary>
    public void Drop(string poolId) => _views.Forget(poolId);

    /// <summary>Changes whenever the writer writes a contract or a pool.</summary>
    public (long Contracts, long Pools) Stamp => (cache.Contracts.Changes, cache.Pools.Changes);
}

/// <summary>
/// What a repository needs: the connection, the transaction and a cancellation token; and, on the
/// single SQLite writer, the rows it already knows (<see cref="WriterCache"/>); on a read snapshot,
/// the contract versions already committed (<see cref="CommittedContractVersions"/>, which only a
/// snapshot may add to: its rows and versions are read together).
/// </summary>
public sealed record DbScope(DbConnection Connection, DbTransaction? Transaction, CancellationToken CancellationToken, SqlDialect Dialect, WriterCache? Cache = null, PreparedCommands? Commands = null,
    CommittedContractVersions? Committed = null, WriteGroup? Group = null)
{
    /// <summary>A statement with hand-bound parameters, prepared once per connection where <see cref="Commands"/> keeps them (the hot paths).</summary>
    public Statement Statement(string sql)
    {
        Group?.Executing(sql);
        return new(this, sql);
    }

    public Dapper.CommandDefinition Command(string sql, object? parameters = null)
    {
        Group?.Executing(sql);
        // Dapper runs it as soon as this returns: writes held back go first (rare on the hot paths).
        Group?.Flush();
        return new(Dialect.Rewrite(sql), parameters, Transaction, cancellationToken: CancellationToken);
    }
}

/// <summary>The provider-neutral session: repositories over one connection and transaction, made when first used.</summary>
public class StoreSession(DbScope db, StorageInstruments? instruments = null) : IStoreSession
{
    private PoolRepository? _pools;
    private ContractRepository? _contracts;
    private ApiKeyRepository? _apiKeys;
    private IdempotencyRepository? _idempotency;
    private AuditRepository? _audit;
    private AllocationRepository? _allocations;
    private AllocationEventRepository? _allocationEvents;
    private UsageRepository? _usage;
    private IndexValueRepository? _indexValues;
    private IncidentRepository? _incidents;
    private CapacityBlockRepository? _blocks;
    private BillingRepository? _billing;
    private UsageTotalsRepository? _totals;
    private List<Action>? _committed;
    private object? _poolViews;

    public DbScope Db { get; } = db;

    public void OnCommitted(Action action) => (_committed ??= []).Add(action);

    /// <summary>The actions the unit that just ran asked for at its commit; the session forgets them.</summary>
    public List<Action>? TakeCommitted()
    {
        var actions = _committed;
        _committed = null;
        return actions;
    }

    /// <summary>Runs actions taken from a committed unit.</summary>
    public static void RunCommitted(List<Action>? actions)
    {
        if (actions is null)
        {
            return;
        }

        foreach (var action in actions)
        {
            action();
        }
    }

    public PoolRepository Pools => _pools ??= new(Db);

    public ContractRepository Contracts => _contracts ??= new(Db);

    public ApiKeyRepository ApiKeys => _apiKeys ??= new(Db);

    public IdempotencyRepository Idempotency => _idempotency ??= new(Db);

    public AuditRepository Audit => _audit ??= new(Db);

    public AllocationRepository Allocations => _allocations ??= new(Db);

    public AllocationEventRepository AllocationEvents => _allocationEvents ??= new(Db,
        instruments is null ? null : e => OnCommitted(() => instruments.EventCommitted(e)));

    public UsageRepository Usage => _usage ??= new(Db);

    public IndexValueRepository IndexValues => _indexValues ??= new(Db);

    public IncidentRepository Incidents => _incidents ??= new(Db);

    public CapacityBlockRepository Blocks => _blocks ??= new(Db);

    public BillingRepository Billing => _billing ??= new(Db);

    public UsageTotalsRepository Totals => _totals ??= new(Db);

    public KeptPoolViews<TView>? PoolViews<TView>() where TView : class =>
        Db.Cache is not { } cache ? null : _poolViews as KeptPoolViews<TView> ?? (KeptPoolViews<TView>)(_poolViews = new KeptPoolViews<TView>(cache));

    public async Task<bool> LockPoolsAsync(IReadOnlyCollection<string> poolIds)
    {
        if (poolIds.Count == 0 || Db.Group is not { } group)
        {
            return false;
        }

        // Rows read before a new lock may be stale: the writer forgets what it kept, and the caller reads again.
        if (await group.LockPoolsAsync(Db, poolIds))
        {
            Db.Cache?.Clear();
            return true;
        }

        return false;
    }
}
