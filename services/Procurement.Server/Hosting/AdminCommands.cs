using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using Google.Protobuf;
using Microsoft.Extensions.Logging.Abstractions;
using Procurement.Storage;
using Procurement.Domain.Common;
using Procurement.Server.Auth;
using Procurement.Server.Mapping;
using Procurement.Storage.Sqlite;

namespace Procurement.Server.Hosting;

/// <summary>
/// The server program's other commands: <c>keys create|list|revoke</c> and <c>backup</c> (safe while the
/// server runs on the same database), <c>restore</c> (with the server stopped) and <c>health</c> (a probe
/// of a running server). Exit codes: 0 done, 1 failed, 2 bad usage (an unknown option or command, an extra
/// or missing argument, a bad value). Parsed by System.CommandLine, like the procurement CLI.
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

    public const string StatementsUsage = """
        usage:
          Procurement.Server statements verify --contract CONTRACT_ID --month YYYY-MM [--db PATH]
        Computes the month's statement twice, from the folded totals the server reads and again from every
        allocation interval and usage sample, and compares them byte for byte: exit 0 when identical, 1 when not.
        """;

    public const int UsageExitCode = 2;

    /// <summary>Whether <paramref name="args"/> is one of these commands rather than the server's own arguments.</summary>
    public static bool Handles(string[] args) => args.FirstOrDefault() is "keys" or "backup" or "restore" or "health" or "statements";

    public static Task<int> KeysAsync(string[] args, TextWriter output, TextWriter error) => RunAsync(["keys", .. args], output, error);

    public static Task<int> BackupAsync(string[] args, TextWriter output, TextWriter error) => RunAsync(["backup", .. args], output, error);

    public static Task<int> RestoreAsync(string[] args, TextWriter output, TextWriter error) => RunAsync(["restore", .. args], output, error);

    public static Task<int> HealthAsync(string[] args, TextWriter output, TextWriter error) => RunAsync(["health", .. args], output, error);

    /// <summary>Runs <c>keys …</c>, <c>backup …</c>, <c>restore …</c> or <c>health …</c>.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var db = new Option<string>("--db") { HelpName = "PATH", DefaultValueFactory = _ => ServerOptions.DefaultDatabasePath };
        var role = new Option<string>("--role") { Required = true, HelpName = "operator|customer|meter" };
        var tenant = new Option<string>("--tenant") { HelpName = "TENANT" };
        var label = new Option<string>("--label") { HelpName = "TEXT" };
        var keyId = new Argument<string>("KEY_ID");
        var to = new Option<string>("--to") { Required = true, HelpName = "FILE" };
        var from = new Option<string>("--from") { Required = true, HelpName = "FILE" };
        var force = new Option<bool>("--force");
        var url = new Option<string>("--url") { HelpName = "URL", DefaultValueFactory = _ => ServerOptions.DefaultUrl };

        var create = new Command("create", "Create a key; it is printed once.") { role, tenant, label, db };
        create.SetAction((r, _) => CreateKeyAsync(r.GetValue(db)!, r.GetValue(role)!, r.GetValue(tenant), r.GetValue(label), output, error));
        var list = new Command("list", "List keys (ids, roles, tenants, labels, created and revoked times).") { db };
        list.SetAction((r, _) => ListKeysAsync(r.GetValue(db)!, output));
        var revoke = new Command("revoke", "Revoke a key by its id.") { keyId, db };
        revoke.SetAction((r, _) => RevokeKeyAsync(r.GetValue(db)!, r.GetValue(keyId)!, output, error));
        var backup = new Command("backup", "Copy the live SQLite database with the online backup API.") { to, db };
        backup.SetAction((r, _) => BackupToAsync(r.GetValue(db)!, r.GetValue(to)!, output, error));
        var restore = new Command("restore", "Write a backup into the database file (server stopped).") { from, db, force };
        restore.SetAction((r, _) => RestoreFromAsync(r.GetValue(db)!, r.GetValue(from)!, r.GetValue(force), output, error));
        var health = new Command("health", "Exit 0 when the server at --url answers SERVING.") { url };
        health.SetAction((r, _) => CheckHealthAsync(r.GetValue(url)!, output, error));
        var contract = new Option<string>("--contract") { Required = true, HelpName = "CONTRACT_ID" };
        var month = new Option<string>("--month") { Required = true, HelpName = "YYYY-MM" };
        var verify = new Command("verify", "Recompute a month's statement from every interval and sample and compare it with the one served.") { contract, month, db };
        verify.SetAction((r, _) => VerifyStatementAsync(r.GetValue(db)!, r.GetValue(contract)!, r.GetValue(month)!, output, error));
        var root = new RootCommand("Procurement.Server's operator commands")
        {
            new Command("keys", "Create, list and revoke API keys.") { create, list, revoke }, backup, restore, health,
            new Command("statements", "Check statements against the history they are computed from.") { verify },
        };

        var parsed = root.Parse(args);
        var usage = args.FirstOrDefault() switch { "keys" => KeysUsage, "health" => HealthUsage, "statements" => StatementsUsage, _ => BackupUsage };
        if (parsed.Action is HelpAction)
        {
            await output.WriteLineAsync(usage);
            return 0;
        }

        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors.Where(e => parsed.Errors.Count == 1 || e.Message != "Required command was not provided."))
            {
                await error.WriteLineAsync($"error: {e.Message}");
            }

            var typos = new StringWriter();
            if (parsed.Action is ParseErrorAction errorAction)
            {
                (errorAction.ShowHelp, errorAction.ShowTypoCorrections) = (false, true);
            }

            await parsed.InvokeAsync(new InvocationConfiguration { Output = typos, Error = typos });
            var suggestion = typos.ToString().ReplaceLineEndings("\n").Split('\n').SkipWhile(l => !l.Contains("Did you mean", StringComparison.Ordinal)).TakeWhile(l => l.Length > 0);
            await error.WriteLineAsync(string.Join("\n", suggestion.Append(usage)));
            return UsageExitCode;
        }

        return await parsed.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
    }

    private static async Task<int> CreateKeyAsync(string db, string roleName, string? tenant, string? label, TextWriter output, TextWriter error)
    {
        if (!RoleNames.TryParse(roleName, out var role))
        {
            await error.WriteLineAsync("--role must be operator, customer or meter.\n" + KeysUsage);
            return UsageExitCode;
        }

        if (role == Role.Customer && !Identifiers.IsTenantId(tenant))
        {
            await error.WriteLineAsync("--tenant is required for a customer key: 1..64 characters of [a-z0-9-], starting with a letter.");
            return UsageExitCode;
        }

        if (role != Role.Customer && tenant is not null)
        {
            await error.WriteLineAsync("--tenant applies to customer keys only.");
            return UsageExitCode;
        }

        await using var handle = OpenStore(db);
        var (record, key) = await new ApiKeys(handle.Store, TimeProvider.System).CreateAsync(role, tenant, label, CancellationToken.None);
        await output.WriteLineAsync($"created {record.Role} key {record.Id}{(record.TenantId is null ? "" : $" for tenant {record.TenantId}")}; it is shown once:");
        await output.WriteLineAsync(key);
        return 0;
    }

    private static async Task<int> ListKeysAsync(string db, TextWriter output)
    {
        await using var handle = OpenStore(db);
        await output.WriteLineAsync($"{"ID",-18} {"ROLE",-9} {"TENANT",-20} {"CREATED",-25} {"REVOKED",-25} LABEL");
        foreach (var k in await new ApiKeys(handle.Store, TimeProvider.System).ListAsync(CancellationToken.None))
        {
            await output.WriteLineAsync($"{k.Id,-18} {k.Role,-9} {k.TenantId ?? "-",-20} {k.CreatedAt:O} {(k.RevokedAt is { } r ? r.ToString("O") : "-"),-25} {k.Label}");
        }

        return 0;
    }

    private static async Task<int> RevokeKeyAsync(string db, string id, TextWriter output, TextWriter error)
    {
        await using var handle = OpenStore(db);
        if (await new ApiKeys(handle.Store, TimeProvider.System).RevokeAsync(id, CancellationToken.None))
        {
            await output.WriteLineAsync($"revoked {id}");
            return 0;
        }

        await error.WriteLineAsync($"no live key with id '{id}'");
        return 1;
    }

    private static async Task<int> BackupToAsync(string db, string destination, TextWriter output, TextWriter error)
    {
        if (File.Exists(destination))
        {
            await error.WriteLineAsync($"'{destination}' exists; choose a new file.");
            return 1;
        }

        if (StoreFactory.IsPostgres(db))
        {
            await error.WriteLineAsync("backup and restore are for the SQLite file; back up PostgreSQL with pg_dump or your platform's snapshots.");
            return UsageExitCode;
        }

        var database = new SqliteDatabase(db);
        if (!File.Exists(database.Path))
        {
            await error.WriteLineAsync($"no database at '{database.Path}'");
            return 1;
        }

        database.BackupTo(destination);
        await output.WriteLineAsync($"backed up {database.Path} to {Path.GetFullPath(destination)}");
        return 0;
    }

    private static async Task<int> RestoreFromAsync(string db, string source, bool force, TextWriter output, TextWriter error)
    {
        if (!File.Exists(source))
        {
            await error.WriteLineAsync($"no backup at '{source}'");
            return 1;
        }

        var target = new SqliteDatabase(db);
        if (File.Exists(target.Path) && !force)
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

    private static async Task<int> CheckHealthAsync(string url, TextWriter output, TextWriter error)
    {
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

    private static async Task<int> VerifyStatementAsync(string db, string contractId, string monthText, TextWriter output, TextWriter error)
    {
        if (!BillingMonth.TryParse(monthText, out var month))
        {
            await error.WriteLineAsync($"--month must be YYYY-MM (a year 2000..9998, a month 01..12); it is '{monthText}'.\n{StatementsUsage}");
            return UsageExitCode;
        }

        await using var handle = OpenStore(db);
        var now = Application.Mutations.TruncateToMilliseconds(TimeProvider.System.GetUtcNow());
        var result = await handle.Store.ReadAsync<(Api.V1.Statement Served, Api.V1.Statement Recomputed)?>(async s =>
        {
            if (await s.Contracts.GetAsync(contractId) is not { } contract)
            {
                return null;
            }

            var period = Application.Billing.Period(contract, month, now);
            return ((await Application.Billing.StatementAsync(s, period, now)).ToApi(), (await Application.Billing.StatementAsync(s, period, now, recompute: true)).ToApi());
        }, CancellationToken.None);
        if (result is not var (served, recomputed))
        {
            await error.WriteLineAsync($"no contract '{contractId}'");
            return 1;
        }

        if (served.ToByteString().Equals(recomputed.ToByteString()))
        {
            await output.WriteLineAsync($"identical: {contractId} {monthText}, total {DecimalText.Format(recomputed.Total.AmountMicros / 1_000_000m)} {recomputed.Total.CurrencyCode}{(recomputed.Provisional ? " (provisional)" : "")}");
            return 0;
        }

        await error.WriteLineAsync($"DIFFERENT: {contractId} {monthText}");
        await error.WriteLineAsync($"served:     {Google.Protobuf.JsonFormatter.Default.Format(served)}");
        await error.WriteLineAsync($"recomputed: {Google.Protobuf.JsonFormatter.Default.Format(recomputed)}");
        return 1;
    }

    private static StoreHandle OpenStore(string db) =>
        new(StoreFactory.Create(db, TimeProvider.System, NullLoggerFactory.Instance));

    /// <summary>Disposes whichever provider was opened.</summary>
    private sealed class StoreHandle(IProcurementStore store) : IAsyncDisposable
    {
        public IProcurementStore Store => store;

        public ValueTask DisposeAsync() => store is IAsyncDisposable d ? d.DisposeAsync() : ValueTask.CompletedTask;
    }
}
