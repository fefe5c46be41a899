using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Procurement.Api.V1;
using Procurement.Server.Hosting;
using Procurement.TestSupport;

namespace Procurement.Server.Tests;

/// <summary>
/// A setting the server could not run with stops it at start, naming the setting and an example;
/// settings at their limits start it, and every background service keeps running.
/// </summary>
public sealed class ServerSettingsTests
{
    [Theory]
    [InlineData("SqliteBusyTimeout=00:00:00", "Procurement:SqliteBusyTimeout must be a whole number of seconds, at least 1 (e.g. 00:00:30)")]
    [InlineData("SqliteBusyTimeout=00:00:01.5", "Procurement:SqliteBusyTimeout must be a whole number of seconds, at least 1 (e.g. 00:00:30)")]
    [InlineData("SweepInterval=00:00:00", "Procurement:SweepInterval must be more than zero and at most 49.17:02:47.294 (about 49.7 days; e.g. 00:00:01)")]
    [InlineData("SweepInterval=49.17:02:47.295", "Procurement:SweepInterval must be more than zero and at most 49.17:02:47.294 (about 49.7 days; e.g. 00:00:01)")]
    [InlineData("FoldInterval=00:00:00", "Procurement:FoldInterval must be more than zero and at most 49.17:02:47.294 (about 49.7 days; e.g. 00:00:01)")]
    [InlineData("WriterReportInterval=-00:00:01", "Procurement:WriterReportInterval must be zero (off) or at most 49.17:02:47.294 (about 49.7 days; e.g. 00:00:10)")]
    [InlineData("WriterReportInterval=49.17:02:47.295", "Procurement:WriterReportInterval must be zero (off) or at most 49.17:02:47.294 (about 49.7 days; e.g. 00:00:10)")]
    [InlineData("IdempotencyRetention=3651.00:00:00", "Procurement:IdempotencyRetention must be at most 3650 days (e.g. 7.00:00:00)")]
    public async Task ASettingTheServerCouldNotRunWith_StopsItFromStarting_NamingIt(string setting, string message) =>
        Assert.Contains(message, (await StartFailsAsync($"--Procurement:{setting}")).Message);

    [Fact]
    public async Task SeveralBadSettings_AreNamedInOneMessage()
    {
        var e = await StartFailsAsync("--Procurement:SweepInterval=00:00:00", "--Procurement:SqliteBusyTimeout=00:00:00");
        Assert.Contains("Procurement:SweepInterval must be", e.Message);
        Assert.Contains("Procurement:SqliteBusyTimeout must be", e.Message);
    }

    [Fact]
    [Trait("Category", "SqliteOnly")] // The busy timeout is the SQLite file's.
    public async Task SettingsAtTheirLimits_StartTheServer_AndNoBackgroundServiceFails()
    {
        await using var server = await ServerHarness.StartAsync(extraArgs:
        [
            "--Procurement:SweepInterval=49.17:02:47.294", "--Procurement:FoldInterval=49.17:02:47.294", "--Procurement:WriterReportInterval=49.17:02:47.294",
            "--Procurement:IdempotencyRetention=3650.00:00:00", "--Procurement:SqliteBusyTimeout=00:00:01",
        ]);
        await Fixtures.CreatePoolsAsync(server);
        var status = await server.OperatorAllocations.GetPoolStatusAsync(new GetPoolStatusRequest { PoolId = Fixtures.H100 });
        Assert.Equal(1000, status.Pool.CapacityUnits);

        Assert.False(server.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested);
        foreach (var service in server.Services.GetServices<IHostedService>().OfType<BackgroundService>())
        {
            Assert.False(service.ExecuteTask?.IsFaulted ?? false, $"{service.GetType().Name} failed: {service.ExecuteTask?.Exception}");
        }
    }

    /// <summary>Starts a server on a temp file with <paramref name="settings"/>; returns why it refused to start.</summary>
    private static async Task<OptionsValidationException> StartFailsAsync(params string[] settings)
    {
        var folder = Path.Combine(Path.GetTempPath(), "procurement-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            await using var app = ProcurementHost.Build(["--db", Path.Combine(folder, "procurement.db"), "--urls", "http://127.0.0.1:0", .. settings]);
            return await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void TheLongestTimerPeriodAllowed_IsTheLongestTheRuntimeTakes()
    {
        using (new PeriodicTimer(ServerOptionsValidator.MaxTimerPeriod, TimeProvider.System))
        {
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new PeriodicTimer(ServerOptionsValidator.MaxTimerPeriod + TimeSpan.FromMilliseconds(1), TimeProvider.System));
    }
}
