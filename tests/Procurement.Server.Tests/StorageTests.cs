using Procurement.Storage;

namespace Procurement.Server.Tests;

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
    public void AnythingElse_IsASqliteFile() => Assert.False(StoreFactory.IsPostgres("./data/procurement.db"));
}
