using System.Reflection;
using System.Text.RegularExpressions;
using Dapper;
using Microsoft.Data.Sqlite;
using Procurement.Storage.Sqlite;

namespace Procurement.Server.Tests;

/// <summary>
/// Every query the repositories keep, planned by SQLite on the migrated schema: none may walk a table
/// that grows with the business (allocations, events, samples, audit, idempotency records) from end
/// to end. An index that silently stops matching a query (a partial index's WHERE spelled another
/// way, a dropped index) turns a lookup into such a walk without failing any behavioural test.
/// </summary>
public sealed partial class QueryPlanTests
{
    // Incidents (operator-declared, a few a month) and API keys stay small; their listings may sort them all.
    private static readonly string[] GrowingTables =
        ["allocations", "allocation_events", "usage_samples", "audit_events", "idempotency_records", "index_values"];

    // Partial indexes over open allocations only: walking one costs the pool's live working set, not its history.
    private static readonly string[] OpenOnlyIndexes = ["ix_allocations_pool_open", "ix_allocations_contract_open", "ix_allocations_due"];

    public static TheoryData<string> Queries()
    {
        var data = new TheoryData<string>();
        var repositories = typeof(Procurement.Storage.Repositories.AllocationRepository).Assembly.GetTypes()
            .Where(t => t.Namespace == "Procurement.Storage.Repositories");
        foreach (var type in repositories)
        {
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static))
            {
                if (field.IsLiteral && field.GetRawConstantValue() is string sql && IsStatement().IsMatch(sql))
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
        var path = Path.Combine(Path.GetTempPath(), $"plans-{Guid.NewGuid():N}.db");
        try
        {
            new SqliteDatabase(path).Initialize(TimeProvider.System);
            using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
            connection.Open();
            // Dapper expands "IN @List" into parameters; SQLite plans the same with one.
            var plannable = ListParameter().Replace(sql, "IN ($1)");
            using var command = connection.CreateCommand();
            command.CommandText = "EXPLAIN QUERY PLAN " + plannable;
            foreach (var parameter in Parameter().Matches(plannable).Select(m => m.Value).Distinct())
            {
                command.Parameters.AddWithValue(parameter, DBNull.Value);
            }

            var details = new List<string>();
            using (var reader = command.ExecuteReader())
            {
                while (reader.Read())
                {
                    details.Add(reader.GetString(3));
                }
            }

            var tables = Aliases(sql);
            var walks = details.Where(d => Scan().Match(d) is { Success: true } m
                && GrowingTables.Contains(tables.GetValueOrDefault(m.Groups["name"].Value, m.Groups["name"].Value))
                && !OpenOnlyIndexes.Any(i => d.Contains($"USING INDEX {i}", StringComparison.Ordinal)))
                .ToList();
            Assert.True(walks.Count == 0, $"{name} walks a growing table: {string.Join("; ", walks)}");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            File.Delete(path);
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
        var type = typeof(Procurement.Storage.Repositories.AllocationRepository).Assembly.GetTypes()
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
