using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using Microsoft.Data.Sqlite;
using Procurement.Api.V1;
using Procurement.Server.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

public sealed class ServerCommandTests : IAsyncLifetime
{
    private ServerHarness _server = null!;

    public async Task InitializeAsync() => _server = await ServerHarness.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private async Task<(int Code, string Out, string Err)> Keys(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AdminCommands.KeysAsync([.. args, "--db", _server.Database], output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task KeysCreate_WhileTheServerRuns_PrintsAKeyThatWorksAtOnce()
    {
        var (code, output, _) = await Keys("create", "--role", "customer", "--tenant", "lab-a");
        Assert.Equal(0, code);
        var key = output.TrimEnd().Split('\n')[^1];
        Assert.StartsWith("pk_", key);

        var pools = await _server.Allocations(key).ListPoolsAsync(new ListPoolsRequest());
        Assert.Empty(pools.Pools);
    }

    [Fact]
    public async Task KeysRevoke_WhileTheServerRuns_TakesEffectAtOnce()
    {
        var (_, output, _) = await Keys("create", "--role", "meter", "--label", "fleet meter");
        var key = output.TrimEnd().Split('\n')[^1];
        await _server.Allocations(key).ListPoolsAsync(new ListPoolsRequest());

        var (_, list, _) = await Keys("list");
        var line = list.Split('\n').Single(l => l.Contains("fleet meter", StringComparison.Ordinal));
        Assert.DoesNotContain(key, list); // only ids and hashes are stored, never keys
        var keyId = line.Split(' ')[0];

        Assert.Equal(0, (await Keys("revoke", keyId)).Code);
        await Rpc.FailsWith(StatusCode.Unauthenticated, "API_KEY_INVALID", _server.Allocations(key).ListPoolsAsync(new ListPoolsRequest()));
        Assert.Equal(1, (await Keys("revoke", keyId)).Code);
    }

    [Theory]
    [InlineData("create", "--role", "admin")]
    [InlineData("create", "--role", "customer")]
    [InlineData("create", "--role", "operator", "--tenant", "lab-a")]
    [InlineData("frobnicate")]
    [InlineData("list", "--colour", "red")]
    [InlineData("revoke", "key_1", "key_2")]
    [InlineData("revoke")]
    public async Task Keys_BadUsage_ExitsTwo(params string[] args) => Assert.Equal(2, (await Keys(args)).Code);

    [Fact]
    public async Task Keys_ATypo_IsRefusedWithASuggestionAndTheUsage()
    {
        var (code, _, error) = await Keys("lst");

        Assert.Equal(2, code);
        Assert.Contains("error: Unrecognized command or argument 'lst'", error);
        Assert.Contains("Did you mean one of the following?", error);
        Assert.Contains("Procurement.Server keys list [--db PATH]", error);
    }

    [Fact]
    public async Task StatementsVerify_ComparesTheServedStatementWithOneRecomputedFromTheHistory()
    {
        await Fixtures.CreatePoolsAsync(_server, h100Capacity: 100, h200Capacity: 50);
        var contract = await Fixtures.CreateActiveContractAsync(_server, "lab-a", Fixtures.H100Terms(ServerHarness.DefaultNow, reserved: 10, burst: 20));
        await _server.OperatorAllocations.RequestAllocationAsync(new RequestAllocationRequest
        {
            RequestId = Rpc.NewRequestId(), ContractId = contract.ContractId, PoolId = Fixtures.H100, Units = 15,
        });
        _server.Clock.Advance(TimeSpan.FromDays(1));
        await _server.Services.GetRequiredService<UsageFolder>().FoldOnceAsync(CancellationToken.None);

        var (code, output, error) = await Run("statements", "verify", "--contract", contract.ContractId, "--month", "2026-03", "--db", _server.Database);
        Assert.True(code == 0, error);
        Assert.StartsWith($"identical: {contract.ContractId} 2026-03, total ", output);

        // Totals that no longer match the history are caught, with both statements shown.
        const string tamper = "UPDATE usage_totals SET guaranteed_unit_ms = guaranteed_unit_ms + 3600000";
        if (ServerHarness.OnPostgres)
        {
            await using var connection = new Npgsql.NpgsqlConnection(_server.Database);
            Assert.Equal(1, await Dapper.SqlMapper.ExecuteAsync(connection, tamper));
        }
        else
        {
            await using var connection = new SqliteConnection($"Data Source={_server.DatabasePath};Pooling=False");
            Assert.Equal(1, await Dapper.SqlMapper.ExecuteAsync(connection, tamper));
        }

        (code, _, error) = await Run("statements", "verify", "--contract", contract.ContractId, "--month", "2026-03", "--db", _server.Database);
        Assert.Equal(1, code);
        Assert.Contains($"DIFFERENT: {contract.ContractId} 2026-03", error);
        Assert.Contains("\"guaranteedGpuHours\": \"5161\"", error); // one unit-hour over the 5,160 held: 10 units from 10 March 12:00 to the end of March

        Assert.Equal(1, (await Run("statements", "verify", "--contract", "ctr_missing", "--month", "2026-03", "--db", _server.Database)).Code);
        Assert.Equal(2, (await Run("statements", "verify", "--contract", contract.ContractId, "--month", "2026-13", "--db", _server.Database)).Code);
        Assert.Equal(2, (await Run("statements", "verify", "--month", "2026-03", "--db", _server.Database)).Code); // --contract is required
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await AdminCommands.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Fact]
    public async Task AdminCommands_Help_IsTheUsage_AndExitsZero()
    {
        var output = new StringWriter();
        Assert.Equal(0, await AdminCommands.RunAsync(["backup", "--help"], output, new StringWriter()));
        Assert.Contains("Procurement.Server backup --to FILE [--db PATH]", output.ToString());
        Assert.Equal(2, await AdminCommands.RunAsync(["backup", "--db", "x.db"], new StringWriter(), new StringWriter())); // --to is required
    }

    [Fact]
    [Trait("Category", "SqliteOnly")]
    public async Task KeysTable_StoresOnlyHashes()
    {
        var (_, output, _) = await Keys("create", "--role", "operator");
        var key = output.TrimEnd().Split('\n')[^1];
        await using var connection = new SqliteConnection($"Data Source={_server.DatabasePath}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM api_keys WHERE key_hash = $key OR id = $key OR label = $key";
        command.Parameters.AddWithValue("$key", key);
        Assert.Equal(0L, await command.ExecuteScalarAsync());
    }

    [Fact]
    public async Task Health_AnswersServingWithoutAKey()
    {
        var health = new Health.HealthClient(_server.Channel);
        var reply = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }

    [Fact]
    public async Task Reflection_ListsTheProcurementServices()
    {
        var reflection = new ServerReflection.ServerReflectionClient(_server.Channel);
        using var call = reflection.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("procurement.v1.ContractService", names);
        Assert.Contains("procurement.v1.AllocationService", names);
        Assert.Contains("grpc.health.v1.Health", names);
    }

    [Fact]
    [Trait("Category", "SqliteOnly")]
    public async Task Backup_WhileRunning_CopiesEverything()
    {
        await Fixtures.CreatePoolsAsync(_server);
        var target = Path.Combine(Path.GetTempPath(), $"procurement-backup-{Guid.NewGuid():N}.db");
        try
        {
            var output = new StringWriter();
            Assert.Equal(0, await AdminCommands.BackupAsync(["--to", target, "--db", _server.DatabasePath], output, new StringWriter()));
            await using var connection = new SqliteConnection($"Data Source={target};Pooling=False");
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT COUNT(*) FROM pools";
            Assert.Equal(2L, await command.ExecuteScalarAsync());
            command.CommandText = "PRAGMA integrity_check";
            Assert.Equal("ok", await command.ExecuteScalarAsync());
        }
        finally
        {
            File.Delete(target);
        }
    }
}

/// <summary>Runs alone: one test sets a process-wide environment variable.</summary>
[Collection(nameof(ProcessEnvironmentCollection))]
public sealed class DemoAndBootstrapTests
{
    [Fact]
    public async Task Demo_SeedsTheHeadlineDealOnce()
    {
        await using var server = await ServerHarness.StartAsync(extraArgs: ["--demo"]);
        var contracts = (await server.OperatorContracts.ListContractsAsync(new ListContractsRequest())).Contracts;
        Assert.Equal([DemoSeeder.TenantId, DemoSeeder.SecondTenantId], contracts.Select(c => c.TenantId));
        Assert.All(contracts, c => Assert.Equal(ContractState.Active, c.State));
        var deal = contracts[0];
        Assert.Equal(ContractState.Active, deal.State);
        Assert.Equal(DemoSeeder.TenantId, deal.TenantId);
        Assert.Equal(1_250_000_000_000_000, deal.Terms.MonthlyCommitment.AmountMicros);
        Assert.Equal(deal.Terms.StartTime.ToDateTimeOffset().AddMonths(36), deal.Terms.EndTime.ToDateTimeOffset());
        Assert.NotNull(deal.Terms.IndexLinkage);
        Assert.NotEmpty(deal.Terms.UtilizationBands);
        var pools = (await server.OperatorAllocations.ListPoolsAsync(new ListPoolsRequest())).Pools;
        Assert.Equal([100_000L, 50_000L], pools.Select(p => p.CapacityUnits));

        // A second start with --demo on the same file leaves it alone.
        var output = new StringWriter();
        Assert.False(await server.Services.GetRequiredService<DemoSeeder>().SeedAsync(output, CancellationToken.None));
        Assert.Contains("not empty", output.ToString());
        Assert.Equal(2, (await server.OperatorContracts.ListContractsAsync(new ListContractsRequest())).Contracts.Count);
    }

    [Fact]
    public async Task BootstrapOperatorKey_FromConfiguration_IsRegistered()
    {
        const string key = "bootstrap-key-for-tests-0123456789";
        await using var server = await ServerHarness.StartAsync(extraArgs: [$"--Procurement:BootstrapOperatorKey={key}"]);
        Assert.Empty((await server.Allocations(key).ListPoolsAsync(new ListPoolsRequest())).Pools);
        await server.RestartAsync(); // registering it again is a no-op
        Assert.Empty((await server.Allocations(key).ListPoolsAsync(new ListPoolsRequest())).Pools);
        var keys = await server.Services.GetRequiredService<Procurement.Server.Auth.ApiKeys>().ListAsync(CancellationToken.None);
        Assert.Equal(2, keys.Count); // the harness's operator key and the bootstrap key, once
    }

    [Fact]
    public async Task BootstrapOperatorKey_FromTheEnvironment_IsRegistered()
    {
        const string key = "bootstrap-key-from-environment-0123456789";
        Environment.SetEnvironmentVariable("PROCUREMENT_BOOTSTRAP_OPERATOR_KEY", key);
        try
        {
            await using var server = await ServerHarness.StartAsync();
            Assert.Empty((await server.Allocations(key).ListPoolsAsync(new ListPoolsRequest())).Pools);
        }
        finally
        {
            Environment.SetEnvironmentVariable("PROCUREMENT_BOOTSTRAP_OPERATOR_KEY", null);
        }
    }
}

[CollectionDefinition(nameof(ProcessEnvironmentCollection), DisableParallelization = true)]
public sealed class ProcessEnvironmentCollection;
