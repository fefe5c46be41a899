using Dapper;
using Procurement.Domain.Contracts;
using Procurement.Domain.Pools;

namespace Procurement.Storage.Repositories;

/// <summary>A contract as the writer last read it: its row and its (immutable) versions.</summary>
public sealed class ContractSnapshot
{
    internal ContractSnapshot(ContractRepository.ContractRow row, IReadOnlyList<ContractVersion> versions)
    {
        Row = row;
        Versions = versions;
    }

    internal ContractRepository.ContractRow Row { get; }

    internal IReadOnlyList<ContractVersion> Versions { get; }

    private Contract? _shared;

    /// <summary>A fresh aggregate each time: callers may change theirs without touching the snapshot.</summary>
    internal Contract ToDomain() => Row.ToDomain(Versions);

    /// <summary>One read-only aggregate for every reader of this snapshot (built once: admission reads every contract in a pool).</summary>
    internal Contract Shared => _shared ??= ToDomain().Share();
}

/// <summary>A filter on the state callers see, where EXPIRED is derived from the term end.</summary>
public sealed record ContractFilter(string? TenantId, ContractState? State);

public sealed class ContractRepository(DbScope db)
{
    private const string Columns =
        "seq AS Seq, id AS Id, tenant_id AS TenantId, display_name AS DisplayName, state AS State, revision AS Revision, " +
        "end_ms AS EndMs, created_at_ms AS CreatedAtMs, updated_at_ms AS UpdatedAtMs, activated_at_ms AS ActivatedAtMs, " +
        "terminated_at_ms AS TerminatedAtMs, state_reason AS StateReason";

    private const string SelectById = $"SELECT {Columns} FROM contracts WHERE id = @Id";

    // EXPIRED is not stored: an ACTIVE or SUSPENDED contract whose term end has passed reads as EXPIRED.
    private const string SelectPage = $"""
        SELECT {Columns} FROM contracts
        WHERE seq > @AfterSeq
          AND (@TenantId IS NULL OR tenant_id = @TenantId)
          AND (@State IS NULL
               OR (@State = 'EXPIRED' AND state IN ('ACTIVE', 'SUSPENDED') AND end_ms <= @NowMs)
               OR (@State IN ('ACTIVE', 'SUSPENDED') AND state = @State AND end_ms > @NowMs)
               OR (@State IN ('DRAFT', 'TERMINATED') AND state = @State))
        ORDER BY seq
        LIMIT @Limit
        """;

    private const string VersionColumns =
        "contract_id AS ContractId, version AS Version, effective_from_ms AS EffectiveFromMs, terms_json AS TermsJson, created_at_ms AS CreatedAtMs";

    private const string SelectVersions = $"SELECT {VersionColumns} FROM contract_versions WHERE contract_id IN @Ids";

    private const string SelectVersionsOfOne = $"SELECT {VersionColumns} FROM contract_versions WHERE contract_id = @Id";

    private const string SelectByIds = $"SELECT {Columns} FROM contracts WHERE id IN @Ids";

    // The contracts a pool's status lists: those with an entitlement to it in any terms version that
    // hold reservations now (ACTIVE or SUSPENDED, term not over), and those holding or awaiting units in
    // it (the open-state term spelled as the partial index's WHERE, so SQLite reads that index).
    internal const string SelectOfPool = $"""
        SELECT {Columns} FROM contracts
        WHERE id IN (SELECT contract_id FROM contract_entitlements WHERE pool_id = @PoolId)
          AND state IN ('ACTIVE', 'SUSPENDED') AND end_ms > @NowMs
        UNION
        SELECT {Columns} FROM contracts
        WHERE id IN (SELECT contract_id FROM allocations WHERE pool_id = @PoolId AND state IN ('PENDING', 'ACTIVE'))
        """;

    private const string InsertContract = """
        INSERT INTO contracts (id, tenant_id, display_name, state, revision, end_ms, created_at_ms, updated_at_ms,
                               activated_at_ms, terminated_at_ms, state_reason)
        VALUES (@Id, @TenantId, @DisplayName, @State, @Revision, @EndMs, @CreatedAtMs, @UpdatedAtMs,
                @ActivatedAtMs, @TerminatedAtMs, @StateReason)
        """;

    private const string UpdateContract = """
        UPDATE contracts
        SET display_name = @DisplayName, state = @State, revision = @Revision, end_ms = @EndMs,
            updated_at_ms = @UpdatedAtMs, activated_at_ms = @ActivatedAtMs, terminated_at_ms = @TerminatedAtMs,
            state_reason = @StateReason
        WHERE id = @Id AND revision = @PreviousRevision
        """;

    private const string InsertVersion = """
        INSERT INTO contract_versions (contract_id, version, effective_from_ms, terms_json, created_at_ms)
        VALUES (@ContractId, @Version, @EffectiveFromMs, @TermsJson, @CreatedAtMs)
        """;

