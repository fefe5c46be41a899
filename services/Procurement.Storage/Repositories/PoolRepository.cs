using Dapper;
using Procurement.Domain.Pools;

namespace Procurement.Storage.Repositories;

public sealed class PoolRepository(DbScope db)
{
    private const string Columns =
        "id AS Id, display_name AS DisplayName, region AS Region, accelerator_type AS AcceleratorType, " +
        "capacity_units AS CapacityUnits, revision AS Revision, created_at_ms AS CreatedAtMs, updated_at_ms AS UpdatedAtMs";

    private const string SelectById = $"SELECT {Columns} FROM pools WHERE id = @Id";

    private const string SelectPage = $"SELECT {Columns} FROM pools WHERE id > @AfterId ORDER BY id LIMIT @Limit";

    private const string SelectByIds = $"SELECT {Columns} FROM pools WHERE id IN @Ids";

    private const string Insert = """
        INSERT INTO pools (id, display_name, region, accelerator_type, capacity_units, revision, created_at_ms, updated_at_ms)
        VALUES (@Id, @DisplayName, @Region, @AcceleratorType, @CapacityUnits, @Revision, @CreatedAtMs, @UpdatedAtMs)
        """;

    private const string UpdateCapacity = """
        UPDATE pools SET capacity_units = @CapacityUnits, revision = @Revision, updated_at_ms = @UpdatedAtMs
        WHERE id = @Id AND revision = @PreviousRevision
        """;

    private const string InsertCapacityChange = """
        INSERT INTO pool_capacity_changes (pool_id, effective_at_ms, capacity_units)
        VALUES (@PoolId, @EffectiveAtMs, @CapacityUnits)
        """;

    public async Task<Pool?> GetAsync(string id)
    {
        if (db.Cache is { } cache && cache.Pools.TryGet(id, out var cached))
        {
            return cached;
        }

        Pool? pool;
        using (var statement = db.Statement(SelectById))
        {
            pool = await statement.Bind("@Id", id).FirstOrDefaultAsync(r => new Pool(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3),
                r.GetInt64(4), r.GetInt64(5), UnixTime.FromMs(r.GetInt64(6)), UnixTime.FromMs(r.GetInt64(7))));
        }

        if (pool is not null)
        {
            db.Cache?.Pools.Put(id, pool);
        }

        return pool;
    }

    public async Task<IReadOnlyList<Pool>> GetManyAsync(IReadOnlyCollection<string> ids)
    {
        if (ids.Count == 0)
        {
            return [];
        }

        var rows = await db.Connection.QueryAsync<PoolRow>(db.Command(SelectByIds, new { Ids = ids.ToArray() }));
        return rows.Select(r => r.ToDomain()).ToList();
    }

    /// <summary>Pools ordered by id, after <paramref name="afterId"/> (empty for the first page).</summary>
    public async Task<IReadOnlyList<Pool>> ListAsync(string afterId, int limit)
    {
        var rows = await db.Connection.QueryAsync<PoolRow>(db.Command(SelectPage, new { AfterId = afterId, Limit = limit }));
        return rows.Select(r => r.ToDomain()).ToList();
    }

    public async Task InsertAsync(Pool pool)
    {
        db.Cache?.Pools.Invalidate(pool.Id);
        await db.Connection.ExecuteAsync(db.Command(Insert, PoolRow.From(pool)));
        await db.Connection.ExecuteAsync(db.Command(InsertCapacityChange,
            new { PoolId = pool.Id, EffectiveAtMs = UnixTime.ToMs(pool.CreatedAt), pool.CapacityUnits }));
    }

    /// <summary>Writes a capacity change and its history row; fails if the pool changed since <paramref name="previousRevision"/>.</summary>
    public async Task UpdateCapacityAsync(Pool pool, long previousRevision)
    {
        db.Cache?.Pools.Invalidate(pool.Id);
        var row = PoolRow.From(pool);
        var changed = await db.Connection.ExecuteAsync(db.Command(UpdateCapacity,
            new { row.Id, row.CapacityUnits, row.Revision, row.UpdatedAtMs, PreviousRevision = previousRevision }));
        if (changed != 1)
        {
            throw new ConcurrentWriteException(Pool.ResourceType, pool.Id);
        }

        await db.Connection.ExecuteAsync(db.Command(InsertCapacityChange,
            new { PoolId = pool.Id, EffectiveAtMs = row.UpdatedAtMs, pool.CapacityUnits }));
    }

    private sealed class PoolRow
    {
        public string Id { get; set; } = "";
        public string DisplayName { get; set; } = "";
        public string Region { get; set; } = "";
        public string AcceleratorType { get; set; } = "";
        public long CapacityUnits { get; set; }
        public long Revision { get; set; }
        public long CreatedAtMs { get; set; }
        public long UpdatedAtMs { get; set; }

        public static PoolRow From(Pool p) => new()
        {
            Id = p.Id,
            DisplayName = p.DisplayName,
            Region = p.Region,
            AcceleratorType = p.AcceleratorType,
            CapacityUnits = p.CapacityUnits,
            Revision = p.Revision,
            CreatedAtMs = UnixTime.ToMs(p.CreatedAt),
            UpdatedAtMs = UnixTime.ToMs(p.UpdatedAt),
        };

        public Pool ToDomain() => new(Id, DisplayName, Region, AcceleratorType, CapacityUnits, Revision,
            UnixTime.FromMs(CreatedAtMs), UnixTime.FromMs(UpdatedAtMs));
    }
}
