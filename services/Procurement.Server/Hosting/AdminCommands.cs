using Microsoft.Extensions.Logging.Abstractions;
using Procurement.Storage;
using Procurement.Domain.Common;
using Procurement.Server.Auth;
using Procurement.Storage.Sqlite;

namespace Procurement.Server.Hosting;

/// <summary>
/// The server program's other commands: <c>keys create|list|revoke</c> and <c>backup</c> (safe while the
/// server runs on the same database), <c>restore</c> (with the server stopped) and <c>health</c> (a probe
/// of a running server). Exit codes: 0 done, 1 failed, 2 bad usage.
/// </summary>
public static class AdminCommands
{
    public const string KeysUsage = """
        usage:
          Procurement.Server keys create --role operator|customer|meter [--tenant TENANT] [--label TEXT] [--db PATH]
          Procurement.Server keys list [--db PATH]
          Procurement.Server keys revoke KEY_ID [--db PATH]
        The new key is printed alone on the last line of standard output; only its hash is stored.
        """;

    public const string BackupUsage = """
        usage:
          Procurement.Server backup --to FILE [--db PATH]
          Procurement.Server restore --from FILE [--db PATH] [--force]
        backup copies the live database with SQLite's online backup API; the server may keep running.
        restore writes a backup into the database file (stop the server first); --force replaces an existing one.
        """;

    public const string HealthUsage = """
        usage:
          Procurement.Server health [--url http://127.0.0.1:5080]
        Calls grpc.health.v1.Health/Check; exit 0 when SERVING, 1 otherwise. For container health checks.
        """;

    public static async Task<int> KeysAsync(string[] args, TextWriter output, TextWriter error)
    {
        var (positional, options) = Parse(args);
        if (positional.Count == 0 || options.ContainsKey("help"))
        {
            await error.WriteLineAsync(KeysUsage);
            return 2;
        }

        await using var handle = OpenStore(options);
        var keys = new ApiKeys(handle.Store, TimeProvider.System);
        switch (positional[0])
        {
            case "create":
                if (!RoleNames.TryParse(options.GetValueOrDefault("role"), out var role))
                {
                    await error.WriteLineAsync("--role must be operator, customer or meter.\n" + KeysUsage);
                    return 2;
                }

                var tenant = options.GetValueOrDefault("tenant");
                if (role == Role.Customer && !Identifiers.IsTenantId(tenant))
                {
                    await error.WriteLineAsync("--tenant is required for a customer key: 1..64 characters of [a-z0-9-], starting with a letter.");
                    return 2;
                }

                if (role != Role.Customer && tenant is not null)
                {
                    await error.WriteLineAsync("--tenant applies to customer keys only.");
                    return 2;
                }

                var (record, key) = await keys.CreateAsync(role, tenant, options.GetValueOrDefault("label"), CancellationToken.None);
                await output.WriteLineAsync($"created {record.Role} key {record.Id}{(record.TenantId is null ? "" : $" for tenant {record.TenantId}")}; it is shown once:");
                await output.WriteLineAsync(key);
                return 0;

            case "list":
                await output.WriteLineAsync($"{"ID",-18} {"ROLE",-9} {"TENANT",-20} {"CREATED",-25} {"REVOKED",-25} LABEL");
                foreach (var k in await keys.ListAsync(CancellationToken.None))
                {
                    await output.WriteLineAsync($"{k.Id,-18} {k.Role,-9} {k.TenantId ?? "-",-20} {k.CreatedAt:O} {(k.RevokedAt is { } r ? r.ToString("O") : "-"),-25} {k.Label}");
                }

                return 0;

            case "revoke" when positional.Count == 2:
                if (await keys.RevokeAsync(positional[1], CancellationToken.None))
                {
                    await output.WriteLineAsync($"revoked {positional[1]}");
                    return 0;
                }

                await error.WriteLineAsync($"no live key with id '{positional[1]}'");
                return 1;

            default:
                await error.WriteLineAsync(KeysUsage);
                return 2;
        }
    }

