using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Procurement.Server.Hosting;

namespace Procurement.Server.Tests;

/// <summary>The server program that cannot start says why in one line on stderr and exits 1.</summary>
[Trait("Category", "SqliteOnly")] // Each case runs the program on a SQLite file of its own.
public sealed class StartupFailureTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("procurement-startup-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task PortInUse_OneLineNamingTheAddress()
    {
        using var busy = new TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        var port = ((IPEndPoint)busy.LocalEndpoint).Port;
        var (code, stderr) = await RunAsync("--urls", $"http://127.0.0.1:{port}", "--db", Path.Combine(_folder, "p.db"));
        AssertOneLine(code, stderr, $"127.0.0.1:{port}", "address already in use");
    }

    [Fact]
    public async Task BadSetting_OneLineNamingTheSetting()
    {
        var (code, stderr) = await RunAsync("--urls", "http://127.0.0.1:0", "--db", Path.Combine(_folder, "s.db"), "--Procurement:SweepInterval=00:00:00");
        AssertOneLine(code, stderr, "Procurement:SweepInterval");
        (code, stderr) = await RunAsync("--urls", "http://127.0.0.1:0", "--db", Path.Combine(_folder, "s.db"), "--Procurement:FairUse:Customer:Burst=-1");
        AssertOneLine(code, stderr, "Procurement:FairUse:Customer:Burst");
    }

    [Fact]
    public async Task UnreadableDatabase_OneLineNamingTheDatabase()
    {
        var path = Path.Combine(_folder, "garbage.db");
        await File.WriteAllTextAsync(path, new string('x', 8192));
        var (code, stderr) = await RunAsync("--urls", "http://127.0.0.1:0", "--db", path);
        AssertOneLine(code, stderr, "database");
    }

    private static void AssertOneLine(int code, string stderr, params string[] expected)
    {
        Assert.Equal(1, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got {lines.Length}:\n{stderr}");
        Assert.StartsWith("Procurement.Server: cannot start: ", lines[0]);
        foreach (var text in expected)
        {
            Assert.Contains(text, lines[0]);
        }
    }

    private static async Task<(int Code, string Stderr)> RunAsync(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        info.ArgumentList.Add(typeof(ProcurementHost).Assembly.Location);
        foreach (var a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stderr);
    }
}
