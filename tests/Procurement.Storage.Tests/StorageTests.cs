using Dapper;
using Microsoft.Data.Sqlite;
using Procurement.Storage;
using Procurement.Storage.Repositories;
using Procurement.Storage.Sqlite;
using Procurement.TestSupport;

namespace Procurement.Storage.Tests;

public sealed class StorageTests
{
    [Fact]
    public void Migrations_HaveTheSameNumberingForEveryProvider()
    {
        var sqlite = MigrationScripts.Load("Sqlite").Select(m => (m.Version, m.Name)).ToList();
        Assert.NotEmpty(sqlite);
        Assert.Equal(sqlite, MigrationScripts.Load("Postgres").Select(m => (m.Version, m.Name)));
        Assert.Equal(Enumerable.Range(1, sqlite.Count).Select(i => (long)i), sqlite.Select(m => m.Version));
    }

    [SkippableFact]
    public async Task Migrations_GiveEveryProviderTheSameTablesColumnsAndIndexes()
    {
        // The PostgreSQL scripts are hand-written twins of the SQLite ones; this catches one drifting from the other.
        Skip.IfNot(Procurement.TestSupport.ServerHarness.OnPostgres, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        var path = Path.Combine(Path.GetTempPath(), $"schema-{Guid.NewGuid():N}.db");
        try
        {
            new SqliteDatabase(path).Initialize(TimeProvider.System);
            List<string> sqliteColumns, sqliteIndexes;
            using (var sqlite = new SqliteConnection($"Data Source={path};Pooling=False"))
            {
                sqliteColumns = sqlite.Query<string>("""
                    SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
                    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
                    """).Order(StringComparer.Ordinal).ToList();
                sqliteIndexes = sqlite.Query<string>("""
                    SELECT tbl_name || '.' || name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'
                    """).Order(StringComparer.Ordinal).ToList();
            }

            var postgres = await Procurement.TestSupport.ServerHarness.CreatePostgresDatabaseAsync();
            await using (var store = new Procurement.Storage.Postgres.PostgresStore(postgres, Microsoft.Extensions.Logging.Abstractions.NullLogger<Procurement.Storage.Postgres.PostgresStore>.Instance))
            {
                store.Initialize(TimeProvider.System);
            }

            await using var pg = new Npgsql.NpgsqlConnection(postgres);
            // Only PostgreSQL needs pools.event_xid: it keeps each pool's events in commit order across
            // replicas, where SQLite's single writer numbers them as the next rowid.
            var pgColumns = (await pg.QueryAsync<string>("""
                SELECT table_name || '.' || column_name FROM information_schema.columns
                WHERE table_schema = 'public' AND NOT (table_name = 'pools' AND column_name = 'event_xid')
                """)).Order(StringComparer.Ordinal).ToList();
            // Primary keys and UNIQUE constraints get indexes PostgreSQL names itself, as SQLite's autoindexes are.
            var pgIndexes = (await pg.QueryAsync<string>("""
                SELECT i.tablename || '.' || i.indexname FROM pg_indexes i
                WHERE i.schemaname = 'public'
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.contype IN ('p', 'u'))
                """)).Order(StringComparer.Ordinal).ToList();

            Assert.Equal(sqliteColumns, pgColumns);
            Assert.Equal(sqliteIndexes, pgIndexes);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("postgres://app:s%40cret@db.internal:6432/procurement?sslmode=require", "db.internal", 6432, "procurement", "app", "s@cret")]
    [InlineData("postgresql://db/proc", "db", 5432, "proc", null, null)]
    public void ConnectionString_FromAPostgresUrl(string url, string host, int port, string database, string? user, string? password)
    {
        Assert.True(StoreFactory.IsPostgres(url));
        var b = new Npgsql.NpgsqlConnectionStringBuilder(StoreFactory.ConnectionString(url));
        Assert.Equal((host, port, database, user, password), (b.Host, b.Port, b.Database, b.Username, b.Password));
    }

    [Fact]
    public void ConnectionString_FromAPostgresUrl_TakesNpgsqlOptions_AsTheManifestSetsThem() =>
        Assert.Equal(40, new Npgsql.NpgsqlConnectionStringBuilder(
            StoreFactory.ConnectionString("postgres://app:pw@postgres:5432/procurement?sslmode=require&Maximum%20Pool%20Size=40")).MaxPoolSize);

    [Fact]
    public void AnythingElse_IsASqliteFile() => Assert.False(StoreFactory.IsPostgres("./data/procurement.db"));

    /// <summary>Pool p1, contract ctr_1 of tenant lab, and its ACTIVE allocation alc_1, as any schema since migration 3 holds them.</summary>
    private const string OneActiveAllocation = """
            INSERT INTO pools (id, display_name, region, accelerator_type, capacity_units, revision, created_at_ms, updated_at_ms)
              VALUES ('p1', 'p', 'r', 'H100', 10, 1, 0, 0);
            INSERT INTO contracts (id, tenant_id, display_name, state, revision, end_ms, created_at_ms, updated_at_ms)
              VALUES ('ctr_1', 'lab', 'c', 'ACTIVE', 1, 9000000, 0, 0);
            INSERT INTO allocations (seq, id, contract_id, tenant_id, pool_id, units, state, cause, requested_at_ms, admitted_at_ms)
              VALUES (1, 'alc_1', 'ctr_1', 'lab', 'p1', 1, 'ACTIVE', 'CLIENT_REQUEST', 0, 0);
        """;

    [Fact]
    public void UpgradingASqliteFile_AttributesEveryStoredSampleToItsAllocationsContractAndPool()
    {
        using var file = new OlderFile(lastMigration: 3, OneActiveAllocation + """
            INSERT INTO usage_samples (source, sample_id, allocation_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms)
              VALUES ('m', 's1', 'alc_1', 0, 1000, 1, 0);
            """);

        using var upgraded = file.Upgrade();
        Assert.Equal(("ctr_1", "p1"), upgraded.QuerySingle<(string, string)>("SELECT contract_id, pool_id FROM usage_samples WHERE sample_id = 's1'"));
    }

    [Fact]
    public void UpgradingASqliteFile_CountsTheStoredSamplesBusySecondsIntoTheMonthsTheirWindowsStartIn()
    {
        var march = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var april = new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        using var file = new OlderFile(lastMigration: 9, OneActiveAllocation + $"""
            INSERT INTO usage_samples (source, sample_id, allocation_id, contract_id, pool_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms)
              VALUES ('m', 's1', 'alc_1', 'ctr_1', 'p1', {march}, {march + 1000}, 3, 0),
                     ('m', 's2', 'alc_1', 'ctr_1', 'p1', {april - 1}, {april + 999}, 4, 0),
                     ('m', 's3', 'alc_1', 'ctr_1', 'p1', {april}, {april + 1000}, 5, 0);
            """);

        using var upgraded = file.Upgrade();
        var totals = upgraded.Query<(long MonthStartMs, long Busy)>("SELECT month_start_ms, busy_gpu_seconds FROM usage_totals WHERE contract_id = 'ctr_1' AND pool_id = 'p1' ORDER BY month_start_ms").ToList();
        Assert.Equal([(march, 7L), (april, 5L)], totals);
    }

    [SkippableFact]
    public async Task UpgradingAPostgresDatabase_CountsTheStoredSamplesBusySecondsIntoTheMonthsTheirWindowsStartIn()
    {
        Skip.IfNot(ServerHarness.OnPostgres, "PROCUREMENT_TEST_POSTGRES is not set (no PostgreSQL cluster)");
        var march = new DateTimeOffset(2026, 3, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var april = new DateTimeOffset(2026, 4, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        await using var connection = new Npgsql.NpgsqlConnection(await ServerHarness.CreatePostgresDatabaseAsync());
        await connection.OpenAsync();
        foreach (var (version, _, sql) in MigrationScripts.Load("Postgres").Where(m => m.Version <= 9))
        {
            await connection.ExecuteAsync(sql);
        }

        await connection.ExecuteAsync(OneActiveAllocation + $"""
            INSERT INTO usage_samples (source, sample_id, allocation_id, contract_id, pool_id, window_start_ms, window_end_ms, busy_gpu_seconds, received_at_ms)
              VALUES ('m', 's1', 'alc_1', 'ctr_1', 'p1', {march}, {march + 1000}, 3, 0),
                     ('m', 's2', 'alc_1', 'ctr_1', 'p1', {april - 1}, {april + 999}, 4, 0),
                     ('m', 's3', 'alc_1', 'ctr_1', 'p1', {april}, {april + 1000}, 5, 0);
            """);
        await connection.ExecuteAsync(MigrationScripts.Load("Postgres").Single(m => m.Version == 10).Sql);

        var totals = (await connection.QueryAsync<(long MonthStartMs, long Busy)>("SELECT month_start_ms, busy_gpu_seconds FROM usage_totals WHERE contract_id = 'ctr_1' AND pool_id = 'p1' ORDER BY month_start_ms")).ToList();
        Assert.Equal([(march, 7L), (april, 5L)], totals);
    }

    [Fact]
    public void UpgradingASqliteFile_KeepsEveryIdempotencyRecord_AndItsKeyStillRefusesASecondOne()
    {
        using var file = new OlderFile(lastMigration: 4, """
            INSERT INTO idempotency_records (scope, request_id, method, request_hash, response, created_at_ms)
              VALUES ('key_1', 'r-1', '/m', 'h', X'0102', 7);
            """);

        using var upgraded = file.Upgrade();
        var kept = upgraded.QuerySingle<(string Method, string Hash, byte[] Response, long CreatedAtMs)>(
            "SELECT method, request_hash, response, created_at_ms FROM idempotency_records WHERE scope = 'key_1' AND request_id = 'r-1'");
        Assert.Equal(("/m", "h", 7L), (kept.Method, kept.Hash, kept.CreatedAtMs));
        Assert.Equal(new byte[] { 1, 2 }, kept.Response);
        var again = Assert.Throws<SqliteException>(() => upgraded.Execute(
            "INSERT INTO idempotency_records (scope, request_id, method, request_hash, response, created_at_ms) VALUES ('key_1', 'r-1', '/m', 'h', X'00', 8)"));
        Assert.Equal(19, again.SqliteErrorCode); // SQLITE_CONSTRAINT
        upgraded.Execute("INSERT INTO idempotency_records (scope, request_id, method, request_hash, response, created_at_ms) VALUES ('key_2', 'r-1', '/m', 'h', X'00', 8)");
        // Migration 0007: the rows live in the key's own B-tree; there is no rowid to write.
        var noRowid = Assert.Throws<SqliteException>(() => upgraded.Query<long>("SELECT rowid FROM idempotency_records"));
        Assert.Contains("no such column: rowid", noRowid.Message);
    }

    [Fact]
    public void UpgradingASqliteFile_IndexesExactlyTheOpenAllocations()
    {
        using var file = new OlderFile(lastMigration: 5, """
            INSERT INTO pools (id, display_name, region, accelerator_type, capacity_units, revision, created_at_ms, updated_at_ms)
              VALUES ('p1', 'p', 'r', 'H100', 10, 1, 0, 0), ('p2', 'p', 'r', 'H100', 10, 1, 0, 0);
            INSERT INTO contracts (id, tenant_id, display_name, state, revision, end_ms, created_at_ms, updated_at_ms)
              VALUES ('ctr_1', 'lab', 'c', 'ACTIVE', 1, 9000000, 0, 0);
            INSERT INTO allocations (seq, id, contract_id, tenant_id, pool_id, units, state, cause, requested_at_ms, admitted_at_ms, ended_at_ms, end_time_ms)
              VALUES (1, 'alc_1', 'ctr_1', 'lab', 'p1', 1, 'ACTIVE', 'CLIENT_REQUEST', 0, 0, NULL, 500),
                     (2, 'alc_2', 'ctr_1', 'lab', 'p1', 1, 'PENDING', 'CLIENT_REQUEST', 0, NULL, NULL, NULL),
                     (3, 'alc_3', 'ctr_1', 'lab', 'p2', 1, 'RELEASED', 'CLIENT_REQUEST', 0, 0, 100, 200),
                     (4, 'alc_4', 'ctr_1', 'lab', 'p2', 1, 'ACTIVE', 'CLIENT_REQUEST', 0, 0, NULL, 5000);
            """);

        using var upgraded = file.Upgrade();
        Assert.Equal(["alc_1"], upgraded.Query<string>("SELECT id FROM allocations INDEXED BY ix_allocations_pool_open WHERE pool_id = 'p1' AND state IN ('PENDING', 'ACTIVE') AND state = 'ACTIVE'"));
        Assert.Equal(["alc_2"], upgraded.Query<string>("SELECT id FROM allocations INDEXED BY ix_allocations_pool_open WHERE pool_id = 'p1' AND state IN ('PENDING', 'ACTIVE') AND state = 'PENDING'"));
        // alc_3 ended before its end time: it is no longer due, and p2 is not swept for it.
        Assert.Equal(["p1"], upgraded.Query<string>(AllocationRepository.SelectDuePools, new { NowMs = 1000L }));
        Assert.Equal(["p1", "p2"], upgraded.Query<string>(AllocationRepository.SelectDuePools, new { NowMs = 5000L }).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void UpgradingASqliteFile_KeepsEveryEventAndAuditRecordWithItsNumber_AndNumbersOnWithoutSqliteSequence()
    {
        using var file = new OlderFile(lastMigration: 7, OneActiveAllocation + """
            INSERT INTO allocation_events (occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state)
              VALUES (5, 'ADMITTED', 'CLIENT_REQUEST', 'alc_1', 'ctr_1', 'lab', 'p1', 1, 'ACTIVE'),
                     (6, 'RELEASED', 'CLIENT_REQUEST', 'alc_1', 'ctr_1', 'lab', 'p1', 1, 'RELEASED');
            INSERT INTO audit_events (occurred_at_ms, key_id, role, tenant_id, method, request_id, resource_type, resource_id)
              VALUES (5, 'key_1', 'TENANT', 'lab', '/m', 'r-1', 'allocation', 'alc_1'),
                     (6, 'key_1', 'TENANT', 'lab', '/m', 'r-2', 'allocation', 'alc_1'),
                     (7, 'key_1', 'TENANT', 'lab', '/m', 'r-3', 'contract', 'ctr_1');
            """);

        using var upgraded = file.Upgrade();
        Assert.Equal([(1L, "ADMITTED"), (2L, "RELEASED")], upgraded.Query<(long, string)>("SELECT seq, type FROM allocation_events ORDER BY seq"));
        Assert.Equal([(1L, "r-1"), (2L, "r-2"), (3L, "r-3")], upgraded.Query<(long, string)>("SELECT seq, request_id FROM audit_events ORDER BY seq"));
        Assert.Equal([2L, 1L], upgraded.Query<long>(
            "SELECT seq FROM audit_events INDEXED BY ix_audit_events_resource WHERE resource_type = 'allocation' AND resource_id = 'alc_1' ORDER BY seq DESC"));

        // Migration 0008: the logs number on from their newest row, and nothing is kept in sqlite_sequence for them.
        upgraded.Execute("""
            INSERT INTO allocation_events (occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state)
              VALUES (8, 'ADMITTED', 'CLIENT_REQUEST', 'alc_1', 'ctr_1', 'lab', 'p1', 1, 'ACTIVE');
            INSERT INTO audit_events (occurred_at_ms, key_id, role, tenant_id, method, request_id, resource_type, resource_id)
              VALUES (8, 'key_1', 'TENANT', 'lab', '/m', 'r-4', 'allocation', 'alc_1');
            """);
        Assert.Equal(3L, upgraded.QuerySingle<long>("SELECT MAX(seq) FROM allocation_events"));
        Assert.Equal(4L, upgraded.QuerySingle<long>("SELECT MAX(seq) FROM audit_events"));
        Assert.Empty(upgraded.Query<string>("SELECT name FROM sqlite_sequence WHERE name IN ('allocation_events', 'audit_events')"));
        // Migration 0011: the log's subject is an allocation or a capacity block, so it no longer
        // references allocations (the service's connections enforce foreign keys).
        upgraded.Execute("PRAGMA foreign_keys = ON");
        upgraded.Execute("""
            INSERT INTO allocation_events (occurred_at_ms, type, cause, allocation_id, contract_id, tenant_id, pool_id, units, state)
              VALUES (9, 'BLOCK_STARTED', 'END_TIME_REACHED', 'blk_1', 'ctr_1', 'lab', 'p1', 1, 'ACTIVE')
            """);
        Assert.Equal(4L, upgraded.QuerySingle<long>("SELECT MAX(seq) FROM allocation_events"));
    }

    /// <summary>A SQLite file as an earlier release left it: migrations up to <c>lastMigration</c>, then <c>seed</c>.</summary>
    private sealed class OlderFile : IDisposable
    {
        private readonly string _path = Path.Combine(Path.GetTempPath(), $"upgrade-{Guid.NewGuid():N}.db");

        public OlderFile(int lastMigration, string seed)
        {
            using var connection = new SqliteConnection($"Data Source={_path};Pooling=False");
            connection.Open();
            connection.Execute("CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)");
            foreach (var (version, name, sql) in MigrationScripts.Load("Sqlite").Where(m => m.Version <= lastMigration))
            {
                connection.Execute(sql);
                connection.Execute("INSERT INTO schema_migrations VALUES (@version, @name, 0)", new { version, name });
            }

            connection.Execute(seed);
        }

        /// <summary>Applies the pending migrations as start-up does, then opens the file.</summary>
        public SqliteConnection Upgrade()
        {
            new SqliteDatabase(_path).Initialize(TimeProvider.System);
            var connection = new SqliteConnection($"Data Source={_path};Pooling=False");
            connection.Open();
            return connection;
        }

        public void Dispose()
        {
            SqliteConnection.ClearAllPools();
            File.Delete(_path);
        }
    }

    [Fact]
    public void EnumNames_StoreEveryMemberInUpperSnakeCase_AndReadEachBack()
    {
        Assert.Equal("END_TIME_REACHED", EnumNames.ToUpperSnake(Domain.Allocations.AllocationCause.EndTimeReached));
        Assert.Equal("ACTIVE", EnumNames.ToUpperSnake(Domain.Allocations.AllocationState.Active));
        foreach (var cause in Enum.GetValues<Domain.Allocations.AllocationCause>())
        {
            Assert.Equal(cause, EnumNames.Parse<Domain.Allocations.AllocationCause>(EnumNames.ToUpperSnake(cause)));
        }

        // Other spellings of a member still read; anything else is refused, never mapped to a default.
        Assert.Equal(Domain.Allocations.AllocationCause.EndTimeReached, EnumNames.Parse<Domain.Allocations.AllocationCause>("EndTimeReached"));
        Assert.Throws<ArgumentException>(() => EnumNames.Parse<Domain.Allocations.AllocationState>("LOST"));
    }

    [Fact]
    public void KeptPoolViews_OutliveAFailedUnitOnlyWhenBuiltFromCommittedRows()
    {
        var cache = new WriterCache();
        var views = new KeptPoolViews<string>(cache);
        var active = WriterCache.OpenKey("p", Domain.Allocations.AllocationState.Active);

        // Built from committed rows: a refused request (a failed unit) leaves it.
        cache.BeginUnit();
        views.Keep("p", "committed");
        cache.UnitFailed();
        Assert.Equal("committed", views.Find("p"));

        // A write to the pool's open allocations drops it (as the repository does), and a view put
        // back over that write goes with the unit.
        cache.BeginUnit();
        cache.OpenAllocations.MarkChanged(active);
        cache.InvalidateViews("p");
        Assert.Null(views.Find("p"));
        views.Keep("p", "over the unit's write");
        cache.UnitFailed();
        Assert.Null(views.Find("p"));

        // So does one kept after the unit wrote a contract, which also changes the stamp.
        var stamp = views.Stamp;
        cache.BeginUnit();
        cache.Contracts.Invalidate("ctr_1");
        Assert.NotEqual(stamp, views.Stamp);
        views.Keep("p", "over a contract write");
        cache.UnitFailed();
        Assert.Null(views.Find("p"));

        // Forgetting a stale view writes nothing: one rebuilt from committed rows in the same unit stays.
        cache.BeginUnit();
        views.Drop("p");
        views.Keep("p", "rebuilt");
        cache.UnitFailed();
        Assert.Equal("rebuilt", views.Find("p"));

        // A write to another pool leaves it.
        cache.BeginUnit();
        views.Keep("p", "committed");
        cache.OpenAllocations.MarkChanged(WriterCache.OpenKey("q", Domain.Allocations.AllocationState.Active));
        cache.InvalidateViews("q");
        views.Keep("p", "committed");
        cache.UnitFailed();
        Assert.Equal("committed", views.Find("p"));
    }

    [Fact]
    public void CommittedContractVersions_AnswerOnlyForTheRevisionTheyWereLoadedAt_AndNeverGoBack()
    {
        var cache = new CommittedContractVersions();
        var v2 = new List<Domain.Contracts.ContractVersion>();
        var v1 = new List<Domain.Contracts.ContractVersion>();

        cache.Put("ctr_1", 2, v2);
        cache.Put("ctr_1", 1, v1); // a read on an older snapshot finishing late

        Assert.True(cache.TryGet("ctr_1", 2, out var found));
        Assert.Same(v2, found);
        Assert.False(cache.TryGet("ctr_1", 1, out _));
        Assert.False(cache.TryGet("ctr_1", 3, out _));
        Assert.False(cache.TryGet("ctr_2", 2, out _));
    }

    [Fact]
    [Trait("Category", "SqliteOnly")]
    public async Task SqliteStore_CopiesTheWalIntoTheFile_OffTheWriter()
    {
        var path = Path.Combine(Path.GetTempPath(), $"checkpoint-{Guid.NewGuid():N}.db");
        try
        {
            var database = new SqliteDatabase(path);
            database.Initialize(TimeProvider.System);
            await using (var store = new SqliteStore(database, Microsoft.Extensions.Logging.Abstractions.NullLogger<SqliteStore>.Instance))
            {
                // The writer's own bound is far above what a commit writes: it does not checkpoint.
                Assert.Equal(SqliteStore.WriterCheckpointBoundPages, await store.WriteAsync(s => Scalar(((StoreSession)s).Db, "PRAGMA wal_autocheckpoint"), CancellationToken.None));

                var pool = new Domain.Pools.Pool("p1", "p", "r", "H100", 10, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);
                await store.WriteAsync(async s =>
                {
                    await s.Pools.InsertAsync(pool);
                    return true;
                }, CancellationToken.None);

                // The background checkpointer copies the commit into the database file itself, which a
                // connection that ignores the WAL then reads.
                var waited = System.Diagnostics.Stopwatch.StartNew();
                while (!InFileIgnoringTheWal(path, "p1"))
                {
                    Assert.True(waited.Elapsed < TimeSpan.FromSeconds(10), "the commit was not copied into the database file");
                    await Task.Delay(50);
                }

                Assert.True(store.Stats.Checkpoints.Count > 0);
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
            File.Delete(path + "-wal");
            File.Delete(path + "-shm");
        }

        static async Task<long> Scalar(DbScope db, string sql)
        {
            using var statement = db.Statement(sql);
            return await statement.ScalarAsync<long>();
        }
    }

    private static bool InFileIgnoringTheWal(string path, string poolId)
    {
        using var connection = new SqliteConnection($"Data Source=file:{path}?immutable=1;Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var query = connection.CreateCommand();
        // Until the schema itself is copied, the file has no pools table yet.
        query.CommandText = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'pools'";
        if ((long)query.ExecuteScalar()! == 0)
        {
            return false;
        }

        query.CommandText = "SELECT COUNT(*) FROM pools WHERE id = $id";
        query.Parameters.AddWithValue("$id", poolId);
        return (long)query.ExecuteScalar()! == 1;
    }

    [Fact]
    [Trait("Category", "SqliteOnly")]
    public async Task SqliteStore_ReadsCannotWrite_AndOnlyCommitsThatChangeARowAreCounted()
    {
        var path = Path.Combine(Path.GetTempPath(), $"store-{Guid.NewGuid():N}.db");
        try
        {
            var database = new SqliteDatabase(path);
            database.Initialize(TimeProvider.System);
            await using (var store = new SqliteStore(database, Microsoft.Extensions.Logging.Abstractions.NullLogger<SqliteStore>.Instance))
            {
                var pool = new Domain.Pools.Pool("p1", "p", "r", "H100", 10, 1, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch);
                await Assert.ThrowsAsync<SqliteException>(() => store.ReadAsync(async s =>
                {
                    await s.Pools.InsertAsync(pool);
                    return true;
                }, CancellationToken.None));

                var before = store.StableCommitCount;
                await store.WriteAsync(s => s.Allocations.PoolsWithDueAllocationsAsync(DateTimeOffset.UnixEpoch), CancellationToken.None);
                Assert.Equal(before, store.StableCommitCount);

                await store.WriteAsync(async s =>
                {
                    await s.Pools.InsertAsync(pool);
                    return true;
                }, CancellationToken.None);
                Assert.Equal(before + 1, store.StableCommitCount);
                Assert.NotNull(await store.ReadAsync(s => s.Pools.GetAsync("p1"), CancellationToken.None));
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }

    [Theory]
    [Trait("Category", "SqliteOnly")]
    [InlineData(true)]
    [InlineData(false)]
    public async Task SqliteStatements_BindRunAndFail_TheSameWhetherKeptPreparedOrNot(bool kept)
    {
        // Kept statements run through SQLite's C API instead of ADO.NET; both must behave the same.
        await using var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        connection.Execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, amount, payload BLOB)");
        using var commands = new PreparedCommands(connection);
        var db = new DbScope(connection, null, CancellationToken.None, SqliteDialect.Instance, Commands: kept ? commands : null);
        const string Insert = "INSERT INTO t (id, name, amount, payload) VALUES (@Id, @Name, @Amount, @Payload)";

        using (var statement = db.Statement(Insert))
        {
            Assert.Equal(1, await statement.Bind("@Id", 1L).Bind("@Name", "Zürich – 東京 🚀").Bind("@Amount", 12.5).Bind("@Payload", new byte[] { 0, 1, 255 }).ExecuteAsync());
        }

        // Decimal is not bound by the C API path: it falls back to ADO.NET, which stores it as text.
        using (var statement = db.Statement(Insert))
        {
            Assert.Equal(1, await statement.Bind("@Id", 2L).Bind("@Name", "second").Bind("@Amount", 0.1m).Bind("@Payload", null).ExecuteAsync());
        }

        using (var statement = db.Statement(Insert))
        {
            var duplicate = await Assert.ThrowsAsync<SqliteException>(() => statement.Bind("@Id", 3L).Bind("@Name", "second").Bind("@Amount", 1L).Bind("@Payload", null).ExecuteAsync());
            Assert.Equal(19, duplicate.SqliteErrorCode); // SQLITE_CONSTRAINT
            Assert.Contains("UNIQUE constraint failed: t.name", duplicate.Message);
        }

        using (var statement = db.Statement("UPDATE t SET amount = @Amount WHERE name = @Name"))
        {
            var missing = await Assert.ThrowsAsync<InvalidOperationException>(() => statement.Bind("@Name", "second").ExecuteAsync());
            Assert.Contains("@Amount", missing.Message);
            Assert.Equal(0, await statement.Bind("@Name", "nobody").Bind("@Amount", 2L).ExecuteAsync());
        }

        using (var statement = db.Statement("SELECT name FROM t WHERE id = @Id"))
        {
            Assert.Equal("Zürich – 東京 🚀", await statement.Bind("@Id", 1L).ScalarAsync<string>());
            Assert.Null(await statement.Bind("@Id", 99L).ScalarAsync<string>());
        }

        using (var statement = db.Statement("SELECT count(*) FROM t"))
        {
            Assert.Equal(2L, await statement.ScalarAsync<long>());
        }

        if (kept)
        {
            // The C API ran the first and the duplicate insert (not the decimal one), and the select by id twice.
            Assert.Equal(2, commands.Get(Insert, null).Raw!.Runs);
            Assert.Equal(2, commands.Get("SELECT name FROM t WHERE id = @Id", null).Raw!.Runs);
        }

        var rows = connection.Query<(long Id, string Name, string Type, byte[]? Payload)>("SELECT id, name, typeof(amount), payload FROM t ORDER BY id").ToList();
        Assert.Equal([(1L, "Zürich – 東京 🚀", "real"), (2L, "second", "text")], rows.Select(r => (r.Id, r.Name, r.Type)));
        Assert.Equal(new byte[] { 0, 1, 255 }, rows[0].Payload);
        Assert.Null(rows[1].Payload);
    }
}
