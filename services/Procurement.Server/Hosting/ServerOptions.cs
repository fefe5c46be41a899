namespace Procurement.Server.Hosting;

/// <summary>The <c>Procurement</c> configuration section.</summary>
public sealed class ServerOptions
{
    public const string Section = "Procurement";
    public const string DefaultDatabasePath = "./data/procurement.db";
    public const string DefaultUrl = "http://127.0.0.1:5080";

    /// <summary>The SQLite file (<c>--db PATH</c>). Relative paths are relative to the working folder.</summary>
    public string Database { get; set; } = DefaultDatabasePath;

    /// <summary>An operator key registered at start-up (<c>PROCUREMENT_BOOTSTRAP_OPERATOR_KEY</c>), for containers.</summary>
    public string? BootstrapOperatorKey { get; set; }

    /// <summary>Seed the headline deal into an empty database (<c>--demo</c>).</summary>
    public bool Demo { get; set; }

    /// <summary>How long request ids are remembered. At least 24 hours.</summary>
    public TimeSpan IdempotencyRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// How long a SQLite write waits for the write lock another process holds (the keys command, a
    /// backup) before the requests waiting on it are answered UNAVAILABLE, STORAGE_BUSY. Whole seconds, at least 1.
    /// </summary>
    public TimeSpan SqliteBusyTimeout { get; set; } = Procurement.Storage.Sqlite.SqliteDatabase.DefaultBusyTimeout;

    /// <summary>How often the sweeper ends allocations whose time has come.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How often each pool's usage is folded into the per-month totals statements read. A statement
    /// also reads what was held since the last fold, and each fold takes the writer for what ended
    /// since the one before: often keeps both small.
    /// </summary>
    public TimeSpan FoldInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Serve the HTTP/JSON routes and the OpenAPI document beside gRPC. Off, cleartext endpoints speak
    /// HTTP/2 only and serve gRPC alone.
    /// </summary>
    public bool HttpJson { get; set; } = true;

    /// <summary>How often to log what the SQLite writer did (<see cref="WriterReport"/>); zero, the default, logs nothing.</summary>
    public TimeSpan WriterReportInterval { get; set; } = TimeSpan.Zero;
}