    // Only a DRAFT's single version is ever rewritten; versions of an activated contract are immutable.
    private const string UpdateDraftVersion = """
        UPDATE contract_versions SET effective_from_ms = @EffectiveFromMs, terms_json = @TermsJson
        WHERE contract_id = @ContractId AND version = 1
        """;

    private const string SelectLastVersion = "SELECT COALESCE(MAX(version), 0) FROM contract_versions WHERE contract_id = @Id";

    private const string DeleteDraftEntitlements = "DELETE FROM contract_entitlements WHERE contract_id = @ContractId AND version = 1";

    private const string InsertEntitlement = """
        INSERT INTO contract_entitlements (contract_id, version, pool_id, reserved_units, burst_limit_units)
        VALUES (@ContractId, @Version, @PoolId, @ReservedUnits, @BurstLimitUnits)
        """;

    // The entitlements of every contract that holds reservations (ACTIVE or SUSPENDED, term not over).
    private const string SelectCountedEntitlements = """
        SELECT e.contract_id AS ContractId, e.version AS Version, v.effective_from_ms AS EffectiveFromMs,
               e.pool_id AS PoolId, e.reserved_units AS ReservedUnits
        FROM contract_entitlements e
        JOIN contract_versions v ON v.contract_id = e.contract_id AND v.version = e.version
        JOIN contracts c ON c.id = e.contract_id
        WHERE c.state IN ('ACTIVE', 'SUSPENDED') AND c.end_ms > @NowMs AND c.id <> @ExcludeId
          AND e.pool_id IN @PoolIds
        """;

    public async Task<Contract?> GetAsync(string id)
    {
        if (db.Cache is { } cache && cache.Contracts.TryGet(id, out var cached))
        {
            return cached.ToDomain();
        }

        // The one-contract read is on every contract RPC's path: prepared statements, mapped by hand.
        ContractRow? row;
        using (var statement = db.Statement(SelectById))
        {
            row = await statement.Bind("@Id", id).FirstOrDefaultAsync(ContractRow.Read);
        }

        if (row is null)
        {
            return null;
        }

        return Remember(row, (await VersionsOfAsync([row]))[id]);
    }

    /// <summary>
    /// Several contracts, read-only (<see cref="Contract.Share"/>: the writer hands out the copy it keeps),
    /// in two queries (rows, then all their versions); the writer's known ones in none.
    /// </summary>
    public async Task<IReadOnlyList<Contract>> GetManyAsync(IReadOnlyCollection<string> ids)
    {
        if (ids.Count == 0)
        {
            return [];
        }

        var result = new List<Contract>(ids.Count);
        var missing = new List<string>(ids.Count);
        foreach (var id in ids)
        {
            if (db.Cache is { } cache && cache.Contracts.TryGet(id, out var cached))
            {
                result.Add(cached.Shared);
            }
            else
            {
                missing.Add(id);
            }
        }

        if (missing.Count == 0)
        {
            return result;
        }

        var rows = (await db.Connection.QueryAsync<ContractRow>(db.Command(SelectByIds, new { Ids = missing.ToArray() }))).ToList();
        var versions = await VersionsOfAsync(rows);
        foreach (var row in rows)
        {
            var snapshot = new ContractSnapshot(row, versions[row.Id]);
            db.Cache?.Contracts.Put(row.Id, snapshot);
            result.Add(snapshot.Shared);
        }

        return result;
    }

    /// <summary>
    /// The versions of each row's contract: from <see cref="DbScope.Committed"/> where a read already
    /// loaded that revision, else from the database (and then remembered there).
    /// </summary>
    private async Task<Dictionary<string, IReadOnlyList<ContractVersion>>> VersionsOfAsync(IReadOnlyList<ContractRow> rows)
    {
        var result = new Dictionary<string, IReadOnlyList<ContractVersion>>(rows.Count, StringComparer.Ordinal);
        var missing = new List<ContractRow>();
        foreach (var row in rows)
        {
            if (db.Committed is { } committed && committed.TryGet(row.Id, row.Revision, out var known))
            {
                result[row.Id] = known;
            }
            else
            {
                missing.Add(row);
            }
        }

        if (missing.Count == 1)
        {
            using var statement = db.Statement(SelectVersionsOfOne);
            result[missing[0].Id] = await statement.Bind("@Id", missing[0].Id).ListAsync(VersionRow.Read);
        }
        else if (missing.Count > 1)
        {
            foreach (var (id, versions) in await LoadVersionsAsync(missing.Select(r => r.Id).ToArray()))
            {
                result[id] = versions;
            }
        }

        foreach (var row in missing)
        {
            db.Committed?.Put(row.Id, row.Revision, result[row.Id]);
        }

        return result;
    }

