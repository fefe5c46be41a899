using Microsoft.Extensions.Logging;
using Npgsql;
using Procurement.Storage.Postgres;
using Procurement.Storage.Sqlite;

namespace Procurement.Storage;

/// <summary>
/// Chooses the provider from <c>--db</c>: a <c>postgres://</c> or <c>postgresql://</c> URL, or an Npgsql
/// connection string (<c>Host=…</c>), selects PostgreSQL; anything else is a SQLite file path.
/// </summary>
public static class StoreFactory
{
    public static bool IsPostgres(string database) =>
        database.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ||
        database.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) ||
        database.StartsWith("Host=", StringComparison.OrdinalIgnoreCase);

    /// <summary>Opens the store and applies pending migrations; <paramref name="sqliteBusyTimeout"/> as for <see cref="SqliteDatabase"/>.</summary>
    public static IProcurementStore Create(string database, TimeProvider time, ILoggerFactory loggerFactory, TimeSpan? sqliteBusyTimeout = null,
        StorageInstruments? instruments = null)
    {
        if (IsPostgres(database))
        {
            var store = new PostgresStore(ConnectionString(database), loggerFactory.CreateLogger<PostgresStore>(), loggerFactory, instruments);
            store.Initialize(time);
            return store;
        }

        var file = new SqliteDatabase(database, sqliteBusyTimeout);
        file.Initialize(time);
        return new SqliteStore(file, loggerFactory.CreateLogger<SqliteStore>(), time, instruments);
    }

    /// <summary>An Npgsql connection string from a <c>postgres://user:password@host:port/database?option=value</c> URL.</summary>
    public static string ConnectionString(string database)
    {
        if (database.StartsWith("Host=", StringComparison.OrdinalIgnoreCase))
        {
            return database;
        }

        var uri = new Uri(database);
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.Port > 0 ? uri.Port : 5432,
            Database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')),
        };
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2)
            {
                builder.Password = Uri.UnescapeDataString(parts[1]);
            }
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            builder[Uri.UnescapeDataString(kv[0])] = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "true";
        }

        return builder.ConnectionString;
    }
}