    public static async Task<int> BackupAsync(string[] args, TextWriter output, TextWriter error)
    {
        var (_, options) = Parse(args);
        if (!options.TryGetValue("to", out var destination) || string.IsNullOrEmpty(destination))
        {
            await error.WriteLineAsync(BackupUsage);
            return 2;
        }

        if (File.Exists(destination))
        {
            await error.WriteLineAsync($"'{destination}' exists; choose a new file.");
            return 1;
        }

        if (StoreFactory.IsPostgres(options.GetValueOrDefault("db") ?? ""))
        {
            await error.WriteLineAsync("backup and restore are for the SQLite file; back up PostgreSQL with pg_dump or your platform's snapshots.");
            return 2;
        }

        var database = new SqliteDatabase(options.GetValueOrDefault("db") ?? ServerOptions.DefaultDatabasePath);
        if (!File.Exists(database.Path))
        {
            await error.WriteLineAsync($"no database at '{database.Path}'");
            return 1;
        }

        database.BackupTo(destination);
        await output.WriteLineAsync($"backed up {database.Path} to {Path.GetFullPath(destination)}");
        return 0;
    }

    public static async Task<int> RestoreAsync(string[] args, TextWriter output, TextWriter error)
    {
        var (_, options) = Parse(args);
        if (!options.TryGetValue("from", out var source) || string.IsNullOrEmpty(source))
        {
            await error.WriteLineAsync(BackupUsage);
            return 2;
        }

        if (!File.Exists(source))
        {
            await error.WriteLineAsync($"no backup at '{source}'");
            return 1;
        }

        var target = new SqliteDatabase(options.GetValueOrDefault("db") ?? ServerOptions.DefaultDatabasePath);
        if (File.Exists(target.Path) && !options.ContainsKey("force"))
        {
            await error.WriteLineAsync($"'{target.Path}' exists; stop the server and pass --force to replace it.");
            return 1;
        }

        var check = SqliteDatabase.IntegrityCheck(source);
        if (check != "ok")
        {
            await error.WriteLineAsync($"the backup fails PRAGMA integrity_check: {check}");
            return 1;
        }

        foreach (var stale in new[] { target.Path, target.Path + "-wal", target.Path + "-shm" }.Where(File.Exists))
        {
            File.Delete(stale); // a stale WAL beside the restored file would be replayed into it
        }

        new SqliteDatabase(source).BackupTo(target.Path);
        await output.WriteLineAsync($"restored {Path.GetFullPath(source)} into {target.Path}");
        return 0;
    }

    public static async Task<int> HealthAsync(string[] args, TextWriter output, TextWriter error)
    {
        var (_, options) = Parse(args);
        var url = options.GetValueOrDefault("url") ?? ServerOptions.DefaultUrl;
        try
        {
            using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(url);
            var reply = await new Grpc.Health.V1.Health.HealthClient(channel)
                .CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), deadline: DateTime.SpecifyKind(TimeProvider.System.GetUtcNow().UtcDateTime.AddSeconds(5), DateTimeKind.Utc));
            await output.WriteLineAsync(reply.Status.ToString());
            return reply.Status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
        }
        catch (Grpc.Core.RpcException e)
        {
            await error.WriteLineAsync($"unhealthy: {e.Status.StatusCode} {e.Status.Detail}");
            return 1;
        }
    }

    private static StoreHandle OpenStore(IReadOnlyDictionary<string, string> options) =>
        new(StoreFactory.Create(options.GetValueOrDefault("db") ?? ServerOptions.DefaultDatabasePath, TimeProvider.System, NullLoggerFactory.Instance));

    /// <summary>Disposes whichever provider was opened.</summary>
    private sealed class StoreHandle(IProcurementStore store) : IAsyncDisposable
    {
        public IProcurementStore Store => store;

        public ValueTask DisposeAsync() => store is IAsyncDisposable d ? d.DisposeAsync() : ValueTask.CompletedTask;
    }

    /// <summary>`--name value` pairs (and a bare `--help`) plus positional words.</summary>
    private static (List<string> Positional, Dictionary<string, string> Options) Parse(string[] args)
    {
        var positional = new List<string>();
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i].StartsWith("--", StringComparison.Ordinal))
            {
                var name = args[i][2..];
                var eq = name.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    options[name[..eq]] = name[(eq + 1)..];
                }
                else if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    options[name] = args[++i];
                }
                else
                {
                    options[name] = "";
                }
            }
            else
            {
                positional.Add(args[i]);
            }
        }

        return (positional, options);
    }
}