    private Contract Remember(ContractRow row, IReadOnlyList<ContractVersion> versions)
    {
        db.Cache?.Contracts.Put(row.Id, new ContractSnapshot(row, versions));
        return row.ToDomain(versions);
    }

    /// <summary>The contracts entitled to <paramref name="poolId"/> that hold reservations at <paramref name="now"/>, and those with open allocations in it.</summary>
    public async Task<IReadOnlyList<Contract>> OfPoolAsync(string poolId, DateTimeOffset now)
    {
        List<ContractRow> rows;
        using (var statement = db.Statement(SelectOfPool))
        {
            rows = await statement.Bind("@PoolId", poolId).Bind("@NowMs", UnixTime.ToMs(now)).ListAsync(ContractRow.Read);
        }

        var versions = await VersionsOfAsync(rows);
        return rows.Select(r => r.ToDomain(versions[r.Id])).ToList();
    }

    /// <summary>Contracts in creation order after <paramref name="afterSeq"/>, with their list positions.</summary>
    public async Task<IReadOnlyList<(long Seq, Contract Contract)>> ListAsync(ContractFilter filter, DateTimeOffset now, long afterSeq, int limit)
    {
        var rows = (await db.Connection.QueryAsync<ContractRow>(db.Command(SelectPage, new
        {
            AfterSeq = afterSeq,
            filter.TenantId,
            State = filter.State is { } s ? StateName(s) : null,
            NowMs = UnixTime.ToMs(now),
            Limit = limit,
        }))).ToList();
        if (rows.Count == 0)
        {
            return [];
        }

        var versions = await VersionsOfAsync(rows);
        return rows.Select(r => (r.Seq, r.ToDomain(versions[r.Id]))).ToList();
    }

    public async Task InsertAsync(Contract contract)
    {
        db.Cache?.Contracts.Invalidate(contract.Id);
        await db.Connection.ExecuteAsync(db.Command(InsertContract, ContractRow.From(contract)));
        await WriteVersionsAsync(contract, after: 0);
    }

    /// <summary>Writes a changed contract; fails if it changed since <paramref name="previousRevision"/>.</summary>
    public async Task UpdateAsync(Contract contract, long previousRevision)
    {
        db.Cache?.Contracts.Invalidate(contract.Id);
        var row = ContractRow.From(contract);
        var changed = await db.Connection.ExecuteAsync(db.Command(UpdateContract, new
        {
            row.Id, row.DisplayName, row.State, row.Revision, row.EndMs, row.UpdatedAtMs, row.ActivatedAtMs,
            row.TerminatedAtMs, row.StateReason, PreviousRevision = previousRevision,
        }));
        if (changed != 1)
        {
            throw new ConcurrentWriteException(Contract.ResourceType, contract.Id);
        }

        if (contract.StoredState == ContractState.Draft)
        {
            var draft = contract.Versions[0];
            await db.Connection.ExecuteAsync(db.Command(UpdateDraftVersion, VersionRow.From(contract.Id, draft)));
            await db.Connection.ExecuteAsync(db.Command(DeleteDraftEntitlements, new { ContractId = contract.Id }));
            await InsertEntitlementsAsync(contract.Id, draft);
        }

        // Versions are never changed once stored (a draft's first one aside, above): only newer ones are written.
        var stored = await db.Connection.ExecuteScalarAsync<long>(db.Command(SelectLastVersion, new { contract.Id }));
        await WriteVersionsAsync(contract, after: stored);
    }

    /// <summary>Entitlement rows in <paramref name="poolIds"/> of every contract that holds reservations, except one.</summary>
    public async Task<IReadOnlyList<EntitlementRow>> GetCountedEntitlementsAsync(IReadOnlyCollection<string> poolIds, DateTimeOffset now, string excludeContractId)
    {
        if (poolIds.Count == 0)
        {
            return [];
        }

        var rows = await db.Connection.QueryAsync<EntitlementDbRow>(db.Command(SelectCountedEntitlements, new
        {
            NowMs = UnixTime.ToMs(now),
            ExcludeId = excludeContractId,
            PoolIds = poolIds.ToArray(),
        }));
        return rows.Select(r => new EntitlementRow(r.ContractId, (int)r.Version, UnixTime.FromMs(r.EffectiveFromMs), r.PoolId, r.ReservedUnits)).ToList();
    }

    private async Task WriteVersionsAsync(Contract contract, long after)
    {
        foreach (var version in contract.Versions.Where(v => v.Version > after))
        {
            await db.Connection.ExecuteAsync(db.Command(InsertVersion, VersionRow.From(contract.Id, version)));
            await InsertEntitlementsAsync(contract.Id, version);
        }
    }

