using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Procurement.Storage.Repositories;
using Procurement.Storage.Sqlite;

namespace Procurement.Storage.Tests;

/// <summary>
/// Every query the repositories keep, planned by SQLite on the migrated schema: none may walk a table
/// that grows with the business (allocations, events, samples, audit, idempotency records) from end
/// to end. An index that silently stops matching a query (a partial index's WHERE spelled another
/// way, a dropped index) turns a lookup into such a walk without failing any behavioural test.
/// </summary>
public sealed partial class QueryPlanTests(QueryPlanTests.MigratedSchema schema) : IClassFixture<QueryPlanTests.MigratedSchema>
{
    // Incidents (operator-declared, a few a month) and API keys stay small; their listings may sort them all.
    private static readonly string[] GrowingTables =
        ["allocations", "allocation_events", "usage_samples", "audit_events", "idempotency_records", "index_values", "capacity_blocks"];

    // Partial indexes over open allocations only: walking one costs the pool's live working set, not its history.
    private static readonly string[] OpenOnlyIndexes = ["ix_allocations_pool_open", "ix_allocations_contract_open", "ix_allocations_due"];

    public static TheoryData<string> Queries()
    {
        var data = new TheoryData<string>();
        var repositories = typeof(AllocationRepository).Assembly.GetTypes()
            .Where(t => t.Namespace == "Procurement.Storage.Repositories");
        foreach (var type in repositories)
        {
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static))
            {
                // SQLite plans the portable statements; a Postgres* one is PostgreSQL's alone.
                if (field.IsLiteral && field.GetRawConstantValue() is string sql && IsStatement().IsMatch(sql) && !field.Name.StartsWith("Postgres", StringComparison.Ordinal))
                {
                    data.Add($"{type.Name}.{field.Name}");
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Queries))]
    public void RepositoryQuery_NeverWalksAGrowingTable(string name)
    {
        var sql = Sql(name);
        var tables = Aliases(sql);
        var walks = schema.Plan(sql).Where(d => Scan().Match(d) is { Success: true } m
            && GrowingTables.Contains(tables.GetValueOrDefault(m.Groups["name"].Value, m.Groups["name"].Value))
            && !OpenOnlyIndexes.Any(i => d.Contains($"USING INDEX {i}", StringComparison.Ordinal)))
            .ToList();
        Assert.True(walks.Count == 0, $"{name} walks a growing table: {string.Join("; ", walks)}");
    }

    [Theory]
    [InlineData(AllocationRepository.SelectByPoolAndState, "ix_allocations_pool_open")]
    [InlineData(AllocationRepository.SelectOpenInPool, "ix_allocations_pool_open")]
    [InlineData(AllocationRepository.SelectOpenByContract, "ix_allocations_contract_open")]
    [InlineData(AllocationRepository.SelectDuePools, "ix_allocations_due")]
    [InlineData(ContractRepository.SelectOfPool, "ix_allocations_pool_open")]
    public void OpenAllocationQueries_ReadTheIndexesOfOpenAllocations(string sql, string index)
    {
        // SQLite uses a partial index only when the query spells out the index's own WHERE terms; a
        // SEARCH of another index by pool alone would read the pool's whole history without a SCAN.
        Assert.Contains(schema.Plan(sql), d => d.Contains($"USING INDEX {index} (", StringComparison.Ordinal));
    }

    [Fact]
    public void HeldSinceAFoldMark_ReadsTheOpenAndTheRecentlyEndedAllocationsOnly()
    {
        // The pool's admission-time index would satisfy both halves with a walk of its whole history.
        var plan = schema.Plan(UsageTotalsRepository.SelectHeldSince);
        Assert.Contains(plan, d => d.Contains("USING INDEX ix_allocations_pool_open (", StringComparison.Ordinal));
        Assert.Contains(plan, d => d.Contains("USING INDEX ix_allocations_pool_ended (pool_id=? AND ended_at_ms>?)", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, d => d.Contains("ix_allocations_pool_admitted", StringComparison.Ordinal));
    }

    /// <summary>One database with every migration applied, planned against by every case of the class.</summary>
    public sealed class MigratedSchema : IDisposable
    {
        private readonly string _path = Path.Combine(Path.GetTempPath(), $"plans-{Guid.NewGuid():N}.db");
        private readonly SqliteConnection _connection;

        public MigratedSchema()
        {
            new SqliteDatabase(_path).Initialize(TimeProvider.System);
            _connection = new SqliteConnection($"Data Source={_path};Pooling=False");
            _connection.Open();
        }

        /// <summary>The details of SQLite's plan for <paramref name="sql"/>, every parameter bound to NULL.</summary>
        public List<string> Plan(string sql)
        {
            // Dapper expands "IN @List" into parameters; SQLite plans the same with one.
            var plannable = ListParameter().Replace(sql, "IN ($1)");
            using var command = _connection.CreateCommand();
            command.CommandText = "EXPLAIN QUERY PLAN " + plannable;
            foreach (var parameter in Parameter().Matches(plannable).Select(m => m.Value).Distinct())
            {
                command.Parameters.AddWithValue(parameter, DBNull.Value);
            }

            var details = new List<string>();
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                details.Add(reader.GetString(3));
            }

            return details;
        }

        public void Dispose()
        {
            _connection.Dispose();
            File.Delete(_path);
        }
    }

    /// <summary>Alias (or table name) to table, from the statement's FROM and JOIN clauses.</summary>
    private static Dictionary<string, string> Aliases(string sql)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (Match m in TableReference().Matches(sql))
        {
            var table = m.Groups["table"].Value;
            map[table] = table;
            if (m.Groups["alias"].Success && !Keywords.Contains(m.Groups["alias"].Value.ToUpperInvariant()))
            {
                map[m.Groups["alias"].Value] = table;
            }
        }

        return map;
    }

    private static readonly HashSet<string> Keywords =
        ["WHERE", "JOIN", "ON", "LEFT", "INNER", "CROSS", "ORDER", "GROUP", "LIMIT", "UNION", "SET", "AND", "OR", "INDEXED", "NATURAL"];

    private static string Sql(string name)
    {
        var (typeName, fieldName) = (name[..name.IndexOf('.')], name[(name.IndexOf('.') + 1)..]);
        var type = typeof(AllocationRepository).Assembly.GetTypes()
            .Single(t => t.Namespace == "Procurement.Storage.Repositories" && t.Name == typeName);
        return (string)type.GetField(fieldName, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)!.GetRawConstantValue()!;
    }

    [GeneratedRegex(@"^\s*(SELECT|UPDATE|DELETE|WITH)\b", RegexOptions.IgnoreCase)]
    private static partial Regex IsStatement();

    [GeneratedRegex(@"IN\s+(@\w+)")]
    private static partial Regex ListParameter();

    [GeneratedRegex(@"@\w+")]
    private static partial Regex Parameter();

    // A full walk: "SCAN t" or "SCAN t USING [COVERING] INDEX i" (a SEARCH reads one range).
    [GeneratedRegex(@"^SCAN (?<name>\w+)")]
    private static partial Regex Scan();

    [GeneratedRegex(@"\b(?:FROM|JOIN|UPDATE|INTO)\s+(?<table>[a-z_]+)(?:\s+(?:AS\s+)?(?<alias>[a-z_]+))?", RegexOptions.IgnoreCase)]
    private static partial Regex TableReference();
}
