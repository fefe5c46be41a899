using Dapper;
using Microsoft.Data.Sqlite;

namespace Procurement.Storage.Sqlite;

/// <summary>
/// One SQLite database file: WAL, foreign keys on, <c>synchronous=FULL</c> (an acknowledged write
/// survives a power cut), and numbered migrations applied at start-up.
/// </summary>
public sealed class SqliteDatabase
{
    /// <summary>How long a write waits for the write lock another process holds, unless told otherwise.</summary>
    public static readonly TimeSpan DefaultBusyTimeout = TimeSpan.FromSeconds(30);

    /// <param name="path">The database file.</param>
    /// <param name="busyTimeout">
    /// How long a write waits for the write lock held by another process (the keys command, a backup)
    /// before it fails with SQLITE_BUSY: whole seconds, at least one (<see cref="DefaultBusyTimeout"/> when null).
    /// </param>
    public SqliteDatabase(string path, TimeSpan? busyTimeout = null)
    {
        var wait = busyTimeout ?? DefaultBusyTimeout;
        if (!IsValidBusyTimeout(wait))
        {
            throw new ArgumentOutOfRangeException(nameof(busyTimeout), wait, "The SQLite busy timeout must be a whole number of seconds, at least 1.");
        }

        Path = System.IO.Path.GetFullPath(path);
        BusyTimeout = wait;
        ConnectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            ForeignKeys = true,
            Pooling = true,
            // Microsoft.Data.Sqlite retries a busy statement for this many seconds (0 would be for ever),
            // and each try waits in SQLite's own busy handler for as long (busy_timeout, set per connection).
            DefaultTimeout = (int)wait.TotalSeconds,
        }.ToString();
    }

    /// <summary>Whole seconds, at least one: Microsoft.Data.Sqlite counts its retries in seconds and takes 0 as no limit.</summary>
    public static bool IsValidBusyTimeout(TimeSpan wait) => wait >= TimeSpan.FromSeconds(1) && wait.Ticks % TimeSpan.TicksPerSecond == 0;

    /// <summary>How long a write waits for another process's write lock.</summary>
    public TimeSpan BusyTimeout { get; }

    public string Path { get; }

    public string ConnectionString { get; }

    /// <summary>Opens a connection with the per-connection settings applied.</summary>
    public SqliteConnection Open() => Open(ConnectionString, "");

    /// <summary>
    /// Opens a connection for reads only: SQLite refuses any write made through it, and it never creates
    /// the file (with the file gone it fails to open, rather than reading an empty database). It is not pooled,
    /// so the setting never reaches a connection someone else opens; the store keeps it open instead.
    /// A <paramref name="mapped"/> reader maps the file (shared by every reader, in the OS page cache)
    /// instead of copying pages into a private cache: a month's statement reads millions of index
    /// entries. The map covers SQLite's largest (2 GiB less 64 KiB); pages past it are read through the
    /// page cache, slower. Mapped pages count in the process's RSS but are the OS's clean, reclaimable
    /// file cache. A map is not free for a read of a few pages: the first read after another
    /// connection's commit unmaps the whole file (every CPU's TLB is flushed) and faults the pages in
    /// again, where copying them costs a few microseconds.
    /// </summary>
    public SqliteConnection OpenReader(bool mapped) =>
        Open(new SqliteConnectionStringBuilder(ConnectionString) { Pooling = false, Mode = SqliteOpenMode.ReadOnly }.ToString(),
            $"PRAGMA query_only = 1; PRAGMA mmap_size = {(mapped ? MaxMappedBytes : 0)};");

    /// <summary>SQLite's default ceiling on mmap_size (SQLITE_MAX_MMAP_SIZE).</summary>
    private const long MaxMappedBytes = 0x7fff0000;

    private SqliteConnection Open(string connectionString, string morePragmas)
    {
        var connection = new SqliteConnection(connectionString);
        connection.Open();
        using var pragma = connection.CreateCommand();
        pragma.CommandText = $"PRAGMA synchronous = FULL; PRAGMA busy_timeout = {(long)BusyTimeout.TotalMilliseconds}; " + morePragmas;
        pragma.ExecuteNonQuery();
        return connection;
    }

    /// <summary>Creates the folder and file if needed, turns on WAL and applies pending migrations.</summary>
    public void Initialize(TimeProvider time)
    {
        var folder = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        using var connection = Open();
        connection.Execute("PRAGMA journal_mode = WAL;");
        using var tx = connection.BeginTransaction(deferred: false);
        connection.Execute("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version       INTEGER NOT NULL PRIMARY KEY,
                name          TEXT    NOT NULL,
                applied_at_ms INTEGER NOT NULL
            )
            """, transaction: tx);
        var applied = connection.Query<long>("SELECT version FROM schema_migrations", transaction: tx).ToHashSet();
        foreach (var (version, name, sql) in MigrationScripts.Load("Sqlite"))
        {
            if (applied.Contains(version))
            {
                continue;
            }

            connection.Execute(sql, transaction: tx);
            connection.Execute("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (@version, @name, @now)",
                new { version, name, now = time.GetUtcNow().ToUnixTimeMilliseconds() }, tx);
        }

        tx.Commit();
    }

    /// <summary>"ok", or what SQLite's integrity check found, for the file at <paramref name="path"/>.</summary>
    public static string IntegrityCheck(string path)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        return string.Join("; ", connection.Query<string>("PRAGMA integrity_check"));
    }

    /// <summary>Copies the live database to <paramref name="destinationPath"/> with SQLite's online backup API.</summary>
    public void BackupTo(string destinationPath)
    {
        using var source = Open();
        var folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(destinationPath));
        if (!string.IsNullOrEmpty(folder))
        {
            Directory.CreateDirectory(folder);
        }

        using var destination = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = destinationPath, Pooling = false }.ToString());
        destination.Open();
        source.BackupDatabase(destination);
        // The copy is a standalone file: no WAL beside it.
        destination.Execute("PRAGMA journal_mode = DELETE;");
    }
}