    private async Task InsertEntitlementsAsync(string contractId, ContractVersion version)
    {
        foreach (var e in version.Terms.Entitlements)
        {
            await db.Connection.ExecuteAsync(db.Command(InsertEntitlement, new
            {
                ContractId = contractId, version.Version, e.PoolId, e.ReservedUnits, e.BurstLimitUnits,
            }));
        }
    }

    private async Task<Dictionary<string, List<ContractVersion>>> LoadVersionsAsync(string[] ids)
    {
        var rows = await db.Connection.QueryAsync<VersionRow>(db.Command(SelectVersions, new { Ids = ids }));
        var result = ids.ToDictionary(id => id, _ => new List<ContractVersion>(), StringComparer.Ordinal);
        foreach (var row in rows)
        {
            result[row.ContractId].Add(row.ToDomain());
        }

        return result;
    }

    internal static string StateName(ContractState state) => state.ToString().ToUpperInvariant();

    private static ContractState ParseState(string name) => Enum.Parse<ContractState>(name, ignoreCase: true);

    internal sealed class ContractRow
    {
        public long Seq { get; set; }
        public string Id { get; set; } = "";
        public string TenantId { get; set; } = "";
        public string DisplayName { get; set; } = "";
        public string State { get; set; } = "";
        public long Revision { get; set; }
        public long EndMs { get; set; }
        public long CreatedAtMs { get; set; }
        public long UpdatedAtMs { get; set; }
        public long? ActivatedAtMs { get; set; }
        public long? TerminatedAtMs { get; set; }
        public string? StateReason { get; set; }

        public static ContractRow From(Contract c) => new()
        {
            Id = c.Id,
            TenantId = c.TenantId,
            DisplayName = c.DisplayName,
            State = StateName(c.StoredState),
            Revision = c.Revision,
            EndMs = UnixTime.ToMs(c.TermEnd),
            CreatedAtMs = UnixTime.ToMs(c.CreatedAt),
            UpdatedAtMs = UnixTime.ToMs(c.UpdatedAt),
            ActivatedAtMs = UnixTime.ToMs(c.ActivatedAt),
            TerminatedAtMs = UnixTime.ToMs(c.TerminatedAt),
            StateReason = c.StateReason,
        };

        /// <summary>Maps a row selected with <see cref="Columns"/>, in its order.</summary>
        public static ContractRow Read(System.Data.Common.DbDataReader r) => new()
        {
            Seq = r.GetInt64(0), Id = r.GetString(1), TenantId = r.GetString(2), DisplayName = r.GetString(3), State = r.GetString(4),
            Revision = r.GetInt64(5), EndMs = r.GetInt64(6), CreatedAtMs = r.GetInt64(7), UpdatedAtMs = r.GetInt64(8),
            ActivatedAtMs = r.IsDBNull(9) ? null : r.GetInt64(9), TerminatedAtMs = r.IsDBNull(10) ? null : r.GetInt64(10),
            StateReason = r.IsDBNull(11) ? null : r.GetString(11),
        };

        public Contract ToDomain(IEnumerable<ContractVersion> versions) => new(
            Id, TenantId, DisplayName, ParseState(State), Revision, UnixTime.FromMs(CreatedAtMs), UnixTime.FromMs(UpdatedAtMs),
            UnixTime.FromMs(ActivatedAtMs), UnixTime.FromMs(TerminatedAtMs), StateReason, versions);
    }

    private sealed class VersionRow
    {
        public string ContractId { get; set; } = "";
        public long Version { get; set; }
        public long EffectiveFromMs { get; set; }
        public string TermsJson { get; set; } = "";
        public long CreatedAtMs { get; set; }

        public static VersionRow From(string contractId, ContractVersion v) => new()
        {
            ContractId = contractId,
            Version = v.Version,
            EffectiveFromMs = UnixTime.ToMs(v.EffectiveFrom),
            TermsJson = Storage.TermsJson.Serialize(v.Terms),
            CreatedAtMs = UnixTime.ToMs(v.CreatedAt),
        };

        public ContractVersion ToDomain() => new((int)Version, UnixTime.FromMs(EffectiveFromMs),
            Storage.TermsJson.Deserialize(TermsJson), UnixTime.FromMs(CreatedAtMs));

        /// <summary>Maps a row selected with <see cref="VersionColumns"/>, in its order.</summary>
        public static ContractVersion Read(System.Data.Common.DbDataReader r) => new VersionRow
        {
            ContractId = r.GetString(0), Version = r.GetInt64(1), EffectiveFromMs = r.GetInt64(2), TermsJson = r.GetString(3), CreatedAtMs = r.GetInt64(4),
        }.ToDomain();
    }

    private sealed class EntitlementDbRow
    {
        public string ContractId { get; set; } = "";
        public long Version { get; set; }
        public long EffectiveFromMs { get; set; }
        public string PoolId { get; set; } = "";
        public long ReservedUnits { get; set; }
    }
}
