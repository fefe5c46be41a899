using System.Diagnostics;
using Procurement.Client;

namespace Procurement.EndToEnd.Tests;

public sealed class BackupTests
{
    [Fact]
    public async Task BackupUnderWriteLoad_RestoresToAConsistentDatabase()
    {
        var folder = Directory.CreateTempSubdirectory("procurement-backup-").FullName;
        await using var server = await ServerProcess.StartAsync(Path.Combine(folder, "procurement.db"), "backup-operator-" + Guid.NewGuid().ToString("N"));
        ProcurementClient Client() => ProcurementClient.Create(new ProcurementClientOptions { Endpoint = server.Endpoint, ApiKey = server.BootstrapKey }.With(CrashSafetyTests.Configure));
        using var client = Client();
        var (deal, contracts, reserved) = await CrashSafetyTests.SetUpAsync(client);

        var workload = new Workload(Client, deal, contracts, seed: 7);
        using var stop = new CancellationTokenSource();
        var writers = workload.RunAsync(stop.Token);
        await Task.Delay(1500);

        // The published program's own commands, as an operator would run them, while the writers write.
        var backup = Path.Combine(folder, "backup.db");
        Assert.Equal(0, await RunServerCommandAsync("backup", "--to", backup, "--db", server.DatabasePath));
        await Task.Delay(500);
        stop.Cancel();
        await writers;
        Assert.True(workload.Requests.Count > 10);
        Assert.Equal("ok", Invariants.IntegrityCheck(backup));

        var restored = Path.Combine(folder, "restored", "procurement.db");
        Assert.Equal(0, await RunServerCommandAsync("restore", "--from", backup, "--db", restored));
        Assert.Equal(1, await RunServerCommandAsync("restore", "--from", backup, "--db", restored)); // will not overwrite without --force

        await using var copy = await ServerProcess.StartAsync(restored, server.BootstrapKey);
        using var copyClient = ProcurementClient.Create(new ProcurementClientOptions { Endpoint = copy.Endpoint, ApiKey = copy.BootstrapKey });
        await Invariants.CheckPoolAsync(copyClient, deal.H100, 500, reserved);
        Assert.Equal(0, await copy.TerminateAsync());
        Assert.Equal("ok", Invariants.IntegrityCheck(restored));
        await server.TerminateAsync();
        Directory.Delete(folder, recursive: true);
    }

    private static async Task<int> RunServerCommandAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(await ServerProcess.PublishedServerAsync());
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Console.Error.WriteLine($"Procurement.Server {string.Join(' ', args)} → {process.ExitCode}\n{await stdout}{await stderr}");
        return process.ExitCode;
    }
}
